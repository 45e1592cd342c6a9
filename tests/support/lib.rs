//! Courier's shared test kit.
//!
//! Everything here drives real tools, never mocks of git:
//! - [`GitServer`]: git's own `git http-backend` behind an in-process axum server on
//!   `127.0.0.1:0` with HTTP Basic token auth (any user name, password = token), the
//!   way GitHub, GitLab and Azure DevOps accept a token over HTTPS;
//! - [`git`]: the git CLI, isolated from the developer's configuration, to create bare
//!   repositories with content, add commits, install hooks and read trees back;
//! - [`zip_bytes`] / [`write_zip`]: result archives built from `(path, bytes)` lists;
//! - [`forges`]: stateful fakes of GitHub, GitLab and Azure DevOps, and the contract
//!   checker that holds their requests to the official API descriptions;
//! - [`keys::Keyring`], [`ssh_keygen`]: GnuPG on a keyring of the test's own, and
//!   ssh-keygen, for the keys of the signing and SSH tests.

mod cli;
pub mod forges;
pub mod keys;
mod server;
mod zips;

/// A `git` command in a directory, isolated from the host's configuration, for tests that
/// need more than [`git`] (standard input, environment).
pub use cli::command as git_command;
pub use cli::{
    BareRepo, Git, TreeEntry, cli_delivery_tree, git, install_pre_receive_hook, make_bare_repo,
};
pub use keys::ssh_keygen;
pub use server::GitServer;

/// The proxy variables Courier reads. The test kit's servers are on 127.0.0.1, so a
/// `courier` the tests start drops any the machine has; a test that wants a proxy sets
/// its own.
pub fn without_proxy_env(command: &mut std::process::Command) -> &mut std::process::Command {
    for name in [
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
        "no_proxy",
        "NO_PROXY",
    ] {
        command.env_remove(name);
    }
    command
}
pub use zips::{write_zip, zip_bytes};
