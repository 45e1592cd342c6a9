//! Courier bot.

pub mod store;
