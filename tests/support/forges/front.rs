//! The half the three forge fakes share, as rust-lang/bors' `src/tests/mock/` shares it:
//! serving on 127.0.0.1:0, recording each request with its credentials left out, finding
//! the route a path is for, scripted faults, holds, and checking the contract when a fake
//! goes away unchecked. Each fake keeps its state and what is its forge's own (error
//! bodies, authentication, contract checks) in a [`Forge`], and answers each route with a
//! small function of its own.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use serde_json::Value;

use super::contract::RecordedRequest;
use super::fault::Fault;
use super::hold::{Hold, HoldMode, Holds};

/// Headers that carry credentials: never recorded, so no request log or contract
/// violation a test prints can show a token.
const CREDENTIALS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "private-token",
    "job-token",
];

/// One route of a fake: its method, its path template (`{name}` a parameter, named as the
/// forge's API description names it) and what answers it, in the fake's own signature.
pub(super) struct Endpoint<R> {
    pub method: &'static str,
    pub template: &'static str,
    pub respond: R,
}

/// A fake's route table, one route a line: `GET "/template" => respond`.
macro_rules! routes {
    ($($method:ident $template:expr => $respond:expr),* $(,)?) => {
        &[$(Endpoint { method: stringify!($method), template: $template, respond: $respond }),*]
    };
}
pub(super) use routes;

/// A route's answer; an `Err` is a refusal, answered all the same, so that a route's
/// function can refuse with `?`.
pub(super) type Reply = Result<Response, Response>;

/// A forge's own half of a fake.
pub(super) trait Forge: Send + Sync + 'static {
    /// A route's answer, as the fake calls it.
    type Respond: Copy + Send + Sync + 'static;
    const ROUTES: &'static [Endpoint<Self::Respond>];

    /// The route `path` is for, with its decoded parameters (see [`bind`]).
    fn route(&self, method: &str, path: &str)
    -> Option<(&'static Endpoint<Self::Respond>, Params)>;

    /// The body as the forge reads it; the error says why it cannot.
    fn read_body(&self, _headers: &HeaderMap, body: &[u8]) -> Result<Option<Value>, String> {
        if body.is_empty() {
            return Ok(None);
        }
        serde_json::from_slice(body)
            .map(Some)
            .map_err(|e| format!("not JSON: {e}"))
    }

    /// The forge's error body around `message`, for scripted faults.
    fn error_body(message: &str) -> Value;

    /// Sees every request as it arrives, faulted or not (for the fake's hand checks).
    fn arrived(&self, _request: &Request) {}

    /// The answer to a request for no route the fake serves.
    fn no_route(&self, request: &Request) -> Response;

    /// The answer to a request for a route, which `respond` gives once the fake let it in.
    fn answer(&self, respond: Self::Respond, request: &Request) -> Response;

    /// What is wrong with `requests` (never empty) by the forge's API description and the
    /// fake's hand checks.
    fn contract_violations(&self, requests: &[RecordedRequest]) -> Vec<String>;
}

/// A route's path parameters, decoded, in template order.
pub(super) type Params = Vec<String>;

/// A request as a route's function reads it.
pub(super) struct Request {
    pub method: String,
    /// The route's template; empty for a path no route serves.
    pub template: &'static str,
    pub params: Params,
    /// Decoded query pairs in order.
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Result<Option<Value>, String>,
    /// `METHOD /path?query`, for messages.
    pub line: String,
}

impl Request {
    pub fn query(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body; `null` without one, and the recorded `<why>` text for one not readable.
    pub fn json(&self) -> Value {
        recorded_body(&self.body).unwrap_or(Value::Null)
    }

    /// The token of `Authorization: Bearer …` (or GitHub's older `token …`).
    pub fn bearer(&self) -> Option<&str> {
        let value = self.header("authorization")?;
        value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("token "))
    }

    /// The password of `Authorization: Basic base64(user:password)`.
    pub fn basic_password(&self) -> Option<String> {
        let encoded = self.header("authorization")?.strip_prefix("Basic ")?;
        let text = String::from_utf8(crate::server::base64_decode(encoded)?).ok()?;
        text.split_once(':')
            .map(|(_, password)| password.to_owned())
    }
}

fn recorded_body(body: &Result<Option<Value>, String>) -> Option<Value> {
    match body {
        Ok(body) => body.clone(),
        Err(why) => Some(Value::String(format!("<{why}>"))),
    }
}

/// The route among `routes` that `path` (a fake's prefix stripped) is for, with its
/// parameters; `spanning` names a last parameter that takes the rest of the path.
pub(super) fn bind<R>(
    routes: &'static [Endpoint<R>],
    method: &str,
    path: &str,
    spanning: Option<&str>,
) -> Option<(&'static Endpoint<R>, Params)> {
    routes.iter().filter(|r| r.method == method).find_map(|r| {
        super::contract::bind_path(r.template, spanning, path).map(|params| (r, params))
    })
}

/// A running fake: its server, what it received, and what tests scripted for it.
pub(super) struct Front<F: Forge> {
    shared: Arc<Shared<F>>,
    origin: String,
    server: tokio::task::JoinHandle<()>,
    /// Whether a test looked at the contract check; if not, dropping the fake runs it.
    checked: AtomicBool,
}

struct Shared<F> {
    forge: F,
    requests: Mutex<Vec<RecordedRequest>>,
    faults: Mutex<HashMap<(&'static str, &'static str), VecDeque<Fault>>>,
    holds: Holds,
}

impl<F: Forge> Front<F> {
    /// Serves the forge `make` builds from the origin (`http://127.0.0.1:PORT`).
    pub(super) async fn start(make: impl FnOnce(&str) -> F) -> Front<F> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            forge: make(&origin),
            requests: Mutex::default(),
            faults: Mutex::default(),
            holds: Holds::default(),
        });
        let app = Router::new()
            .fallback(handle::<F>)
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Front {
            shared,
            origin,
            server,
            checked: AtomicBool::new(false),
        }
    }

    pub(super) fn origin(&self) -> &str {
        &self.origin
    }

    pub(super) fn forge(&self) -> &F {
        &self.shared.forge
    }

    fn endpoint(&self, method: &str, template: &str) -> &'static Endpoint<F::Respond> {
        F::ROUTES
            .iter()
            .find(|r| r.method == method && r.template == template)
            .unwrap_or_else(|| panic!("the fake has no route {method} {template}"))
    }

    /// The next request to `method template` gets `fault` instead of its answer.
    pub(super) fn enqueue_fault(&self, method: &str, template: &str, fault: Fault) {
        let route = self.endpoint(method, template);
        let mut faults = self.shared.faults.lock().unwrap();
        faults
            .entry((route.method, route.template))
            .or_default()
            .push_back(fault);
    }

    /// Holds the next request to `method template` (see [`Hold`]); later ones pass.
    pub(super) fn hold(&self, method: &str, template: &str, mode: HoldMode) -> Hold {
        let route = self.endpoint(method, template);
        let name = format!("{} {}", route.method, route.template);
        self.shared.holds.add(name, mode)
    }

    pub(super) fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// `"METHOD /path"` of every request so far, queries left out.
    pub(super) fn request_lines(&self) -> Vec<String> {
        let requests = self.shared.requests.lock().unwrap();
        requests
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }

    pub(super) fn contract_violations(&self) -> Vec<String> {
        self.checked.store(true, Ordering::SeqCst);
        let requests = self.requests();
        assert!(!requests.is_empty(), "no requests recorded");
        self.shared.forge.contract_violations(&requests)
    }

    pub(super) fn assert_contract(&self) {
        let violations = self.contract_violations();
        assert!(
            violations.is_empty(),
            "contract violations:\n{}",
            violations.join("\n")
        );
    }
}

impl<F: Forge> Drop for Front<F> {
    /// A test that forgot `assert_contract` still has its requests checked: "every
    /// request the fake receives" holds without relying on each test's last line.
    fn drop(&mut self) {
        self.server.abort();
        let unchecked = !self.checked.load(Ordering::SeqCst);
        let received = !self.shared.requests.lock().unwrap().is_empty();
        if unchecked && received && !std::thread::panicking() {
            self.assert_contract();
        }
    }
}

/// Answers a request, holding it first if a test asked for that.
async fn handle<F: Forge>(
    State(shared): State<Arc<Shared<F>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let routed = shared.forge.route(method.as_str(), uri.path());
    let hold = routed
        .as_ref()
        .map(|(route, _)| format!("{} {}", route.method, route.template));
    shared
        .holds
        .answer(hold, || shared.respond(routed, method, uri, headers, body))
        .await
}

impl<F: Forge> Shared<F> {
    async fn respond(
        &self,
        routed: Option<(&'static Endpoint<F::Respond>, Params)>,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> Response {
        let query: Vec<(String, String)> = uri
            .query()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        let body = self.forge.read_body(&headers, &body);
        let recorded = RecordedRequest {
            method: method.to_string(),
            path: uri.path().to_owned(),
            query: query.clone(),
            headers: headers
                .iter()
                .filter(|(name, _)| !CREDENTIALS.contains(&name.as_str()))
                .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("<binary>").to_owned()))
                .collect(),
            body: recorded_body(&body),
        };
        let (route, params) = routed.unzip();
        let request = Request {
            method: recorded.method.clone(),
            template: route.map_or("", |r| r.template),
            params: params.unwrap_or_default(),
            query,
            headers,
            body,
            line: recorded.to_string(),
        };
        self.forge.arrived(&request);
        self.requests.lock().unwrap().push(recorded);
        let fault = route.and_then(|r| {
            let mut faults = self.faults.lock().unwrap();
            faults
                .get_mut(&(r.method, r.template))
                .and_then(VecDeque::pop_front)
        });
        match (fault, route) {
            (Some(fault), _) => fault.answer(F::error_body).await,
            (None, Some(route)) => self.forge.answer(route.respond, &request),
            (None, None) => self.forge.no_route(&request),
        }
    }
}
