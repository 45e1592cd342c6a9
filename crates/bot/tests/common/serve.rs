//! `courier serve` as a child process, for tests over real TCP: start it on a free port,
//! talk HTTP to it, kill it hard or stop it with SIGTERM. Also the artifact server the
//! platform's signed URLs point at, which can be told to stall or fail.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Bound on anything a test waits for.
pub const WAIT: Duration = Duration::from_secs(90);

/// The platform's first-version sample event, as the seeds give it.
pub const SEED_V1: &str = include_str!("../../../../tests/fixtures/payloads/v1-seed.json");
/// The artifact URL in [`SEED_V1`].
pub const SEED_ARTIFACT_URL: &str =
    "https://example.supernova.io/codegen/job-results/2/example-01234567-89ab-cdef/result.zip";

/// [`SEED_V1`] with its artifact URL replaced by `artifact_url` (a local server's).
pub fn seed_payload(artifact_url: &str) -> String {
    assert!(SEED_V1.contains(SEED_ARTIFACT_URL));
    SEED_V1.replace(SEED_ARTIFACT_URL, artifact_url)
}

/// Serves the export zip at `/result.zip`; when `stall` is set, requests hang (a delivery
/// stuck mid-flight).
///
/// Also plays the platform API under `/api/v2`: the job's result endpoint
/// (`.../jobs/{job}/result`, the zip, only with [`PLATFORM_TOKEN`]) and the job itself
/// (`.../jobs/{job}`, with the status in `job_status`, or 404 when it is `None`).
pub struct ArtifactServer {
    pub addr: SocketAddr,
    /// The export served from now on (the next job's).
    pub zip: Arc<std::sync::Mutex<Vec<u8>>>,
    pub stall: Arc<AtomicBool>,
    /// When non-zero, requests are answered with this status instead of the zip.
    pub fail_with: Arc<AtomicU16>,
    pub hits: Arc<AtomicUsize>,
    /// What the platform API says the job's status is; `None`: it does not know the job.
    pub job_status: Arc<std::sync::Mutex<Option<String>>>,
    /// Requests to the platform API, as `METHOD path`, with whether the PAT came along.
    pub api_requests: Arc<std::sync::Mutex<Vec<(String, bool)>>>,
    _runtime: tokio::runtime::Runtime,
}

/// The personal access token the fake platform API accepts.
pub const PLATFORM_TOKEN: &str = "platform-pat-7e1d0c9b8a";

impl ArtifactServer {
    pub fn start(zip: Vec<u8>) -> ArtifactServer {
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
        let zip = Arc::new(std::sync::Mutex::new(zip));
        let zip_for_api = zip.clone();
        let served = zip.clone();
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
                        0 => (axum::http::StatusCode::OK, zip.lock().unwrap().clone()),
                        code => (axum::http::StatusCode::from_u16(code).unwrap(), Vec::new()),
                    }
                }
            }),
        );
        let job_status = Arc::new(std::sync::Mutex::new(Some("Success".to_owned())));
        let api_requests = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (status, seen, zip) = (job_status.clone(), api_requests.clone(), zip_for_api);
        let app = app.route(
            "/api/v2/{*rest}",
            axum::routing::get(move |request: axum::extract::Request| {
                let (status, seen, zip) = (status.clone(), seen.clone(), zip.clone());
                async move { platform_api(request, &status, &seen, &zip.lock().unwrap()) }
            }),
        );
        runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
        ArtifactServer {
            addr,
            zip: served,
            stall,
            fail_with,
            hits,
            job_status,
            api_requests,
            _runtime: runtime,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/result.zip", self.addr)
    }

    /// The platform API base URL (`platform.api_url`).
    pub fn api_url(&self) -> String {
        format!("http://{}/api/v2", self.addr)
    }

    pub fn api_requests(&self) -> Vec<(String, bool)> {
        self.api_requests.lock().unwrap().clone()
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// The fake platform API: the job's result endpoint and the job itself.
fn platform_api(
    request: axum::extract::Request,
    status: &std::sync::Mutex<Option<String>>,
    seen: &std::sync::Mutex<Vec<(String, bool)>>,
    zip: &[u8],
) -> axum::response::Response {
    use axum::http::StatusCode;
    use axum::response::IntoResponse as _;
    let path = request.uri().path().to_owned();
    let authorized = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .is_some_and(|v| v.as_bytes() == format!("Bearer {PLATFORM_TOKEN}").as_bytes());
    seen.lock()
        .unwrap()
        .push((format!("{} {path}", request.method()), authorized));
    if !authorized {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if path.ends_with("/result") {
        return zip.to_vec().into_response();
    }
    match status.lock().unwrap().clone() {
        Some(status) => {
            axum::Json(serde_json::json!({ "job": { "status": status } })).into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A payload made from [`SEED_V1`] with another platform job id.
pub fn with_job_id(payload: &str, id: &str) -> String {
    let seed = "\"id\": \"6\",\n    \"status\"";
    assert!(
        payload.contains(seed),
        "the seed's job id is where expected"
    );
    payload.replace(seed, &format!("\"id\": \"{id}\",\n    \"status\""))
}

/// How to start `courier serve`: the working directory, the config, where its log goes,
/// and what to add to its environment and arguments.
pub struct ServeCommand {
    pub cwd: PathBuf,
    pub config: PathBuf,
    pub log: PathBuf,
    pub env: Vec<(String, String)>,
    pub args: Vec<String>,
    /// Short, so that crash tests see a dead server's work taken over soon.
    pub lease_seconds: u64,
}

impl ServeCommand {
    pub fn new(cwd: &Path, config: &Path, log: &Path) -> ServeCommand {
        ServeCommand {
            cwd: cwd.to_owned(),
            config: config.to_owned(),
            log: log.to_owned(),
            env: Vec::new(),
            args: Vec::new(),
            lease_seconds: 3,
        }
    }

    pub fn lease_seconds(mut self, seconds: u64) -> ServeCommand {
        self.lease_seconds = seconds;
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> ServeCommand {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    pub fn arg(mut self, arg: &str) -> ServeCommand {
        self.args.push(arg.to_owned());
        self
    }

    /// Starts the server with its lease (3 s unless set) and a 2 s shutdown grace (so
    /// crash tests do not wait long), on a free port, and waits for it to print its
    /// address.
    pub fn start(self) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_courier"));
        courier_testkit::without_proxy_env(&mut command)
            .current_dir(&self.cwd)
            .args(["serve", "--config"])
            .arg(&self.config)
            .args(["--listen", "127.0.0.1:0", "--lease-seconds"])
            .arg(self.lease_seconds.to_string())
            .args(["--shutdown-grace-seconds", "2"])
            .args(&self.args)
            .env_remove("COURIER_CONFIG")
            .env_remove("COURIER_LISTEN")
            .env("COURIER_LOG", "info")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", &self.cwd)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&self.log).unwrap());
        let mut child = command.spawn().expect("start courier serve");
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
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
        };
        Server {
            child,
            addr,
            log: self.log,
        }
    }
}

/// A running `courier serve`; killed when dropped.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: PathBuf,
}

impl Server {
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn request(&self, method: &str, path: &str, token: &str, body: &str) -> (u16, Value) {
        let (status, text) = http(self.addr, method, path, token, body);
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// The first page of `/api/deliveries`.
    pub fn deliveries(&self, admin_token: &str) -> Vec<Value> {
        let (status, list) = self.request("GET", "/api/deliveries", admin_token, "");
        assert_eq!(status, 200, "{list}");
        list["deliveries"].as_array().unwrap().clone()
    }

    /// Polls the API until the delivery reaches a finished state, and returns it.
    pub fn wait_finished(&self, admin_token: &str, id: &str) -> Value {
        let started = Instant::now();
        loop {
            let (status, detail) =
                self.request("GET", &format!("/api/deliveries/{id}"), admin_token, "");
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

    /// Posts a webhook that must be accepted with one delivery, and returns its id.
    pub fn post_event(&self, hook_token: &str, body: &str) -> String {
        self.post_event_for(hook_token, body, 1).remove(0)
    }

    /// Posts a webhook that must be accepted with `targets` deliveries; their ids.
    pub fn post_event_for(&self, hook_token: &str, body: &str, targets: usize) -> Vec<String> {
        let (status, answer) = self.request("POST", "/webhooks/supernova", hook_token, body);
        assert_eq!(status, 202, "{answer}");
        let ids: Vec<String> = answer["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| id.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids.len(), targets, "{answer}");
        ids
    }

    /// The outcome of each attempt of a delivery's detail (`/api/deliveries/{id}`).
    pub fn attempt_outcomes(detail: &Value) -> Vec<String> {
        detail["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["outcome"].as_str().unwrap_or("(running)").to_owned())
            .collect()
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
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

    /// Sends SIGTERM and checks the server exits 0 (its graceful shutdown), saying
    /// `context` and showing its log if not.
    pub fn terminate_cleanly(self, context: &str) {
        let log = self.log.clone();
        let status = self.terminate();
        assert_eq!(
            status.code(),
            Some(0),
            "{context}: exit after SIGTERM; log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }

    pub fn kill_hard(mut self) {
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
pub fn http(addr: SocketAddr, method: &str, path: &str, token: &str, body: &str) -> (u16, String) {
    let answer = exchange(
        addr,
        method,
        path,
        &[
            ("Authorization", &format!("Bearer {token}")),
            ("Content-Type", "application/json"),
        ],
        body,
    );
    (answer.status, answer.body)
}

/// An HTTP answer: status, headers (names in lower case, in order) and body.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One request with these headers, on a connection of its own; fixed-length answers only.
pub fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    // Up to the body's length when given: some servers (chromedriver) keep the connection
    // open despite `Connection: close`.
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    while !head.ends_with("\r\n\r\n") {
        assert_ne!(
            reader.read_line(&mut head).unwrap(),
            0,
            "an HTTP answer: {head}"
        );
    }
    let length = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().unwrap())
    });
    let mut response = Vec::new();
    match length {
        Some(length) => {
            response.resize(length, 0);
            reader.read_exact(&mut response).unwrap();
        }
        None => {
            reader.read_to_end(&mut response).unwrap();
        }
    }
    let body = String::from_utf8_lossy(&response);
    let head = head.trim_end();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    assert!(
        !headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked")),
        "this client reads only fixed-length answers"
    );
    Answer {
        status,
        headers,
        body: body.into_owned(),
    }
}

/// Polls `done` every 50 ms until it holds, failing the test after [`WAIT`].
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < WAIT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
