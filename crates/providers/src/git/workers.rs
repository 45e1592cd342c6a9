//! CPU work over many files of the cache (writing blobs, reading token files) shared out
//! over the cores: each worker takes the next item in turn, on a handle on the cache of
//! its own, since a `Repository` cannot be shared between threads.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use git2::Repository;

use super::error::GitError;

/// More threads than this mostly wait on each other in libgit2's pack lookups.
const MAX_WORKERS: usize = 4;

/// Item indexes, handed to whichever worker asks next; none once a worker failed.
pub(crate) struct Queue {
    next: AtomicUsize,
    len: usize,
    failed: AtomicBool,
}

impl Queue {
    pub(crate) fn take(&self) -> Option<usize> {
        if self.failed.load(Ordering::Relaxed) {
            return None;
        }
        let index = self.next.fetch_add(1, Ordering::Relaxed);
        (index < self.len).then_some(index)
    }
}

/// Runs `work` over `items` items: on this thread below `parallel_from` items (another
/// handle on the cache would cost more than it saves), else on one thread per core. Each
/// run gets a handle of its own from `open`. Returns every worker's result; a failure
/// stops the others at their next item, and a panic is reported as a failure of
/// `operation`.
pub(crate) fn run<T: Send>(
    operation: &'static str,
    items: usize,
    parallel_from: usize,
    open: impl Fn() -> Result<Repository, GitError> + Sync,
    work: impl Fn(&Repository, &Queue) -> Result<T, GitError> + Sync,
) -> Vec<Result<T, GitError>> {
    let workers = if items < parallel_from {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_WORKERS))
    };
    let queue = Queue {
        next: AtomicUsize::new(0),
        len: items,
        failed: AtomicBool::new(false),
    };
    let one = || {
        let result = open().and_then(|repo| work(&repo, &queue));
        if result.is_err() {
            queue.failed.store(true, Ordering::Relaxed);
        }
        result
    };
    if workers < 2 {
        return vec![one()];
    }
    std::thread::scope(|scope| {
        let running: Vec<_> = (0..workers).map(|_| scope.spawn(one)).collect();
        running
            .into_iter()
            .map(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|_| Err(GitError::other(operation, "a worker thread panicked")))
            })
            .collect()
    })
}
