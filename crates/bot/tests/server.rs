//! `courier serve` end to end over real TCP: the binary as a child process, a real
//! smart-HTTP git server as the target, the artifact from a local HTTP server. Then the
//! crash cases: `kill -9` in the middle of a delivery, and SIGTERM, each followed by a
//! restart on the same data directory that must finish the work exactly once.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use courier_testkit::{BareRepo, GitServer, make_bare_repo, zip_bytes};
use serde_json::Value;

const GIT_TOKEN: &str = "git-token-3f9c2a7d51e84b06";
const HOOK_TOKEN: &str = "webhook-token-0123456789";
const ADMIN_TOKEN: &str = "admin-token-abcdef012345";
const SEED_V1: &str = include_str!("../../../tests/fixtures/payloads/v1-seed.json");
/// Bound on anything a test waits for.
const WAIT: Duration = Duration::from_secs(90);

/// Serves the export zip; when `stall` is set, requests hang (a delivery stuck mid-flight).
struct ArtifactServer {
    addr: SocketAddr,
    stall: Arc<AtomicBool>,
    /// When non-zero, requests are answered with this status instead of the zip.
    fail_with: Arc<AtomicU16>,
    hits: Arc<AtomicUsize>,
    _runtime: tokio::runtime::Runtime,
}

impl ArtifactServer {
    fn start(zip: Vec<u8>) -> ArtifactServer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let stall = Arc::new(AtomicBool::new(false));
        let hits = Arc::new(AtomicUsize::new(0));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let zip = Arc::new(zip);
        let fail_with = Arc::new(AtomicU16::new(0));
        let (s, h, f) = (stall.clone(), hits.clone(), fail_with.clone());
        let app = axum::Router::new().route(
            "/result.zip",
            axum::routing::get(move || {
                let (zip, stall, hits, fail) = (zip.clone(), s.clone(), h.clone(), f.clone());
                async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    while stall.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    match fail.load(Ordering::SeqCst) {
                        0 => (axum::http::StatusCode::OK, zip.as_ref().clone()),
                        code => (axum::http::StatusCode::from_u16(code).unwrap(), Vec::new()),
                    }
                }
            }),
        );
        runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
        ArtifactServer {
            addr,
            stall,
            fail_with,
            hits,
            _runtime: runtime,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/result.zip", self.addr)
    }
}

struct Setup {
    dir: tempfile::TempDir,
    _git: GitServer,
    repo: BareRepo,
    artifacts: ArtifactServer,
    config: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let repos = dir.path().join("repos");
        std::fs::create_dir_all(&repos).unwrap();
        let repo = make_bare_repo(&repos, "web", "main", &[("README.md", b"# web\n")]);
        let git = GitServer::start(&repos, GIT_TOKEN);
        let artifacts = ArtifactServer::start(zip_bytes(&[
            ("colors.css", b":root { --primary: #1463ff; }\n"),
            ("nested/typography.css", b":root { --body: 16px; }\n"),
        ]));
        let config = dir.path().join("courier.yaml");
        std::fs::write(
            &config,
            format!(
                r#"
listen: 127.0.0.1:0
data_dir: ./data
workers: 2
webhook: {{ tokens: ["{HOOK_TOKEN}"] }}
admin: {{ tokens: ["{ADMIN_TOKEN}"] }}
platform:
  insecure_hosts: ["127.0.0.1"]
connections:
  server:
    kind: git
    token: "${{TEST_GIT_TOKEN}}"
hooks:
  - match: {{ hook_id: "5" }}
    targets:
      - connection: server
        repository: {url}
        branch: main
        relative_path: tokens
"#,
                url = git.url("web"),
            ),
        )
        .unwrap();
        Setup {
            dir,
            _git: git,
            repo,
            artifacts,
            config,
        }
    }

    fn payload(&self) -> String {
        let seed_url = "https://example.supernova.io/codegen/job-results/2/example-01234567-89ab-cdef/result.zip";
        assert!(SEED_V1.contains(seed_url));
        SEED_V1.replace(seed_url, &self.artifacts.url())
    }

    fn serve(&self, log_name: &str) -> Server {
        Server::start(
            self.dir.path(),
            &self.config,
            &self.dir.path().join(log_name),
        )
    }
}

/// A running `courier serve`; killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Server {
    fn start(cwd: &Path, config: &Path, log: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_courier"))
            .current_dir(cwd)
            .args(["serve", "--config"])
            .arg(config)
            .args(["--listen", "127.0.0.1:0", "--lease-seconds", "3"])
            .args(["--shutdown-grace-seconds", "2"])
            .env_remove("COURIER_CONFIG")
            .env_remove("COURIER_LISTEN")
            .env("COURIER_LOG", "info")
            .env("TEST_GIT_TOKEN", GIT_TOKEN)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", cwd)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .expect("start courier serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.parse::<SocketAddr>().unwrap());
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "courier serve printed no address: {}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
        };
        Server {
            child,
            addr,
            log: log.to_owned(),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn request(&self, method: &str, path: &str, token: &str, body: &str) -> (u16, Value) {
        let (status, text) = http(self.addr, method, path, token, body);
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn deliveries(&self) -> Vec<Value> {
        let (status, list) = self.request("GET", "/api/deliveries", ADMIN_TOKEN, "");
        assert_eq!(status, 200, "{list}");
        list["deliveries"].as_array().unwrap().clone()
    }

    /// Polls the API until the delivery reaches a finished state, and returns it.
    fn wait_finished(&self, id: &str) -> Value {
        let started = Instant::now();
        loop {
            let (status, detail) =
                self.request("GET", &format!("/api/deliveries/{id}"), ADMIN_TOKEN, "");
            assert_eq!(status, 200, "{detail}");
            let state = detail["delivery"]["state"].as_str().unwrap().to_owned();
            if !["queued", "running", "retrying"].contains(&state.as_str()) {
                return detail;
            }
            assert!(
                started.elapsed() < WAIT,
                "delivery {id} still {state} after {WAIT:?}: {detail}\nlog:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn post_event(&self, body: &str) -> String {
        let (status, answer) = self.request("POST", "/webhooks/supernova", HOOK_TOKEN, body);
        assert_eq!(status, 202, "{answer}");
        let ids = answer["deliveries"].as_array().unwrap();
        assert_eq!(ids.len(), 1, "{answer}");
        ids[0].as_str().unwrap().to_owned()
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "courier serve did not exit after SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill_hard(mut self) {
        // `Child::kill` is SIGKILL on Unix: no chance to clean up, as in a crash.
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 client: one request per connection, fixed-length answers.
fn http(addr: SocketAddr, method: &str, path: &str, token: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "this client reads only fixed-length answers"
    );
    (status, body.to_owned())
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < WAIT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The branch holds the export on top of the base, in exactly one commit.
fn assert_delivered_once(setup: &Setup, detail: &Value) {
    assert_eq!(detail["delivery"]["state"], "delivered", "{detail}");
    let head = detail["delivery"]["head_branch"].as_str().unwrap();
    let commit = detail["delivery"]["commit"].as_str().expect("a commit");
    assert_eq!(setup.repo.rev_parse(head).as_deref(), Some(commit));
    let base = setup.repo.rev_parse("main").unwrap();
    assert_eq!(
        setup.repo.parents(head),
        vec![base],
        "one commit on the base"
    );
    assert_eq!(
        setup.repo.read_file(head, "tokens/colors.css"),
        b":root { --primary: #1463ff; }\n"
    );
    assert_eq!(
        setup.repo.read_file(head, "tokens/nested/typography.css"),
        b":root { --body: 16px; }\n"
    );
    assert_eq!(setup.repo.read_file(head, "README.md"), b"# web\n");
    assert_eq!(detail["delivery"]["files"]["added"], 2, "{detail}");
}

#[test]
fn a_webhook_over_tcp_is_delivered_to_the_repository() {
    let setup = Setup::new();
    let server = setup.serve("serve.log");
    let (status, health) = server.request("GET", "/healthz", "", "");
    assert_eq!((status, &health["status"]), (200, &Value::from("ok")));
    wait_until("readiness", || {
        server.request("GET", "/readyz", "", "").0 == 200
    });

    let id = server.post_event(&setup.payload());
    let detail = server.wait_finished(&id);
    assert_delivered_once(&setup, &detail);
    assert_eq!(setup.artifacts.hits.load(Ordering::SeqCst), 1);

    // Metrics saw the delivery.
    let (status, metrics) = http(server.addr, "GET", "/metrics", "", "");
    assert_eq!(status, 200);
    for line in [
        "courier_webhooks_total{result=\"accepted\"} 1",
        "courier_deliveries_total{outcome=\"delivered\",provider=\"git\"} 1",
        "courier_delivery_attempts_total 1",
        "courier_queue_depth 0",
    ] {
        assert!(metrics.contains(line), "{line} in:\n{metrics}");
    }
    let log = server.log();
    assert!(
        !log.contains(GIT_TOKEN),
        "the git token leaked into the log"
    );
    assert!(
        !log.contains(HOOK_TOKEN),
        "the webhook token leaked into the log"
    );

    // The same webhook again: a duplicate, nothing new to do.
    let (status, again) =
        server.request("POST", "/webhooks/supernova", HOOK_TOKEN, &setup.payload());
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["deliveries"][0], id.as_str());
    assert_eq!(server.deliveries().len(), 1);
}

#[test]
fn a_server_killed_mid_delivery_finishes_it_after_a_restart() {
    let setup = Setup::new();
    setup.artifacts.stall.store(true, Ordering::SeqCst);
    let server = setup.serve("first.log");
    let id = server.post_event(&setup.payload());
    // The worker is downloading: the delivery is mid-flight.
    wait_until("the download to start", || {
        setup.artifacts.hits.load(Ordering::SeqCst) >= 1
    });
    let running = server.deliveries();
    assert_eq!(running[0]["state"], "running", "{running:?}");
    server.kill_hard();

    setup.artifacts.stall.store(false, Ordering::SeqCst);
    let server = setup.serve("second.log");
    let detail = server.wait_finished(&id);
    assert_delivered_once(&setup, &detail);
    // The first attempt ended with the crash (its lease expired); the second delivered.
    let attempts = detail["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{detail}");
    assert_eq!(attempts[0]["outcome"], "lease_expired", "{detail}");
    assert_eq!(attempts[1]["outcome"], "delivered", "{detail}");
    let head = detail["delivery"]["head_branch"].as_str().unwrap();
    let count = courier_testkit::git(
        setup.repo.path.as_path(),
        ["rev-list", "--count", &format!("main..{head}")],
    );
    assert_eq!(count.trim(), "1");
}

#[test]
fn sigterm_exits_cleanly_and_a_restart_finishes_leftover_work() {
    let setup = Setup::new();
    setup.artifacts.stall.store(true, Ordering::SeqCst);
    let server = setup.serve("first.log");
    let id = server.post_event(&setup.payload());
    wait_until("the download to start", || {
        setup.artifacts.hits.load(Ordering::SeqCst) >= 1
    });
    let log = setup.dir.path().join("first.log");
    let status = server.terminate();
    assert_eq!(
        status.code(),
        Some(0),
        "exit after SIGTERM; log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );

    setup.artifacts.stall.store(false, Ordering::SeqCst);
    let server = setup.serve("second.log");
    let detail = server.wait_finished(&id);
    assert_delivered_once(&setup, &detail);
    let status = server.terminate();
    assert_eq!(status.code(), Some(0));
}

/// Runs the `courier` CLI against the setup's configuration (and so its store).
fn courier_cli(setup: &Setup, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_courier"))
        .current_dir(setup.dir.path())
        .args(args)
        .arg("--config")
        .arg(&setup.config)
        .env_remove("COURIER_CONFIG")
        .env("TEST_GIT_TOKEN", GIT_TOKEN)
        .env("HOME", setup.dir.path())
        .output()
        .expect("run courier")
}

#[test]
fn deliveries_and_replay_from_the_cli_against_a_running_server() {
    let setup = Setup::new();
    let server = setup.serve("serve.log");
    let id = server.post_event(&setup.payload());
    let first = server.wait_finished(&id);
    assert_delivered_once(&setup, &first);
    let job = first["job"]["id"].as_str().unwrap().to_owned();

    let out = courier_cli(&setup, &["deliveries", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["state"], "delivered");
    let out = courier_cli(&setup, &["deliveries", "--state", "failed", "--json"]);
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed, Value::Array(vec![]));
    let out = courier_cli(&setup, &["deliveries"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains(&id) && table.contains("delivered"),
        "{table}"
    );

    // Replaying the delivery runs it again; the branch already holds the export.
    let out = courier_cli(&setup, &["replay", &id]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{id} queued")
    );
    let again = server.wait_finished(&id);
    assert_eq!(again["delivery"]["state"], "up_to_date", "{again}");
    assert_eq!(again["delivery"]["commit"], first["delivery"]["commit"]);
    assert_eq!(again["attempts"].as_array().unwrap().len(), 2);

    // A job id replays every delivery of the job.
    let out = courier_cli(&setup, &["replay", &job, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let requeued: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(requeued[0]["id"], id.as_str());
    assert_eq!(requeued[0]["state"], "queued");
    let third = server.wait_finished(&id);
    assert_eq!(third["delivery"]["state"], "up_to_date", "{third}");
    let head = third["delivery"]["head_branch"].as_str().unwrap();
    let base = setup.repo.rev_parse("main").unwrap();
    assert_eq!(setup.repo.parents(head), vec![base], "still one commit");

    let out = courier_cli(&setup, &["replay", "01M81CVA8KSC3DFWVKDX314RFZ"]);
    assert_eq!(out.status.code(), Some(2), "unknown id: {out:?}");
    let out = courier_cli(&setup, &["replay", "not-an-id"]);
    assert_eq!(out.status.code(), Some(2), "invalid id: {out:?}");
}

#[test]
fn a_transient_download_failure_is_retried_with_backoff() {
    let setup = Setup::new();
    setup.artifacts.fail_with.store(503, Ordering::SeqCst);
    let server = setup.serve("serve.log");
    let id = server.post_event(&setup.payload());
    let mut retrying = Value::Null;
    wait_until("the delivery to be retrying", || {
        let (_, detail) = server.request("GET", &format!("/api/deliveries/{id}"), ADMIN_TOKEN, "");
        let done = detail["delivery"]["state"] == "retrying";
        retrying = detail;
        done
    });
    let delivery = &retrying["delivery"];
    let error = delivery["last_error"].as_str().unwrap();
    assert!(error.contains("503"), "{retrying}");
    assert!(delivery["next_attempt_at"].is_string(), "{retrying}");
    assert_eq!(retrying["attempts"][0]["outcome"], "retry", "{retrying}");
    assert!(delivery["lease_owner"].is_null());

    // The platform recovers: the next attempt (after the backoff, at most 5 s) delivers.
    setup.artifacts.fail_with.store(0, Ordering::SeqCst);
    let detail = server.wait_finished(&id);
    assert_delivered_once(&setup, &detail);
    let attempts = detail["attempts"].as_array().unwrap();
    assert!(attempts.len() >= 2, "{detail}");
    assert_eq!(attempts.last().unwrap()["outcome"], "delivered");
}
