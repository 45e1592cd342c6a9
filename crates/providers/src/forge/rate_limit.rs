//! How long a rate-limited answer asks Courier to wait, read from its headers. The forges
//! agree on the headers' forms (`Retry-After` in seconds; a reset as epoch seconds:
//! GitHub's and Azure DevOps' `x-ratelimit-reset`, GitLab's `RateLimit-Reset`) and differ
//! in which header counts when and how a wait is rounded; those rules stay in each forge's
//! `error.rs`, the reading is here.
//!
//! `Retry-After` may also be an HTTP date (RFC 9110 §10.2.3). No forge Courier speaks to
//! sends one, and Courier has never read it: a date is not a number of seconds, so
//! [`retry_after`] gives `None` and the forge falls back to its next rule.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::http::ResponseHeaders;

/// What GitLab and Azure DevOps wait when a 429 carries neither `Retry-After` nor a reset
/// (a proxy in front of the forge answering bare).
pub(crate) const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// A `Retry-After` value in seconds (`"120"`), or `None` when it is not a number.
pub(crate) fn parse_retry_after(value: &str) -> Option<u64> {
    value.trim().parse::<u64>().ok()
}

/// Seconds from `now` until the reset an epoch-seconds value names (`"1700000000"`);
/// zero when it has passed, `None` when it is not a number.
pub(crate) fn parse_reset(value: &str, now: SystemTime) -> Option<u64> {
    let reset = value.trim().parse::<u64>().ok()?;
    let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    Some(reset.saturating_sub(now))
}

/// The answer's `Retry-After`, in seconds.
pub(crate) fn retry_after(headers: &impl ResponseHeaders) -> Option<u64> {
    headers.text("retry-after").and_then(parse_retry_after)
}

/// Seconds until the reset the epoch-seconds header `name` names.
pub(crate) fn until_reset(
    headers: &impl ResponseHeaders,
    name: &'static str,
    now: SystemTime,
) -> Option<u64> {
    headers.text(name).and_then(|value| parse_reset(value, now))
}

#[cfg(test)]
mod tests {
    use http::HeaderMap;

    use super::*;
    use crate::forge::testing::{at, headers};

    #[test]
    fn retry_after_reads_seconds() {
        assert_eq!(parse_retry_after("120"), Some(120));
        assert_eq!(parse_retry_after(" 7 "), Some(7));
        assert_eq!(parse_retry_after("0"), Some(0));
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("1.5"), None);
        assert_eq!(parse_retry_after(""), None);
        assert_eq!(retry_after(&headers(&[("retry-after", "30")])), Some(30));
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn retry_after_as_an_http_date_is_not_read_as_seconds() {
        // The header's other form; the forges then fall back to their reset or default.
        let date = "Wed, 21 Oct 2015 07:28:00 GMT";
        assert_eq!(parse_retry_after(date), None);
        assert_eq!(retry_after(&headers(&[("retry-after", date)])), None);
    }

    #[test]
    fn resets_are_epoch_seconds_counted_from_now() {
        assert_eq!(parse_reset("1000120", at(1_000_000)), Some(120));
        assert_eq!(parse_reset(" 1000120\t", at(1_000_000)), Some(120));
        // A reset already past is no wait, not an underflow.
        assert_eq!(parse_reset("999000", at(1_000_000)), Some(0));
        assert_eq!(parse_reset("soon", at(0)), None);
        // A clock before 1970 counts from zero.
        assert_eq!(
            parse_reset("5", UNIX_EPOCH - Duration::from_secs(10)),
            Some(5)
        );
        let map = headers(&[("x-ratelimit-reset", "1042"), ("ratelimit-reset", "1100")]);
        assert_eq!(until_reset(&map, "x-ratelimit-reset", at(1_000)), Some(42));
        assert_eq!(until_reset(&map, "ratelimit-reset", at(1_000)), Some(100));
        assert_eq!(until_reset(&map, "x-reset-missing", at(1_000)), None);
    }
}
