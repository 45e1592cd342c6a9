//! `POST /webhooks/supernova`: authenticate, parse, route, commit, answer.
//!
//! The token is checked before the body is read, so an unauthenticated sender cannot
//! make Courier buffer a megabyte. The route with the token in its path is never logged
//! with its path: tracing records the matched route template, not the URI.

use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use courier_core::config::Config;
use courier_core::event::{Event, JobEvent};
use courier_core::routing::{self, Routing};
use serde::Serialize;
use serde_json::json;

use super::{AppState, MAX_BODY_BYTES, auth};
use crate::delivery::parse_payload;
use crate::store::{DeliveryId, JobId, JobNames, NewDelivery, NewJob, Routing as StoredRouting};

pub async fn webhook(State(state): State<AppState>, request: Request) -> Response {
    let token = auth::bearer(request.headers().get(header::AUTHORIZATION)).map(<[u8]>::to_vec);
    receive(state, token, request.into_body()).await
}

pub async fn webhook_with_path_token(
    State(state): State<AppState>,
    Path(token): Path<String>,
    request: Request,
) -> Response {
    receive(state, Some(token.into_bytes()), request.into_body()).await
}

async fn receive(state: AppState, token: Option<Vec<u8>>, body: Body) -> Response {
    let metrics = &state.metrics;
    if let Some(webhook) = &state.config.webhook {
        let ok = token.is_some_and(|t| auth::matches_any(&t, &webhook.tokens));
        if !ok {
            metrics.webhook("unauthorized");
            // Nothing about which part was wrong: missing, malformed and wrong look alike.
            let mut headers = HeaderMap::new();
            headers.insert(
                header::WWW_AUTHENTICATE,
                "Bearer".parse().expect("static header"),
            );
            return (
                StatusCode::UNAUTHORIZED,
                headers,
                Json(json!({"error": "unauthorized"})),
            )
                .into_response();
        }
    }
    let body = match to_bytes(body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(_) => {
            metrics.webhook("invalid");
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is larger than {MAX_BODY_BYTES} bytes"),
            );
        }
    };
    let parsed = match parse_payload(&body) {
        Ok(parsed) => parsed,
        Err(err) => {
            metrics.webhook("invalid");
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({
                    "error": "invalid payload",
                    "path": err.path(),
                    "message": err.to_string(),
                })),
            )
                .into_response();
        }
    };
    let job = match parsed.event {
        Event::JobUpdated(job) => job,
        Event::Other { event } => {
            metrics.webhook("ignored");
            return (
                StatusCode::ACCEPTED,
                Json(json!({
                    "status": "ignored",
                    "reason": format!("event `{event}` is not job:updated; Courier ignores it"),
                })),
            )
                .into_response();
        }
    };
    let refusal = refusal(&state.config, &job);
    let record = record(&state.config, &job, Vec::from(body), refusal.as_deref());
    let inserted = match state.store.insert_job(record).await {
        Ok(inserted) => inserted,
        Err(err) => {
            tracing::error!(error = %err, "could not record a webhook");
            metrics.webhook("error");
            // 503 tells the platform to try again later; nothing was accepted.
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the store is unavailable; retry later".into(),
            );
        }
    };
    if let Some(reason) = refusal {
        metrics.webhook("forbidden");
        return (
            StatusCode::FORBIDDEN,
            Json(json!({"error": reason, "job": inserted.job})),
        )
            .into_response();
    }
    let status = if inserted.duplicate {
        metrics.webhook("duplicate");
        StatusCode::OK
    } else {
        metrics.webhook("accepted");
        if !inserted.deliveries.is_empty() {
            state.work_available.notify_waiters();
        }
        StatusCode::ACCEPTED
    };
    tracing::info!(
        workspace = %job.workspace.id,
        job = %job.job.id,
        hook = %job.hook.id,
        deliveries = inserted.deliveries.len(),
        duplicate = inserted.duplicate,
        "webhook recorded"
    );
    let answer = Answer {
        status: if inserted.duplicate {
            "duplicate"
        } else {
            "accepted"
        },
        job: &inserted.job,
        deliveries: &inserted.deliveries,
    };
    (status, Json(answer)).into_response()
}

/// The answer to an accepted or duplicate job.
#[derive(Serialize)]
struct Answer<'a> {
    status: &'static str,
    job: &'a JobId,
    deliveries: &'a [DeliveryId],
}

/// Why a sender with a valid token may still not submit this job: the allowlists.
fn refusal(config: &Config, job: &JobEvent) -> Option<String> {
    let webhook = config.webhook.as_ref()?;
    if !webhook.allowed_workspaces.is_empty()
        && !webhook.allowed_workspaces.contains(&job.workspace.id)
    {
        return Some(format!(
            "workspace {} is not in webhook.allowed_workspaces",
            job.workspace.id
        ));
    }
    if !webhook.allowed_design_systems.is_empty()
        && !webhook
            .allowed_design_systems
            .contains(&job.design_system.id)
    {
        return Some(format!(
            "design system {} is not in webhook.allowed_design_systems",
            job.design_system.id
        ));
    }
    None
}

/// The job as the store records it, with one delivery per routed target. Routing is
/// in-memory and takes microseconds, so it happens here and the answer can list the
/// delivery ids.
fn record(config: &Config, job: &JobEvent, body: Vec<u8>, refusal: Option<&str>) -> NewJob {
    let mut record = NewJob {
        workspace_id: job.workspace.id.clone(),
        job_id: job.job.id.clone(),
        hook_id: job.hook.id.clone(),
        design_system_id: job.design_system.id.clone(),
        status: job.job.status.to_string(),
        ignored: !acted_on(job),
        body,
        routing: StoredRouting::Unrouted {
            reason: String::new(),
        },
        names: JobNames {
            design_system: job.design_system.name.clone(),
            version: [job.version.name.as_str(), job.version.version.as_str()]
                .into_iter()
                .filter(|part| !part.is_empty())
                .collect::<Vec<_>>()
                .join(" "),
            exporter: job.exporter.name.clone(),
        },
        deliveries: Vec::new(),
    };
    if let Some(reason) = refusal {
        record.routing = StoredRouting::Unrouted {
            reason: reason.to_owned(),
        };
        return record;
    }
    match routing::route(config, job) {
        Routing::Unrouted { reason } => record.routing = StoredRouting::Unrouted { reason },
        Routing::Routed(route) if route.is_build_only() => {
            record.routing = StoredRouting::BuildOnly
        }
        Routing::Routed(route) => {
            record.routing = StoredRouting::Routed;
            if record.ignored {
                return record;
            }
            // A successful job delivers its export to each target; one that ended without
            // success tells each target's open pull request (the same path runs both).
            for routed in &route.targets {
                record.deliveries.push(NewDelivery {
                    target_key: routed.target.id.clone(),
                    hook_id: job.hook.id.clone(),
                    repository: routed.target.repository.clone(),
                    connection: routed.target.connection.clone(),
                    head_branch: routed.head_branch.clone(),
                });
            }
            // A target routing could not resolve still gets a delivery, which the worker
            // fails with the reason: recorded where people look, not dropped.
            for failed in &route.failures {
                record.deliveries.push(NewDelivery {
                    target_key: failed.target.id.clone(),
                    hook_id: job.hook.id.clone(),
                    repository: failed.target.repository.clone(),
                    connection: failed.target.connection.clone(),
                    head_branch: String::new(),
                });
            }
        }
    }
    record
}

/// Whether Courier acts on a job in this state: a success is delivered, and a job that
/// ended without success is reported on the targets' open pull requests. Anything else
/// (`InProgress`, a status Courier does not know) is recorded only, and upgraded if a
/// later copy of the same job says it ended.
fn acted_on(job: &JobEvent) -> bool {
    job.job.status.is_success() || job.job.status.ended_without_success()
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}
