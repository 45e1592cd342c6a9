//! Validated exports shared by the deliveries of one job on this replica.
//!
//! A job routed to several targets has one delivery per target, claimed by the workers
//! one by one or side by side. Without sharing, each would download and validate the same
//! artifact again. The first delivery of a job to get here obtains the export; the others
//! (at the same time or shortly after) wait for it and use the same one. An export is
//! kept while deliveries use it, and for [`KEEP`] after its last use, at most
//! [`CAPACITY`] of them: the temp file behind each can be large. A failure is not kept,
//! so the next delivery of the job tries again.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

use crate::pipeline::{ObtainedExport, PipelineError};

/// How long an export stays after its last use.
pub const KEEP: Duration = Duration::from_secs(120);
/// Most exports kept at once (in use ones stay alive through their users regardless).
pub const CAPACITY: usize = 8;

/// The shared exports, keyed by Courier's job id.
#[derive(Default)]
pub struct ExportCache {
    entries: Mutex<Vec<Entry>>,
}

struct Entry {
    job: String,
    export: Arc<OnceCell<Arc<ObtainedExport>>>,
    last_used: Instant,
}

impl ExportCache {
    pub fn new() -> ExportCache {
        ExportCache::default()
    }

    /// The job's export: the one already obtained (or being obtained) for it on this
    /// replica, else the result of `obtain`, which then serves the job's other deliveries.
    pub async fn get_or_obtain<F, Fut>(
        &self,
        job: &str,
        obtain: F,
    ) -> Result<Arc<ObtainedExport>, PipelineError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<ObtainedExport, PipelineError>>,
    {
        let cell = self.cell(job, Instant::now());
        cell.get_or_try_init(|| async { obtain().await.map(Arc::new) })
            .await
            .cloned()
    }

    /// How many exports are kept now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn cell(&self, job: &str, now: Instant) -> Arc<OnceCell<Arc<ObtainedExport>>> {
        let mut entries = self.lock();
        entries.retain(|e| now.duration_since(e.last_used) < KEEP);
        if let Some(entry) = entries.iter_mut().find(|e| e.job == job) {
            entry.last_used = now;
            return entry.export.clone();
        }
        if entries.len() >= CAPACITY
            && let Some(oldest) = entries
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(i, _)| i)
        {
            entries.swap_remove(oldest);
        }
        let export = Arc::new(OnceCell::new());
        entries.push(Entry {
            job: job.to_owned(),
            export: export.clone(),
            last_used: now,
        });
        export
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        // Nothing panics while holding the lock; a poisoned one still holds a valid list.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failure_is_not_kept_and_jobs_do_not_share() {
        let cache = ExportCache::new();
        let mut calls = 0;
        for job in ["a", "a", "b"] {
            let result = cache
                .get_or_obtain(job, || {
                    calls += 1;
                    async { Err(PipelineError::Io(std::io::Error::other("unreachable host"))) }
                })
                .await;
            assert!(result.is_err());
        }
        assert_eq!(calls, 3, "every delivery tries again after a failure");
        assert_eq!(cache.len(), 2, "one slot per job");
    }

    #[test]
    fn old_and_surplus_entries_are_dropped() {
        let cache = ExportCache::new();
        let start = Instant::now();
        for n in 0..CAPACITY + 3 {
            cache.cell(&format!("job-{n}"), start + Duration::from_millis(n as u64));
        }
        assert_eq!(cache.len(), CAPACITY);
        let kept: Vec<String> = cache.lock().iter().map(|e| e.job.clone()).collect();
        assert!(
            !kept.contains(&"job-0".to_owned()),
            "the oldest went first: {kept:?}"
        );
        cache.cell("later", start + KEEP + Duration::from_secs(60));
        assert_eq!(cache.len(), 1, "entries idle longer than KEEP are gone");
    }
}
