//! Talking to the remote: credentials (asked once), cancellation, fetch and push with
//! per-ref status. Everything here runs on a blocking thread.

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use git2::{
    AutotagOption, Cred, CredentialType, Direction, ErrorClass, ErrorCode, FetchOptions, Oid,
    ProxyOptions, PushOptions, RemoteCallbacks, Repository,
};

use super::error::{GitError, printable, scrub};
use super::receive_pack::{self, Push, Report};
use super::remote::Remote;
use super::smart_http::{Kept, Service};
use super::upload_pack::{self, Opened, Request};
use super::{outgoing, socket, ssh, tls};

/// Tells long-running work on a blocking thread to stop: set when the caller's
/// timeout fires, and also reached on its own once the deadline passes. libgit2 polls
/// it through the progress callbacks, the tree builder between entries.
#[derive(Clone, Debug)]
pub(crate) struct Cancel {
    flag: Arc<AtomicBool>,
    deadline: Instant,
}

impl Cancel {
    pub(crate) fn new(deadline: Instant) -> Cancel {
        Cancel {
            flag: Arc::new(AtomicBool::new(false)),
            deadline,
        }
    }

    pub(crate) fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::SeqCst) || Instant::now() >= self.deadline
    }

    /// Runs `work` (async network work, from a blocking thread) until it ends or the
    /// deadline passes.
    fn block_on<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, GitError>>,
    ) -> Result<T, GitError> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        tokio::runtime::Handle::current()
            .block_on(async { tokio::time::timeout(left, work).await })
            .unwrap_or(Err(GitError::Timeout {
                operation: "git network operation",
                after: std::time::Duration::ZERO,
            }))
    }
}

/// What the callbacks saw during one network operation.
#[derive(Default)]
struct Seen {
    credential_requests: Cell<u32>,
    auth_refused: Cell<Option<String>>,
    sideband: RefCell<Vec<u8>>,
    ref_status: RefCell<Vec<(String, Option<String>)>>,
    lease_broken: Cell<Option<Oid>>,
    /// Why the SSH server's host key was not trusted.
    host_key_refused: RefCell<Option<String>>,
}

fn callbacks<'a>(remote: &'a Remote, seen: &'a Seen, cancel: &'a Cancel) -> RemoteCallbacks<'a> {
    let mut cb = RemoteCallbacks::new();
    if remote.ssh_key().is_some() || remote.extra_roots().is_some() {
        cb.certificate_check(move |cert, host| check_certificate(remote, seen, cert, host));
    }
    cb.credentials(move |url, _user_from_url, allowed| {
        let asked = seen.credential_requests.get() + 1;
        seen.credential_requests.set(asked);
        if let Some((user, key)) = remote.ssh_key() {
            if allowed.contains(CredentialType::USERNAME) {
                // Not a try of the key: only those count.
                seen.credential_requests.set(asked - 1);
                return Cred::username(user);
            }
            if asked > 1 || !allowed.contains(CredentialType::SSH_KEY) {
                seen.auth_refused
                    .set(Some("the SSH server refused the key".into()));
                return Err(git2::Error::from_str("key refused"));
            }
            use secrecy::ExposeSecret;
            let passphrase = key.passphrase.as_ref().map(|p| p.expose_secret());
            return Cred::ssh_key(user, None, &key.key, passphrase);
        }
        let Some(creds) = remote.credentials() else {
            seen.auth_refused.set(Some(
                "the server asks for credentials and no token is configured".into(),
            ));
            return Err(git2::Error::from_str("no credentials configured"));
        };
        if let Some(elsewhere) = remote.foreign_origin(url) {
            // libgit2 follows a redirect of the first request to any host and asks for
            // credentials there: the token would go to whoever the server names.
            seen.auth_refused.set(Some(format!(
                "the server redirected to {elsewhere}, another host or port, which is never sent the token; configure that URL if it is the same service"
            )));
            return Err(git2::Error::from_str("redirected to another host"));
        }
        if asked > 1 {
            // libgit2 asks again only when the server refused what we sent. Answering
            // again would loop; failing here makes the whole operation fail at once.
            seen.auth_refused
                .set(Some("the server refused the token".into()));
            return Err(git2::Error::from_str("credentials refused"));
        }
        if !allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
            seen.auth_refused
                .set(Some("the server does not accept user name and token".into()));
            return Err(git2::Error::from_str("unsupported authentication method"));
        }
        use secrecy::ExposeSecret;
        Cred::userpass_plaintext(&creds.username, creds.token.expose_secret())
    });
    cb.transfer_progress(move |_| !cancel.is_cancelled());
    cb.sideband_progress(move |data| {
        let mut buf = seen.sideband.borrow_mut();
        if buf.len() < 64 * 1024 {
            buf.extend_from_slice(data);
        }
        !cancel.is_cancelled()
    });
    cb.push_update_reference(move |name, status| {
        seen.ref_status
            .borrow_mut()
            .push((name.to_owned(), status.map(str::to_owned)));
        Ok(())
    });
    cb
}

/// An SSH server's key must be in the configured known_hosts. A TLS certificate that
/// the connection's own certificate authorities vouch for is accepted; any other is left
/// to libgit2's verification against the system's roots (passthrough), so extra CAs add
/// to the system's trust and never replace it.
fn check_certificate(
    remote: &Remote,
    seen: &Seen,
    cert: &git2::cert::Cert<'_>,
    host: &str,
) -> Result<git2::CertificateCheckStatus, git2::Error> {
    use git2::CertificateCheckStatus::{CertificateOk, CertificatePassthrough};
    if let Some(x509) = cert.as_x509() {
        let trusted = remote
            .extra_roots()
            .is_some_and(|roots| tls::vouches_for(roots, x509.data(), host));
        return Ok(if trusted {
            CertificateOk
        } else {
            CertificatePassthrough
        });
    }
    let (Some(hostkey), Some((_, key))) = (cert.as_hostkey(), remote.ssh_key()) else {
        return Ok(CertificatePassthrough);
    };
    let Some(raw) = hostkey.hostkey() else {
        seen.host_key_refused.replace(Some(
            "the SSH server's host key could not be read".to_owned(),
        ));
        return Err(git2::Error::from_str("host key unavailable"));
    };
    let port = remote.port().unwrap_or(22);
    match ssh::check_host_key(&key.known_hosts, host, port, raw) {
        Ok(()) => Ok(CertificateOk),
        Err(why) => {
            seen.host_key_refused.replace(Some(why));
            Err(git2::Error::from_str("host key not trusted"))
        }
    }
}

/// The remote's proxy, or explicitly none: libgit2 would otherwise not read the
/// environment, but saying so keeps it from ever consulting a git configuration.
fn proxy_options(remote: &Remote) -> ProxyOptions<'static> {
    use secrecy::ExposeSecret;
    let mut options = ProxyOptions::new();
    if let Some(proxy) = remote.proxy() {
        options.url(proxy.url_with_credentials().expose_secret());
    }
    options
}

/// Maps a libgit2 error from a network operation to what the caller can act on.
fn classify(err: git2::Error, remote: &Remote, seen: &Seen, cancel: &Cancel) -> GitError {
    let url = remote.url().to_owned();
    let proxy_password = remote
        .proxy()
        .and_then(|p| p.credentials())
        .map(|(_, password)| password);
    let message = scrub(&scrub(err.message(), remote.token()), proxy_password);
    if let Some(why) = seen.host_key_refused.take() {
        return GitError::Auth { url, detail: why };
    }
    if let Some(detail) = seen.auth_refused.take() {
        return GitError::Auth { url, detail };
    }
    if cancel.is_cancelled() {
        return GitError::Timeout {
            operation: "git network operation",
            after: std::time::Duration::ZERO,
        };
    }
    if err.code() == ErrorCode::Auth || message.contains("401") || message.contains("403") {
        return GitError::Auth {
            url,
            detail: message,
        };
    }
    if message.contains("404")
        || err.code() == ErrorCode::NotFound && err.class() == ErrorClass::Http
    {
        return GitError::NotFound {
            url,
            what: "repository".into(),
        };
    }
    match err.class() {
        ErrorClass::Net | ErrorClass::Http | ErrorClass::Ssl | ErrorClass::Os | ErrorClass::Ssh => {
            if err.class() == ErrorClass::Ssl && message.contains("certificate") {
                GitError::Other {
                    detail: format!("TLS certificate of {url} not trusted: {message}"),
                }
            } else {
                GitError::Transient {
                    url,
                    detail: message,
                }
            }
        }
        ErrorClass::Odb
        | ErrorClass::Zlib
        | ErrorClass::Indexer
        | ErrorClass::Repository
        | ErrorClass::Reference
        | ErrorClass::Object => GitError::CacheCorrupt {
            path: std::path::PathBuf::new(),
            detail: message,
        },
        _ if message.contains("local transport")
            || message.contains("does not appear to be a git repository")
            || message.contains("could not find repository") =>
        {
            GitError::NotFound {
                url,
                what: "repository".into(),
            }
        }
        _ => GitError::Other {
            detail: format!("talking to {url}: {message}"),
        },
    }
}

/// The remote's default branch: the branch its `HEAD` points at, from the ref
/// advertisement (no objects are fetched). Used when a target names no base branch.
pub(crate) fn default_branch(remote: &Remote, cancel: &Cancel) -> Result<String, GitError> {
    let no_head = || GitError::NotFound {
        url: remote.url().to_owned(),
        what: "a default branch (the repository has no HEAD branch: is it empty? set `branch` \
               on the target)"
            .to_owned(),
    };
    let branch_of = |head: &str| match head.strip_prefix("refs/heads/") {
        Some(branch) if !branch.is_empty() => Ok(branch.to_owned()),
        _ => Err(no_head()),
    };
    // Over HTTP(S), protocol v2 names just `HEAD`, where libgit2 reads every ref.
    if remote.is_http() {
        let head = cancel.block_on(async {
            match upload_pack::Fetch::open(remote, socket::timeout(), None).await? {
                Opened::Ready(fetch) => fetch.head().await.map(Some),
                Opened::Unsupported(_) => Ok(None),
            }
        })?;
        if let Some(head) = head {
            return head.as_deref().map_or_else(|| Err(no_head()), branch_of);
        }
    }
    let seen = Seen::default();
    let mut detached = git2::Remote::create_detached(remote.connect_url())
        .map_err(|e| GitError::other("creating the remote", scrub(e.message(), remote.token())))?;
    let connection = detached
        .connect_auth(
            Direction::Fetch,
            Some(callbacks(remote, &seen, cancel)),
            Some(proxy_options(remote)),
        )
        .map_err(|e| classify(e, remote, &seen, cancel))?;
    // libgit2 answers "not found" when the advertisement names no HEAD (its message is
    // then a stale one from elsewhere, so it is not passed on).
    let head = match connection.default_branch() {
        Ok(head) => head,
        Err(e) if e.code() == ErrorCode::NotFound => return Err(no_head()),
        Err(e) => return Err(classify(e, remote, &seen, cancel)),
    };
    head.as_str().map_or_else(|_| Err(no_head()), branch_of)
}

/// A branch as the remote advertises it.
#[derive(Debug, Clone)]
pub(crate) struct Advertised {
    pub(crate) base: Option<Oid>,
    pub(crate) head: Option<Oid>,
}

/// What a fetch leaves for the rest of the plan: where the remote's branches point, and
/// the conversation a partial fetch opened, which [`complete`] goes on with.
pub(crate) struct Fetched {
    pub(crate) advertised: Advertised,
    partial: Option<upload_pack::Fetch>,
}

/// Fetches `base` and `head` (if it exists) into `refs/courier/heads/*`, shallow when
/// `shallow` is set, and returns where the remote's branches point right now.
pub(crate) fn fetch(
    repo: &Repository,
    remote: &Remote,
    base: &str,
    head: &str,
    shallow: bool,
    cancel: &Cancel,
) -> Result<Fetched, GitError> {
    if shallow
        && remote.is_http()
        && let Some((advertised, partial)) = fetch_partial(repo, remote, base, head, cancel)?
    {
        return Ok(Fetched {
            advertised,
            partial: Some(partial),
        });
    }
    let seen = Seen::default();
    let mut anonymous = repo
        .remote_anonymous(&remote.connect_url())
        .map_err(|e| GitError::other("creating the remote", scrub(e.message(), remote.token())))?;
    let mut options = FetchOptions::new();
    options
        .remote_callbacks(callbacks(remote, &seen, cancel))
        .proxy_options(proxy_options(remote))
        .download_tags(AutotagOption::None)
        .update_fetchhead(false);
    if shallow {
        options.depth(1);
    }
    let refspecs = [
        format!("+refs/heads/{base}:{}", tracking_ref(base)),
        format!("+refs/heads/{head}:{}", tracking_ref(head)),
    ];
    anonymous
        .fetch(&refspecs, Some(&mut options), None)
        .map_err(|e| classify(e, remote, &seen, cancel))?;
    let listed = anonymous
        .list()
        .map_err(|e| classify(e, remote, &seen, cancel))?;
    let find = |name: &str| {
        let full = format!("refs/heads/{name}");
        listed.iter().find(|h| h.name() == full).map(|h| h.oid())
    };
    Ok(Fetched {
        advertised: Advertised {
            base: find(base),
            head: find(head),
        },
        partial: None,
    })
}

/// Over HTTP(S), a fetch of Courier's own (`upload_pack.rs`): the branch tips at depth
/// 1 with their trees and no blob; [`complete`] later fetches the blobs a delivery
/// reads. `None`: the server cannot serve it, and libgit2 fetches instead.
fn fetch_partial(
    repo: &Repository,
    remote: &Remote,
    base: &str,
    head: &str,
    cancel: &Cancel,
) -> Result<Option<(Advertised, upload_pack::Fetch)>, GitError> {
    let odb = repo.odb().map_err(store_fault)?;
    let names = [format!("refs/heads/{base}"), format!("refs/heads/{head}")];
    let kept = Kept::in_cache(repo.path(), Service::UploadPack);
    cancel.block_on(async {
        let (fetch, refs) = match kept_conversation(remote, &kept, &names).await {
            Some(found) => found,
            None => {
                let opened = upload_pack::Fetch::open(remote, socket::timeout(), Some(&kept));
                let fetch = match opened.await? {
                    Opened::Ready(fetch) => *fetch,
                    Opened::Unsupported(why) => {
                        tracing::debug!(%why, "no partial fetch, libgit2 fetches everything at depth 1");
                        return Ok(None);
                    }
                };
                let refs = fetch.refs(&names).await?;
                (fetch, refs)
            }
        };
        let find = |name: &str| refs.iter().find(|(n, _)| *n == name).map(|(_, oid)| *oid);
        let advertised = Advertised {
            base: find(&names[0]),
            head: find(&names[1]),
        };
        let mut wants: Vec<Oid> = [advertised.base, advertised.head]
            .into_iter()
            .flatten()
            .filter(|oid| !odb.exists(*oid))
            .collect();
        wants.dedup();
        if !wants.is_empty() {
            let haves = cached_tips(repo);
            let shallow = shallow_file::read(repo).map_err(|e| shallow_file::fault(&e))?;
            let request = Request {
                wants: &wants,
                haves: &haves,
                shallow: &shallow,
                deepen: true,
                without_blobs: true,
            };
            receive_into(repo, &odb, &fetch, &request, Some(&shallow)).await?;
        }
        for (name, oid) in &refs {
            let branch = name.trim_start_matches("refs/heads/");
            repo.reference(&tracking_ref(branch), *oid, true, "courier: fetched")
                .map_err(store_fault)?;
        }
        Ok(Some((advertised, fetch)))
    })
}

/// A fetch conversation opened with the capabilities the cache kept, which skips asking
/// for them (one request of three), and the `names` refs it listed. `None` when none are
/// kept, or they no longer serve: the server must answer the first request made with
/// them (`ls-refs`), or they are forgotten and the fetch asks, as a first one does.
async fn kept_conversation(
    remote: &Remote,
    kept: &Kept,
    names: &[String],
) -> Option<(upload_pack::Fetch, Vec<(String, Oid)>)> {
    let refs = match upload_pack::Fetch::known(remote, socket::timeout(), kept)? {
        Ok(Opened::Ready(fetch)) => fetch.refs(names).await.map(|refs| (*fetch, refs)),
        Ok(Opened::Unsupported(why)) => Err(GitError::Other { detail: why }),
        Err(err) => Err(err),
    };
    refs.inspect_err(|err| kept.forget(err)).ok()
}

/// Fetches the blobs of `ids` the cache lacks (a partial fetch left them on the
/// server): the ones a delivery reads, and only those.
pub(crate) fn complete(
    repo: &Repository,
    remote: &Remote,
    fetched: &Fetched,
    ids: &[Oid],
    cancel: &Cancel,
) -> Result<(), GitError> {
    let odb = repo.odb().map_err(store_fault)?;
    let mut missing: Vec<Oid> = ids.iter().copied().filter(|id| !odb.exists(*id)).collect();
    missing.sort();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    tracing::debug!(
        blobs = missing.len(),
        "fetching the blobs the delivery reads"
    );
    let request = Request {
        wants: &missing,
        ..Request::default()
    };
    cancel.block_on(async {
        // The conversation the fetch opened, when it was a partial one; else (a cache a
        // partial fetch filled earlier) a new one.
        let opened;
        let fetch = match &fetched.partial {
            Some(fetch) => fetch,
            None => match upload_pack::Fetch::open(remote, socket::timeout(), None).await? {
                Opened::Ready(fetch) => {
                    opened = *fetch;
                    &opened
                }
                Opened::Unsupported(why) => {
                    return Err(GitError::CacheCorrupt {
                        path: repo.path().to_owned(),
                        detail: format!("blobs are missing and {why}"),
                    });
                }
            },
        };
        receive_into(repo, &odb, fetch, &request, None).await?;
        Ok(())
    })?;
    if let Some(absent) = missing.iter().find(|id| !odb.exists(**id)) {
        return Err(GitError::Transient {
            url: remote.url().to_owned(),
            detail: format!("the server did not send blob {absent}"),
        });
    }
    Ok(())
}

/// Streams the pack answering `request` into the cache's object database, and keeps the
/// shallow boundary the server moved (when `boundary` holds the cache and the boundary it
/// had) before the pack's first byte.
async fn receive_into(
    repo: &Repository,
    odb: &git2::Odb<'_>,
    fetch: &upload_pack::Fetch,
    request: &Request<'_>,
    boundary: Option<&[Oid]>,
) -> Result<(), GitError> {
    let mut into = IntoCache {
        repo,
        boundary,
        writer: odb.packwriter().map_err(store_fault)?,
        received: 0,
    };
    fetch.objects(request, &mut into).await?;
    if into.received > 0 {
        into.writer.commit().map_err(store_fault)?;
    }
    Ok(())
}

struct IntoCache<'a> {
    repo: &'a Repository,
    boundary: Option<&'a [Oid]>,
    writer: git2::OdbPackwriter<'a>,
    received: u64,
}

impl upload_pack::Receiver for IntoCache<'_> {
    fn shallow(&mut self, info: &upload_pack::ShallowInfo) -> Result<(), GitError> {
        match self.boundary {
            Some(before) => {
                shallow_file::update(self.repo, before, info).map_err(|e| shallow_file::fault(&e))
            }
            None => Ok(()),
        }
    }

    fn pack(&mut self, data: &[u8]) -> Result<(), GitError> {
        use std::io::Write as _;
        self.received += data.len() as u64;
        self.writer
            .write_all(data)
            .map_err(|e| GitError::other("storing the fetched objects", e))
    }
}

/// A libgit2 failure while storing what a fetch of Courier's own brought.
fn store_fault(e: git2::Error) -> GitError {
    GitError::other("storing the fetched objects", e.message())
}

/// The commits the cache holds at its tracking refs: the server need not send what
/// they reach.
fn cached_tips(repo: &Repository) -> Vec<Oid> {
    let Ok(refs) = repo.references_glob("refs/courier/heads/*") else {
        return Vec::new();
    };
    let mut tips: Vec<Oid> = refs
        .flatten()
        .filter_map(|r| r.target())
        .filter(|oid| repo.find_commit(*oid).is_ok())
        .collect();
    tips.sort();
    tips.dedup();
    tips
}

/// The cache's `shallow` file: the commits whose parents it does not hold, one id a
/// line, as git and libgit2 read it.
mod shallow_file {
    use std::io::Write as _;

    use git2::{Oid, Repository};

    use super::super::error::GitError;
    use super::upload_pack::ShallowInfo;

    pub(super) fn read(repo: &Repository) -> std::io::Result<Vec<Oid>> {
        let text = match std::fs::read_to_string(repo.path().join("shallow")) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        Ok(text
            .lines()
            .filter_map(|line| Oid::from_str(line.trim()).ok())
            .collect())
    }

    /// Writes the boundary `info` leaves, replacing the file whole.
    pub(super) fn update(
        repo: &Repository,
        before: &[Oid],
        info: &ShallowInfo,
    ) -> std::io::Result<()> {
        let mut after: Vec<Oid> = before
            .iter()
            .chain(&info.shallow)
            .filter(|oid| !info.unshallow.contains(oid))
            .copied()
            .collect();
        after.sort();
        after.dedup();
        let mut unchanged = before.to_vec();
        unchanged.sort();
        if after == unchanged {
            return Ok(());
        }
        let mut file = tempfile::NamedTempFile::new_in(repo.path())?;
        for oid in &after {
            writeln!(file, "{oid}")?;
        }
        file.as_file().sync_all()?;
        file.persist(repo.path().join("shallow"))
            .map_err(|e| e.error)?;
        Ok(())
    }

    pub(super) fn fault(error: &std::io::Error) -> GitError {
        GitError::other("the cache's list of shallow commits", error)
    }
}

/// Where a fetched branch is kept in the cache. A namespace of our own, so nothing
/// else (a checkout, a `git gc` by an operator) mistakes it for a local branch.
pub(crate) fn tracking_ref(branch: &str) -> String {
    format!("refs/courier/heads/{branch}")
}

/// The local ref a push is made from.
fn push_ref(branch: &str) -> String {
    format!("refs/courier/push/{branch}")
}

/// Pushes `commit` to `refs/heads/<branch>`, but only if the remote branch still
/// points at `expected` (`None`: must not exist). The check runs inside the push, on
/// the advertisement the push itself negotiated, and the server checks the old value
/// again when it applies the update, so nothing that happened after the plan is lost.
pub(crate) fn push(
    repo: &Repository,
    remote: &Remote,
    branch: &str,
    commit: Oid,
    expected: Option<Oid>,
    cancel: &Cancel,
) -> Result<(), GitError> {
    let update = Update {
        branch,
        commit,
        expected,
    };
    if remote.is_http() {
        push_over_http(repo, remote, &update, cancel)?;
    } else {
        push_with_libgit2(repo, remote, &update, cancel)?;
    }
    // The remote now has the commit: keep the tracking ref in step, so the cache
    // agrees with the remote even before the next fetch.
    repo.reference(&tracking_ref(branch), commit, true, "courier: pushed")
        .map_err(|e| GitError::other("updating the cache after the push", e.message()))?;
    Ok(())
}

/// One push: `branch` to `commit`, if the remote's branch is at `expected`.
struct Update<'a> {
    branch: &'a str,
    commit: Oid,
    expected: Option<Oid>,
}

impl Update<'_> {
    fn reference(&self) -> String {
        format!("refs/heads/{}", self.branch)
    }

    /// [`GitError::HeadMoved`] if the remote's branch is `found`, not where the plan saw it.
    fn still_at_expected(&self, found: Option<Oid>) -> Result<(), GitError> {
        if found == self.expected {
            return Ok(());
        }
        let found = found.unwrap_or(Oid::ZERO_SHA1);
        Err(head_moved(self.branch, self.expected, found))
    }
}

fn head_moved(branch: &str, expected: Option<Oid>, found: Oid) -> GitError {
    GitError::HeadMoved {
        branch: branch.to_owned(),
        expected: expected
            .map(|o| o.to_string())
            .unwrap_or_else(|| "no branch".into()),
        found: if found.is_zero() {
            "no branch".into()
        } else {
            found.to_string()
        },
    }
}

/// Over HTTP(S) Courier speaks the protocol itself and sends a pack it wrote
/// (`outgoing.rs`): libgit2's pack builder was most of a cold delivery's time.
///
/// A push whose cache kept the remote's capabilities skips the ref advertisement, one
/// request of two: the plan knows where the branch was, the remote has the new commit's
/// parent and that branch's commit, and the server checks the branch's old value when it
/// updates it (a refusal is then told apart in [`send_update`]). If that push fails
/// otherwise, the capabilities are forgotten and the push asks, as a first one does.
fn push_over_http(
    repo: &Repository,
    remote: &Remote,
    update: &Update<'_>,
    cancel: &Cancel,
) -> Result<(), GitError> {
    let kept = Kept::in_cache(repo.path(), Service::ReceivePack);
    if let Some(known) = Push::known(remote, socket::timeout(), &kept) {
        let mut has: Vec<Oid> = repo
            .find_commit(update.commit)
            .map(|commit| commit.parent_ids().collect())
            .unwrap_or_default();
        has.extend(update.expected);
        let sent = known.and_then(|(session, advertised)| {
            send_update(repo, remote, update, &session, &advertised, &has, cancel)
        });
        match sent {
            Err(err) if !matches!(err, GitError::Rejected { .. } | GitError::HeadMoved { .. }) => {
                kept.forget(&err);
            }
            done => return done,
        }
    }
    let opened = Push::open(remote, socket::timeout(), Some(&kept));
    let (session, advertised) = cancel.block_on(opened)?;
    update.still_at_expected(advertised.get(&update.reference()))?;
    let has = advertised.tips();
    send_update(repo, remote, update, &session, &advertised, &has, cancel)
}

/// Writes the pack (leaving out what `has`, commits the remote has, reach) and sends the
/// update with it.
fn send_update(
    repo: &Repository,
    remote: &Remote,
    update: &Update<'_>,
    session: &Push,
    advertised: &receive_pack::Advertised,
    has: &[Oid],
    cancel: &Cancel,
) -> Result<(), GitError> {
    let target = update.reference();
    let pack = outgoing::write(
        repo,
        repo.path(),
        update.commit,
        has,
        update.expected,
        outgoing::Allowed {
            thin: !advertised.can("no-thin"),
            ofs_delta: advertised.can("ofs-delta"),
        },
        cancel,
    )?;
    tracing::debug!(objects = pack.objects, bytes = pack.len, "pack written");
    let old = update.expected.unwrap_or(Oid::ZERO_SHA1);
    let report = cancel.block_on(session.send(advertised, &target, old, update.commit, pack))?;
    match report {
        Report::Updated => Ok(()),
        Report::Refused(message) => {
            // The server checks the old value itself: a branch that moved after its refs
            // were read (someone pushed in between) is refused, and that is a moved head,
            // retried from a new plan, not a refusal of the delivery.
            if let Ok((_, now)) = cancel.block_on(Push::open(remote, socket::timeout(), None)) {
                update.still_at_expected(now.get(&target))?;
            }
            Err(GitError::Rejected {
                reference: target,
                message,
            })
        }
    }
}

/// Over SSH and `file://`, libgit2 pushes.
fn push_with_libgit2(
    repo: &Repository,
    remote: &Remote,
    update: &Update<'_>,
    cancel: &Cancel,
) -> Result<(), GitError> {
    let &Update {
        branch,
        commit,
        expected,
    } = update;
    let local = push_ref(branch);
    repo.reference(&local, commit, true, "courier: push")
        .map_err(|e| GitError::other("recording the commit to push", e.message()))?;
    let target = format!("refs/heads/{branch}");
    let seen = Seen::default();
    let mut anonymous = repo
        .remote_anonymous(&remote.connect_url())
        .map_err(|e| GitError::other("creating the remote", scrub(e.message(), remote.token())))?;
    let mut cb = callbacks(remote, &seen, cancel);
    let expected_old = expected.unwrap_or(Oid::ZERO_SHA1);
    let seen_ref = &seen;
    let target_ref = target.as_str();
    cb.push_negotiation(move |updates| {
        for update in updates {
            if update.dst_refname().ok() == Some(target_ref) && update.src() != expected_old {
                seen_ref.lease_broken.set(Some(update.src()));
                return Err(git2::Error::from_str(
                    "remote branch changed since the plan",
                ));
            }
        }
        Ok(())
    });
    let mut options = PushOptions::new();
    options
        .remote_callbacks(cb)
        .proxy_options(proxy_options(remote));
    // Building the pack (delta search, compression) is the push's slow step for large
    // exports, and libgit2 does it on one thread unless told otherwise; 0 means one per CPU.
    options.packbuilder_parallelism(0);
    let refspec = format!("+{local}:{target}");
    let result = anonymous.push(&[refspec.as_str()], Some(&mut options));
    let _ = repo.find_reference(&local).and_then(|mut r| r.delete());
    if let Some(found) = seen.lease_broken.get() {
        return Err(head_moved(branch, expected, found));
    }
    result.map_err(|e| classify(e, remote, &seen, cancel))?;

    let statuses = seen.ref_status.borrow();
    let ours = statuses.iter().find(|(name, _)| name == &target);
    match ours {
        Some((_, None)) => {}
        Some((_, Some(status))) => {
            let sideband = printable(&seen.sideband.borrow(), remote.token());
            let status = printable(status.as_bytes(), remote.token());
            let message = if sideband.is_empty() {
                status
            } else {
                format!("{status}\n{sideband}")
            };
            return Err(GitError::Rejected {
                reference: target.clone(),
                message,
            });
        }
        None => {
            return Err(GitError::Rejected {
                reference: target.clone(),
                message: format!(
                    "the server did not confirm the update{}",
                    sideband_suffix(&seen, remote)
                ),
            });
        }
    }
    Ok(())
}

fn sideband_suffix(seen: &Seen, remote: &Remote) -> String {
    let text = printable(&seen.sideband.borrow(), remote.token());
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}
