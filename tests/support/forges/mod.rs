//! Stateful fakes of the three forges' REST APIs, and the checker that holds every request
//! they receive to the providers' official API descriptions (`tests/contracts/`). The real
//! SDK clients drive the fakes over HTTP on 127.0.0.1, from the provider tests and from the
//! end-to-end tests of the `courier` binary alike.

// A route's function refuses with a whole axum `Response` (`front::Reply`) so that `?` can
// answer early; it is moved once per request of a test fake, where boxing it buys nothing.
#![allow(clippy::result_large_err)]

pub mod azure_fake;
pub mod contract;
pub mod fault;
mod front;
mod git_dir;
pub mod github_fake;
pub mod gitlab_fake;
pub mod hold;

use std::collections::HashMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// A fake's JSON answer; a 204 goes without a body, as the forges send it.
fn answer(status: u16, body: Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap();
    if status == StatusCode::NO_CONTENT {
        return status.into_response();
    }
    (status, axum::Json(body)).into_response()
}

/// Where a branch points in the fake: what a test set with `move_branch`, or a commit id
/// made up from the branch's name.
pub(crate) fn tip_of(tips: &HashMap<String, String>, branch: &str) -> String {
    tips.get(branch).cloned().unwrap_or_else(|| {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in branch.bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
        format!(
            "{hash:016x}{:016x}{:08x}",
            hash.rotate_left(17),
            hash as u32
        )
    })
}
