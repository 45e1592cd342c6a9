//! A fetch over smart HTTP in protocol version 2 (`gitprotocol-v2`), spoken by Courier
//! instead of libgit2, because libgit2 has no partial fetch: its shallow fetch of a
//! 100,000-file repository downloaded, inflated and hashed every blob on one thread,
//! while a delivery reads only the trees and the few blobs it replaces. Here the fetch
//! asks for the branch tips at depth 1 without blobs (`filter blob:none`), and later for
//! exactly the blobs the delivery reads, by id.
//!
//! The HTTP framing, the token's handling and the status codes are `smart_http.rs`'s.
//! A server that speaks no version 2, or cannot filter or deepen, gets libgit2's fetch.

use std::time::Duration;

use git2::Oid;

use super::error::{GitError, printable};
use super::remote::Remote;
use super::smart_http::{
    Kept, Packet, PacketReader, Service, Session, advertisement_lines, pkt_line,
};

/// A conversation with a server that can serve a partial fetch.
pub(crate) struct Fetch {
    session: Session,
    /// Whether the server named its object format (then it is said back).
    object_format: bool,
}

/// What the fetch opened onto.
pub(crate) enum Opened {
    /// Boxed: the conversation owns its remote.
    Ready(Box<Fetch>),
    /// The server cannot serve a partial fetch; the reason is for the log.
    Unsupported(String),
}

/// The objects asked for in one request.
#[derive(Default)]
pub(crate) struct Request<'a> {
    pub(crate) wants: &'a [Oid],
    /// Commits the cache has (with their trees), so the server leaves them out.
    pub(crate) haves: &'a [Oid],
    /// The cache's shallow boundary: the server then knows the cache has nothing older.
    pub(crate) shallow: &'a [Oid],
    /// Depth 1: the wanted commits without their history.
    pub(crate) deepen: bool,
    /// Trees and commits only.
    pub(crate) without_blobs: bool,
}

/// One ref of an `ls-refs` answer.
struct Listed {
    name: String,
    oid: Oid,
    /// Where a symbolic ref (`HEAD`) points, when asked for.
    symref_target: Option<String>,
}

/// How the server moved the cache's shallow boundary.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ShallowInfo {
    pub(crate) shallow: Vec<Oid>,
    pub(crate) unshallow: Vec<Oid>,
}

impl Fetch {
    /// Reads the server's capabilities, and keeps them in `kept` when they allow a
    /// partial fetch.
    pub(crate) async fn open(
        remote: &Remote,
        socket_timeout: Option<Duration>,
        kept: Option<&Kept>,
    ) -> Result<Opened, GitError> {
        let (session, body) = Session::open(remote, socket_timeout, Service::UploadPack).await?;
        let opened = Fetch::opened(session, &body)?;
        if let (Opened::Ready(fetch), Some(kept)) = (&opened, kept) {
            kept.keep(&fetch.session, &body);
        }
        Ok(opened)
    }

    /// A conversation that does not ask for the server's capabilities: it takes the
    /// advertisement `kept` holds, if any.
    pub(crate) fn known(
        remote: &Remote,
        socket_timeout: Option<Duration>,
        kept: &Kept,
    ) -> Option<Result<Opened, GitError>> {
        let advertisement = kept.read()?;
        let session = Session::known(remote, socket_timeout, Service::UploadPack);
        Some(session.and_then(|session| Fetch::opened(session, &advertisement)))
    }

    /// The conversation, if the advertised capabilities allow a partial fetch.
    fn opened(session: Session, body: &[u8]) -> Result<Opened, GitError> {
        let remote = &session.remote;
        let capabilities = match parse_capabilities(body) {
            Ok(Some(capabilities)) => capabilities,
            Ok(None) => {
                return Ok(Opened::Unsupported(
                    "the server does not speak protocol version 2".into(),
                ));
            }
            Err(why) => {
                return Err(GitError::Other {
                    detail: format!("the capabilities of {} are malformed: {why}", remote.url()),
                });
            }
        };
        let value = |name: &str| {
            capabilities.iter().find_map(|c| {
                if c == name {
                    Some("")
                } else {
                    c.strip_prefix(name)?.strip_prefix('=')
                }
            })
        };
        let Some(features) = value("fetch") else {
            return Ok(Opened::Unsupported("the server offers no fetch".into()));
        };
        let features: Vec<&str> = features.split_whitespace().collect();
        for needed in ["shallow", "filter"] {
            if !features.contains(&needed) {
                return Ok(Opened::Unsupported(format!(
                    "the server's fetch has no `{needed}`"
                )));
            }
        }
        if value("ls-refs").is_none() {
            return Ok(Opened::Unsupported("the server offers no ls-refs".into()));
        }
        let object_format = match value("object-format") {
            None => false,
            Some("sha1") => true,
            Some(other) => {
                return Ok(Opened::Unsupported(format!(
                    "the repository's object format is {other}"
                )));
            }
        };
        Ok(Opened::Ready(Box::new(Fetch {
            session,
            object_format,
        })))
    }

    /// Where each of `names` (full ref names) points, for those the server has.
    pub(crate) async fn refs(&self, names: &[String]) -> Result<Vec<(String, Oid)>, GitError> {
        let args: Vec<String> = names.iter().map(|n| format!("ref-prefix {n}")).collect();
        let listed = self.ls_refs(&args).await?;
        Ok(listed
            .into_iter()
            // `ref-prefix` matches prefixes: `main` also finds `main-old`.
            .filter(|listed| names.contains(&listed.name))
            .map(|listed| (listed.name, listed.oid))
            .collect())
    }

    /// The branch the remote's `HEAD` points at (its default branch), as a full ref name;
    /// `None` if it has none (an empty repository).
    pub(crate) async fn head(&self) -> Result<Option<String>, GitError> {
        let args = ["symrefs".to_owned(), "ref-prefix HEAD".to_owned()];
        let listed = self.ls_refs(&args).await?;
        Ok(listed
            .into_iter()
            .find(|listed| listed.name == "HEAD")
            .and_then(|head| head.symref_target))
    }

    async fn ls_refs(&self, args: &[String]) -> Result<Vec<Listed>, GitError> {
        let mut reader = self.send("ls-refs", args).await?;
        let mut refs = Vec::new();
        loop {
            match reader.next().await? {
                Some(Packet::Data(line)) => {
                    let line = self.line(&line)?;
                    let mut words = line.split(' ');
                    let (Some(oid), Some(name)) = (words.next(), words.next()) else {
                        return Err(self.malformed("a ref line without a name"));
                    };
                    let oid = Oid::from_str(oid)
                        .map_err(|_| self.malformed("a ref line without an object id"))?;
                    let symref_target = words
                        .find_map(|attribute| attribute.strip_prefix("symref-target:"))
                        .map(str::to_owned);
                    refs.push(Listed {
                        name: name.to_owned(),
                        oid,
                        symref_target,
                    });
                }
                Some(Packet::Flush | Packet::ResponseEnd) | None => {
                    reader.finish().await;
                    return Ok(refs);
                }
                Some(Packet::Delimiter) => {
                    return Err(self.malformed("a delimiter in the list of refs"));
                }
            }
        }
    }

    /// Asks for `request`'s objects and hands the answer to `receiver` as it arrives.
    pub(crate) async fn objects(
        &self,
        request: &Request<'_>,
        receiver: &mut dyn Receiver,
    ) -> Result<(), GitError> {
        let mut args = vec!["no-progress".to_owned(), "ofs-delta".to_owned()];
        if request.deepen {
            args.push("deepen 1".into());
        }
        args.extend(request.shallow.iter().map(|oid| format!("shallow {oid}")));
        if request.without_blobs {
            args.push("filter blob:none".into());
        }
        args.extend(request.wants.iter().map(|oid| format!("want {oid}")));
        args.extend(request.haves.iter().map(|oid| format!("have {oid}")));
        // One round: what the cache has is all said, so the server sends the pack now.
        args.push("done".into());
        let reader = self.send("fetch", &args).await?;
        read_answer(&self.session.remote, reader, receiver).await
    }

    /// Sends one command with its arguments.
    async fn send(&self, command: &str, args: &[String]) -> Result<PacketReader<'_>, GitError> {
        let mut body = pkt_line(format!("command={command}\n").as_bytes());
        body.extend(pkt_line(
            concat!("agent=courier/", env!("CARGO_PKG_VERSION"), "\n").as_bytes(),
        ));
        if self.object_format {
            body.extend(pkt_line(b"object-format=sha1\n"));
        }
        body.extend_from_slice(b"0001");
        for arg in args {
            body.extend(pkt_line(format!("{arg}\n").as_bytes()));
        }
        body.extend_from_slice(b"0000");
        let len = body.len() as u64;
        let response = self.session.post(body.into(), len).await?;
        Ok(PacketReader::new(&self.session.remote, response))
    }

    fn line(&self, line: &[u8]) -> Result<String, GitError> {
        text_line(&self.session.remote, line)
    }

    fn malformed(&self, why: &str) -> GitError {
        malformed(&self.session.remote, why)
    }
}

/// Where the answer to a fetch goes, as it arrives.
pub(crate) trait Receiver {
    /// How the server moved the shallow boundary, before any of the pack: kept first, a
    /// process that dies in the middle of the pack leaves no commit without its boundary.
    fn shallow(&mut self, info: &ShallowInfo) -> Result<(), GitError>;
    /// The next bytes of the pack.
    fn pack(&mut self, data: &[u8]) -> Result<(), GitError>;
}

/// Reads the answer to a fetch: its sections, handed to `receiver`.
async fn read_answer(
    remote: &Remote,
    mut reader: PacketReader<'_>,
    receiver: &mut dyn Receiver,
) -> Result<(), GitError> {
    let mut info = ShallowInfo::default();
    loop {
        let header = match reader.next().await? {
            Some(Packet::Data(line)) => text_line(remote, &line)?,
            Some(Packet::Delimiter) => continue,
            Some(Packet::Flush | Packet::ResponseEnd) | None => {
                return Err(malformed(remote, "no pack in the answer"));
            }
        };
        match header.as_str() {
            "packfile" => {
                receiver.shallow(&info)?;
                read_pack(remote, &mut reader, receiver).await?;
                reader.finish().await;
                return Ok(());
            }
            "shallow-info" => read_shallow_info(remote, &mut reader, &mut info).await?,
            // Sections not asked for are passed over.
            "acknowledgments" | "wanted-refs" | "packfile-uris" => {
                while let Some(Packet::Data(_)) = reader.next().await? {}
            }
            _ => return Err(malformed(remote, "an unknown section")),
        }
    }
}

async fn read_shallow_info(
    remote: &Remote,
    reader: &mut PacketReader<'_>,
    info: &mut ShallowInfo,
) -> Result<(), GitError> {
    while let Some(Packet::Data(line)) = reader.next().await? {
        let line = text_line(remote, &line)?;
        let (kind, oid) = line
            .split_once(' ')
            .ok_or_else(|| malformed(remote, "a shallow line without an id"))?;
        let oid =
            Oid::from_str(oid).map_err(|_| malformed(remote, "a shallow line without an id"))?;
        match kind {
            "shallow" => info.shallow.push(oid),
            "unshallow" => info.unshallow.push(oid),
            _ => return Err(malformed(remote, "an unknown shallow line")),
        }
    }
    Ok(())
}

/// The pack's side band: band 1 is the pack, band 2 progress, band 3 a fatal error.
async fn read_pack(
    remote: &Remote,
    reader: &mut PacketReader<'_>,
    receiver: &mut dyn Receiver,
) -> Result<(), GitError> {
    while let Some(Packet::Data(packet)) = reader.next().await? {
        match packet.split_first() {
            Some((1, data)) => receiver.pack(data)?,
            Some((2, _)) => {}
            Some((3, message)) => {
                return Err(GitError::Other {
                    detail: format!(
                        "{} could not send the objects: {}",
                        remote.url(),
                        printable(message, remote.token())
                    ),
                });
            }
            _ => return Err(malformed(remote, "a side-band packet of an unknown band")),
        }
    }
    Ok(())
}

/// A text line of the answer, without its newline; `ERR` lines are the server's refusal.
fn text_line(remote: &Remote, line: &[u8]) -> Result<String, GitError> {
    let line = String::from_utf8_lossy(line);
    let line = line.strip_suffix('\n').unwrap_or(&line);
    if let Some(message) = line.strip_prefix("ERR ") {
        return Err(GitError::Other {
            detail: format!(
                "{} refused the fetch: {}",
                remote.url(),
                printable(message.as_bytes(), remote.token())
            ),
        });
    }
    Ok(line.to_owned())
}

fn malformed(remote: &Remote, why: &str) -> GitError {
    GitError::Transient {
        url: remote.url().to_owned(),
        detail: format!("the answer to the fetch is malformed: {why}"),
    }
}

/// The capabilities of a version 2 advertisement; `None` if the server answered in
/// version 0 or 1 (a ref advertisement).
fn parse_capabilities(body: &[u8]) -> Result<Option<Vec<String>>, &'static str> {
    let mut lines = advertisement_lines(body)?.into_iter();
    let text = |line: &[u8]| {
        std::str::from_utf8(line)
            .map(|l| l.trim_end_matches('\n').to_owned())
            .map_err(|_| "a capability that is not UTF-8")
    };
    match lines.next() {
        Some(Some(line)) if text(line)? == "version 2" => {}
        _ => return Ok(None),
    }
    let mut capabilities = Vec::new();
    for line in lines {
        match line {
            Some(line) => capabilities.push(text(line)?),
            None => break,
        }
    }
    Ok(Some(capabilities))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(lines: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for line in lines {
            out.extend(pkt_line(line.as_bytes()));
        }
        out.extend_from_slice(b"0000");
        out
    }

    #[test]
    fn version_2_capabilities_are_read_and_older_advertisements_recognised() {
        let v2 = message(&[
            "version 2\n",
            "agent=git/2.47\n",
            "ls-refs=unborn\n",
            "fetch=shallow wait-for-done filter\n",
            "object-format=sha1\n",
        ]);
        let capabilities = parse_capabilities(&v2).unwrap().unwrap();
        assert!(capabilities.contains(&"fetch=shallow wait-for-done filter".to_owned()));
        assert_eq!(capabilities.len(), 4);

        let mut with_service = message(&["# service=git-upload-pack\n"]);
        with_service.extend(&v2);
        assert_eq!(parse_capabilities(&with_service).unwrap().unwrap().len(), 4);

        let zero = "1".repeat(40);
        let v0 = message(&[&format!("{zero} HEAD\0multi_ack side-band-64k\n")]);
        assert_eq!(parse_capabilities(&v0).unwrap(), None);
        assert!(parse_capabilities(b"00zz").is_err());
    }

    fn answer(body: Vec<u8>) -> reqwest::Response {
        reqwest::Response::from(http::Response::builder().status(200).body(body).unwrap())
    }

    #[derive(Default)]
    struct Kept {
        shallow: Option<ShallowInfo>,
        pack: Vec<u8>,
        boundary_first: bool,
    }

    impl Receiver for Kept {
        fn shallow(&mut self, info: &ShallowInfo) -> Result<(), GitError> {
            self.boundary_first = self.pack.is_empty();
            self.shallow = Some(ShallowInfo {
                shallow: info.shallow.clone(),
                unshallow: info.unshallow.clone(),
            });
            Ok(())
        }

        fn pack(&mut self, data: &[u8]) -> Result<(), GitError> {
            self.pack.extend_from_slice(data);
            Ok(())
        }
    }

    fn band(band: u8, data: &[u8]) -> Vec<u8> {
        let mut packet = vec![band];
        packet.extend_from_slice(data);
        pkt_line(&packet)
    }

    #[tokio::test]
    async fn an_answer_gives_its_shallow_boundary_and_its_pack() {
        let token = "tok-secret-2";
        let remote = crate::git::smart_http::tests::remote_with_token(token);
        let a = "1".repeat(40);
        let b = "2".repeat(40);
        let mut body = pkt_line(b"shallow-info\n");
        body.extend(pkt_line(format!("shallow {a}\n").as_bytes()));
        body.extend(pkt_line(format!("unshallow {b}\n").as_bytes()));
        body.extend_from_slice(b"0001");
        body.extend(pkt_line(b"packfile\n"));
        body.extend(band(2, b"counting objects\n"));
        body.extend(band(1, b"PACK"));
        body.extend(band(1, b"rest"));
        body.extend_from_slice(b"0000");
        let mut kept = Kept::default();
        let reader = PacketReader::new(&remote, answer(body.clone()));
        read_answer(&remote, reader, &mut kept).await.unwrap();
        assert_eq!(kept.pack, b"PACKrest");
        let info = kept.shallow.expect("the boundary");
        assert_eq!(info.shallow, [Oid::from_str(&a).unwrap()]);
        assert_eq!(info.unshallow, [Oid::from_str(&b).unwrap()]);
        assert!(kept.boundary_first, "the boundary came before the pack");

        // The server's fatal error, without the token; a refusal; an answer cut short.
        let mut failed = pkt_line(b"packfile\n");
        failed.extend(band(3, format!("no such object, token {token}").as_bytes()));
        let reader = PacketReader::new(&remote, answer(failed));
        let error = read_answer(&remote, reader, &mut Kept::default())
            .await
            .unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("no such object") && !text.contains(token),
            "{text}"
        );
        let refused = pkt_line(b"ERR upload-pack: not our ref\n");
        let reader = PacketReader::new(&remote, answer(refused));
        let error = read_answer(&remote, reader, &mut Kept::default())
            .await
            .unwrap_err();
        assert!(error.to_string().contains("not our ref"), "{error}");
        let reader = PacketReader::new(&remote, answer(body[..body.len() - 7].to_vec()));
        let error = read_answer(&remote, reader, &mut Kept::default())
            .await
            .unwrap_err();
        assert!(matches!(error, GitError::Transient { .. }), "{error:?}");
    }
}
