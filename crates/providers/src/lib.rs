//! Courier providers.
