//! The operations API: `/api/deliveries` to read what happened, and retry. Authenticated
//! with the admin tokens, which are distinct from the webhook tokens.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{AppState, auth};
use crate::store::{DeliveryFilter, DeliveryId, DeliveryState, Page, StoreError};

/// Most deliveries one page lists.
const MAX_PAGE: u32 = 200;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    state: Option<String>,
    hook: Option<String>,
    repository: Option<String>,
    limit: Option<u32>,
    /// The last id of the previous page.
    after: Option<String>,
}

/// Why a request may not use the API, as the answer to send; `None` when it may.
fn denied(state: &AppState, headers: &HeaderMap) -> Option<Response> {
    let Some(admin) = &state.config.admin else {
        return Some(error(
            StatusCode::FORBIDDEN,
            "the operations API is off: configure `admin.tokens` to use it",
        ));
    };
    match auth::bearer(headers.get(header::AUTHORIZATION)) {
        Some(token) if auth::matches_any(token, &admin.tokens) => None,
        _ => Some(error(StatusCode::UNAUTHORIZED, "unauthorized")),
    }
}

pub async fn list_deliveries(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Response {
    if let Some(denied) = denied(&state, &headers) {
        return denied;
    }
    let delivery_state = match query
        .state
        .as_deref()
        .map(str::parse::<DeliveryState>)
        .transpose()
    {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("state: {e}")),
    };
    let after = match query
        .after
        .as_deref()
        .map(str::parse::<DeliveryId>)
        .transpose()
    {
        Ok(a) => a,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("after: {e}")),
    };
    let filter = DeliveryFilter {
        state: delivery_state,
        hook_id: query.hook,
        repository: query.repository,
    };
    let page = Page {
        limit: query.limit.unwrap_or(50).clamp(1, MAX_PAGE),
        after,
    };
    match state.store.list_deliveries(&filter, &page).await {
        Ok(deliveries) => {
            let next = (deliveries.len() as u32 == page.limit)
                .then(|| deliveries.last().map(|d| d.id.clone()))
                .flatten();
            Json(json!({ "deliveries": deliveries, "next": next })).into_response()
        }
        Err(e) => store_error(e),
    }
}

pub async fn get_delivery(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(denied) = denied(&state, &headers) {
        return denied;
    }
    let Ok(id) = id.parse::<DeliveryId>() else {
        return error(StatusCode::NOT_FOUND, "no such delivery");
    };
    match state.store.get_delivery(&id).await {
        Ok(Some(detail)) => Json(detail).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such delivery"),
        Err(e) => store_error(e),
    }
}

/// Puts a delivery back in the queue. Running a delivered one again is safe: the pipeline
/// converges (same branch, pull request found by its head), so nothing is duplicated.
pub async fn retry_delivery(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(denied) = denied(&state, &headers) {
        return denied;
    }
    let Ok(id) = id.parse::<DeliveryId>() else {
        return error(StatusCode::NOT_FOUND, "no such delivery");
    };
    match state.store.requeue(&id).await {
        Ok(view) => {
            state.work_available.notify_waiters();
            (StatusCode::ACCEPTED, Json(view)).into_response()
        }
        Err(e) => store_error(e),
    }
}

fn store_error(err: StoreError) -> Response {
    match err {
        StoreError::NoSuchDelivery(_) | StoreError::NoSuchJob(_) => {
            error(StatusCode::NOT_FOUND, &err.to_string())
        }
        StoreError::IllegalTransition { .. } => error(StatusCode::CONFLICT, &err.to_string()),
        other => {
            tracing::error!(error = %other, "store error in the operations API");
            error(StatusCode::SERVICE_UNAVAILABLE, "the store is unavailable")
        }
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}
