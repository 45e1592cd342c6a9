//! A push over smart HTTP, spoken by Courier instead of libgit2, so the pack it sends
//! is one Courier wrote (`outgoing.rs`): libgit2 builds its own and offers no way to hand
//! it one. Two requests, as `git push` makes them (`gitprotocol-http`, `gitprotocol-pack`):
//! the ref advertisement (`GET info/refs?service=git-receive-pack`), then the update and
//! the pack (`POST git-receive-pack`), answered with a status per ref.
//!
//! What libgit2's transport guarantees, this keeps: the token goes only to the remote's
//! own host and port (a redirect elsewhere is refused, never followed), a refused or
//! missing token is an error at once, the server's messages (a hook's refusal) reach the
//! caller without the token in them, and the socket timeout applies to every read.

use std::io::Read as _;
use std::time::Duration;

use base64::Engine as _;
use git2::Oid;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};
use secrecy::ExposeSecret as _;
use url::Url;

use super::error::{GitError, printable, scrub};
use super::outgoing::Pack;
use super::remote::Remote;

/// Redirects followed (to the same host and port) before giving up.
const MAX_REDIRECTS: usize = 5;
/// The largest advertisement read: a repository with a million refs stays under it.
const MAX_ADVERTISEMENT: usize = 256 << 20;
/// The largest answer to the push read (statuses and the server's messages).
const MAX_REPORT: usize = 16 << 20;
/// Pack bytes sent per chunk of the request body.
const CHUNK: usize = 256 * 1024;

/// The remote's side of the conversation: its refs and what it can do.
pub(crate) struct Advertised {
    refs: Vec<(String, Oid)>,
    capabilities: Vec<String>,
}

impl Advertised {
    /// Where `name` (a full ref name) points, if the remote has it.
    pub(crate) fn get(&self, name: &str) -> Option<Oid> {
        self.refs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, oid)| *oid)
    }

    /// Every object the remote's refs point at.
    pub(crate) fn tips(&self) -> Vec<Oid> {
        self.refs.iter().map(|(_, oid)| *oid).collect()
    }

    pub(crate) fn can(&self, capability: &str) -> bool {
        self.capabilities.iter().any(|c| c == capability)
    }
}

/// One push: the client, and the repository's URL after any same-host redirect.
pub(crate) struct Session<'a> {
    remote: &'a Remote,
    client: reqwest::Client,
    base: Url,
}

/// What the server said of the update.
pub(crate) enum Report {
    Updated,
    /// Refused, with the server's reason and messages.
    Refused(String),
}

impl<'a> Session<'a> {
    /// Opens the conversation: asks for the remote's refs.
    pub(crate) async fn open(
        remote: &'a Remote,
        socket_timeout: Option<Duration>,
    ) -> Result<(Session<'a>, Advertised), GitError> {
        let other = |detail: String| GitError::Other { detail };
        let mut builder = crate::forge::http::trusting(remote.extra_roots().unwrap_or_default())
            .map_err(other)?
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
        let mut base = Url::parse(remote.url()).map_err(|e| other(e.to_string()))?;
        for _ in 0..=MAX_REDIRECTS {
            let url = join(&base, "info/refs?service=git-receive-pack");
            let response = client
                .get(url.clone())
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
            if kind != "application/x-git-receive-pack-advertisement" {
                return Err(GitError::Other {
                    detail: format!(
                        "{} does not speak git's smart HTTP protocol (it answered with `{kind}`)",
                        remote.url()
                    ),
                });
            }
            let body = read_bounded(remote, response, MAX_ADVERTISEMENT).await?;
            let advertised = parse_advertisement(&body).map_err(|why| GitError::Other {
                detail: format!(
                    "the ref advertisement of {} is malformed: {why}",
                    remote.url()
                ),
            })?;
            // Without a status per ref a push cannot be confirmed (every git server
            // offers it); a capability the server did not offer is never asked for.
            if !advertised.can("report-status") {
                return Err(GitError::Other {
                    detail: format!(
                        "{} does not report the status of an update (report-status), so a push there cannot be confirmed",
                        remote.url()
                    ),
                });
            }
            return Ok((
                Session {
                    remote,
                    client,
                    base,
                },
                advertised,
            ));
        }
        Err(GitError::Other {
            detail: format!(
                "{} redirected more than {MAX_REDIRECTS} times",
                remote.url()
            ),
        })
    }

    /// Sends one update (`old` to `new` on `reference`) and the pack, and reads the
    /// server's status of the update.
    pub(crate) async fn send(
        &self,
        advertised: &Advertised,
        reference: &str,
        old: Oid,
        new: Oid,
        pack: Pack,
    ) -> Result<Report, GitError> {
        let mut wanted = vec!["report-status"];
        let sideband = advertised.can("side-band-64k");
        if sideband {
            wanted.push("side-band-64k");
        }
        if advertised.can("quiet") {
            wanted.push("quiet");
        }
        let agent = concat!("agent=courier/", env!("CARGO_PKG_VERSION"));
        let command = format!("{old} {new} {reference}\0{} {agent}\n", wanted.join(" "));
        let mut head = pkt_line(command.as_bytes());
        head.extend_from_slice(b"0000");
        let total = head.len() as u64 + pack.len;
        let body = reqwest::Body::wrap_stream(body_stream(head, pack.file));
        let url = join(&self.base, "git-receive-pack");
        let response = self
            .client
            .post(url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-git-receive-pack-request",
            )
            .header(
                reqwest::header::ACCEPT,
                "application/x-git-receive-pack-result",
            )
            .header(reqwest::header::CONTENT_LENGTH, total)
            .body(body)
            .send()
            .await
            .map_err(|e| network(self.remote, &e))?;
        if response.status().is_redirection() {
            return Err(GitError::Other {
                detail: format!(
                    "{} redirected the push after accepting the ref advertisement",
                    self.remote.url()
                ),
            });
        }
        let response = checked(self.remote, response).await?;
        let body = read_bounded(self.remote, response, MAX_REPORT).await?;
        let (status, messages) = if sideband {
            demultiplex(&body)
        } else {
            Ok((body, Vec::new()))
        }
        .map_err(|why| self.malformed(why))?;
        let token = self.remote.token();
        let messages = printable(&messages, token);
        let report = parse_report(&status, reference).map_err(|why| self.malformed(why))?;
        Ok(match report {
            RefStatus::Ok => Report::Updated,
            RefStatus::Refused(reason) => {
                let reason = printable(reason.as_bytes(), token);
                Report::Refused(if messages.is_empty() {
                    reason
                } else {
                    format!("{reason}\n{messages}")
                })
            }
            RefStatus::Missing(why) => Report::Refused(if messages.is_empty() {
                why
            } else {
                format!("{why}: {messages}")
            }),
        })
    }

    fn malformed(&self, why: &str) -> GitError {
        GitError::Transient {
            url: self.remote.url().to_owned(),
            detail: format!("the answer to the push is malformed: {why}"),
        }
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
fn join(base: &Url, rest: &str) -> Url {
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
fn network(remote: &Remote, error: &reqwest::Error) -> GitError {
    let proxy_password = remote
        .proxy()
        .and_then(|p| p.credentials())
        .map(|(_, password)| password);
    let detail = crate::forge::http::with_causes(error.to_string(), error);
    let detail = scrub(&scrub(&detail, remote.token()), proxy_password);
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
            detail: format!("the server refused the push (403){said}"),
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

async fn read_bounded(
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

/// The request body: the command's pkt-lines, then the pack, read in chunks on a
/// blocking thread.
fn body_stream(
    head: Vec<u8>,
    pack: std::fs::File,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static {
    enum State {
        Head(Vec<u8>, std::fs::File),
        Pack(std::fs::File),
        Done,
    }
    futures_util::stream::unfold(State::Head(head, pack), |state| async move {
        let pack = match state {
            State::Head(head, mut pack) => {
                use std::io::Seek as _;
                return Some(match pack.rewind() {
                    Ok(()) => (Ok(bytes::Bytes::from(head)), State::Pack(pack)),
                    Err(e) => (Err(e), State::Done),
                });
            }
            State::Pack(pack) => pack,
            State::Done => return None,
        };
        let read = tokio::task::spawn_blocking(move || read_chunk(pack))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        match read {
            Ok((buf, _)) if buf.is_empty() => None,
            Ok((buf, pack)) => Some((Ok(bytes::Bytes::from(buf)), State::Pack(pack))),
            Err(e) => Some((Err(e), State::Done)),
        }
    })
}

/// Up to [`CHUNK`] bytes of the pack (fewer only at its end).
fn read_chunk(mut pack: std::fs::File) -> std::io::Result<(Vec<u8>, std::fs::File)> {
    let mut buf = vec![0u8; CHUNK];
    let mut filled = 0;
    while filled < CHUNK {
        match pack.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok((buf, pack))
}

/// One pkt-line: four hex digits of length (themselves included), then the payload.
fn pkt_line(payload: &[u8]) -> Vec<u8> {
    let mut out = format!("{:04x}", payload.len() + 4).into_bytes();
    out.extend_from_slice(payload);
    out
}

/// Splits `data` into pkt-lines; `None` stands for a flush (`0000`).
fn pkt_lines(mut data: &[u8]) -> Result<Vec<Option<&[u8]>>, &'static str> {
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

/// Reads the refs and capabilities of a `git-receive-pack` advertisement.
fn parse_advertisement(body: &[u8]) -> Result<Advertised, &'static str> {
    let mut lines = pkt_lines(body)?.into_iter().peekable();
    // Smart HTTP starts with `# service=git-receive-pack` and a flush.
    if lines
        .peek()
        .is_some_and(|l| l.is_some_and(|l| l.starts_with(b"# service=")))
    {
        lines.next();
        if lines.next() != Some(None) {
            return Err("no flush after the service line");
        }
    }
    let mut refs = Vec::new();
    let mut capabilities = Vec::new();
    let mut first = true;
    for line in lines {
        let Some(line) = line else { break };
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        if first && line == b"version 1" {
            continue;
        }
        let (line, caps) = match line.iter().position(|b| *b == 0) {
            Some(nul) => (&line[..nul], Some(&line[nul + 1..])),
            None => (line, None),
        };
        if first {
            let caps = caps.ok_or("no capabilities on the first ref")?;
            let caps = std::str::from_utf8(caps).map_err(|_| "capabilities that are not UTF-8")?;
            capabilities = caps.split_whitespace().map(str::to_owned).collect();
        }
        first = false;
        let line = std::str::from_utf8(line).map_err(|_| "a ref line that is not UTF-8")?;
        let (oid, name) = line.split_once(' ').ok_or("a ref line without a name")?;
        let oid = Oid::from_str(oid).map_err(|_| "a ref line without an object id")?;
        // An empty repository advertises its capabilities on a placeholder.
        if name != "capabilities^{}" {
            refs.push((name.to_owned(), oid));
        }
    }
    Ok(Advertised { refs, capabilities })
}

/// Separates the side-band streams of the answer: band 1 (the status report), band 2
/// (the server's messages) and band 3 (a fatal error, kept with the messages).
fn demultiplex(body: &[u8]) -> Result<(Vec<u8>, Vec<u8>), &'static str> {
    let mut status = Vec::new();
    let mut messages = Vec::new();
    for line in pkt_lines(body)?.into_iter().flatten() {
        match line.split_first() {
            Some((1, data)) => status.extend_from_slice(data),
            Some((2 | 3, data)) => messages.extend_from_slice(data),
            _ => return Err("a side-band packet of an unknown band"),
        }
    }
    Ok((status, messages))
}

/// What the status report says of one ref.
#[derive(Debug, PartialEq)]
enum RefStatus {
    Ok,
    Refused(String),
    /// The report does not say: the server failed before it.
    Missing(String),
}

/// Reads `unpack ok|<error>` and `ok <ref>` / `ng <ref> <reason>` for `reference`.
fn parse_report(status: &[u8], reference: &str) -> Result<RefStatus, &'static str> {
    let lines = pkt_lines(status)?;
    let mut unpack = None;
    for line in lines.into_iter().flatten() {
        let line = String::from_utf8_lossy(line);
        let line = line.trim_end_matches('\n');
        if let Some(result) = line.strip_prefix("unpack ") {
            unpack = Some(result.to_owned());
        } else if let Some(name) = line.strip_prefix("ok ") {
            if name == reference {
                return Ok(if unpack.as_deref() == Some("ok") {
                    RefStatus::Ok
                } else {
                    RefStatus::Refused(format!("unpack {}", unpack.unwrap_or_default()))
                });
            }
        } else if let Some(rest) = line.strip_prefix("ng ") {
            let (name, reason) = rest.split_once(' ').unwrap_or((rest, ""));
            if name == reference {
                return Ok(RefStatus::Refused(reason.to_owned()));
            }
        }
    }
    Ok(RefStatus::Missing(match unpack {
        Some(result) if result != "ok" => format!("the server could not unpack the push: {result}"),
        _ => "the server did not confirm the update".to_owned(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "1111111111111111111111111111111111111111";

    #[test]
    fn advertisements_give_refs_and_capabilities() {
        let mut body = pkt_line(b"# service=git-receive-pack\n");
        body.extend_from_slice(b"0000");
        body.extend(pkt_line(
            format!("{A} refs/heads/main\0report-status side-band-64k ofs-delta\n").as_bytes(),
        ));
        body.extend(pkt_line(format!("{A} refs/heads/x\n").as_bytes()));
        body.extend_from_slice(b"0000");
        let ad = parse_advertisement(&body).unwrap();
        assert_eq!(ad.get("refs/heads/x"), Some(Oid::from_str(A).unwrap()));
        assert_eq!(ad.tips().len(), 2);
        assert!(ad.can("side-band-64k") && !ad.can("quiet"));

        let zero = "0".repeat(40);
        let empty = pkt_line(format!("{zero} capabilities^{{}}\0report-status\n").as_bytes());
        let ad = parse_advertisement(&empty).unwrap();
        assert!(ad.tips().is_empty() && ad.can("report-status"));

        assert!(parse_advertisement(b"00zzabc").is_err());
        assert!(parse_advertisement(&pkt_line(b"nonsense\n")).is_err());
    }

    #[test]
    fn reports_say_which_ref_went_through() {
        let report = |lines: &[&str]| {
            let mut out = Vec::new();
            for line in lines {
                out.extend(pkt_line(line.as_bytes()));
            }
            out.extend_from_slice(b"0000");
            parse_report(&out, "refs/heads/a").unwrap()
        };
        assert_eq!(report(&["unpack ok\n", "ok refs/heads/a\n"]), RefStatus::Ok);
        assert_eq!(
            report(&["unpack ok\n", "ng refs/heads/a pre-receive hook declined\n"]),
            RefStatus::Refused("pre-receive hook declined".into())
        );
        assert!(matches!(
            report(&["unpack index-pack failed\n"]),
            RefStatus::Missing(why) if why.contains("index-pack failed")
        ));
        assert!(matches!(report(&[]), RefStatus::Missing(_)));
    }

    #[test]
    fn side_bands_are_separated() {
        let mut body = Vec::new();
        body.extend(pkt_line(b"\x01000eunpack ok\n"));
        body.extend(pkt_line(b"\x02remote: hello\n"));
        body.extend_from_slice(b"0000");
        let (status, messages) = demultiplex(&body).unwrap();
        assert_eq!(status, b"000eunpack ok\n");
        assert_eq!(messages, b"remote: hello\n");
        assert!(demultiplex(&pkt_line(b"\x09x")).is_err());
    }

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

    #[tokio::test]
    async fn statuses_say_what_to_do_and_keep_the_token_out() {
        let token = "tok-secret-1";
        let with_token = Remote::new(
            "http://127.0.0.1:8080/web.git",
            Some(crate::git::Credentials {
                username: "bot".into(),
                token: secrecy::SecretString::from(token),
            }),
        )
        .unwrap();
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
