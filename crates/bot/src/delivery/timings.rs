//! How long each phase of a run took, so a slow delivery explains itself: in the CLI's
//! `--json`, in `/api/deliveries/{id}` and as per-phase Prometheus histograms.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

/// A phase of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Downloading the job's artifact (or opening `--artifact`).
    Download,
    /// Validating the archive: every entry inflated and checked.
    Validate,
    /// Fetching the base and head branches and building the new tree: [`Phase::Fetch`]
    /// plus [`Phase::Build`], plus waiting for the repository's lock.
    Plan,
    /// The part of `plan` spent asking the remote for its branches and fetching.
    Fetch,
    /// The part of `plan` spent writing blobs, building the tree and comparing it.
    Build,
    /// Reading the changed token files on both sides and comparing them.
    Tokens,
    Push,
    /// Every forge call of the pull-request step.
    PullRequest,
    /// The whole run, from the start of the attempt to its outcome.
    Total,
}

impl Phase {
    pub const ALL: [Phase; 9] = [
        Phase::Download,
        Phase::Validate,
        Phase::Plan,
        Phase::Fetch,
        Phase::Build,
        Phase::Tokens,
        Phase::Push,
        Phase::PullRequest,
        Phase::Total,
    ];

    pub fn word(self) -> &'static str {
        match self {
            Phase::Download => "download",
            Phase::Validate => "validate",
            Phase::Plan => "plan",
            Phase::Fetch => "fetch",
            Phase::Build => "build",
            Phase::Tokens => "tokens",
            Phase::Push => "push",
            Phase::PullRequest => "pull_request",
            Phase::Total => "total",
        }
    }
}

/// Milliseconds per phase; phases a run did not reach are absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timings(BTreeMap<Phase, Duration>);

impl Timings {
    pub fn record(&mut self, phase: Phase, took: Duration) {
        self.0.insert(phase, took);
    }

    /// Records how long `since` was ago.
    pub fn since(&mut self, phase: Phase, since: Instant) {
        self.record(phase, since.elapsed());
    }

    pub fn extend(&mut self, other: &Timings) {
        self.0.extend(other.0.iter().map(|(p, d)| (*p, *d)));
    }

    pub fn iter(&self) -> impl Iterator<Item = (Phase, Duration)> + '_ {
        self.0.iter().map(|(p, d)| (*p, *d))
    }

    /// `{"download": 12, ...}` in milliseconds, as the store and the API give them.
    pub fn millis(&self) -> BTreeMap<String, u64> {
        self.iter()
            .map(|(p, d)| {
                let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
                (p.word().to_owned(), ms)
            })
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Timings {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.millis().serialize(s)
    }
}
