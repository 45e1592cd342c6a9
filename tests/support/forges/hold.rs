//! Holding one request of a forge fake where it stands, before or after the fake applies
//! it, so a test can stop the client at that exact step (kill it, say) and see what the
//! forge is left with. The fakes' shared front half keeps their holds and answers
//! through [`Holds::answer`].

use std::future::Future;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use axum::response::Response;

/// Where a held request waits, relative to the fake applying it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldMode {
    /// The request has arrived but changes nothing until released: a client that dies
    /// meanwhile left no trace on the forge.
    BeforeApply,
    /// The request is applied at once and only its answer waits: a client that dies
    /// meanwhile changed the forge without ever learning so.
    AfterApply,
}

/// A hold on the next request to one route (a fake's `hold`). Dropping it does not
/// release the request; [`Hold::release`] does (or the fake's end).
#[derive(Clone)]
pub struct Hold(Arc<HoldInner>);

struct HoldInner {
    /// The route, as the fake names it (`POST /repos/{owner}/{repo}/pulls`, say).
    route: String,
    mode: HoldMode,
    counts: Mutex<HoldCounts>,
    changed: Condvar,
    released: tokio::sync::watch::Sender<bool>,
}

#[derive(Default)]
struct HoldCounts {
    /// Requests still to catch.
    remaining: usize,
    /// Requests caught so far.
    arrived: usize,
    /// Caught requests that are over: answered, or dropped with their connection.
    settled: usize,
}

impl Hold {
    /// How many requests the hold has caught.
    pub fn arrived(&self) -> usize {
        self.0.counts.lock().unwrap().arrived
    }

    /// Blocks the calling thread until the hold has caught its request, at most
    /// `timeout`; false on timeout. For sync tests (or `spawn_blocking`).
    pub fn wait_arrived(&self, timeout: Duration) -> bool {
        self.wait(timeout, |c| c.arrived > 0 && c.remaining == 0)
    }

    /// Lets the caught request go on (applied, for [`HoldMode::BeforeApply`]; answered,
    /// for [`HoldMode::AfterApply`]); a request not caught yet is no longer held.
    pub fn release(&self) {
        self.0.counts.lock().unwrap().remaining = 0;
        self.0.released.send_replace(true);
        self.0.changed.notify_all();
    }

    /// Blocks until every caught request is over (answered, or abandoned because its
    /// client went away), at most `timeout`; false on timeout.
    pub fn wait_settled(&self, timeout: Duration) -> bool {
        self.wait(timeout, |c| c.settled == c.arrived)
    }

    fn wait(&self, timeout: Duration, done: impl Fn(&HoldCounts) -> bool) -> bool {
        let counts = self.0.counts.lock().unwrap();
        let (_counts, result) = self
            .0
            .changed
            .wait_timeout_while(counts, timeout, |c| !done(c))
            .unwrap();
        !result.timed_out()
    }

    /// Takes one request if this hold still wants one of this route.
    fn catch(&self, route: &str) -> bool {
        if self.0.route != route {
            return false;
        }
        let mut counts = self.0.counts.lock().unwrap();
        if counts.remaining == 0 {
            return false;
        }
        counts.remaining -= 1;
        counts.arrived += 1;
        self.0.changed.notify_all();
        true
    }

    async fn released(&self) {
        let mut released = self.0.released.subscribe();
        // The sender lives in `self`, so this ends only on release.
        let _ = released.wait_for(|r| *r).await;
    }
}

/// Marks a caught request over however its handler ends, cancellation included.
struct Settles(Hold);

impl Drop for Settles {
    fn drop(&mut self) {
        self.0.0.counts.lock().unwrap().settled += 1;
        self.0.0.changed.notify_all();
    }
}

impl Hold {
    fn new(route: String, mode: HoldMode) -> Hold {
        Hold(Arc::new(HoldInner {
            route,
            mode,
            counts: Mutex::new(HoldCounts {
                remaining: 1,
                ..HoldCounts::default()
            }),
            changed: Condvar::new(),
            released: tokio::sync::watch::Sender::new(false),
        }))
    }
}

/// A fake's holds.
#[derive(Default)]
pub(super) struct Holds(Mutex<Vec<Hold>>);

impl Holds {
    /// Holds the next request to `route`; later requests to it pass.
    pub(super) fn add(&self, route: String, mode: HoldMode) -> Hold {
        let hold = Hold::new(route, mode);
        self.0.lock().unwrap().push(hold.clone());
        hold
    }

    /// Answers with `respond`, first waiting for a hold on `route` if one catches this
    /// request (before applying it, or after, as the hold says).
    pub(super) async fn answer<F, Fut>(&self, route: Option<String>, respond: F) -> Response
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Response>,
    {
        let caught = route.and_then(|route| {
            let holds = self.0.lock().unwrap();
            holds.iter().find(|h| h.catch(&route)).cloned()
        });
        let Some(hold) = caught else {
            return respond().await;
        };
        let _settles = Settles(hold.clone());
        if hold.0.mode == HoldMode::BeforeApply {
            hold.released().await;
        }
        let response = respond().await;
        if hold.0.mode == HoldMode::AfterApply {
            hold.released().await;
        }
        response
    }
}
