//! The `courier` binary's library: the command line, the HTTP server, the durable store,
//! the workers, and the orchestration of one delivery from an event to a pushed branch.
//! `main.rs` only parses and calls in here, so tests drive exactly what users run.

pub mod cli;
pub mod context;
pub mod delivery;
pub mod logging;
pub mod metrics;
pub mod server;
pub mod store;
pub mod worker;
