//! One retry policy for every forge call: providers map answers to [`ProviderError`] and
//! never retry; this module decides whether and how long to wait.
//!
//! Transient failures (timeouts, connection errors, 5xx) back off exponentially with
//! jitter, so a fleet of workers hitting the same outage does not retry in lock-step.
//! Rate limits wait exactly as long as the forge asked, but never longer than
//! [`RetryPolicy::max_rate_limit_wait`]: a wait of an hour is better reported (the
//! delivery fails with `RateLimited` and can be replayed) than spent holding a worker.

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use crate::forge_calls;
use crate::provider::ProviderError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Calls in total, the first one included. 1 disables retries.
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles on each further attempt.
    pub base_delay: Duration,
    /// Ceiling for one backoff delay (before jitter).
    pub max_delay: Duration,
    /// The longest rate-limit wait honoured; a forge asking for more fails the call.
    pub max_rate_limit_wait: Duration,
}

impl Default for RetryPolicy {
    /// 5 attempts, 1 s doubling up to 30 s, rate-limit waits up to 5 minutes.
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            max_rate_limit_wait: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// Millisecond backoff for tests; rate-limit waits still honour the forge (up to 5 s)
    /// so tests can measure that they do.
    pub fn fast() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
            max_rate_limit_wait: Duration::from_secs(5),
        }
    }

    /// How long to wait before attempt `attempt + 1` after `error` ended attempt
    /// `attempt` (1-based), or `None` to give up and return the error.
    pub fn delay_after(&self, attempt: u32, error: &ProviderError) -> Option<Duration> {
        if attempt >= self.max_attempts || !error.is_transient() {
            return None;
        }
        if let Some(wait) = error.retry_after() {
            return (wait <= self.max_rate_limit_wait).then_some(wait);
        }
        let exponent = attempt.saturating_sub(1).min(16);
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << exponent)
            .min(self.max_delay);
        // "Equal jitter": at least half the ceiling, so delays still grow, plus a random
        // share of the other half.
        let half = ceiling / 2;
        Some(half + half.mul_f64(random_unit()))
    }

    /// Runs `operation` until it succeeds, fails permanently, or the policy gives up.
    /// `what` names the call in logs and in the delivery's [forge call
    /// times](crate::forge_calls).
    pub async fn run<T, F, Fut>(&self, what: &str, mut operation: F) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let started = Instant::now();
        let mut attempt = 1;
        loop {
            let error = match operation().await {
                Ok(value) => {
                    forge_calls::note(what, started.elapsed(), attempt, true);
                    return Ok(value);
                }
                Err(error) => error,
            };
            match self.delay_after(attempt, &error) {
                Some(delay) => {
                    tracing::warn!(
                        call = what,
                        attempt,
                        delay_ms = delay.as_millis() as u64,
                        %error,
                        "retrying forge call"
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                None => {
                    forge_calls::note(what, started.elapsed(), attempt, false);
                    return Err(error);
                }
            }
        }
    }
}

/// A number in [0, 1) that differs between calls and processes. Jitter needs spread, not
/// cryptographic quality: the standard library's randomly keyed hasher is enough and
/// spares a dependency.
fn random_unit() -> f64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    );
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn transient() -> ProviderError {
        ProviderError::Transient {
            provider: "test",
            message: "503".into(),
        }
    }

    #[test]
    fn backoff_grows_within_its_ceiling_with_jitter() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            max_rate_limit_wait: Duration::from_secs(1),
        };
        let mut seen = std::collections::HashSet::new();
        for attempt in 1..=9 {
            let ceiling = (100u64 << (attempt - 1)).min(1000);
            for _ in 0..20 {
                let delay = policy.delay_after(attempt, &transient()).unwrap();
                assert!(delay >= Duration::from_millis(ceiling / 2), "{delay:?}");
                assert!(delay <= Duration::from_millis(ceiling), "{delay:?}");
                seen.insert(delay);
            }
        }
        assert!(seen.len() > 20, "jitter should spread delays, got {seen:?}");
        assert_eq!(policy.delay_after(10, &transient()), None);
    }

    #[test]
    fn permanent_errors_are_not_retried() {
        let policy = RetryPolicy::default();
        for error in [
            ProviderError::Auth {
                provider: "t",
                message: "m".into(),
            },
            ProviderError::NotFound {
                provider: "t",
                what: "w".into(),
            },
            ProviderError::Invalid {
                provider: "t",
                message: "m".into(),
            },
            ProviderError::Conflict {
                provider: "t",
                message: "m".into(),
            },
        ] {
            assert_eq!(policy.delay_after(1, &error), None, "{error}");
        }
    }

    #[test]
    fn rate_limits_wait_as_asked_up_to_the_cap() {
        let policy = RetryPolicy::default();
        let limited = |secs| ProviderError::RateLimited {
            provider: "t",
            retry_after: Duration::from_secs(secs),
        };
        assert_eq!(
            policy.delay_after(1, &limited(42)),
            Some(Duration::from_secs(42))
        );
        assert_eq!(policy.delay_after(1, &limited(301)), None);
    }

    #[tokio::test]
    async fn run_retries_transient_failures_then_returns_the_success() {
        let calls = AtomicU32::new(0);
        let result = RetryPolicy::fast()
            .run("test", || async {
                if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(transient())
                } else {
                    Ok(7)
                }
            })
            .await;
        assert_eq!(result, Ok(7));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn run_gives_up_after_max_attempts_with_the_last_error() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = RetryPolicy::fast()
            .run("test", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(transient())
            })
            .await;
        assert_eq!(result, Err(transient()));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }
}
