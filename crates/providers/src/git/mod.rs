//! The git delivery engine: writes an export into a repository's tree, commits, and
//! pushes the head branch, with libgit2 (and, for the push over HTTP, a pack and a
//! protocol client of Courier's own) and without a checkout.
//!
//! # How a delivery runs
//!
//! 1. **Cache.** Each remote has a bare repository under the workspace's cache
//!    directory, named after a hash of its normalised URL (no credentials), so the
//!    next delivery to the same repository fetches only what is new. It survives
//!    restarts. While in use it is locked: an in-process async mutex per remote plus an
//!    OS file lock, so two deliveries to one repository take turns (within a process
//!    and across processes sharing the directory) while different repositories run in
//!    parallel. A cache that cannot be opened, or whose objects turn out to be missing
//!    or damaged, is deleted and fetched again rather than failing forever.
//! 2. **Isolation.** libgit2 reads only the cache's own `config`, never
//!    `~/.gitconfig`, `$XDG_CONFIG_HOME/git/config` or `/etc/gitconfig`: right after
//!    opening, the repository's configuration object is replaced by one holding that
//!    single file. (Blanking libgit2's global search paths would do it process-wide,
//!    but only through an `unsafe` global; the per-repository config works the same in
//!    tests, which share a process.) Nothing else of the host's git setup is used: no credential helpers, no
//!    templates, no hooks in the cache.
//! 3. **Fetch.** Only `refs/heads/<base>` and `refs/heads/<head>`, at depth 1 where
//!    the transport supports it (HTTP(S)); libgit2's `file://` transport cannot, so
//!    it fetches everything there, and any server refusing a shallow fetch gets a full
//!    one. The advertisement says whether the head branch exists. Over HTTP(S), from a
//!    server that serves partial fetches (protocol v2 with `filter`, as GitHub and
//!    GitLab do), Courier fetches itself (`upload_pack.rs`): commits and trees only, then,
//!    once the tree is built, exactly the blobs the delivery reads (the versions it
//!    replaces or deletes, and the `.gitattributes` on the way to what it writes). The
//!    cache keeps the server's capability advertisement, so later fetches skip asking.
//! 4. **Credentials** reach libgit2 only through its credential callback, which
//!    answers once per operation; a second request means the token was refused and
//!    fails the operation ([`GitError::Auth`]) at once instead of looping. Remotes are
//!    anonymous (`remote_anonymous(clean_url)`), so no URL, let alone a token, is ever
//!    written to the cache's `config`; error messages are scrubbed of the token.
//! 5. **Tree.** Every export file the cache lacks is streamed into a blob (one pack,
//!    `pack.rs`); a file the base holds unchanged at the same path is named by its id
//!    only (the archive computed it while validating), neither fetched nor written, and
//!    the push sends nothing for it. The new tree is built from the base branch's tree,
//!    the export's directories written as tree objects by Courier (libgit2's tree builder
//!    refuses an entry whose object the cache lacks):
//!    - `purge: true`: the directory at `relative_path` becomes exactly the export;
//!    - `purge: false`: export files are added or replace what is there, other files
//!      at the path stay;
//!    - everything outside `relative_path` is the base tree's own objects, untouched;
//!    - every file is written as a regular file, mode `100644` (never executable,
//!      never a symlink), with its bytes as they are: no line-ending conversion, no
//!      filters, whatever `.gitattributes` says;
//!    - where the export has a file and the repository a directory of the same name
//!      (or the reverse), the export's side replaces the repository's;
//!    - directories left empty disappear (git has no empty directories);
//!    - `.gitignore` is not consulted: an export is an explicit list of files.
//!
//!    Refused: an export with no file (unless allowed), a change to a protected path
//!    (`.github/workflows/`, `.gitlab-ci.yml`, `azure-pipelines.yml`, `.gitmodules`,
//!    at any level, unless allowed), and a path stored with Git LFS according to the
//!    new tree's `.gitattributes` (libgit2 cannot write LFS pointers).
//! 6. **Converge.** The head branch is always one commit on the current base, carrying
//!    the `Courier-Delivery: <id>` trailer. New tree equal to the base's:
//!    [`Outcome::NoChanges`], saying what the head branch is ([`HeadBranch`]: absent,
//!    only Courier's commits, or commits Courier did not make, with its tip). Head branch already that commit's tree on the current
//!    base: [`Outcome::UpToDate`]. Head branch holding a commit without the trailer:
//!    [`Outcome::BranchDiverged`] (unless `overwrite_diverged`). Otherwise
//!    [`Outcome::Push`], replacing Courier's previous commit, also when the base moved.
//! 7. **Push** sends only `refs/heads/<head>`, to the URL it fetched from, only if the
//!    remote branch still points where it pointed when planning (checked by the server,
//!    and on the push's own advertisement when it asks for one: the first push to a
//!    cache does, and keeps the capabilities; later ones send the update directly), and
//!    reads the per-ref status: a ref the server refused (hook, protected branch) is
//!    [`GitError::Rejected`] with the server's message and hook output, and one refused
//!    because it had moved (read back after the refusal) is [`GitError::HeadMoved`]. Over HTTP(S) Courier writes the pack itself
//!    (`outgoing.rs`: changed files as deltas against the version the remote has,
//!    near-copies as deltas against each other, on every core) and speaks the
//!    receive-pack protocol itself (`receive_pack.rs`), because libgit2's pack builder
//!    cannot be handed a pack and was most of a cold delivery; over SSH and `file://`
//!    libgit2 pushes.
//!
//! Every libgit2 call runs on a blocking thread (`spawn_blocking`), inside a tracing
//! span, under a timeout ([`Timeouts`]). On timeout the caller gets
//! [`GitError::Timeout`] at once and libgit2 is told to stop through its progress
//! callbacks; a server that accepts a connection and then stays silent keeps that
//! blocking thread in a socket read until libgit2's own socket timeout
//! ([`Timeouts::network`] of silence, set by [`init_libgit2`]) gives up on it.
//!
//! libgit2 reads packs through memory maps; [`init_libgit2`], which the binary calls
//! before starting any thread, keeps at most a few windows of them mapped, so the
//! resident set does not grow with the packs a delivery reads, and stops libgit2 from
//! hashing every object again each time it is read. It also gives libgit2 Courier's own
//! TCP stream (`socket.rs`): libgit2's leaves Nagle's algorithm on, which held every
//! POST of a fetch or a push for up to 40 ms. Its TLS is rustls on that stream (same
//! file), not OpenSSL, whose start parsed the system CA bundle in every process.
//!
//! # Known limits
//!
//! - `file://` remotes go through libgit2's in-process local transport: no
//!   credentials, no shallow fetch, and the target's hooks and `receive.*` rules do
//!   not run. They are for tests and local mirrors; policies live behind a server.
//! - The cache is never garbage-collected (libgit2 has no `gc`): the new blobs of
//!   every planned export stay, one pack per build; past 256 packs the cache starts
//!   over with one full fetch. Deleting a cache directory is always safe (it is
//!   fetched again), also while Courier is stopped.
//!
//! # Use
//!
//! ```no_run
//! # async fn run(spec: courier_providers::git::DeliverySpec, export: courier_core::archive::Export) -> Result<(), courier_providers::git::GitError> {
//! use std::sync::Arc;
//! use courier_providers::git::{GitWorkspace, Timeouts};
//! let workspace = GitWorkspace::new("/var/lib/courier/git", Timeouts::default())?;
//! let plan = workspace.plan(&spec, Arc::new(export)).await?; // fetch + build, no write
//! println!("{} {:?}", plan.outcome().action(), plan.files());
//! let delivered = workspace.push(plan).await?; // pushes only for Outcome::Push
//! # Ok(()) }
//! ```

mod cache;
mod delta;
mod diff;
mod error;
mod globals;
mod outgoing;
mod pack;
mod receive_pack;
mod remote;
mod smart_http;
mod socket;
mod ssh;
mod tls;
mod transport;
mod tree;
mod upload_pack;
mod workers;
mod workspace;

pub use diff::{ChangedObject, FileChanges, TreeChange};
pub use error::GitError;
pub use globals::{EngineSettings, PACK_MAP_LIMIT, PACK_MAP_WINDOW, engine_settings, init_libgit2};
pub use remote::{Credentials, Remote};
pub use socket::connections_opened;
pub use ssh::SshKey;
pub use tree::{ExportFile, ExportSource};
pub use workspace::{
    ApiCommit, ApiPlan, CommitId, DELIVERY_TRAILER, Delivered, DeliverySpec, Fetched, GitWorkspace,
    HeadBranch, Outcome, Plan, PlanTimings, Signature, Timeouts,
};
