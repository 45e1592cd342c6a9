//! A push over smart HTTP, spoken by Courier instead of libgit2, so the pack it sends
//! is one Courier wrote (`outgoing.rs`): libgit2 builds its own and offers no way to hand
//! it one. Two requests, as `git push` makes them (`gitprotocol-http`, `gitprotocol-pack`):
//! the ref advertisement (`GET info/refs?service=git-receive-pack`), then the update and
//! the pack (`POST git-receive-pack`), answered with a status per ref. With capabilities
//! kept from an earlier advertisement ([`Push::known`]), only the second.
//!
//! The HTTP framing, the token's handling and the status codes are `smart_http.rs`'s.

use std::io::Read as _;
use std::time::Duration;

use git2::Oid;

use super::error::{GitError, printable};
use super::outgoing::Pack;
use super::remote::Remote;
use super::smart_http::{
    Kept, Service, Session, advertisement_lines, pkt_line, pkt_lines, read_bounded,
};

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

/// One push: the conversation with the server.
pub(crate) struct Push {
    session: Session,
}

/// What the server said of the update.
pub(crate) enum Report {
    Updated,
    /// Refused, with the server's reason and messages.
    Refused(String),
}

impl Push {
    /// Opens the conversation: asks for the remote's refs, and keeps the capabilities in
    /// `kept`.
    pub(crate) async fn open(
        remote: &Remote,
        socket_timeout: Option<Duration>,
        kept: Option<&Kept>,
    ) -> Result<(Push, Advertised), GitError> {
        let (session, body) = Session::open(remote, socket_timeout, Service::ReceivePack).await?;
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
        if let Some(kept) = kept {
            kept.keep(&session, advertised.capabilities.join(" ").as_bytes());
        }
        Ok((Push { session }, advertised))
    }

    /// A conversation that does not ask for the remote's refs: it takes the
    /// capabilities `kept` holds, if they can confirm a push, and knows no ref.
    pub(crate) fn known(
        remote: &Remote,
        socket_timeout: Option<Duration>,
        kept: &Kept,
    ) -> Option<Result<(Push, Advertised), GitError>> {
        let kept = String::from_utf8(kept.read()?).ok()?;
        let capabilities: Vec<String> = kept.split_whitespace().map(str::to_owned).collect();
        if !capabilities.iter().any(|c| c == "report-status") {
            return None;
        }
        let advertised = Advertised {
            refs: Vec::new(),
            capabilities,
        };
        let session = Session::known(remote, socket_timeout, Service::ReceivePack);
        Some(session.map(|session| (Push { session }, advertised)))
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
        let remote = &self.session.remote;
        let response = self.session.post(body, total).await?;
        let body = read_bounded(remote, response, MAX_REPORT).await?;
        let (status, messages) = if sideband {
            demultiplex(&body)
        } else {
            Ok((body, Vec::new()))
        }
        .map_err(|why| self.malformed(why))?;
        let token = remote.token();
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
            url: self.session.remote.url().to_owned(),
            detail: format!("the answer to the push is malformed: {why}"),
        }
    }
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

/// Reads the refs and capabilities of a `git-receive-pack` advertisement.
fn parse_advertisement(body: &[u8]) -> Result<Advertised, &'static str> {
    let lines = advertisement_lines(body)?;
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
}
