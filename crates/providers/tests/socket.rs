//! With `init_libgit2`, libgit2 opens its connections through Courier's socket stream
//! (`git/socket.rs`, no Nagle delay): a delivery over smart HTTP from a server without
//! partial fetches, which libgit2 fetches from, still fetches as before; the push is
//! Courier's own request (`git/receive_pack.rs`), with the socket timeout
//! `init_libgit2` set, and sends a pack of megabytes in many chunks.
//!
//! Its own test binary: `init_libgit2` sets process-wide libgit2 globals and may only
//! run while no other thread uses libgit2.

mod git_env;

use courier_providers::git::{Outcome, Timeouts, connections_opened, init_libgit2};
use git_env::{Env, bounded, noise, spec};

#[test]
fn a_delivery_over_http_runs_on_couriers_sockets() {
    // SAFETY: this binary's only test, before any thread exists that could use libgit2.
    #[allow(unsafe_code)]
    unsafe { init_libgit2(Timeouts::default().network()) }.expect("configuring libgit2");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bounded(async {
        let env = Env::without_partial_fetch();
        let repo = env.repo("web", &[("README.md", b"hello\n")]);
        // Incompressible, so the pushed pack is as large as the files.
        let big = noise(4 << 20, 7);
        let (_, export) = env.export(&[("big.bin", &big), ("colors.json", b"{}\n")]);
        let ws = env.workspace();

        let before = connections_opened();
        let plan = ws
            .plan(&spec(env.http_remote("web"), Some("tokens"), true), export)
            .await
            .unwrap();
        let Outcome::Push { commit, .. } = plan.outcome().clone() else {
            panic!("expected a push, got {:?}", plan.outcome());
        };
        let fetched = connections_opened();
        assert!(fetched > before, "the fetch opened no connection of ours");
        assert!(ws.push(plan).await.unwrap().pushed);
        assert_eq!(
            connections_opened(),
            fetched,
            "the push went through libgit2, not Courier's own request"
        );

        assert_eq!(
            repo.rev_parse("refs/heads/courier/tokens").as_deref(),
            Some(commit.as_str())
        );
        assert!(repo.read_file("courier/tokens", "tokens/big.bin") == big);
    }));
}
