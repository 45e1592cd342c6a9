//! [`GitWorkspace`]: the async face of the engine. Every libgit2 call runs on a
//! blocking thread, under a timeout, inside a tracing span.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use courier_core::paths::RelPath;
use courier_core::signing::SigningKey;
use courier_core::tokens::TokenDiff;
use git2::{Oid, Repository};
use serde::Serialize;
use tracing::Instrument;

use super::cache::{self, CacheLock, LockTable};
use super::diff::{self, FileChanges, TreeChange};
use super::error::GitError;
use super::remote::{Remote, check_branch};
use super::transport::{self, Cancel, tracking_ref};
use super::tree::{self, ExportSource, cache_fault, is_protected};

/// The trailer every Courier commit carries; a head branch whose commits all carry it
/// belongs to Courier and may be rebuilt.
pub const DELIVERY_TRAILER: &str = "Courier-Delivery";

/// Commit author and committer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub name: String,
    pub email: String,
}

/// One delivery of an export into one repository.
#[derive(Debug, Clone)]
pub struct DeliverySpec {
    pub remote: Remote,
    /// Branch the head branch is built on (the pull request's base).
    /// The branch the delivery is built on (the pull request's target); `None`: the
    /// remote's default branch (its `HEAD`), read when planning.
    pub base_branch: Option<String>,
    /// Branch Courier owns and rebuilds each time.
    pub head_branch: String,
    /// Where the export goes; `None` is the repository root.
    pub relative_path: Option<RelPath>,
    /// `true`: the directory becomes exactly the export. `false`: export files are
    /// added or replaced, other files there stay.
    pub purge: bool,
    pub author: Signature,
    /// The rendered commit message; the delivery trailer is appended to it.
    pub commit_message: String,
    /// Identifies the delivery in the `Courier-Delivery:` trailer.
    pub delivery_id: String,
    pub allow_protected_paths: bool,
    /// Replace a head branch that has commits Courier did not make.
    pub overwrite_diverged: bool,
    /// Deliver an export with no file (with `purge`, this empties the directory).
    pub allow_empty_export: bool,
    /// Sign the commit with this key (its `gpgsig` header); `None`: unsigned.
    pub signing: Option<SigningKey>,
}

/// A commit id, as 40 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct CommitId(String);

impl CommitId {
    /// A commit id from its 40 hex digits (any case); `None` for anything else.
    pub fn parse(hex: &str) -> Option<CommitId> {
        (hex.len() == 40 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| CommitId(hex.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CommitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Oid> for CommitId {
    fn from(oid: Oid) -> Self {
        CommitId(oid.to_string())
    }
}

/// What a delivery does (in a plan) or did (after [`GitWorkspace::push`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Outcome {
    /// Push `commit` (one commit on the current base) to the head branch, creating it
    /// (`replaces: None`) or replacing Courier's previous commit.
    Push {
        commit: CommitId,
        replaces: Option<CommitId>,
    },
    /// The export changes nothing on the base branch; nothing is pushed. `head` is what
    /// the engine saw of the head branch, so whoever closes the pull request and deletes
    /// the branch knows whether anything on it is someone else's work.
    NoChanges { head: HeadBranch },
    /// The head branch already holds exactly this on the current base; nothing is pushed.
    UpToDate { commit: CommitId },
    /// The head branch has commits Courier did not make; nothing is pushed.
    BranchDiverged { message: String },
}

impl Outcome {
    /// `push`, `no_changes`, `up_to_date` or `branch_diverged`.
    pub fn action(&self) -> &'static str {
        match self {
            Outcome::Push { .. } => "push",
            Outcome::NoChanges { .. } => "no_changes",
            Outcome::UpToDate { .. } => "up_to_date",
            Outcome::BranchDiverged { .. } => "branch_diverged",
        }
    }
}

/// The head branch on the remote as the engine saw it when planning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum HeadBranch {
    /// There is no head branch.
    Absent,
    /// Every commit on it above the base carries Courier's trailer; `tip` is where it
    /// pointed.
    Courier { tip: CommitId },
    /// It holds commits Courier did not make (newest first, as far as the cache holds
    /// them; at most 1,001); `tip` is where it pointed.
    Foreign {
        tip: CommitId,
        commits: Vec<CommitId>,
    },
}

impl HeadBranch {
    /// Where the branch pointed, if it exists.
    pub fn tip(&self) -> Option<&CommitId> {
        match self {
            HeadBranch::Absent => None,
            HeadBranch::Courier { tip } | HeadBranch::Foreign { tip, .. } => Some(tip),
        }
    }
}

/// Time limits of the workspace's operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Waiting for another delivery to the same repository. Default: 10 min.
    pub lock: Duration,
    /// Fetching the base and head branches. Default: 5 min.
    pub fetch: Duration,
    /// Writing the export into the object database and building the tree. Default: 10 min.
    pub build: Duration,
    /// Pushing the head branch. Default: 5 min.
    pub push: Duration,
}

impl Timeouts {
    /// The longest a network operation (fetch or push) may take: also how long a
    /// connection may stay silent before libgit2 drops it ([`init_libgit2`](crate::git::init_libgit2)).
    pub fn network(&self) -> Duration {
        self.fetch.max(self.push)
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            lock: Duration::from_secs(600),
            fetch: Duration::from_secs(300),
            build: Duration::from_secs(600),
            push: Duration::from_secs(300),
        }
    }
}

/// Bare repository caches, one per remote, under one directory.
#[derive(Debug, Clone)]
pub struct GitWorkspace {
    cache_dir: PathBuf,
    timeouts: Timeouts,
    locks: Arc<LockTable>,
}

/// A computed delivery: the outcome, the file changes, and (for `push`) the commit,
/// already written into the cache. It holds the remote's lock until it is pushed or
/// dropped, so deliveries to the same repository cannot interleave between plan and
/// push.
pub struct Plan {
    lock: CacheLock,
    repo_path: PathBuf,
    remote: Remote,
    base_branch: String,
    head_branch: String,
    base_commit: Oid,
    base_tree: Oid,
    new_tree: Oid,
    head_before: Option<Oid>,
    head_delivery: Option<String>,
    commit_message: String,
    outcome: Outcome,
    files: FileChanges,
    /// The changed files a token reader knows, with their blobs (for `token_diff`).
    token_files: Vec<diff::TokenFile>,
    took: PlanTimings,
}

/// The base and head branches fetched into the cache for one target: the first half of
/// a plan ([`GitWorkspace::fetch`]). It holds the remote's lock, which the plan then
/// keeps, so nothing moves the cache's branches between the fetch and the push.
pub struct Fetched {
    lock: CacheLock,
    repo_path: PathBuf,
    remote: Remote,
    /// The base branch as asked for: `None` is the remote's default.
    asked_base: Option<String>,
    head_branch: String,
    branches: Branches,
}

/// What one fetch brought: the base branch (the remote's default resolved), where the
/// remote's branches pointed, and how long it took.
struct Branches {
    base_branch: String,
    fetched: transport::Fetched,
    took: Duration,
}

impl fmt::Debug for Fetched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fetched")
            .field("remote", &self.remote.url())
            .field("base_branch", &self.branches.base_branch)
            .field("head_branch", &self.head_branch)
            .field("took", &self.branches.took)
            .finish_non_exhaustive()
    }
}

/// Where planning's time went, for the delivery's phase timings. The rest of a plan is
/// waiting for the repository's lock and opening its cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanTimings {
    /// Asking the remote for its branches and fetching what the cache lacks.
    pub fetch: Duration,
    /// Writing the export's blobs, building the new tree, comparing it with the base and
    /// deciding what to do.
    pub build: Duration,
}

impl fmt::Debug for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plan")
            .field("remote", &self.remote.url())
            .field("base_branch", &self.base_branch)
            .field("head_branch", &self.head_branch)
            .field("base_commit", &self.base_commit)
            .field("head_before", &self.head_before)
            .field("head_delivery", &self.head_delivery)
            .field("outcome", &self.outcome)
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl Plan {
    pub fn outcome(&self) -> &Outcome {
        &self.outcome
    }
    /// How long fetching and building took.
    pub fn timings(&self) -> PlanTimings {
        self.took
    }
    /// Added / modified / deleted paths between the base branch and the new tree.
    pub fn files(&self) -> &FileChanges {
        &self.files
    }
    pub fn base_branch(&self) -> &str {
        &self.base_branch
    }
    pub fn head_branch(&self) -> &str {
        &self.head_branch
    }
    /// The base branch's commit the delivery is built on.
    pub fn base_commit(&self) -> CommitId {
        self.base_commit.into()
    }
    /// Where the head branch pointed on the remote when planning (`None`: absent).
    pub fn head_before(&self) -> Option<CommitId> {
        self.head_before.map(Into::into)
    }
    /// Which delivery made the head branch's commit when planning: its
    /// `Courier-Delivery` trailer (`None`: no head branch, or no trailer). Equal to this
    /// spec's `delivery_id` on an [`Outcome::UpToDate`], it tells that the commit already
    /// there is this same delivery's, pushed by an earlier run of it (one that crashed
    /// after the push, say), not another delivery's that happened to hold the same export.
    pub fn head_delivery(&self) -> Option<&str> {
        self.head_delivery.as_deref()
    }
    /// The full commit message, trailer included.
    pub fn commit_message(&self) -> &str {
        &self.commit_message
    }
    /// The remote (clean URL) this plan was fetched from and would push to.
    pub fn remote_url(&self) -> &str {
        self.remote.url()
    }
}

/// What [`GitWorkspace::push`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivered {
    /// The plan's outcome; for [`Outcome::Push`] the commit is now on the remote.
    pub outcome: Outcome,
    pub files: FileChanges,
    pub head_branch: String,
    pub base_commit: CommitId,
    /// Whether anything was sent to the remote.
    pub pushed: bool,
}

/// A plan handed over to a forge's API instead of a push ([`GitWorkspace::hand_over`]).
#[derive(Debug)]
pub enum ApiPlan {
    /// Nothing to send (an outcome other than [`Outcome::Push`]).
    Nothing(Delivered),
    /// The commit to create through the API.
    Commit(ApiCommit),
}

/// A planned commit a forge is to create through its API rather than receive by push:
/// the same tree, parent and message, as changes on the base tree. It holds the remote's
/// lock (like the [`Plan`] it came from) until it is [delivered](ApiCommit::delivered)
/// or dropped.
pub struct ApiCommit {
    _lock: CacheLock,
    repo_path: PathBuf,
    read_timeout: Duration,
    head_branch: String,
    base_commit: Oid,
    base_tree: Oid,
    new_tree: Oid,
    head_before: Option<Oid>,
    message: String,
    changes: Vec<TreeChange>,
    replaces: Option<CommitId>,
    files: FileChanges,
}

impl fmt::Debug for ApiCommit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiCommit")
            .field("head_branch", &self.head_branch)
            .field("base_commit", &self.base_commit)
            .field("new_tree", &self.new_tree)
            .field("head_before", &self.head_before)
            .field("changes", &self.changes.len())
            .finish_non_exhaustive()
    }
}

impl ApiCommit {
    pub fn head_branch(&self) -> &str {
        &self.head_branch
    }
    /// The commit's parent: the base branch's commit the delivery is built on.
    pub fn base_commit(&self) -> CommitId {
        self.base_commit.into()
    }
    /// The tree the changes apply to (the base commit's).
    pub fn base_tree(&self) -> String {
        self.base_tree.to_string()
    }
    /// The tree the forge must end up with: what the plan built.
    pub fn new_tree(&self) -> String {
        self.new_tree.to_string()
    }
    /// Where the head branch pointed when planning (`None`: absent); the branch is only
    /// moved if it still points there.
    pub fn head_before(&self) -> Option<CommitId> {
        self.head_before.map(Into::into)
    }
    /// The full commit message, trailer included.
    pub fn message(&self) -> &str {
        &self.message
    }
    /// The paths that differ from the base tree, in path order.
    pub fn changes(&self) -> &[TreeChange] {
        &self.changes
    }

    /// A blob's bytes from the cache, where planning wrote the export.
    pub async fn read_blob(&self, id: &str) -> Result<Vec<u8>, GitError> {
        let oid = Oid::from_str(id).map_err(|e| GitError::other("blob id", e.message()))?;
        let path = self.repo_path.clone();
        let span = tracing::debug_span!("git_read_blob", blob = %oid);
        run_blocking("reading a blob", self.read_timeout, span, move |_| {
            let repo = cache::open(&path).map_err(cache_fault)?;
            let blob = repo.find_blob(oid).map_err(cache_fault)?;
            Ok(blob.content().to_vec())
        })
        .await
    }

    /// The delivery once the forge holds `commit` on the head branch; releases the lock.
    pub fn delivered(self, commit: CommitId) -> Delivered {
        Delivered {
            outcome: Outcome::Push {
                commit,
                replaces: self.replaces,
            },
            files: self.files,
            head_branch: self.head_branch,
            base_commit: self.base_commit.into(),
            pushed: true,
        }
    }
}

impl GitWorkspace {
    /// A workspace keeping its caches under `cache_dir` (created if missing).
    pub fn new(
        cache_dir: impl Into<PathBuf>,
        timeouts: Timeouts,
    ) -> Result<GitWorkspace, GitError> {
        let cache_dir = cache_dir.into();
        std::fs::create_dir_all(&cache_dir).map_err(|e| {
            GitError::other(
                &format!("creating the cache directory {}", cache_dir.display()),
                e,
            )
        })?;
        Ok(GitWorkspace {
            cache_dir,
            timeouts,
            locks: Arc::default(),
        })
    }

    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    /// The bare repository that caches `remote`.
    pub fn cache_path(&self, remote: &Remote) -> PathBuf {
        self.cache_dir.join(format!("{}.git", remote.cache_key()))
    }

    /// Fetches the base (and head) branch, writes the export into the cache's object
    /// database, builds the new tree and decides what to do. Needs only read access to
    /// the remote. The returned plan holds the remote's lock.
    pub async fn plan<E: ExportSource>(
        &self,
        spec: &DeliverySpec,
        export: Arc<E>,
    ) -> Result<Plan, GitError> {
        check_spec(spec, &*export)?;
        let fetched = self
            .fetch(&spec.remote, spec.base_branch.as_deref(), &spec.head_branch)
            .await?;
        self.build(spec, export, fetched).await
    }

    /// The first half of [`plan`](Self::plan): fetches the base (`None`: the remote's
    /// default branch) and head branches into the cache, so that it can run while the
    /// export is still being downloaded and validated. The result holds the remote's
    /// lock; [`plan_fetched`](Self::plan_fetched) goes on from it.
    pub async fn fetch(
        &self,
        remote: &Remote,
        base_branch: Option<&str>,
        head_branch: &str,
    ) -> Result<Fetched, GitError> {
        if let Some(base) = base_branch {
            check_branch(base, "base")?;
            check_distinct(base, head_branch)?;
        }
        check_branch(head_branch, "head")?;
        let span = tracing::info_span!(
            "git_fetch",
            remote = %remote.url(),
            base = base_branch.unwrap_or("(the remote's default)"),
            head = %head_branch,
        );
        let key = remote.cache_key();
        let lock_deadline = Instant::now() + self.timeouts.lock;
        let guard = self.lock(&key).instrument(span.clone()).await?;
        let repo_path = self.cache_path(remote);
        let lock_path = self.cache_dir.join(format!("{key}.lock"));
        let remote = remote.clone();
        let asked_base = base_branch.map(str::to_owned);
        let head_branch = head_branch.to_owned();
        run_blocking(
            "fetching the branches",
            self.timeouts.fetch,
            span,
            move |cancel| {
                let lock = CacheLock::acquire(guard, &lock_path, lock_deadline)?;
                let branches = fetch_with_rebuild(
                    &repo_path,
                    &remote,
                    asked_base.as_deref(),
                    &head_branch,
                    cancel,
                )?;
                Ok(Fetched {
                    lock,
                    repo_path,
                    remote,
                    asked_base,
                    head_branch,
                    branches,
                })
            },
        )
        .await
    }

    /// The rest of [`plan`](Self::plan), from what [`fetch`](Self::fetch) brought for
    /// this spec's remote and branches.
    pub async fn plan_fetched<E: ExportSource>(
        &self,
        spec: &DeliverySpec,
        export: Arc<E>,
        fetched: Fetched,
    ) -> Result<Plan, GitError> {
        check_spec(spec, &*export)?;
        if fetched.remote.cache_key() != spec.remote.cache_key()
            || fetched.asked_base != spec.base_branch
            || fetched.head_branch != spec.head_branch
        {
            return Err(GitError::other(
                "planning the delivery",
                "the branches were fetched for another target",
            ));
        }
        self.build(spec, export, fetched).await
    }

    /// The plan from `fetched`, for a spec already checked against it.
    async fn build<E: ExportSource>(
        &self,
        spec: &DeliverySpec,
        export: Arc<E>,
        fetched: Fetched,
    ) -> Result<Plan, GitError> {
        let span = tracing::info_span!(
            "git_plan",
            remote = %spec.remote.url(),
            base = %fetched.branches.base_branch,
            head = %spec.head_branch,
        );
        let repo_path = fetched.repo_path.clone();
        // A damaged cache is rebuilt from the remote: fetched again, then planned.
        let limit = self.timeouts.fetch + self.timeouts.build;
        let spec = spec.clone();
        let (lock, planned, spec) =
            run_blocking("planning the delivery", limit, span, move |cancel| {
                let Fetched {
                    lock,
                    repo_path,
                    branches,
                    ..
                } = fetched;
                let planned = plan_with_rebuild(&repo_path, &spec, branches, &*export, cancel)?;
                Ok((lock, planned, spec))
            })
            .await?;
        tracing::info!(
            action = planned.outcome.action(),
            files = planned.files.all().count(),
            "planned delivery"
        );
        Ok(Plan {
            lock,
            repo_path,
            remote: spec.remote,
            base_branch: planned.base_branch,
            head_branch: spec.head_branch,
            base_commit: planned.base_commit,
            base_tree: planned.base_tree,
            new_tree: planned.new_tree,
            head_before: planned.head_before,
            head_delivery: planned.head_delivery,
            commit_message: planned.commit_message,
            outcome: planned.outcome,
            files: planned.files,
            token_files: planned.token_files,
            took: planned.took,
        })
    }

    /// Carries out the plan: for [`Outcome::Push`], pushes the head branch, but only if
    /// it still points where it pointed when planning; other outcomes push nothing.
    /// The remote's lock is released when this returns.
    pub async fn push(&self, plan: Plan) -> Result<Delivered, GitError> {
        let Plan {
            lock,
            repo_path,
            remote,
            head_branch,
            base_commit,
            head_before,
            outcome,
            files,
            ..
        } = plan;
        let mut delivered = Delivered {
            outcome: outcome.clone(),
            files,
            head_branch: head_branch.clone(),
            base_commit: base_commit.into(),
            pushed: false,
        };
        let Outcome::Push { commit, .. } = outcome else {
            return Ok(delivered);
        };
        let commit = Oid::from_str(commit.as_str())
            .map_err(|e| GitError::other("commit id", e.message()))?;
        let span = tracing::info_span!("git_push", remote = %remote.url(), head = %head_branch, commit = %commit);
        run_blocking(
            "pushing the head branch",
            self.timeouts.push,
            span,
            move |cancel| {
                let _lock = lock;
                let repo = cache::open(&repo_path).map_err(cache_fault)?;
                transport::push(&repo, &remote, &head_branch, commit, head_before, cancel)
                    .map_err(|e| with_path(e, &repo_path))
            },
        )
        .await?;
        tracing::info!("pushed");
        delivered.pushed = true;
        Ok(delivered)
    }

    /// Hands a plan over to a forge that creates the commit through its API: for
    /// [`Outcome::Push`], the changes from the base tree (read from the cache) with the
    /// plan's lock; other outcomes send nothing and are delivered as they are.
    pub async fn hand_over(&self, plan: Plan) -> Result<ApiPlan, GitError> {
        let Outcome::Push { replaces, .. } = plan.outcome.clone() else {
            return Ok(ApiPlan::Nothing(Delivered {
                outcome: plan.outcome,
                files: plan.files,
                head_branch: plan.head_branch,
                base_commit: plan.base_commit.into(),
                pushed: false,
            }));
        };
        let span = tracing::info_span!("git_tree_changes", remote = %plan.remote.url(), head = %plan.head_branch);
        let changes = self
            .between_trees("listing the changes", span, &plan, diff::tree_changes)
            .await?;
        Ok(ApiPlan::Commit(ApiCommit {
            _lock: plan.lock,
            repo_path: plan.repo_path,
            read_timeout: self.timeouts.build,
            head_branch: plan.head_branch,
            base_commit: plan.base_commit,
            base_tree: plan.base_tree,
            new_tree: plan.new_tree,
            head_before: plan.head_before,
            message: plan.commit_message,
            changes,
            replaces,
            files: plan.files,
        }))
    }

    /// The unified diff from the base branch to the planned tree (binary files named,
    /// not printed), for `dry-run --diff`.
    pub async fn diff(&self, plan: &Plan) -> Result<String, GitError> {
        let span = tracing::info_span!("git_diff", remote = %plan.remote.url());
        self.between_trees("computing the diff", span, plan, diff::unified)
            .await
    }

    /// `compare` over the plan's base and new trees, on a blocking thread.
    async fn between_trees<T: Send + 'static>(
        &self,
        operation: &'static str,
        span: tracing::Span,
        plan: &Plan,
        compare: fn(&Repository, &git2::Tree<'_>, &git2::Tree<'_>) -> Result<T, GitError>,
    ) -> Result<T, GitError> {
        let path = plan.repo_path.clone();
        let (old, new) = (plan.base_tree, plan.new_tree);
        run_blocking(operation, self.timeouts.build, span, move |_| {
            let run = || {
                let repo = cache::open(&path).map_err(cache_fault)?;
                let old = repo.find_tree(old).map_err(cache_fault)?;
                let new = repo.find_tree(new).map_err(cache_fault)?;
                compare(&repo, &old, &new)
            };
            run().map_err(|e| with_path(e, &path))
        })
        .await
    }

    /// The remote's default branch (where its `HEAD` points), read from its ref
    /// advertisement: the base of a target that names none.
    pub async fn default_branch(&self, remote: &Remote) -> Result<String, GitError> {
        let remote = remote.clone();
        let span = tracing::info_span!("git_default_branch", remote = %remote.url());
        run_blocking(
            "reading the default branch",
            self.timeouts.fetch,
            span,
            move |cancel| transport::default_branch(&remote, cancel),
        )
        .await
    }

    /// What changed in the design tokens from the base branch to the planned tree (see
    /// `courier_core::tokens`). Only the changed token files the plan found are read.
    pub async fn token_diff(&self, plan: &Plan) -> Result<TokenDiff, GitError> {
        let path = plan.repo_path.clone();
        let files = plan.token_files.clone();
        let span = tracing::info_span!("git_token_diff", remote = %plan.remote.url());
        run_blocking(
            "comparing tokens",
            self.timeouts.build,
            span,
            move |cancel| {
                let open = || cache::open(&path).map_err(cache_fault);
                diff::tokens(open, &files, cancel).map_err(|e| with_path(e, &path))
            },
        )
        .await
    }

    async fn lock(&self, key: &str) -> Result<tokio::sync::OwnedMutexGuard<()>, GitError> {
        let mutex = self.locks.get(key);
        tokio::time::timeout(self.timeouts.lock, mutex.lock_owned())
            .await
            .map_err(|_| GitError::Timeout {
                operation: "waiting for another delivery to the same repository",
                after: self.timeouts.lock,
            })
    }
}

/// Runs `work` on a blocking thread within `limit`. On timeout the caller gets
/// [`GitError::Timeout`] at once and the work is told to stop (libgit2 checks through
/// its progress callbacks); whatever it holds, locks included, is released when the
/// thread returns. The work is told to stop too when the caller stops waiting for it (its
/// future is dropped: a worker that lost its lease, or a shutdown), so a delivery that
/// was stopped does not go on writing behind its worker's back.
async fn run_blocking<T, F>(
    operation: &'static str,
    limit: Duration,
    span: tracing::Span,
    work: F,
) -> Result<T, GitError>
where
    T: Send + 'static,
    F: FnOnce(&Cancel) -> Result<T, GitError> + Send + 'static,
{
    let cancel = Cancel::new(Instant::now() + limit);
    let inner = cancel.clone();
    let handle = tokio::task::spawn_blocking(move || span.in_scope(|| work(&inner)));
    let mut on_drop = CancelOnDrop(Some(&cancel));
    let finished = tokio::time::timeout(limit, handle).await;
    on_drop.0 = None;
    match finished {
        Ok(Ok(result)) => result.map_err(|e| match e {
            GitError::Timeout {
                operation: op,
                after,
            } if after.is_zero() => GitError::Timeout {
                operation: op,
                after: limit,
            },
            other => other,
        }),
        Ok(Err(join)) => Err(GitError::other(
            operation,
            format!("the git worker failed: {join}"),
        )),
        Err(_) => {
            cancel.cancel();
            Err(GitError::Timeout {
                operation,
                after: limit,
            })
        }
    }
}

/// Cancels the blocking work if the future waiting for it is dropped before it ends.
struct CancelOnDrop<'a>(Option<&'a Cancel>);

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(cancel) = self.0 {
            cancel.cancel();
        }
    }
}

struct Planned {
    /// As configured, or the remote's default branch.
    base_branch: String,
    base_commit: Oid,
    base_tree: Oid,
    new_tree: Oid,
    head_before: Option<Oid>,
    head_delivery: Option<String>,
    commit_message: String,
    outcome: Outcome,
    files: FileChanges,
    token_files: Vec<diff::TokenFile>,
    took: PlanTimings,
}

fn with_path(err: GitError, path: &Path) -> GitError {
    match err {
        GitError::CacheCorrupt { detail, .. } => GitError::CacheCorrupt {
            path: path.to_path_buf(),
            detail,
        },
        other => other,
    }
}

/// The head branch must not be the base it is rebuilt from.
fn check_distinct(base: &str, head: &str) -> Result<(), GitError> {
    if base == head {
        return Err(GitError::InvalidRemote {
            reason: format!("the head branch must differ from the base branch `{base}`"),
        });
    }
    Ok(())
}

/// What a plan checks before touching the cache or the network, beyond its branches
/// (which [`GitWorkspace::fetch`] checks).
fn check_spec(spec: &DeliverySpec, export: &dyn ExportSource) -> Result<(), GitError> {
    if spec.delivery_id.contains(['\n', '\r']) {
        return Err(GitError::other("delivery id", "must be a single line"));
    }
    if !spec.allow_empty_export && export.files().is_empty() {
        return Err(GitError::EmptyExport {
            path: spec
                .relative_path
                .as_ref()
                .map_or_else(|| "the repository root".into(), |p| p.to_string()),
        });
    }
    Ok(())
}

/// Fetches into the cache; if the cache turns out to be damaged, rebuilds it from the
/// remote once and fetches again.
fn fetch_with_rebuild(
    path: &Path,
    remote: &Remote,
    base: Option<&str>,
    head: &str,
    cancel: &Cancel,
) -> Result<Branches, GitError> {
    let repo = cache::open_or_create(path).map_err(|e| with_path(e, path))?;
    match fetch_in(&repo, remote, base, head, cancel) {
        Err(GitError::CacheCorrupt { detail, .. }) => {
            tracing::warn!(cache = %path.display(), error = %detail, "repository cache is damaged, rebuilding it");
            drop(repo);
            let repo = cache::create(path)?;
            fetch_in(&repo, remote, base, head, cancel).map_err(|e| with_path(e, path))
        }
        other => other,
    }
}

/// Resolves the base branch (the remote's default when `base` is `None`) and fetches
/// it and `head` into the cache.
fn fetch_in(
    repo: &Repository,
    remote: &Remote,
    base: Option<&str>,
    head: &str,
    cancel: &Cancel,
) -> Result<Branches, GitError> {
    let started = Instant::now();
    let shallow = remote.supports_shallow();
    let base_branch = match base {
        Some(base) => base.to_owned(),
        None => {
            let base = transport::default_branch(remote, cancel)?;
            check_branch(&base, "base")?;
            check_distinct(&base, head)?;
            base
        }
    };
    let fetched = match transport::fetch(repo, remote, &base_branch, head, shallow, cancel) {
        Err(GitError::Other { detail } | GitError::Transient { detail, .. })
            if shallow && detail.contains("shallow") =>
        {
            tracing::debug!(%detail, "shallow fetch refused, fetching everything");
            transport::fetch(repo, remote, &base_branch, head, false, cancel)?
        }
        other => other?,
    };
    Ok(Branches {
        base_branch,
        fetched,
        took: started.elapsed(),
    })
}

/// Plans against the cache from what was fetched; if the cache turns out to be damaged,
/// rebuilds it from the remote once, fetches again and plans again.
fn plan_with_rebuild(
    path: &Path,
    spec: &DeliverySpec,
    fetched: Branches,
    export: &dyn ExportSource,
    cancel: &Cancel,
) -> Result<Planned, GitError> {
    // libgit2 reads the `shallow` file into a repository handle once: after a fetch of
    // Courier's own moved the boundary, only a new handle walks the history right.
    let planned = cache::open(path)
        .map_err(cache_fault)
        .and_then(|repo| plan_in(&repo, spec, fetched, export, cancel));
    match planned {
        Err(GitError::CacheCorrupt { detail, .. }) => {
            tracing::warn!(cache = %path.display(), error = %detail, "repository cache is damaged, rebuilding it");
            let repo = cache::create(path)?;
            let fetched = fetch_in(
                &repo,
                &spec.remote,
                spec.base_branch.as_deref(),
                &spec.head_branch,
                cancel,
            )?;
            let repo = cache::open(path).map_err(cache_fault)?;
            plan_in(&repo, spec, fetched, export, cancel).map_err(|e| with_path(e, path))
        }
        other => other,
    }
}

fn plan_in(
    repo: &Repository,
    spec: &DeliverySpec,
    Branches {
        base_branch,
        fetched,
        took: fetch,
    }: Branches,
    export: &dyn ExportSource,
    cancel: &Cancel,
) -> Result<Planned, GitError> {
    let remote = &spec.remote;
    let advertised = fetched.advertised.clone();
    let Some(base_oid) = advertised.base else {
        return Err(GitError::NotFound {
            url: remote.url().to_owned(),
            what: format!("base branch `{base_branch}`"),
        });
    };
    if advertised.head.is_none() {
        // A head branch deleted on the remote must not linger in the cache.
        if let Ok(mut stale) = repo.find_reference(&tracking_ref(&spec.head_branch)) {
            stale.delete().map_err(cache_fault)?;
        }
    }
    let started = Instant::now();
    let base_commit = repo.find_commit(base_oid).map_err(cache_fault)?;
    let base_tree = base_commit.tree().map_err(cache_fault)?;
    let new_tree_id = tree::build(
        repo,
        &base_tree,
        spec.relative_path.as_ref(),
        spec.purge,
        export,
        cancel,
    )?;
    let new_tree = repo.find_tree(new_tree_id).map_err(cache_fault)?;
    let (files, token_files, mut reads) = diff::changes(repo, &base_tree, &new_tree)?;
    if !spec.allow_protected_paths
        && let Some(path) = files.all().find(|p| is_protected(p))
    {
        return Err(GitError::ProtectedPath {
            path: path.to_owned(),
        });
    }
    let written: Vec<String> = files.added.iter().chain(&files.modified).cloned().collect();
    // A partial fetch brought trees only: the blobs read from here on come now.
    let completing = Instant::now();
    reads.extend(tree::attribute_files(&new_tree, &written));
    transport::complete(repo, remote, &fetched, &reads, cancel)?;
    let completed = completing.elapsed();
    let fetch = fetch + completed;
    tree::check_lfs(repo, &new_tree, &written)?;

    let commit_message = commit_message(&spec.commit_message, &spec.delivery_id);
    let head_delivery = match advertised.head {
        Some(head) => {
            let commit = repo.find_commit(head).map_err(cache_fault)?;
            delivery_trailer(&String::from_utf8_lossy(commit.message_bytes()))
        }
        None => None,
    };
    let outcome = if new_tree_id == base_tree.id() {
        let head = match advertised.head {
            None => HeadBranch::Absent,
            Some(head) => {
                let foreign = foreign_commits(repo, head, base_oid)?;
                if foreign.is_empty() {
                    HeadBranch::Courier { tip: head.into() }
                } else {
                    HeadBranch::Foreign {
                        tip: head.into(),
                        commits: foreign.into_iter().map(Into::into).collect(),
                    }
                }
            }
        };
        Outcome::NoChanges { head }
    } else {
        let existing = match advertised.head {
            None => None,
            Some(head) => Some((head, foreign_commits(repo, head, base_oid)?)),
        };
        match existing {
            Some((_, foreign)) if !foreign.is_empty() && !spec.overwrite_diverged => {
                Outcome::BranchDiverged {
                    message: diverged_message(repo, &spec.head_branch, &foreign),
                }
            }
            Some((head, foreign))
                if foreign.is_empty()
                    && raw_parents(repo, head)? == [base_oid]
                    && repo.find_commit(head).map_err(cache_fault)?.tree_id() == new_tree_id =>
            {
                Outcome::UpToDate {
                    commit: head.into(),
                }
            }
            existing => {
                let author = git2::Signature::now(&spec.author.name, &spec.author.email)
                    .map_err(|e| GitError::other("commit author", e.message()))?;
                let commit = write_commit(
                    repo,
                    &author,
                    &commit_message,
                    &new_tree,
                    &base_commit,
                    spec.signing.as_ref(),
                )?;
                Outcome::Push {
                    commit: commit.into(),
                    replaces: existing.map(|(head, _)| head.into()),
                }
            }
        }
    };
    Ok(Planned {
        base_branch,
        base_commit: base_oid,
        base_tree: base_tree.id(),
        new_tree: new_tree_id,
        head_before: advertised.head,
        head_delivery,
        commit_message,
        outcome,
        files,
        token_files,
        took: PlanTimings {
            fetch,
            build: started.elapsed().saturating_sub(completed),
        },
    })
}

/// Writes the delivery's commit object, signed when a key is configured: the signature
/// covers the object as git would write it unsigned, and goes in its `gpgsig` header,
/// which is what `git verify-commit` and the forges check.
fn write_commit(
    repo: &Repository,
    author: &git2::Signature<'_>,
    message: &str,
    tree: &git2::Tree<'_>,
    parent: &git2::Commit<'_>,
    signing: Option<&SigningKey>,
) -> Result<git2::Oid, GitError> {
    let Some(key) = signing else {
        return repo
            .commit(None, author, author, message, tree, &[parent])
            .map_err(cache_fault);
    };
    let content = repo
        .commit_create_buffer(author, author, message, tree, &[parent])
        .map_err(cache_fault)?;
    let signature = key
        .sign_commit(&content)
        .map_err(|e| GitError::other("commit signature", e))?;
    let content = std::str::from_utf8(&content)
        .map_err(|_| GitError::other("commit signature", "the commit is not UTF-8"))?;
    repo.commit_signed(content, &signature, None)
        .map_err(cache_fault)
}

/// `message` with the delivery trailer as its last paragraph.
fn commit_message(message: &str, delivery_id: &str) -> String {
    let body = message.trim_end();
    let body = if body.is_empty() {
        "Deliver design system export"
    } else {
        body
    };
    format!("{body}\n\n{DELIVERY_TRAILER}: {delivery_id}\n")
}

fn has_trailer(message: &str) -> bool {
    delivery_trailer(message).is_some()
}

/// The value of the message's `Courier-Delivery` trailer (the last, if several), read
/// the way git reads trailers: from the message's last paragraph only.
fn delivery_trailer(message: &str) -> Option<String> {
    let trailers = git2::message_trailers_strs(message).ok()?;
    trailers
        .iter()
        .rfind(|(key, _)| key.eq_ignore_ascii_case(DELIVERY_TRAILER))
        .map(|(_, value)| value.trim().to_owned())
}

/// Parents as recorded in the commit object itself. In a shallow cache libgit2 hides
/// the parents of boundary commits, and a head branch fetched at depth 1 is one.
fn raw_parents(repo: &Repository, commit: Oid) -> Result<Vec<Oid>, GitError> {
    let odb = repo.odb().map_err(cache_fault)?;
    let object = odb.read(commit).map_err(cache_fault)?;
    let data = object.data();
    let header_end = data
        .windows(2)
        .position(|w| w == b"\n\n")
        .unwrap_or(data.len());
    data[..header_end]
        .split(|b| *b == b'\n')
        .filter_map(|line| line.strip_prefix(b"parent "))
        .map(|hex| {
            std::str::from_utf8(hex)
                .ok()
                .and_then(|h| Oid::from_str(h).ok())
                .ok_or_else(|| GitError::CacheCorrupt {
                    path: PathBuf::new(),
                    detail: format!("commit {commit} has a malformed parent"),
                })
        })
        .collect()
}

/// Commits on the head branch, not on the base, without Courier's trailer, newest
/// first. Only the commits the cache holds are looked at: in a shallow cache the head
/// branch's tip, which is where anyone else's work would be.
///
/// Below a commit of Courier's lies the base it was built on, which is nobody's work
/// on the branch, so the walk stops there: in a shallow cache whose base moved, that
/// older base is not known to be on the base branch, and would otherwise count.
fn foreign_commits(repo: &Repository, head: Oid, base: Oid) -> Result<Vec<Oid>, GitError> {
    const MAX: usize = 1000;
    let mut queue = std::collections::VecDeque::from([head]);
    let mut visited = std::collections::HashSet::new();
    let mut foreign = Vec::new();
    while let Some(oid) = queue.pop_front() {
        if oid == base || !visited.insert(oid) {
            continue;
        }
        let commit = match repo.find_commit(oid) {
            Ok(commit) => commit,
            // The edge of what a shallow fetch brought (never the tip, fetched with it).
            Err(err) if err.code() == git2::ErrorCode::NotFound && oid != head => continue,
            Err(err) => return Err(cache_fault(err)),
        };
        if has_trailer(&String::from_utf8_lossy(commit.message_bytes()))
            || repo.graph_descendant_of(base, oid).map_err(cache_fault)?
        {
            continue;
        }
        foreign.push(oid);
        if foreign.len() > MAX {
            break;
        }
        // The parents the commit names, also where a shallow cache hides them.
        queue.extend(raw_parents(repo, oid)?);
    }
    Ok(foreign)
}

fn diverged_message(repo: &Repository, head_branch: &str, foreign: &[Oid]) -> String {
    let latest = foreign[0];
    let detail = repo
        .find_commit(latest)
        .map(|c| {
            format!(
                " (latest {} by {}: \"{}\")",
                &latest.to_string()[..12],
                c.author().name().unwrap_or("unknown").to_owned(),
                c.summary().ok().flatten().unwrap_or("")
            )
        })
        .unwrap_or_default();
    format!(
        "branch `{head_branch}` has {} commit(s) Courier did not make{detail}; Courier does not push over them. Merge or close that work and delete the branch, or set overwrite_diverged on the target to replace it",
        foreign.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailer_is_the_last_paragraph_and_is_recognised() {
        let m = commit_message("Update tokens\n\nBody text.\n\n", "d-42");
        assert_eq!(m, "Update tokens\n\nBody text.\n\nCourier-Delivery: d-42\n");
        assert!(has_trailer(&m));
        let signed = commit_message("Update\n\nSigned-off-by: A <a@b>", "d-1");
        assert!(has_trailer(&signed));
        assert!(!has_trailer(
            "Update tokens\n\nCourier-Delivery is mentioned here but not as a trailer\n"
        ));
    }

    #[test]
    fn the_trailer_names_the_delivery_that_made_the_commit() {
        let id = "1/6 hooks[0].targets[0]";
        let m = commit_message("Update tokens\n\nSigned-off-by: A <a@b>", id);
        assert_eq!(delivery_trailer(&m).as_deref(), Some(id));
        // A template quoting the trailer in its body does not name the delivery: only
        // the last paragraph holds trailers.
        let quoted = commit_message("Update\n\nCourier-Delivery: someone-else\n\nMore.", id);
        assert_eq!(delivery_trailer(&quoted).as_deref(), Some(id));
        assert_eq!(delivery_trailer("Update tokens by hand\n"), None);
    }

    /// A delivery whose future is dropped (its worker lost the lease) tells the git work
    /// it was waiting for to stop, rather than leaving it to run on unseen.
    #[tokio::test]
    async fn blocking_work_is_told_to_stop_when_its_caller_goes_away() {
        let (started, started_rx) = std::sync::mpsc::channel();
        let (stopped, stopped_rx) = std::sync::mpsc::channel();
        // Past this limit the work stops by itself: without the cancel on drop the test
        // fails after it, rather than hanging.
        let work = run_blocking(
            "waiting",
            Duration::from_secs(20),
            tracing::Span::none(),
            move |cancel| {
                started.send(()).unwrap();
                while !cancel.is_cancelled() {
                    std::thread::sleep(Duration::from_millis(5));
                }
                stopped.send(()).unwrap();
                Ok(())
            },
        );
        let caller = tokio::spawn(work);
        tokio::task::spawn_blocking(move || started_rx.recv().unwrap())
            .await
            .unwrap();
        caller.abort();
        let told = tokio::task::spawn_blocking(move || {
            stopped_rx.recv_timeout(Duration::from_secs(10)).is_ok()
        })
        .await
        .unwrap();
        assert!(told, "the work was told to stop");
    }
}
