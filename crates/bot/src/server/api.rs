//! The operations API: `/api/deliveries` to read what happened, and retry. Authenticated
//! with the admin tokens, which are distinct from the webhook tokens.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::auth::{self, Role};
use crate::store::{DeliveryFilter, DeliveryId, DeliveryState, DeliveryView, Page, StoreError};

/// Most deliveries one page lists.
const MAX_PAGE: u32 = 200;

/// A listing's query string, shared by `/api/deliveries` and the dashboard's list.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub state: Option<String>,
    pub hook: Option<String>,
    pub repository: Option<String>,
    pub connection: Option<String>,
    /// The platform's job id.
    pub job: Option<String>,
    /// Free text, matched case-insensitively anywhere in a delivery's names.
    pub q: Option<String>,
    pub limit: Option<u32>,
    /// The last id of the previous page.
    pub after: Option<String>,
}

impl ListQuery {
    /// The same query with blank parameters left out: a form sends every field, and an
    /// empty one means "any".
    pub fn without_blanks(self) -> ListQuery {
        let given = |value: Option<String>| value.filter(|v| !v.trim().is_empty());
        ListQuery {
            state: given(self.state),
            hook: given(self.hook),
            repository: given(self.repository),
            connection: given(self.connection),
            job: given(self.job),
            q: given(self.q),
            after: given(self.after),
            ..self
        }
    }

    /// The store's filter and page for this query; the error names the bad parameter.
    pub fn to_filter(&self) -> Result<(DeliveryFilter, Page), String> {
        let state = self
            .state
            .as_deref()
            .map(str::parse::<DeliveryState>)
            .transpose()
            .map_err(|e| format!("state: {e}"))?;
        let after = self
            .after
            .as_deref()
            .map(str::parse::<DeliveryId>)
            .transpose()
            .map_err(|e| format!("after: {e}"))?;
        let filter = DeliveryFilter {
            state,
            hook_id: self.hook.clone(),
            repository: self.repository.clone(),
            connection: self.connection.clone(),
            job_id: self.job.clone(),
            text: self.q.clone(),
        };
        let page = Page {
            limit: self.limit.unwrap_or(50).clamp(1, MAX_PAGE),
            after,
        };
        Ok((filter, page))
    }
}

/// The `after` of the page following `deliveries`, when the page was full.
pub fn next_page(deliveries: &[DeliveryView], page: &Page) -> Option<DeliveryId> {
    (deliveries.len() as u32 == page.limit)
        .then(|| deliveries.last().map(|d| d.id.clone()))
        .flatten()
}

/// Puts a delivery back in the queue and wakes the workers: the one way a retry happens,
/// whether asked through the API or the dashboard.
pub async fn requeue(state: &AppState, id: &DeliveryId) -> Result<DeliveryView, StoreError> {
    let view = state.store.requeue(id).await?;
    state.work_available.notify_waiters();
    Ok(view)
}

/// Why a request may not do what `needs` allows, as the answer to send; `None` when it
/// may. A viewer token reads; only an admin token retries.
fn denied(state: &AppState, headers: &HeaderMap, needs: Role) -> Option<Response> {
    let Some(admin) = &state.config.admin else {
        return Some(error(
            StatusCode::FORBIDDEN,
            "the operations API is off: configure `admin.tokens` to use it",
        ));
    };
    let presented = auth::bearer(headers.get(header::AUTHORIZATION));
    match (presented.and_then(|t| auth::role(t, admin)), needs) {
        (Some(Role::Admin), _) | (Some(Role::Viewer), Role::Viewer) => None,
        (Some(Role::Viewer), Role::Admin) => Some(error(
            StatusCode::FORBIDDEN,
            "a viewer token reads only; retrying needs an admin token",
        )),
        (None, _) => Some(error(StatusCode::UNAUTHORIZED, "unauthorized")),
    }
}

pub async fn list_deliveries(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Response {
    if let Some(denied) = denied(&state, &headers, Role::Viewer) {
        return denied;
    }
    let (filter, page) = match query.without_blanks().to_filter() {
        Ok(asked) => asked,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    match state.store.list_deliveries(&filter, &page).await {
        Ok(deliveries) => {
            let next = next_page(&deliveries, &page);
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
    if let Some(denied) = denied(&state, &headers, Role::Viewer) {
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
    if let Some(denied) = denied(&state, &headers, Role::Admin) {
        return denied;
    }
    let Ok(id) = id.parse::<DeliveryId>() else {
        return error(StatusCode::NOT_FOUND, "no such delivery");
    };
    match requeue(&state, &id).await {
        Ok(view) => (StatusCode::ACCEPTED, Json(view)).into_response(),
        Err(e) => store_error(e),
    }
}

pub(super) fn store_error(err: StoreError) -> Response {
    let (status, message) = store_answer(err, "the operations API");
    error(status, &message)
}

/// The status and words a store error is answered with, by the API and the dashboard
/// alike; an unexpected one is logged (with `surface`, where it happened) and not shown.
pub(super) fn store_answer(err: StoreError, surface: &str) -> (StatusCode, String) {
    match err {
        StoreError::NoSuchDelivery(_) | StoreError::NoSuchJob(_) => {
            (StatusCode::NOT_FOUND, err.to_string())
        }
        StoreError::IllegalTransition { .. } => (StatusCode::CONFLICT, err.to_string()),
        other => {
            tracing::error!(error = %other, "store error in {surface}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the store is unavailable".to_owned(),
            )
        }
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}
