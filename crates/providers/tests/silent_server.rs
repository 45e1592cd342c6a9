//! A git server that accepts a connection and never answers is given up by libgit2's
//! socket timeout, so the blocking thread, and the repository lock it holds, come back:
//! over `http://`, and over `https://`, where the silence starts with the TLS handshake.
//!
//! Its own test binary with a single test: `init_libgit2` sets process-wide libgit2
//! globals and may only run while no other thread uses libgit2.

mod git_env;

use std::io::Read;
use std::time::{Duration, Instant};

use courier_providers::git::{GitError, GitWorkspace, Remote, Timeouts, init_libgit2};
use git_env::{Env, spec};

const SOCKET_TIMEOUT: Duration = Duration::from_secs(2);

#[test]
fn a_silent_server_is_given_up_and_the_repository_is_free_again() {
    // SAFETY: this binary's only test, before any thread exists that could use libgit2.
    #[allow(unsafe_code)]
    unsafe { init_libgit2(SOCKET_TIMEOUT) }.expect("configuring libgit2");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // On failure libgit2 may still be blocked on the socket: the runtime is shut down
    // without waiting for its blocking threads, so a broken timeout fails instead of hanging.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(async {
          for scheme in ["http", "https"] {
            let (addr, closed) = silent_server();
            let env = Env::new();
            // Courier's own limit is far away: only the socket timeout can end this.
            let timeouts = Timeouts {
                fetch: Duration::from_secs(120),
                lock: Duration::from_secs(1),
                ..Default::default()
            };
            let ws = GitWorkspace::new(env.cache(), timeouts).unwrap();
            let remote = Remote::new(&format!("{scheme}://{addr}/web.git"), None).unwrap();
            let (_, export) = env.export(&[("a.txt", b"a")]);

            let started = Instant::now();
            let err = tokio::time::timeout(
                Duration::from_secs(30),
                ws.plan(&spec(remote.clone(), None, false), export.clone()),
            )
            .await
            .expect("the fetch from a silent server never ended")
            .unwrap_err();
            assert!(
                matches!(&err, GitError::Transient { detail, .. } if detail.contains("timed out")),
                "{scheme}: {err:?}"
            );
            assert!(
                err.is_transient(),
                "a silent server is worth a retry: {err:?}"
            );
            assert!(
                started.elapsed() >= SOCKET_TIMEOUT,
                "{:?}",
                started.elapsed()
            );
            closed
                .recv_timeout(Duration::from_secs(10))
                .expect("libgit2 never hung up on the silent server");

            // The thread came back and released the repository: the next delivery gets the
            // lock at once (1 s allowed) and fails on the silent server again, not on the lock.
            let err = ws
                .plan(&spec(remote, None, false), export)
                .await
                .unwrap_err();
            assert!(matches!(err, GitError::Transient { .. }), "{scheme}: {err:?}");
          }
        })
    }));
    runtime.shutdown_background();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// A server that accepts connections and never says a word; the receiver hears each time
/// a client hangs up.
fn silent_server() -> (std::net::SocketAddr, std::sync::mpsc::Receiver<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (closed_tx, closed) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let closed_tx = closed_tx.clone();
            std::thread::spawn(move || {
                let mut stream = stream.unwrap();
                let mut buf = [0u8; 4096];
                while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
                let _ = closed_tx.send(());
            });
        }
    });
    (addr, closed)
}
