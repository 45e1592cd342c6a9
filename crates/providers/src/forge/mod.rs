//! Plumbing the three forges (`github`, `gitlab`, `azure`) share, written once: each forge
//! module keeps its own rules (which answer means what, how it rounds a wait) and calls
//! these for the parts that are the same idea everywhere.
//!
//! - [`http`]: an HTTP answer read whole and decoded from JSON, response headers read as
//!   trimmed text, error chains flattened onto one line, path segments percent-encoded,
//!   and the process's rustls crypto provider (ring).
//! - [`rate_limit`]: the waits a rate-limited answer asks for (`Retry-After` seconds, an
//!   epoch-seconds reset such as `x-ratelimit-reset` or `RateLimit-Reset`).
//! - [`paging`]: reading a paged list with a cap on the number of pages.
//! - [`decorations`]: a refused decoration (unknown label, reviewer) as a warning.

pub(crate) mod decorations;
pub(crate) mod http;
pub(crate) mod paging;
pub(crate) mod rate_limit;
#[cfg(test)]
pub(crate) mod testing;
