//! The dashboard: server-rendered pages under `/ui/` for people who would rather look than
//! read JSON. Served only when `admin.tokens` is configured; signing in with an admin (or
//! viewer) token gives a session cookie (see [`session`]). Every page is plain HTML, one
//! embedded stylesheet and one embedded script (`live.js`, which only refreshes the
//! `data-live` parts), so the CSP can forbid everything that is not from here and the
//! pages work without the script.

mod pages;
mod session;

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path as UrlPath, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use maud::Markup;

use super::AppState;
use super::api::{self, ListQuery};
use super::auth::{self, Role};
use crate::store::{DeliveryId, JobId, StoreError, Timestamp};
use session::{COOKIE, Key, LIFETIME, Session};

/// How long a refused sign-in waits before it is answered: slows down guessing, and a
/// person who mistyped hardly notices.
const SIGN_IN_DELAY: Duration = Duration::from_millis(500);
const SIGN_IN: &str = "/ui/sign-in";
/// The span of the "last 24 hours" summary.
const DAY: Duration = Duration::from_secs(24 * 3600);
const HOME: &str = "/ui/";

/// Everything the page pulls in is served from here; no inline script or style.
const CSP: &str = "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";
const STYLESHEET: &str = include_str!("style.css");
/// Refreshes the `data-live` parts of signed-in pages while the tab is visible.
const LIVE_SCRIPT: &str = include_str!("live.js");

/// What the dashboard needs beyond the server's state: the session key, and whether its
/// cookie must be `Secure`.
#[derive(Clone, Debug)]
pub struct Dashboard(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    key: Key,
    /// Off only on a loopback listener, where the browser talks plain HTTP to this machine
    /// (and would drop a `Secure` cookie sent over it). Anywhere else TLS is expected in
    /// front, and the cookie must never travel without it.
    secure_cookie: bool,
}

impl Dashboard {
    /// The dashboard of a server listening on `listening`, with the session key of
    /// `data_dir` (made on first start).
    pub fn load(data_dir: &Path, listening: SocketAddr) -> io::Result<Dashboard> {
        Ok(Dashboard(Arc::new(Inner {
            key: Key::load_or_create(data_dir)?,
            secure_cookie: !listening.ip().is_loopback(),
        })))
    }

    fn cookie(&self, value: &str, max_age: Duration) -> HeaderValue {
        let secure = if self.0.secure_cookie { "; Secure" } else { "" };
        let cookie = format!(
            "{COOKIE}={value}; Path=/ui; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
            max_age.as_secs()
        );
        HeaderValue::try_from(cookie).expect("base64url and fixed text make a header value")
    }
}

/// The dashboard's routes, `/` included (it leads here).
pub fn router(dashboard: Dashboard) -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/ui", get(home))
        .route(HOME, get(deliveries))
        .route(SIGN_IN, get(sign_in_form).post(sign_in))
        .route("/ui/sign-out", post(sign_out))
        .route("/ui/deliveries/{id}", get(delivery))
        .route("/ui/deliveries/{id}/retry", post(retry))
        .route("/ui/jobs/{id}", get(job))
        .route("/ui/routes", get(routes))
        .route("/ui/assets/style.css", get(stylesheet))
        .route("/ui/assets/live.js", get(live_script))
        .layer(axum::middleware::from_fn(same_origin_forms))
        .layer(axum::middleware::map_response(security_headers))
        .layer(axum::middleware::from_fn(server_timing))
        .layer(Extension(dashboard))
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        // Pages show deliveries and carry CSRF tokens: no copy kept by browsers or proxies.
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Says how long the server took over a page (`Server-Timing`, shown by browsers' developer
/// tools and read by the dashboard benchmark): the network is not part of it.
async fn server_timing(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let started = std::time::Instant::now();
    let mut response = next.run(request).await;
    let took = started.elapsed().as_secs_f64() * 1000.0;
    if let Ok(value) = HeaderValue::try_from(format!("app;dur={took:.2}")) {
        response.headers_mut().insert("server-timing", value);
    }
    response
}

/// Refuses a form posted from another site: sign-in and sign-out have no session to bind a
/// CSRF token to, so a page elsewhere could otherwise sign a browser in with a token of
/// its choosing. Browsers say where a POST comes from (`Sec-Fetch-Site`, or else `Origin`);
/// a client that says nothing (curl, a script with the token) is not a browser to protect.
async fn same_origin_forms(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let headers = request.headers();
    let cross_site = if request.method() == axum::http::Method::GET
        || request.method() == axum::http::Method::HEAD
    {
        false
    } else if let Some(site) = headers.get("sec-fetch-site") {
        !matches!(site.as_bytes(), b"same-origin" | b"none")
    } else if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).map(HeaderValue::as_bytes);
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .map(|(_, rest)| rest.as_bytes());
        origin_host.is_none() || origin_host != host
    } else {
        false
    };
    if cross_site {
        return problem(
            StatusCode::FORBIDDEN,
            "forms are accepted from this site only",
        );
    }
    next.run(request).await
}

/// A request with a valid session. As an extractor it turns every other request into a
/// redirect to the sign-in page, so a handler that takes it cannot be reached without one.
struct Signed {
    session: Session,
    dashboard: Dashboard,
}

impl Signed {
    /// The CSRF token for the session's forms; `None` for a viewer, who has none to post.
    fn csrf(&self) -> Option<String> {
        (self.session.role() == Role::Admin).then(|| self.dashboard.0.key.csrf(&self.session))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Signed, Response> {
        let Some(dashboard) = parts.extensions.get::<Dashboard>().cloned() else {
            return Err(StatusCode::NOT_FOUND.into_response());
        };
        let session = cookie(&parts.headers, COOKIE)
            .and_then(|value| dashboard.0.key.verify(value, SystemTime::now()));
        match session {
            Some(session) => Ok(Signed { session, dashboard }),
            None => Err(Redirect::to(SIGN_IN).into_response()),
        }
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Field `name` of a form body (`application/x-www-form-urlencoded`).
fn form_field(body: &[u8], name: &str) -> Option<String> {
    url::form_urlencoded::parse(body)
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

fn html(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

/// A page saying what went wrong, to a signed-in person (everyone else is redirected).
fn problem(status: StatusCode, message: &str) -> Response {
    html(status, pages::problem(status, message))
}

fn store_problem(err: StoreError) -> Response {
    let (status, message) = api::store_answer(err, "the dashboard");
    problem(status, &message)
}

async fn home() -> Redirect {
    Redirect::to(HOME)
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        STYLESHEET,
    )
        .into_response()
}

async fn live_script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        LIVE_SCRIPT,
    )
        .into_response()
}

async fn sign_in_form() -> Response {
    html(StatusCode::OK, pages::sign_in(None))
}

async fn sign_in(
    State(state): State<AppState>,
    Extension(dashboard): Extension<Dashboard>,
    body: Bytes,
) -> Response {
    let token = form_field(&body, "token").unwrap_or_default();
    let role = state
        .config
        .admin
        .as_ref()
        .and_then(|admin| auth::role(token.trim().as_bytes(), admin));
    let Some(role) = role else {
        state.metrics.ui_sign_in_failed();
        tokio::time::sleep(SIGN_IN_DELAY).await;
        return html(
            StatusCode::UNAUTHORIZED,
            pages::sign_in(Some("That token is not an admin or viewer token.")),
        );
    };
    let (_, value) = dashboard.0.key.issue(SystemTime::now(), role);
    redirect_with_cookie(HOME, dashboard.cookie(&value, LIFETIME))
}

/// Forgets the session in this browser. (The cookie stays valid until it expires if
/// copied elsewhere: sessions are not stored, so there is nothing to revoke.)
async fn sign_out(Extension(dashboard): Extension<Dashboard>) -> Response {
    redirect_with_cookie(SIGN_IN, dashboard.cookie("", Duration::ZERO))
}

/// `303 See Other` to `to`, setting (or clearing) the session cookie.
fn redirect_with_cookie(to: &'static str, cookie: HeaderValue) -> Response {
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, HeaderValue::from_static(to)),
            (header::SET_COOKIE, cookie),
        ],
    )
        .into_response()
}

async fn deliveries(
    // Taken for its check alone: without a session, the extractor redirects to sign-in.
    _signed: Signed,
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Response {
    let query = query.without_blanks();
    let (filter, page) = match query.to_filter() {
        Ok(asked) => asked,
        Err(e) => return problem(StatusCode::BAD_REQUEST, &e),
    };
    let store = &state.store;
    let config = &state.config;
    let read = async {
        let list = store.list_deliveries(&filter, &page).await?;
        let newest = store.last_deliveries(&target_ids(config)).await?;
        let day_ago = Timestamp::now().minus(DAY);
        let health = pages::Health {
            queue_depth: store.queue_depth().await?,
            oldest_queued: store.oldest_queued_age().await?,
            last_day: store.counts_since(day_ago).await?,
            targets: config.targets().count(),
            attention: newest
                .into_values()
                .filter(|d| d.state.needs_attention())
                .collect(),
        };
        Ok::<_, StoreError>((list, health))
    };
    let connections: Vec<&str> = config.connections.keys().map(String::as_str).collect();
    match read.await {
        Ok((list, health)) => {
            let next = api::next_page(&list, &page);
            html(
                StatusCode::OK,
                pages::deliveries(&query, &connections, &list, next.as_ref(), &health),
            )
        }
        Err(e) => store_problem(e),
    }
}

/// The page saying there is no such `what`.
fn not_found(what: &str) -> Response {
    problem(StatusCode::NOT_FOUND, &format!("no such {what}"))
}

/// What a page is about, from the store; else the page saying why it is not there.
// The error is the answer itself, handed straight back to axum: boxing it buys nothing.
#[allow(clippy::result_large_err)]
fn found<T>(read: Result<Option<T>, StoreError>, what: &str) -> Result<T, Response> {
    read.map_err(store_problem)?.ok_or_else(|| not_found(what))
}

async fn delivery(
    signed: Signed,
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, Response> {
    let id = id
        .parse::<DeliveryId>()
        .map_err(|_| not_found("delivery"))?;
    let detail = found(state.store.get_delivery(&id).await, "delivery")?;
    let event = job_event(&state, &detail.job.id)
        .await
        .map_err(store_problem)?;
    let csrf = signed.csrf();
    Ok(html(
        StatusCode::OK,
        pages::delivery(csrf.as_deref(), &detail, event.as_deref()),
    ))
}

/// The job's event as received: the store keeps only ids, the names and the log are here.
async fn job_event(
    state: &AppState,
    job: &JobId,
) -> Result<Option<Box<courier_core::event::JobEvent>>, StoreError> {
    let body = state.store.job_body(job).await?;
    Ok(body.and_then(
        |body| match courier_core::event::parse_event(&body).ok()?.event {
            courier_core::event::Event::JobUpdated(event) => Some(event),
            courier_core::event::Event::Other { .. } => None,
        },
    ))
}

async fn job(
    _signed: Signed,
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, Response> {
    let id = id.parse::<JobId>().map_err(|_| not_found("job"))?;
    let detail = found(state.store.get_job(&id).await, "job")?;
    let event = job_event(&state, &id).await.map_err(store_problem)?;
    Ok(html(StatusCode::OK, pages::job(&detail, event.as_deref())))
}

fn target_ids(config: &courier_core::config::Config) -> Vec<&str> {
    config.targets().map(|t| t.id.as_str()).collect()
}

async fn routes(_signed: Signed, State(state): State<AppState>) -> Response {
    let config = &state.config;
    match state.store.last_deliveries(&target_ids(config)).await {
        Ok(last) => html(StatusCode::OK, pages::routes(config, &last)),
        Err(e) => store_problem(e),
    }
}

/// Retry from the dashboard: the API's retry (one path), behind a session and its CSRF
/// token, then back to the delivery.
async fn retry(
    signed: Signed,
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Response {
    if signed.session.role() != Role::Admin {
        return problem(
            StatusCode::FORBIDDEN,
            "a viewer session reads only; retrying needs an admin token",
        );
    }
    let csrf = form_field(&body, "csrf").unwrap_or_default();
    if !signed.dashboard.0.key.csrf_matches(&signed.session, &csrf) {
        return problem(
            StatusCode::FORBIDDEN,
            "this form is stale or did not come from the dashboard: reload the page and try again",
        );
    }
    let Ok(id) = id.parse::<DeliveryId>() else {
        return not_found("delivery");
    };
    match api::requeue(&state, &id).await {
        Ok(_) => Redirect::to(&format!("/ui/deliveries/{id}")).into_response(),
        Err(e) => store_problem(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_one_cookie_among_several() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; courier_session=xyz"),
        );
        headers.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&headers, COOKIE), Some("xyz"));
        assert_eq!(cookie(&headers, "b"), Some("2"));
        assert_eq!(cookie(&headers, "courier"), None);
    }

    #[test]
    fn reads_form_fields() {
        assert_eq!(
            form_field(b"csrf=a%2Bb&token=x+y", "token").as_deref(),
            Some("x y")
        );
        assert_eq!(form_field(b"csrf=", "csrf").as_deref(), Some(""));
        assert_eq!(form_field(b"", "csrf"), None);
    }
}
