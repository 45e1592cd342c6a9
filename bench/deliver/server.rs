//! The test kit's smart-HTTP git server (git http-backend behind token auth) as a
//! process, for the delivery benchmark. Prints `READY <base url>` and serves until
//! stdin closes.
//!
//! deliver_bench_server REPOS_DIR TOKEN

use std::io::Read;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [root, token] = args.as_slice() else {
        eprintln!("usage: deliver_bench_server REPOS_DIR TOKEN");
        std::process::exit(2);
    };
    let server = courier_testkit::GitServer::start(root.as_ref(), token);
    println!("READY {}", server.url("").trim_end_matches(".git"));
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    drop(server);
}
