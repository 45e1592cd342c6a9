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
    /// plus [`Phase::Build`], plus waiting for the repository's lock. For a job's first
    /// target, whose branches are fetched alongside `download` and `validate`: building,
    /// and waiting for a fetch that outlasted the export.
    Plan,
    /// Asking the remote for its branches and fetching: part of `plan`, or for a job's
    /// first target, running alongside `download` and `validate` (and into `plan` if it
    /// outlasted them), so not a part of the sum of the phases.
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
pub struct Timings {
    phases: BTreeMap<Phase, Duration>,
    /// Where the run's clock starts, if the phases are cut on it (see [`Timings::since`]).
    origin: Option<Instant>,
}

impl Timings {
    /// Timings whose phases are cut at whole milliseconds of the run's clock, which
    /// started at `origin`.
    pub fn starting_at(origin: Instant) -> Self {
        Self {
            phases: BTreeMap::new(),
            origin: Some(origin),
        }
    }

    pub fn record(&mut self, phase: Phase, took: Duration) {
        self.phases.insert(phase, took);
    }

    /// Records how long `since` was ago.
    ///
    /// With an origin, the phase is the whole milliseconds of the run's clock between
    /// its start and now, not its own duration cut to whole milliseconds: one after
    /// another, phases then add up to the run's total within a millisecond, where each
    /// phase cut on its own lost up to one (a 34 ms delivery's phases added up to 32).
    /// Phases that do not overlap still never add up to more than the total.
    pub fn since(&mut self, phase: Phase, since: Instant) {
        self.span(phase, since, Instant::now());
    }

    fn span(&mut self, phase: Phase, start: Instant, end: Instant) {
        let took = match self.origin {
            Some(origin) => {
                let at = |t: Instant| t.saturating_duration_since(origin).as_millis();
                let ms = at(end).saturating_sub(at(start));
                Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
            }
            None => end.saturating_duration_since(start),
        };
        self.record(phase, took);
    }

    pub fn extend(&mut self, other: &Timings) {
        self.phases
            .extend(other.phases.iter().map(|(p, d)| (*p, *d)));
    }

    pub fn iter(&self) -> impl Iterator<Item = (Phase, Duration)> + '_ {
        self.phases.iter().map(|(p, d)| (*p, *d))
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
        self.phases.is_empty()
    }
}

impl Serialize for Timings {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.millis().serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_on_the_run_clock_add_up_to_its_total() {
        // A 34.2 ms run: plan 0.6-17.4 ms, tokens 17.4-18.3, push 18.9-33.7. Each cut on
        // its own: 16 + 0 + 14 = 30 ms of 34. On the run's clock: 17 + 1 + 15 = 33.
        let origin = Instant::now();
        let at = |us: u64| origin + Duration::from_micros(us);
        let mut timings = Timings::starting_at(origin);
        let mut alone = Timings::default();
        for (phase, start, end) in [
            (Phase::Plan, 600, 17_400),
            (Phase::Tokens, 17_400, 18_300),
            (Phase::Push, 18_900, 33_700),
        ] {
            timings.span(phase, at(start), at(end));
            alone.span(phase, at(start), at(end));
        }
        timings.span(Phase::Total, origin, at(34_200));
        let ms = timings.millis();
        assert_eq!(
            (ms["plan"], ms["tokens"], ms["push"], ms["total"]),
            (17, 1, 15, 34),
            "{ms:?}"
        );
        let cut_alone: u64 = alone.millis().values().sum();
        assert_eq!(cut_alone, 30, "each phase cut on its own");
    }

    #[test]
    fn since_reads_the_clock_from_the_phase_start() {
        let mut timings = Timings::starting_at(Instant::now() - Duration::from_millis(50));
        timings.since(Phase::Push, Instant::now() - Duration::from_millis(20));
        timings.since(Phase::Total, timings.origin.unwrap());
        let ms = timings.millis();
        // At least the 20 ms that passed; more if this thread was descheduled.
        assert!(ms["push"] >= 20, "{ms:?}");
        assert!(ms["total"] >= 50 && ms["push"] <= ms["total"], "{ms:?}");
    }
}
