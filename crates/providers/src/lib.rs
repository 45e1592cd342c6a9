//! Courier providers.

pub mod azure;
pub mod github;
pub mod provider;
pub mod pull_request;
pub mod retry;
