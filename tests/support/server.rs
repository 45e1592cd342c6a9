//! A real smart-HTTP git server for tests: git's own `git http-backend` run as a CGI
//! program behind an axum server on `127.0.0.1:0`, with HTTP Basic token auth.
//!
//! Any user name is accepted and the password must equal the token, which is how
//! GitHub (`x-access-token`), GitLab (`oauth2`) and Azure DevOps take a token over
//! HTTPS. A request without valid credentials gets `401` with `WWW-Authenticate`, the
//! challenge that makes git and libgit2 ask their credential callback.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use axum::serve::ListenerExt as _;
use tokio::io::AsyncWriteExt;
use tokio::sync::oneshot;

/// The services whose advertisements are counted, in `Shared::advertisements`' order.
const SERVICES: [&str; 2] = ["git-upload-pack", "git-receive-pack"];

struct Shared {
    root: PathBuf,
    token: String,
    /// Requests refused for missing or wrong credentials.
    refused: AtomicUsize,
    /// Requests served (authenticated).
    served: AtomicUsize,
    /// Response body bytes sent by `git http-backend` (packs, advertisements).
    bytes_out: AtomicUsize,
    /// Authenticated `POST …/git-receive-pack` requests: pushes.
    pushes: AtomicUsize,
    /// Authenticated `GET …/info/refs?service=…` requests: advertisements, as
    /// `[git-upload-pack, git-receive-pack]`.
    advertisements: [AtomicUsize; 2],
    /// Whether `git upload-pack` serves partial fetches (`uploadpack.allowFilter`).
    partial_fetch: bool,
    /// TCP connections accepted.
    connections: AtomicUsize,
}

/// A running server; stopped when dropped.
pub struct GitServer {
    base_url: String,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl GitServer {
    /// Serves the bare repositories under `root` (`root/NAME.git` is at
    /// [`GitServer::url`]`("NAME")`). Runs on its own thread and runtime, so it works
    /// under any test flavour, sync or async.
    pub fn start(root: &Path, token: &str) -> GitServer {
        GitServer::serve(root, token, true)
    }

    /// The same, without partial fetches (`filter`), as some servers are set up: the
    /// client must fetch every blob of the tip.
    pub fn start_without_partial_fetch(root: &Path, token: &str) -> GitServer {
        GitServer::serve(root, token, false)
    }

    fn serve(root: &Path, token: &str, partial_fetch: bool) -> GitServer {
        let shared = Arc::new(Shared {
            root: root.to_path_buf(),
            token: token.to_owned(),
            refused: AtomicUsize::new(0),
            served: AtomicUsize::new(0),
            bytes_out: AtomicUsize::new(0),
            pushes: AtomicUsize::new(0),
            advertisements: Default::default(),
            partial_fetch,
            connections: AtomicUsize::new(0),
        });
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let state = shared.clone();
        let thread = std::thread::Builder::new()
            .name("git-http-server".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("server runtime");
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                        .await
                        .expect("bind 127.0.0.1:0");
                    addr_tx
                        .send(listener.local_addr().expect("local addr"))
                        .expect("send addr");
                    let counted = state.clone();
                    let listener = listener.tap_io(move |_| {
                        counted.connections.fetch_add(1, Ordering::SeqCst);
                    });
                    let app = Router::new().fallback(handle).with_state(state);
                    axum::serve(listener, app)
                        .with_graceful_shutdown(async {
                            let _ = shutdown_rx.await;
                        })
                        .await
                        .expect("serve");
                });
            })
            .expect("spawn server thread");
        let addr = addr_rx.recv().expect("server address");
        GitServer {
            base_url: format!("http://{addr}/"),
            shared,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        }
    }

    /// Clone URL of `root/NAME.git`, without credentials.
    pub fn url(&self, name: &str) -> String {
        format!("{}{name}.git", self.base_url)
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        url::Url::parse(&self.base_url)
            .ok()
            .and_then(|u| u.port())
            .expect("the server's own URL has a port")
    }

    /// Directory served.
    pub fn root(&self) -> &Path {
        &self.shared.root
    }

    /// How many requests were refused with `401` so far.
    pub fn refused_requests(&self) -> usize {
        self.shared.refused.load(Ordering::SeqCst)
    }

    /// Response body bytes served so far: what clients downloaded.
    pub fn bytes_served(&self) -> usize {
        self.shared.bytes_out.load(Ordering::SeqCst)
    }

    /// How many pushes (authenticated `git-receive-pack` posts) arrived so far.
    pub fn pushes(&self) -> usize {
        self.shared.pushes.load(Ordering::SeqCst)
    }

    /// How many times a client asked for `service`'s advertisement so far
    /// (`git-upload-pack`: a fetch's; `git-receive-pack`: a push's).
    pub fn advertisements(&self, service: &str) -> usize {
        SERVICES
            .iter()
            .position(|s| *s == service)
            .map_or(0, |i| self.shared.advertisements[i].load(Ordering::SeqCst))
    }

    /// How many TCP connections the server accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// How many authenticated requests were served so far.
    pub fn served_requests(&self) -> usize {
        self.shared.served.load(Ordering::SeqCst)
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Some(user) = authenticated_user(&parts.headers, &shared.token) else {
        shared.refused.fetch_add(1, Ordering::SeqCst);
        return Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header("WWW-Authenticate", "Basic realm=\"git\"")
            .header("Content-Type", "text/plain")
            .body(Body::from("authentication required\n"))
            .expect("401 response");
    };
    shared.served.fetch_add(1, Ordering::SeqCst);
    if parts.method == axum::http::Method::POST && parts.uri.path().ends_with("/git-receive-pack") {
        shared.pushes.fetch_add(1, Ordering::SeqCst);
    }
    if parts.method == axum::http::Method::GET
        && let Some(service) = parts.uri.query().and_then(|q| q.strip_prefix("service="))
        && let Some(i) = SERVICES.iter().position(|s| *s == service)
    {
        shared.advertisements[i].fetch_add(1, Ordering::SeqCst);
    }
    let body = match to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => return plain(StatusCode::BAD_REQUEST, format!("reading body: {e}\n")),
    };

    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("http-backend")
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
        )
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        // Partial fetches, as GitHub and GitLab serve them.
        .env("GIT_CONFIG_COUNT", "1")
        .env("GIT_CONFIG_KEY_0", "uploadpack.allowFilter")
        .env("GIT_CONFIG_VALUE_0", shared.partial_fetch.to_string())
        .env("GIT_PROJECT_ROOT", &shared.root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", parts.method.as_str())
        .env("PATH_INFO", parts.uri.path())
        .env("QUERY_STRING", parts.uri.query().unwrap_or(""))
        .env("REMOTE_USER", &user)
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(ct) = parts
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
    {
        cmd.env("CONTENT_TYPE", ct);
    }
    for (name, value) in &parts.headers {
        let key = format!(
            "HTTP_{}",
            name.as_str().to_ascii_uppercase().replace('-', "_")
        );
        if matches!(
            key.as_str(),
            "HTTP_AUTHORIZATION"
                | "HTTP_CONTENT_LENGTH"
                | "HTTP_TRANSFER_ENCODING"
                | "HTTP_CONTENT_TYPE"
        ) {
            continue;
        }
        if let Ok(v) = value.to_str() {
            if key == "HTTP_GIT_PROTOCOL" {
                cmd.env("GIT_PROTOCOL", v);
            }
            cmd.env(key, v);
        }
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return plain(StatusCode::INTERNAL_SERVER_ERROR, format!("spawn: {e}\n")),
    };
    let mut stdin = child.stdin.take().expect("piped stdin");
    let feeder = tokio::spawn(async move {
        let _ = stdin.write_all(&body).await;
        let _ = stdin.shutdown().await;
    });
    let out = match child.wait_with_output().await {
        Ok(o) => o,
        Err(e) => {
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("http-backend: {e}\n"),
            );
        }
    };
    let _ = feeder.await;
    let response = cgi_response(&out.stdout);
    if let Some(len) = axum::body::HttpBody::size_hint(response.body()).exact() {
        shared.bytes_out.fetch_add(len as usize, Ordering::SeqCst);
    }
    response
}

fn plain(status: StatusCode, text: String) -> Response {
    Response::builder()
        .status(status)
        .header("Content-Type", "text/plain")
        .body(Body::from(text))
        .expect("plain response")
}

/// Turns CGI output (headers, blank line, body) into a response.
fn cgi_response(out: &[u8]) -> Response {
    let (head, body) = match find(out, b"\r\n\r\n") {
        Some(i) if find(out, b"\n\n").is_none_or(|j| j > i) => (&out[..i], &out[i + 4..]),
        _ => match find(out, b"\n\n") {
            Some(j) => (&out[..j], &out[j + 2..]),
            None => return plain(StatusCode::BAD_GATEWAY, "bad CGI output\n".into()),
        },
    };
    let mut status = StatusCode::OK;
    let mut headers = HeaderMap::new();
    for line in String::from_utf8_lossy(head).lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        if k.eq_ignore_ascii_case("status") {
            let code = v
                .split_whitespace()
                .next()
                .and_then(|c| c.parse::<u16>().ok());
            status = code
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::BAD_GATEWAY);
        } else if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(k.trim().as_bytes()),
            HeaderValue::from_str(v),
        ) {
            headers.append(name, value);
        }
    }
    let mut response = Response::new(Body::from(body.to_vec()));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The user name of a valid `Authorization: Basic` header whose password is `token`.
fn authenticated_user(headers: &HeaderMap, token: &str) -> Option<String> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(base64_decode(encoded.trim())?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    constant_time_eq(password.as_bytes(), token.as_bytes()).then(|| {
        if user.is_empty() {
            "git".to_owned()
        } else {
            user.to_owned()
        }
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Standard base64 with padding, enough for a Basic credential.
pub(crate) fn base64_decode(input: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let bytes = input.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= value(c)? << (18 - 6 * i);
        }
        let n = match chunk.len() {
            4 => 3,
            3 => 2,
            2 => 1,
            _ => return None,
        };
        out.extend_from_slice(&acc.to_be_bytes()[1..1 + n]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_basic_credentials() {
        // "x-access-token:s3cret"
        assert_eq!(
            base64_decode("eC1hY2Nlc3MtdG9rZW46czNjcmV0").as_deref(),
            Some(&b"x-access-token:s3cret"[..])
        );
        assert_eq!(base64_decode("YQ==").as_deref(), Some(&b"a"[..]));
        assert_eq!(base64_decode("YWI=").as_deref(), Some(&b"ab"[..]));
        assert!(base64_decode("!!!!").is_none());
    }

    #[test]
    fn refuses_wrong_token() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "authorization",
            HeaderValue::from_static("Basic eC1hY2Nlc3MtdG9rZW46czNjcmV0"),
        );
        assert_eq!(
            authenticated_user(&headers, "s3cret").as_deref(),
            Some("x-access-token")
        );
        assert_eq!(authenticated_user(&headers, "other"), None);
        assert_eq!(authenticated_user(&HeaderMap::new(), "s3cret"), None);
    }
}
