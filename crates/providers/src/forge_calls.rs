//! How long each forge call of a delivery took. Every call goes through
//! [`RetryPolicy::run`](crate::retry::RetryPolicy::run), which notes its name, time (its
//! retries and their waits included) and attempts here when the caller runs inside
//! [`recorded`]. A task-local rather than a parameter: the 50-odd call sites stay as they
//! are, and a call made outside a recording (a test, a startup check) costs nothing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One forge call as it ended: its retries are part of it, not calls of their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallTime {
    /// The call's name, the one the retry log uses ("find open pull request").
    pub call: String,
    pub took: Duration,
    pub attempts: u32,
    pub ok: bool,
}

/// The calls of one recording, in the order they ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallTimes(Vec<CallTime>);

/// The calls of one name, summed: what a delivery's record keeps. `create blob` may run
/// hundreds of times in one delivery; one row says how many and how long in all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallSummary {
    pub call: String,
    pub count: u32,
    /// Milliseconds, all calls of this name together.
    pub ms: u64,
    /// Attempts beyond the first, all calls together.
    pub retries: u32,
    /// Calls that ended in an error after their retries.
    pub failed: u32,
}

impl CallTimes {
    pub fn iter(&self) -> impl Iterator<Item = &CallTime> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// These calls, then `later`'s.
    pub fn then(mut self, later: CallTimes) -> CallTimes {
        self.0.extend(later.0);
        self
    }

    /// One row per call name, in the order each name was first called.
    pub fn summary(&self) -> Vec<CallSummary> {
        let mut rows: Vec<CallSummary> = Vec::new();
        for call in &self.0 {
            let index = match rows.iter().position(|r| r.call == call.call) {
                Some(index) => index,
                None => {
                    rows.push(CallSummary {
                        call: call.call.clone(),
                        count: 0,
                        ms: 0,
                        retries: 0,
                        failed: 0,
                    });
                    rows.len() - 1
                }
            };
            let row = &mut rows[index];
            row.count += 1;
            row.ms = row
                .ms
                .saturating_add(u64::try_from(call.took.as_millis()).unwrap_or(u64::MAX));
            row.retries += call.attempts.saturating_sub(1);
            row.failed += u32::from(!call.ok);
        }
        rows
    }
}

impl Serialize for CallTimes {
    /// As [`CallTimes::summary`]: the shape the CLI's `--json`, the store and the API share.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.summary().serialize(s)
    }
}

tokio::task_local! {
    static RECORDING: Arc<Mutex<Vec<CallTime>>>;
}

/// Runs `future`, returning what it returned and the forge calls it made.
pub async fn recorded<F: Future>(future: F) -> (F::Output, CallTimes) {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let output = RECORDING.scope(calls.clone(), future).await;
    let calls = std::mem::take(&mut *calls.lock().unwrap_or_else(|e| e.into_inner()));
    (output, CallTimes(calls))
}

/// Notes a call in the recording around it, if there is one.
pub(crate) fn note(call: &str, took: Duration, attempts: u32, ok: bool) {
    let _ = RECORDING.try_with(|calls| {
        calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(CallTime {
                call: call.to_owned(),
                took,
                attempts,
                ok,
            });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(name: &str, ms: u64, attempts: u32, ok: bool) -> CallTime {
        CallTime {
            call: name.to_owned(),
            took: Duration::from_millis(ms),
            attempts,
            ok,
        }
    }

    #[test]
    fn calls_of_one_name_are_summed_in_first_call_order() {
        let times = CallTimes(vec![
            call("find open pull request", 5, 1, true),
            call("create blob", 10, 1, true),
            call("create blob", 20, 3, true),
            call("create blob", 7, 5, false),
        ]);
        let summary = serde_json::to_value(&times).unwrap();
        assert_eq!(
            summary,
            serde_json::json!([
                {"call": "find open pull request", "count": 1, "ms": 5, "retries": 0, "failed": 0},
                {"call": "create blob", "count": 3, "ms": 37, "retries": 6, "failed": 1},
            ])
        );
    }

    #[tokio::test]
    async fn only_calls_inside_a_recording_are_noted() {
        note("outside", Duration::ZERO, 1, true);
        let ((), inside) = recorded(async {
            note("first", Duration::from_millis(1), 1, true);
            tokio::task::yield_now().await;
            note("second", Duration::from_millis(2), 2, false);
        })
        .await;
        let names: Vec<_> = inside.iter().map(|c| c.call.as_str()).collect();
        assert_eq!(names, ["first", "second"]);
        let ((), empty) = recorded(async {}).await;
        assert!(empty.is_empty(), "a new recording starts empty");
    }
}
