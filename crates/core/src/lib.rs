//! Courier's core: the event model, the configuration, routing, artifact download and
//! zip validation. Nothing here speaks git or a provider's API.

pub mod archive;
pub mod config;
pub mod download;
pub mod event;
pub mod paths;
pub mod proxy;
pub mod routing;
pub mod signing;
pub mod template;
pub mod tls;
pub mod tokens;
