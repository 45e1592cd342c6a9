//! The HTTP side of git's smart protocol, shared by the push (`receive_pack.rs`) and
//! the fetch (`upload_pack.rs`) Courier speaks itself: one client per remote, the
//! ref advertisement (`GET info/refs?service=…`), the requests (`POST <service>`), and
//! the pkt-line framing (`gitprotocol-common`, `gitprotocol-http`).
//!
//! What libgit2's transport guarantees, this keeps: the token goes only to the remote's
//! own host and port (a redirect elsewhere is refused, never followed), a refused or
//! missing token is an error at once, the server's messages reach the caller without
//! the token in them, and the socket timeout applies to every read.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};
use secrecy::ExposeSecret as _;
use url::Url;

use super::error::{GitError, printable, scrub};
use super::remote::Remote;

/// Redirects followed (to the same host and port) before giving up.
const MAX_REDIRECTS: usize = 5;
/// The largest advertisement read: a repository with a million refs stays under it.
const MAX_ADVERTISEMENT: usize = 256 << 20;

/// The two services of a git server.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Service {
    /// Takes pushes.
    ReceivePack,
    /// Serves fetches; asked for protocol version 2.
    UploadPack,
}

impl Service {
    fn name(self) -> &'static str {
        match self {
            Service::ReceivePack => "git-receive-pack",
            Service::UploadPack => "git-upload-pack",
        }
    }

    /// What every request to the service says beyond the client's own headers.
    fn headers(self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if self == Service::UploadPack {
            headers.insert("git-protocol", HeaderValue::from_static("version=2"));
        }
        headers
    }
}

/// What a service advertised it can do, kept in a repository's cache so that later
/// conversations skip asking (a request, a round trip): one file per service beside git's
/// own. Best effort both ways: a file that cannot be written is asked for again, and one
/// that no longer serves is forgotten.
pub(super) struct Kept {
    path: PathBuf,
}

impl Kept {
    /// Where the cache at `repo_dir` keeps `service`'s capabilities.
    pub(super) fn in_cache(repo_dir: &Path, service: Service) -> Kept {
        let name = match service {
            Service::UploadPack => "courier-fetch-capabilities",
            Service::ReceivePack => "courier-push-capabilities",
        };
        Kept {
            path: repo_dir.join(name),
        }
    }

    pub(super) fn read(&self) -> Option<Vec<u8>> {
        std::fs::read(&self.path).ok()
    }

    /// Keeps `what` `session`'s server said, unless the session was redirected: a
    /// conversation that does not ask would not know where to go.
    pub(super) fn keep(&self, session: &Session, what: &[u8]) {
        if !session.redirected() {
            let _ = std::fs::write(&self.path, what);
        }
    }

    /// Forgets what was kept: a conversation with it failed (`why`); the next one asks.
    pub(super) fn forget(&self, why: &GitError) {
        tracing::debug!(error = %why, kept = %self.path.display(), "the kept capabilities did not serve; asking for them");
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The remote's HTTP client: made at its first request, then shared by every
/// conversation with the remote (the fetch's and the push's), so that the push goes
/// over the connection the fetch left open. A client holds the remote's credentials
/// (Basic auth from the first request), certificate authorities, proxy and timeouts.
fn client(remote: &Remote, socket_timeout: Option<Duration>) -> Result<reqwest::Client, GitError> {
    if let Some(client) = remote.http_client().get() {
        return Ok(client.clone());
    }
    let other = |detail: String| GitError::Other { detail };
    let mut builder = courier_core::tls::client_builder(remote.extra_roots().unwrap_or_default())
        .redirect(reqwest::redirect::Policy::none())
        // What git servers and the proxies before them are known to speak.
        .http1_only()
        .user_agent(concat!("git/2.0 (courier ", env!("CARGO_PKG_VERSION"), ")"))
        .default_headers(headers(remote));
    if let Some(timeout) = socket_timeout {
        builder = builder.connect_timeout(timeout).read_timeout(timeout);
    }
    if let Some(proxy) = remote.proxy() {
        let proxy = reqwest::Proxy::all(proxy.url_with_credentials().expose_secret())
            .map_err(|e| other(format!("the proxy's URL: {e}")))?;
        builder = builder.proxy(proxy);
    }
    let client = builder
        .build()
        .map_err(|e| other(format!("starting the HTTP client: {e}")))?;
    // Two conversations starting at once may both make one; either serves.
    Ok(remote.http_client().get_or_init(|| client).clone())
}

/// One conversation with a repository: the client, and the repository's URL after any
/// same-host redirect of the advertisement.
pub(super) struct Session {
    /// A clone: a fetch's conversation outlives the call that opened it (the plan goes on
    /// with it after the export is ready).
    pub(super) remote: Remote,
    client: reqwest::Client,
    base: Url,
    service: Service,
}

impl Session {
    /// Opens the conversation: asks for the advertisement of `service` and returns its
    /// body (pkt-lines).
    pub(super) async fn open(
        remote: &Remote,
        socket_timeout: Option<Duration>,
        service: Service,
    ) -> Result<(Session, Vec<u8>), GitError> {
        let other = |detail: String| GitError::Other { detail };
        let client = client(remote, socket_timeout)?;
        let mut base = Url::parse(remote.url()).map_err(|e| other(e.to_string()))?;
        let name = service.name();
        for _ in 0..=MAX_REDIRECTS {
            let url = join(&base, &format!("info/refs?service={name}"));
            let response = client
                .get(url.clone())
                .headers(service.headers())
                .send()
                .await
                .map_err(|e| network(remote, &e))?;
            if response.status().is_redirection() {
                base = redirected(remote, &url, response.headers())?;
                continue;
            }
            let response = checked(remote, response).await?;
            let kind = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            if kind != format!("application/x-{name}-advertisement") {
                return Err(GitError::Other {
                    detail: format!(
                        "{} does not speak git's smart HTTP protocol (it answered with `{kind}`)",
                        remote.url()
                    ),
                });
            }
            let body = read_bounded(remote, response, MAX_ADVERTISEMENT).await?;
            let session = Session {
                remote: remote.clone(),
                client,
                base,
                service,
            };
            return Ok((session, body));
        }
        Err(GitError::Other {
            detail: format!(
                "{} redirected more than {MAX_REDIRECTS} times",
                remote.url()
            ),
        })
    }

    /// A conversation whose advertisement is not asked for (what it would say is known
    /// from an earlier one): its requests go to the remote's URL as configured.
    pub(super) fn known(
        remote: &Remote,
        socket_timeout: Option<Duration>,
        service: Service,
    ) -> Result<Session, GitError> {
        let client = client(remote, socket_timeout)?;
        let base = Url::parse(remote.url()).map_err(|e| GitError::Other {
            detail: e.to_string(),
        })?;
        Ok(Session {
            remote: remote.clone(),
            client,
            base,
            service,
        })
    }

    /// Whether the advertisement was redirected: later requests go elsewhere than the
    /// remote's URL.
    fn redirected(&self) -> bool {
        Url::parse(self.remote.url()).map_or(true, |url| url != self.base)
    }

    /// One request to the service, `body` of `len` bytes; the response if the server
    /// took it.
    pub(super) async fn post(
        &self,
        body: reqwest::Body,
        len: u64,
    ) -> Result<reqwest::Response, GitError> {
        let name = self.service.name();
        let response = self
            .client
            .post(join(&self.base, name))
            .header(
                reqwest::header::CONTENT_TYPE,
                format!("application/x-{name}-request"),
            )
            .header(
                reqwest::header::ACCEPT,
                format!("application/x-{name}-result"),
            )
            .header(reqwest::header::CONTENT_LENGTH, len)
            .headers(self.service.headers())
            .body(body)
            .send()
            .await
            .map_err(|e| network(&self.remote, &e))?;
        if response.status().is_redirection() {
            return Err(GitError::Other {
                detail: format!(
                    "{} redirected a request after accepting the ref advertisement",
                    self.remote.url()
                ),
            });
        }
        checked(&self.remote, response).await
    }
}

/// Basic authentication with the connection's user and token, sent from the first
/// request (redirects are never followed elsewhere, so it reaches only this host).
fn headers(remote: &Remote) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("pragma", HeaderValue::from_static("no-cache"));
    if let Some(credentials) = remote.credentials() {
        let pair = format!(
            "{}:{}",
            credentials.username,
            credentials.token.expose_secret()
        );
        let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
        if let Ok(mut value) = HeaderValue::from_str(&format!("Basic {encoded}")) {
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
    }
    headers
}

/// `base` (the repository's URL) with `rest` appended as a path below it.
pub(super) fn join(base: &Url, rest: &str) -> Url {
    let mut text = base.as_str().trim_end_matches('/').to_owned();
    text.push('/');
    text.push_str(rest);
    Url::parse(&text).unwrap_or_else(|_| base.clone())
}

/// The repository URL a redirect of `asked` names, if it is on the same host and port.
fn redirected(remote: &Remote, asked: &Url, headers: &HeaderMap) -> Result<Url, GitError> {
    let location = headers
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|l| asked.join(l).ok())
        .ok_or_else(|| GitError::Other {
            detail: format!("{} redirected to no usable location", remote.url()),
        })?;
    if let Some(elsewhere) = remote.foreign_origin(location.as_str()) {
        return Err(GitError::Auth {
            url: remote.url().to_owned(),
            detail: format!(
                "the server redirected to {elsewhere}, another host or port, which is never sent the token; configure that URL if it is the same service"
            ),
        });
    }
    if asked.scheme() == "https" && location.scheme() != "https" {
        return Err(GitError::Auth {
            url: remote.url().to_owned(),
            detail: format!(
                "the server redirected from https to {}, which is never sent the token",
                location.scheme()
            ),
        });
    }
    let mut base = location.clone();
    base.set_query(None);
    let path = base.path().to_owned();
    match path.strip_suffix("/info/refs") {
        Some(repository) => {
            base.set_path(repository);
            Ok(base)
        }
        None => Err(GitError::Other {
            detail: format!(
                "{} redirected the ref advertisement to {path}",
                remote.url()
            ),
        }),
    }
}

/// A failed request as the caller acts on it: a timeout or a broken connection is
/// worth retrying.
pub(super) fn network(remote: &Remote, error: &reqwest::Error) -> GitError {
    let proxy_password = remote
        .proxy()
        .and_then(|p| p.credentials())
        .map(|(_, password)| password);
    let detail = crate::forge::http::with_causes(error.to_string(), error);
    let detail = scrub(&scrub(&detail, remote.token()), proxy_password);
    // An untrusted certificate stays untrusted until someone configures it: retrying
    // cannot help. rustls says so in these words; its error arrives wrapped in an
    // `io::Error`, whose `source` skips it.
    if detail.contains("invalid peer certificate") {
        return GitError::Other {
            detail: format!("TLS certificate of {} not trusted: {detail}", remote.url()),
        };
    }
    GitError::Transient {
        url: remote.url().to_owned(),
        detail,
    }
}

/// The response if its status is a success, else the error it means.
async fn checked(
    remote: &Remote,
    response: reqwest::Response,
) -> Result<reqwest::Response, GitError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let url = remote.url().to_owned();
    let body = response.bytes().await.unwrap_or_default();
    let said = printable(&body[..body.len().min(1024)], remote.token());
    let said = if said.is_empty() {
        String::new()
    } else {
        format!(": {said}")
    };
    Err(match status {
        StatusCode::UNAUTHORIZED if remote.credentials().is_none() => GitError::Auth {
            url,
            detail: "the server asks for credentials and no token is configured".into(),
        },
        StatusCode::UNAUTHORIZED => GitError::Auth {
            url,
            detail: "the server refused the token".into(),
        },
        StatusCode::FORBIDDEN => GitError::Auth {
            url,
            detail: format!("the server refused access (403){said}"),
        },
        StatusCode::NOT_FOUND => GitError::NotFound {
            url,
            what: "repository".into(),
        },
        StatusCode::PROXY_AUTHENTICATION_REQUIRED => GitError::Auth {
            url,
            detail: "the proxy refused its credentials (407)".into(),
        },
        s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => GitError::Transient {
            url,
            detail: format!("the server answered {s}{said}"),
        },
        s => GitError::Other {
            detail: format!("{url} answered {s}{said}"),
        },
    })
}

pub(super) async fn read_bounded(
    remote: &Remote,
    mut response: reqwest::Response,
    max: usize,
) -> Result<Vec<u8>, GitError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| network(remote, &e))? {
        if body.len() + chunk.len() > max {
            return Err(GitError::Other {
                detail: format!("{} sent more than {max} bytes", remote.url()),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// One pkt-line: four hex digits of length (themselves included), then the payload.
pub(super) fn pkt_line(payload: &[u8]) -> Vec<u8> {
    let mut out = format!("{:04x}", payload.len() + 4).into_bytes();
    out.extend_from_slice(payload);
    out
}

/// The pkt-lines of an advertisement after the `# service=…` line and its flush, which
/// smart HTTP puts first (version 2 servers may leave them out).
pub(super) fn advertisement_lines(body: &[u8]) -> Result<Vec<Option<&[u8]>>, &'static str> {
    let mut lines = pkt_lines(body)?;
    if lines
        .first()
        .is_some_and(|l| l.is_some_and(|l| l.starts_with(b"# service=")))
    {
        if lines.get(1) != Some(&None) {
            return Err("no flush after the service line");
        }
        lines.drain(..2);
    }
    Ok(lines)
}

/// Splits `data` into pkt-lines; `None` stands for a flush (`0000`).
pub(super) fn pkt_lines(mut data: &[u8]) -> Result<Vec<Option<&[u8]>>, &'static str> {
    let mut lines = Vec::new();
    while !data.is_empty() {
        let head = data.get(..4).ok_or("a truncated pkt-line length")?;
        let head = std::str::from_utf8(head).map_err(|_| "a pkt-line length that is not hex")?;
        let len =
            usize::from_str_radix(head, 16).map_err(|_| "a pkt-line length that is not hex")?;
        match len {
            0 => {
                lines.push(None);
                data = &data[4..];
            }
            1..=3 => return Err("a pkt-line shorter than its length field"),
            _ => {
                let line = data.get(4..len).ok_or("a truncated pkt-line")?;
                lines.push(Some(line));
                data = &data[len..];
            }
        }
    }
    Ok(lines)
}

/// One packet of a pkt-line stream.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Packet {
    Data(Vec<u8>),
    /// `0000`: the end of a message.
    Flush,
    /// `0001`: between the sections of a protocol v2 message.
    Delimiter,
    /// `0002`: the end of a protocol v2 response over a stateless connection.
    ResponseEnd,
}

/// Reads the packets of a response body as they arrive, so a pack of any size passes
/// through without being held whole.
pub(super) struct PacketReader<'a> {
    remote: &'a Remote,
    response: reqwest::Response,
    buffer: Vec<u8>,
    start: usize,
}

impl<'a> PacketReader<'a> {
    pub(super) fn new(remote: &'a Remote, response: reqwest::Response) -> PacketReader<'a> {
        PacketReader {
            remote,
            response,
            buffer: Vec::new(),
            start: 0,
        }
    }

    /// The next packet; `None` when the body ended between packets.
    pub(super) async fn next(&mut self) -> Result<Option<Packet>, GitError> {
        if !self.fill(4).await? {
            return Ok(None);
        }
        let head = &self.buffer[self.start..self.start + 4];
        let len = std::str::from_utf8(head)
            .ok()
            .and_then(|h| usize::from_str_radix(h, 16).ok())
            .ok_or_else(|| self.malformed("a pkt-line length that is not hex"))?;
        let packet = match len {
            0 => Packet::Flush,
            1 => Packet::Delimiter,
            2 => Packet::ResponseEnd,
            3 => return Err(self.malformed("a pkt-line shorter than its length field")),
            _ => {
                if !self.fill(len).await? {
                    return Err(self.malformed("a truncated pkt-line"));
                }
                let data = self.buffer[self.start + 4..self.start + len].to_vec();
                self.start += len;
                return Ok(Some(Packet::Data(data)));
            }
        };
        self.start += 4;
        Ok(Some(packet))
    }

    /// Reads what is left of the body (a little: the end of the chunked encoding, a
    /// trailing packet), so the connection goes back to the client's pool for the next
    /// request instead of being closed: on a real network a new one costs a TCP and a TLS
    /// handshake. A server that keeps sending loses the connection instead.
    pub(super) async fn finish(mut self) {
        const MAX_LEFT: usize = 64 * 1024;
        let mut left = 0;
        while let Ok(Some(chunk)) = self.response.chunk().await {
            left += chunk.len();
            if left > MAX_LEFT {
                return;
            }
        }
    }

    /// Makes `n` unread bytes available; `false` if the body ends before any arrive
    /// (an error if it ends part way).
    async fn fill(&mut self, n: usize) -> Result<bool, GitError> {
        while self.buffer.len() - self.start < n {
            if self.start > 0 {
                self.buffer.drain(..self.start);
                self.start = 0;
            }
            match self
                .response
                .chunk()
                .await
                .map_err(|e| network(self.remote, &e))?
            {
                Some(chunk) => self.buffer.extend_from_slice(&chunk),
                None if self.buffer.is_empty() => return Ok(false),
                None => return Err(self.malformed("a truncated pkt-line")),
            }
        }
        Ok(true)
    }

    fn malformed(&self, why: &str) -> GitError {
        GitError::Transient {
            url: self.remote.url().to_owned(),
            detail: format!("the server's answer is malformed: {why}"),
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    #[test]
    fn redirects_are_followed_only_on_the_same_host_and_port() {
        let remote = Remote::new("http://127.0.0.1:8080/web.git", None).unwrap();
        let asked = join(
            &Url::parse(remote.url()).unwrap(),
            "info/refs?service=git-receive-pack",
        );
        let to = |location: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                reqwest::header::LOCATION,
                HeaderValue::from_str(location).unwrap(),
            );
            redirected(&remote, &asked, &headers)
        };
        let moved = to("/teams/web.git/info/refs?service=git-receive-pack").unwrap();
        assert_eq!(moved.as_str(), "http://127.0.0.1:8080/teams/web.git");
        match to("http://127.0.0.1:9090/web.git/info/refs?service=git-receive-pack") {
            Err(GitError::Auth { detail, .. }) => {
                assert!(
                    detail.contains("127.0.0.1:9090, another host or port"),
                    "{detail}"
                )
            }
            other => panic!("{other:?}"),
        }
        let upgraded = to("https://127.0.0.1:8080/web.git/info/refs").unwrap();
        assert_eq!(upgraded.as_str(), "https://127.0.0.1:8080/web.git");
        let secure = Remote::new("https://127.0.0.1:8080/web.git", None).unwrap();
        let asked = join(&Url::parse(secure.url()).unwrap(), "info/refs");
        let mut headers = HeaderMap::new();
        let down = HeaderValue::from_static("http://127.0.0.1:8080/web.git/info/refs");
        headers.insert(reqwest::header::LOCATION, down);
        assert!(matches!(
            redirected(&secure, &asked, &headers),
            Err(GitError::Auth { .. })
        ));
        assert!(matches!(to("/elsewhere"), Err(GitError::Other { .. })));
    }

    /// A remote on loopback that sends `token`.
    pub(in crate::git) fn remote_with_token(token: &str) -> Remote {
        Remote::new(
            "http://127.0.0.1:8080/web.git",
            Some(crate::git::Credentials {
                username: "bot".into(),
                token: secrecy::SecretString::from(token),
            }),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn statuses_say_what_to_do_and_keep_the_token_out() {
        let token = "tok-secret-1";
        let with_token = remote_with_token(token);
        let without = Remote::new("http://127.0.0.1:8080/web.git", None).unwrap();
        let answer = |status: u16, body: &str| {
            reqwest::Response::from(
                http::Response::builder()
                    .status(status)
                    .body(body.to_owned())
                    .unwrap(),
            )
        };
        let detail = |e: GitError| match e {
            GitError::Auth { detail, .. } => detail,
            other => panic!("{other:?}"),
        };
        let refused = checked(&with_token, answer(401, "")).await.unwrap_err();
        assert_eq!(detail(refused), "the server refused the token");
        let asked = checked(&without, answer(401, "")).await.unwrap_err();
        assert!(detail(asked).contains("no token is configured"));
        let forbidden = format!("token {token} may not push");
        let denied = detail(
            checked(&with_token, answer(403, &forbidden))
                .await
                .unwrap_err(),
        );
        assert!(
            denied.contains("403") && denied.contains("may not push"),
            "{denied}"
        );
        assert!(!denied.contains(token), "{denied}");
        assert!(matches!(
            checked(&with_token, answer(404, "")).await,
            Err(GitError::NotFound { .. })
        ));
        assert!(matches!(
            checked(&with_token, answer(503, "busy")).await,
            Err(GitError::Transient { .. })
        ));
        assert!(matches!(
            checked(&with_token, answer(400, "")).await,
            Err(GitError::Other { .. })
        ));
        assert!(checked(&with_token, answer(200, "")).await.is_ok());
    }
}
