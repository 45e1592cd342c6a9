//! Courier providers.

pub mod github;
pub mod gitlab;
pub mod provider;
pub mod pull_request;
pub mod retry;
