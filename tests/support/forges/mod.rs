//! Stateful fakes of the three forges' REST APIs, and the checker that holds every request
//! they receive to the providers' official API descriptions (`tests/contracts/`). The real
//! SDK clients drive the fakes over HTTP on 127.0.0.1, from the provider tests and from the
//! end-to-end tests of the `courier` binary alike.

pub mod azure_fake;
pub mod contract;
pub mod fault;
pub mod github_fake;
pub mod gitlab_fake;
