//! Courier providers.

pub mod provider;
