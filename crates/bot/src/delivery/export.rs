//! Obtaining a job's validated export, and sharing it between the deliveries of one job
//! on this replica.
//!
//! A job routed to several targets has one delivery per target, claimed by the workers
//! one by one or side by side. Without sharing, each would download and validate the same
//! artifact again. The first delivery of a job to get here obtains the export; the others
//! (at the same time or shortly after) wait for it and use the same one. An export is
//! kept while deliveries use it, and for [`KEEP`] after its last use, at most
//! [`CAPACITY`] of them: the temp file behind each can be large. A failure is not kept,
//! so the next delivery of the job tries again.

use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use courier_core::archive::Export;
use courier_core::event::{ArtifactSource, JobEvent};
use tokio::sync::OnceCell;

use super::Deliverer;
use super::outcome::{Cause, Failure};
use super::timings::{Phase, Timings};

/// A validated export and the file it streams from. The download's temp file lives
/// exactly as long as the export that reads it.
pub struct ObtainedExport {
    pub export: Arc<Export>,
    /// Where it came from, for reports: the `--artifact` path or the redacted source.
    pub origin: String,
    /// How long the download and the validation took; reported by the delivery that
    /// obtained the export only.
    pub timings: Timings,
    _artifact: Option<courier_core::download::Artifact>,
}

/// Where an artifact comes from, for people: hosts and paths, never signatures.
pub fn describe_artifact(source: &ArtifactSource) -> String {
    match source {
        ArtifactSource::SignedUrl { url } => format!("signed URL {url}"),
        ArtifactSource::PlatformUrl { url } => {
            format!("platform URL {url} (with the PAT on the API origin)")
        }
        ArtifactSource::ResultEndpoint => {
            "the job's result endpoint on the platform API".to_owned()
        }
        ArtifactSource::None => "none".to_owned(),
    }
}

impl Deliverer {
    /// The export to deliver: the local zip when one is given (`--artifact`), otherwise
    /// the job's artifact, downloaded under the configured rules. Validated either way.
    pub async fn obtain_export(
        &self,
        job: &JobEvent,
        local: Option<&Path>,
    ) -> Result<ObtainedExport, Failure> {
        let io = |err: std::io::Error| {
            let mut failure = Failure::new(Cause::Io, format!("reading the artifact: {err}"));
            failure.retryable = true;
            failure
        };
        let limits = self.config.limits.archive.clone();
        let mut timings = Timings::default();
        let started = Instant::now();
        let (file, origin, artifact) = match local {
            Some(path) => (
                std::fs::File::open(path).map_err(io)?,
                path.display().to_string(),
                None,
            ),
            None => {
                let artifact = self
                    .downloader
                    .fetch(&job.job.artifact, job)
                    .await
                    .map_err(|e| Failure::from(&e))?;
                let file = artifact.file().try_clone().map_err(io)?;
                (file, describe_artifact(&job.job.artifact), Some(artifact))
            }
        };
        timings.since(Phase::Download, started);
        let started = Instant::now();
        // Inflating every entry is CPU work: keep it off the async workers.
        let export = tokio::task::spawn_blocking(move || Export::from_file(file, &limits))
            .await
            .map_err(|e| {
                io(std::io::Error::other(format!(
                    "validation task failed: {e}"
                )))
            })?
            .map_err(|e| Failure::from(&e))?;
        timings.since(Phase::Validate, started);
        self.metrics.downloaded(export.summary().bytes);
        Ok(ObtainedExport {
            export: Arc::new(export),
            origin,
            timings,
            _artifact: artifact,
        })
    }
}

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
    ///
    /// Also says whether this call obtained it (`true`) or shared one obtained for another
    /// delivery, so that the download's timings are counted once per job.
    pub async fn get_or_obtain<F, Fut>(
        &self,
        job: &str,
        obtain: F,
    ) -> Result<(Arc<ObtainedExport>, bool), Failure>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<ObtainedExport, Failure>>,
    {
        let cell = self.cell(job, Instant::now());
        let obtained_here = AtomicBool::new(false);
        let export = cell
            .get_or_try_init(|| async {
                obtained_here.store(true, Ordering::Relaxed);
                obtain().await.map(Arc::new)
            })
            .await?
            .clone();
        Ok((export, obtained_here.into_inner()))
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
                    async { Err(Failure::new(Cause::Download, "unreachable host")) }
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
