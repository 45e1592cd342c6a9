//! Courier's providers: the git workspace that writes an export into a repository and
//! pushes it ([`git`]), and the pull-request providers on top of it: one
//! [`provider::Provider`] trait, its forges ([`github`], [`gitlab`], [`azure`]), the
//! open-or-update logic written once over the trait ([`pull_request`]) and the one retry
//! policy ([`retry`]), which times every call ([`forge_calls`]). What the forges share (answers, rate-limit headers, paging,
//! refused decorations) is written once in the crate-private `forge` module; [`connect`]
//! builds a forge's provider from a configured connection; [`api_commit`] creates a
//! planned commit through a forge's API instead of pushing it.

pub mod api_commit;
pub mod azure;
pub mod connect;
mod forge;
pub mod forge_calls;
pub mod git;
pub mod github;
pub mod gitlab;
pub mod provider;
pub mod pull_request;
pub mod retry;
