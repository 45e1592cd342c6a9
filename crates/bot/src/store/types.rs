//! Plain types the store takes and gives: identifiers, timestamps, states and views.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use courier_core::template::DirectoryChanges;
use courier_core::tokens::TokenDiff;
use courier_providers::forge_calls::CallSummary;
use serde::{Serialize, Serializer};

/// Crockford's base-32 alphabet, as ULIDs use it: sorts like the number it encodes.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const ID_LEN: usize = 26;

/// The last identifier this process handed out, so identifiers created in the same
/// millisecond still increase (arrival order is identifier order).
static LAST_ID: Mutex<u128> = Mutex::new(0);

/// A new time-ordered identifier: 48 bits of milliseconds, then 80 random bits, in the
/// ULID text form (26 characters), greater than `floor` if given. Within one process
/// identifiers strictly increase; across processes they are ordered by their clocks, then
/// at random within a millisecond (the store adds `floor` where that is not enough).
fn new_id(floor: Option<u128>) -> String {
    let millis = Timestamp::now().0.max(0) as u128 & ((1 << 48) - 1);
    let random =
        (u128::from(fastrand::u64(..)) << 16 | u128::from(fastrand::u16(..))) & ((1 << 80) - 1);
    let mut value = millis << 80 | random;
    {
        let mut last = LAST_ID
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let at_least = floor.map_or(*last, |f| f.max(*last));
        if value <= at_least {
            value = at_least.saturating_add(1);
        }
        *last = value;
    }
    encode_id(value)
}

/// The 26-character text of an identifier's number.
fn encode_id(value: u128) -> String {
    let mut text = [0u8; ID_LEN];
    for (i, byte) in text.iter_mut().rev().enumerate() {
        *byte = ALPHABET[((value >> (5 * i)) & 31) as usize];
    }
    text.iter().map(|&b| b as char).collect()
}

/// The number an identifier encodes; `None` if it is not one.
fn decode_id(s: &str) -> Option<u128> {
    if !is_id(s) {
        return None;
    }
    s.bytes().try_fold(0u128, |acc, b| {
        let digit = ALPHABET.iter().position(|&a| a == b)? as u128;
        Some(acc << 5 | digit)
    })
}

fn is_id(s: &str) -> bool {
    // The first character carries only the top 3 bits of 128, so it is 0-7.
    s.len() == ID_LEN && s.as_bytes()[0] <= b'7' && s.bytes().all(|b| ALPHABET.contains(&b))
}

/// The text was not a Courier identifier (26 characters of Crockford base 32).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a Courier id (26 characters, 0-9 and A-Z without I, L, O, U)")]
pub struct InvalidId(pub String);

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a value read back from the store, which only ever holds valid ids.
            pub(crate) fn from_db(s: String) -> Self {
                Self(s)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;

            /// Accepts lower case too (ids are case-insensitive, stored upper case).
            fn from_str(s: &str) -> Result<Self, InvalidId> {
                let upper = s.to_ascii_uppercase();
                if is_id(&upper) { Ok(Self(upper)) } else { Err(InvalidId(s.to_owned())) }
            }
        }
    };
}

id_type!(
    /// Courier's id of a received job (not the platform's job id). Time-ordered.
    JobId
);
id_type!(
    /// The id of one delivery (one job to one target), used in URLs and the CLI.
    /// Time-ordered: a smaller id arrived earlier.
    DeliveryId
);

impl JobId {
    pub(crate) fn generate() -> Self {
        Self(new_id(None))
    }
}

impl DeliveryId {
    /// A new id greater than `previous` (when that is an id).
    pub(crate) fn generate_after(previous: &str) -> Self {
        Self(new_id(decode_id(previous)))
    }

    /// The smallest id a delivery created at `at` can have: every delivery created at or
    /// after `at` has an id at least this (ids start with their creation millisecond).
    pub(crate) fn first_at(at: Timestamp) -> Self {
        let millis = at.0.max(0) as u128 & ((1 << 48) - 1);
        Self(encode_id(millis << 80))
    }
}

/// A point in time, in milliseconds since the Unix epoch (UTC). Serialised as an RFC 3339
/// string such as `2026-11-22T09:13:51.123Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Self {
        Self::from(SystemTime::now())
    }

    pub fn as_millis(self) -> i64 {
        self.0
    }

    /// This time plus `d`, saturating.
    pub fn minus(self, d: Duration) -> Self {
        Self(
            self.0
                .saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        )
    }

    pub fn plus(self, d: Duration) -> Self {
        Self(
            self.0
                .saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        )
    }

    /// How long ago this was from `now`; zero if it lies in the future.
    pub fn age_at(self, now: Timestamp) -> Duration {
        Duration::from_millis(u64::try_from(now.0.saturating_sub(self.0)).unwrap_or(0))
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Self(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            Err(e) => Self(-i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX)),
        }
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with milliseconds.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(86_400_000);
        let ms_of_day = self.0.rem_euclid(86_400_000);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
            ms_of_day / 3_600_000,
            ms_of_day / 60_000 % 60,
            ms_of_day / 1000 % 60,
            ms_of_day % 1000
        )
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day); Howard Hinnant's
/// `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Where a delivery is in its life.
///
/// `queued -> running -> {delivered, no_changes, up_to_date, branch_diverged, commented,
/// no_open_pull_request, skipped, failed}`; `running -> retrying -> running`; `queued | retrying -> superseded` when a
/// newer export for the same hook and target is waiting; any finished state or
/// `retrying -> queued` by [`Store::requeue`](super::Store::requeue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Queued,
    Running,
    Retrying,
    Delivered,
    NoChanges,
    UpToDate,
    BranchDiverged,
    /// A failed job was reported on the target's open pull request.
    Commented,
    /// A failed job, and the target had no open pull request to tell.
    NoOpenPullRequest,
    Skipped,
    Failed,
    Superseded,
}

impl DeliveryState {
    pub const ALL: [DeliveryState; 12] = [
        DeliveryState::Queued,
        DeliveryState::Running,
        DeliveryState::Retrying,
        DeliveryState::Delivered,
        DeliveryState::NoChanges,
        DeliveryState::UpToDate,
        DeliveryState::BranchDiverged,
        DeliveryState::Commented,
        DeliveryState::NoOpenPullRequest,
        DeliveryState::Skipped,
        DeliveryState::Failed,
        DeliveryState::Superseded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Queued => "queued",
            DeliveryState::Running => "running",
            DeliveryState::Retrying => "retrying",
            DeliveryState::Delivered => "delivered",
            DeliveryState::NoChanges => "no_changes",
            DeliveryState::UpToDate => "up_to_date",
            DeliveryState::BranchDiverged => "branch_diverged",
            DeliveryState::Commented => "commented",
            DeliveryState::NoOpenPullRequest => "no_open_pull_request",
            DeliveryState::Skipped => "skipped",
            DeliveryState::Failed => "failed",
            DeliveryState::Superseded => "superseded",
        }
    }

    /// As a target's newest delivery, it needs someone to look: it failed, keeps failing,
    /// or stopped for a person's commits.
    pub fn needs_attention(self) -> bool {
        matches!(
            self,
            DeliveryState::Failed | DeliveryState::Retrying | DeliveryState::BranchDiverged
        )
    }

    /// No worker will touch it again unless it is requeued.
    pub fn is_finished(self) -> bool {
        !matches!(
            self,
            DeliveryState::Queued | DeliveryState::Running | DeliveryState::Retrying
        )
    }
}

impl fmt::Display for DeliveryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text was not a delivery state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown delivery state `{0}` (expected queued, running, retrying, delivered, no_changes, up_to_date, branch_diverged, commented, no_open_pull_request, skipped, failed or superseded)"
)]
pub struct UnknownState(pub String);

impl FromStr for DeliveryState {
    type Err = UnknownState;

    fn from_str(s: &str) -> Result<Self, UnknownState> {
        DeliveryState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_owned()))
    }
}

/// What routing decided for a job, recorded with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Routing {
    /// Routed to one or more targets (one delivery each).
    Routed,
    /// Matched a hook with no targets: recorded only ("don't notify, only build").
    BuildOnly,
    /// Matched no hook, or was refused; `reason` says which.
    Unrouted { reason: String },
}

impl Routing {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Routing::Routed => "routed",
            Routing::BuildOnly => "build_only",
            Routing::Unrouted { .. } => "unrouted",
        }
    }

    pub(crate) fn reason(&self) -> Option<&str> {
        match self {
            Routing::Unrouted { reason } => Some(reason),
            _ => None,
        }
    }

    pub(crate) fn from_db(kind: &str, reason: Option<String>) -> Self {
        match kind {
            "routed" => Routing::Routed,
            "build_only" => Routing::BuildOnly,
            _ => Routing::Unrouted {
                reason: reason.unwrap_or_default(),
            },
        }
    }
}

/// A job to record, with the deliveries routing gave it.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub workspace_id: String,
    /// The platform's job id; `(workspace_id, job_id)` is unique.
    pub job_id: String,
    pub hook_id: String,
    pub design_system_id: String,
    /// The platform's job status, verbatim.
    pub status: String,
    /// Not acted on (a job still in progress, or a status Courier does not know):
    /// recorded, no deliveries. A later copy of the same job that is acted on (a success
    /// to deliver, or a failure to report) upgrades the record (see `insert_job`).
    pub ignored: bool,
    /// The webhook body as received, kept so a worker can re-parse it.
    pub body: Vec<u8>,
    pub routing: Routing,
    pub names: JobNames,
    pub deliveries: Vec<NewDelivery>,
}

/// The names people know a job by, from its event: what the dashboard shows and searches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JobNames {
    pub design_system: String,
    /// The version's name and label, e.g. `Release 3 v0.1`.
    pub version: String,
    pub exporter: String,
}

/// One target a job goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// Which configured target, e.g. `hooks[0].targets[1]`; unique within the job.
    pub target_key: String,
    pub hook_id: String,
    pub repository: String,
    /// The target's connection (a key of `connections`).
    pub connection: String,
    pub head_branch: String,
}

/// The answer to an insert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inserted {
    pub job: JobId,
    /// In arrival (id) order.
    pub deliveries: Vec<DeliveryId>,
    /// The job was already recorded; nothing new was created.
    pub duplicate: bool,
}

/// Files a delivery changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FileCounts {
    pub added: u64,
    pub modified: u64,
    pub deleted: u64,
}

/// What a worker reports when it ends a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finish {
    /// A finished state other than `superseded` (which only the store sets).
    pub state: DeliveryState,
    pub pr_url: Option<String>,
    pub commit: Option<String>,
    pub files: Option<FileCounts>,
    /// Why it failed (for `Failed`) or a note for the others; replaces the last error.
    pub error: Option<String>,
    pub warnings: Vec<String>,
    /// Milliseconds per phase of this run (see [`DeliveryView::timings`]).
    pub timings: BTreeMap<String, u64>,
    /// What changed in the design tokens (see [`DeliveryDetail::tokens`]).
    pub tokens: Option<TokenDiff>,
    /// The changes per directory (see [`DeliveryDetail::directories`]).
    pub directories: Vec<DirectoryChanges>,
    /// The forge calls of this run (see [`DeliveryDetail::forge_calls`]).
    pub forge_calls: Vec<CallSummary>,
}

impl Finish {
    pub fn new(state: DeliveryState) -> Self {
        debug_assert!(state.is_finished() && state != DeliveryState::Superseded);
        Finish {
            state,
            pr_url: None,
            commit: None,
            files: None,
            error: None,
            warnings: Vec::new(),
            timings: BTreeMap::new(),
            tokens: None,
            directories: Vec::new(),
            forge_calls: Vec::new(),
        }
    }
}

/// What a run measured, kept whatever its outcome: its phases in milliseconds (see
/// [`DeliveryView::timings`]) and its forge calls (see [`DeliveryDetail::forge_calls`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunTimes {
    pub timings: BTreeMap<String, u64>,
    pub forge_calls: Vec<CallSummary>,
}

/// A job as recorded (without its body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobView {
    pub id: JobId,
    pub workspace_id: String,
    pub job_id: String,
    pub hook_id: String,
    pub design_system_id: String,
    pub status: String,
    pub ignored: bool,
    pub routing: Routing,
    /// `None` for a job recorded before names were kept.
    pub names: Option<JobNames>,
    pub received_at: Timestamp,
}

/// A job with its deliveries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobDetail {
    pub job: JobView,
    pub deliveries: Vec<DeliveryView>,
}

/// One delivery as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryView {
    pub id: DeliveryId,
    /// Courier's job id.
    pub job: JobId,
    pub workspace_id: String,
    /// The platform's job id.
    pub job_id: String,
    pub hook_id: String,
    pub target_key: String,
    pub repository: String,
    /// `None` for a delivery recorded before connections were kept.
    pub connection: Option<String>,
    pub head_branch: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub next_attempt_at: Option<Timestamp>,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<Timestamp>,
    pub last_error: Option<String>,
    /// The newer delivery for the same target that made this one unnecessary.
    pub superseded_by: Option<DeliveryId>,
    /// The job's names; `None` for a job recorded before they were kept.
    pub names: Option<JobNames>,
    pub pr_url: Option<String>,
    pub commit: Option<String>,
    pub files: Option<FileCounts>,
    pub warnings: Vec<String>,
    /// How long each phase of the last run took, in milliseconds (`download`, `validate`,
    /// `plan`, `push`, `pull_request`, `total`).
    pub timings: Option<BTreeMap<String, u64>>,
    pub created_at: Timestamp,
    /// When the first attempt started.
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
}

/// One attempt at a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptView {
    pub number: u32,
    pub owner: String,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// A delivery state name, `retry`, `rate_limited` (released to wait out a rate limit),
    /// or `lease_expired` (the worker vanished).
    pub outcome: Option<String>,
    pub error: Option<String>,
}

/// A delivery with its job and attempts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryDetail {
    pub delivery: DeliveryView,
    pub job: JobView,
    pub attempts: Vec<AttemptView>,
    /// What changed in the design tokens in the last run that compared them (at most
    /// 1,000 changes listed; `omitted` counts the rest).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<TokenDiff>,
    /// The last run's changes per directory (at most [`MAX_DIRECTORIES`] listed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub directories: Vec<DirectoryChanges>,
    /// How long the last run's forge calls took, one row per call name in the order first
    /// called.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub forge_calls: Vec<CallSummary>,
}

/// Directories listed in a delivery's record; an export touching more is summed up by
/// its counts.
pub const MAX_DIRECTORIES: usize = 500;

/// A delivery a worker now holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub delivery: DeliveryView,
    pub job: JobView,
    /// The webhook body, to re-parse (`None` only if it was purged).
    pub body: Option<Vec<u8>>,
    /// This attempt's number (1 for the first), over the delivery's whole life.
    pub attempt: u32,
    /// This attempt's number since the delivery was last requeued (1 for the first): what
    /// a retry limit counts.
    pub attempt_in_run: u32,
}

/// Which deliveries to list; `None` means any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryFilter {
    pub state: Option<DeliveryState>,
    pub hook_id: Option<String>,
    pub repository: Option<String>,
    pub connection: Option<String>,
    /// The platform's job id.
    pub job_id: Option<String>,
    /// Case-insensitive text anywhere in the repository, branch, target, job id, names or
    /// last error.
    pub text: Option<String>,
}

/// A page of a listing, newest first: at most `limit` rows older than `after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub limit: u32,
    /// The last id of the previous page.
    pub after: Option<DeliveryId>,
}

impl Default for Page {
    fn default() -> Self {
        Page {
            limit: 50,
            after: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_at_least_the_first_id_of_its_millisecond() {
        let before = Timestamp::now();
        let id = DeliveryId::generate_after("");
        assert!(DeliveryId::first_at(before) <= id);
        let after = Timestamp(Timestamp::now().0 + 1);
        assert!(DeliveryId::first_at(after) > id);
        assert!(
            DeliveryId::first_at(before)
                .as_str()
                .parse::<DeliveryId>()
                .is_ok()
        );
    }

    #[test]
    fn ids_increase_and_parse_back() {
        let ids: Vec<JobId> = (0..1000).map(|_| JobId::generate()).collect();
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "ids must strictly increase"
        );
        for id in &ids {
            assert_eq!(
                &id.as_str().to_ascii_lowercase().parse::<JobId>().unwrap(),
                id
            );
        }
        assert!("not-an-id".parse::<JobId>().is_err());
        // An id from a clock far ahead (year 3085) forces the next one just above it;
        // later ids of this process stay above it too.
        let ahead = "10000000000000000000000000";
        let next = DeliveryId::generate_after(ahead);
        assert_eq!(next.as_str(), "10000000000000000000000001");
        assert!(DeliveryId::generate_after("") > next);
        assert!(DeliveryId::generate_after("not an id") > next);
        assert!(
            "ZZZZZZZZZZZZZZZZZZZZZZZZZZ".parse::<JobId>().is_err(),
            "above 2^128"
        );
    }

    #[test]
    fn timestamps_render_as_rfc3339() {
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            Timestamp(951_782_400_123).to_string(),
            "2000-02-29T00:00:00.123Z"
        );
        assert_eq!(
            Timestamp(1_795_338_831_005).to_string(),
            "2026-11-22T09:13:51.005Z"
        );
        assert_eq!(Timestamp(-1).to_string(), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn states_round_trip() {
        for state in DeliveryState::ALL {
            assert_eq!(state.as_str().parse::<DeliveryState>(), Ok(state));
        }
        assert!("done".parse::<DeliveryState>().is_err());
    }
}
