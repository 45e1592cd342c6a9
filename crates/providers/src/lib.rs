//! Courier providers.

pub mod github;
pub mod provider;
pub mod pull_request;
pub mod retry;
