//! `/readyz` when PostgreSQL stops answering: `courier serve` reaches the database
//! through a TCP relay the test controls; cutting the relay (open connections dropped, new
//! ones accepted and never answered, as a database host that froze or fell off the
//! network) must turn readiness into a prompt 503 that names the store, not a request
//! that hangs until the pool gives up.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::serve::{ServeCommand, wait_until};
use tokio::net::{TcpListener, TcpStream};

/// Relays 127.0.0.1:<port> to `target` until `cut` is set; from then on it drops every
/// relayed connection and holds new ones open without a byte.
struct Relay {
    port: u16,
    cut: Arc<AtomicBool>,
    _runtime: tokio::runtime::Runtime,
}

impl Relay {
    fn start(target: String) -> Relay {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let flag = cut.clone();
        runtime.spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                let (target, cut) = (target.clone(), flag.clone());
                tokio::spawn(async move {
                    if cut.load(Ordering::SeqCst) {
                        // Accepted, never answered: keep it open for a while.
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        return;
                    }
                    let Ok(mut server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let relay = tokio::io::copy_bidirectional(&mut client, &mut server);
                    let cut_off = async {
                        while !cut.load(Ordering::SeqCst) {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    };
                    tokio::select! {
                        _ = relay => {}
                        _ = cut_off => {}
                    }
                });
            }
        });
        Relay {
            port,
            cut,
            _runtime: runtime,
        }
    }
}

#[test]
fn readiness_answers_503_within_a_second_when_postgres_stops_answering() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Some(database) = runtime.block_on(common::postgres_database_url()) else {
        return;
    };
    let url = url::Url::parse(&database).unwrap();
    let relay = Relay::start(format!("127.0.0.1:{}", url.port().unwrap()));
    let mut relayed = url.clone();
    relayed.set_port(Some(relay.port)).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("courier.yaml");
    std::fs::write(
        &config,
        format!("listen: 127.0.0.1:0\ndata_dir: ./data\nstore: {relayed}\nworkers: 1\nhooks:\n  - match: any\n    targets: []\n"),
    )
    .unwrap();
    let server = ServeCommand::new(dir.path(), &config, &dir.path().join("serve.log")).start();
    wait_until("readiness", || {
        server.request("GET", "/readyz", "", "").0 == 200
    });

    relay.cut.store(true, Ordering::SeqCst);
    // The relay notices within 20 ms and drops the pool's connections.
    std::thread::sleep(Duration::from_millis(200));
    let asked = Instant::now();
    let (status, ready) = server.request("GET", "/readyz", "", "");
    let took = asked.elapsed();
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["status"], "not_ready", "{ready}");
    assert_eq!(ready["backend"], "postgres", "{ready}");
    assert!(
        ready["store"]
            .as_str()
            .is_some_and(|s| s.contains("no answer within 1000 ms")),
        "{ready}"
    );
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
    // A scrape is not held by the store either: it answers, without the queue gauges.
    let asked = Instant::now();
    let (status, metrics) = common::serve::http(server.addr, "GET", "/metrics", "", "");
    assert_eq!(status, 200);
    assert!(!metrics.contains("courier_queue_depth"), "{metrics}");
    assert!(asked.elapsed() < Duration::from_secs(5));
}
