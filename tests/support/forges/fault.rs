//! Scripted answers for the forge fakes: a test queues a [`Fault`] for a route, and the
//! next request to that route gets it instead of the fake's own answer. The three fakes
//! share this type; what differs between forges is only the shape of an error body, which
//! each fake supplies when it answers.

use std::time::Duration;

use axum::http::HeaderName;
use axum::response::Response;
use serde_json::Value;

/// A scripted answer, consumed by the next request to its route.
#[derive(Debug, Clone)]
pub enum Fault {
    /// This status, headers and JSON body, as given.
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Value,
    },
    /// This status and headers, with `message` in the forge's own error body.
    Error {
        status: u16,
        headers: Vec<(String, String)>,
        message: String,
    },
    /// Accept the request and never answer.
    Hang,
}

impl Fault {
    /// `status` with the forge's error body around `message`.
    pub fn status(status: u16, message: &str) -> Fault {
        Fault::with_headers(status, message, &[])
    }

    /// As [`Fault::status`], with response headers (`Retry-After`, rate-limit headers).
    pub fn with_headers(status: u16, message: &str, headers: &[(&str, &str)]) -> Fault {
        Fault::Error {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            message: message.to_owned(),
        }
    }

    /// The answer to the request this fault was queued for; `error_body` gives the
    /// forge's error body for a message. A hang outlasts any client's timeout.
    pub(super) async fn answer(self, error_body: impl Fn(&str) -> Value) -> Response {
        let (status, headers, body) = match self {
            Fault::Respond {
                status,
                headers,
                body,
            } => (status, headers, body),
            Fault::Error {
                status,
                headers,
                message,
            } => (status, headers, error_body(&message)),
            Fault::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                (500, Vec::new(), error_body("hung"))
            }
        };
        let mut response = super::answer(status, body);
        for (name, value) in headers {
            response.headers_mut().insert(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        response
    }
}
