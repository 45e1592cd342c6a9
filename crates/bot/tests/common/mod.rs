//! Test helpers: a store on SQLite in a temporary directory, or on a real PostgreSQL that
//! this harness starts once per test binary.
//!
//! PostgreSQL: `initdb` into a temporary directory, `postgres` listening on a free port on
//! 127.0.0.1 (and a Unix socket in that directory), `fsync=off` since losing a test
//! database on power loss does not matter. PostgreSQL refuses to run as root, and tests
//! run as root in CI and here, so under root the server runs as the `postgres` system
//! user (from the Debian package) through `runuser`, with the directory given to it.
//! Binaries: `$COURIER_PG_BIN` if set, else the newest `/usr/lib/postgresql/*/bin`.
//!
//! Each test gets its own database on the shared server. The server is shared through a
//! static, and statics are never dropped, so instead of a `Drop` guard a detached watchdog
//! process waits for the test binary to exit (normally, by panic or by a signal) and then
//! stops the server and removes its directory.
//!
//! The server also accepts TLS, with a certificate for 127.0.0.1 from a test CA made by
//! `openssl` ([`PgServer::ca`]).
//!
//! If PostgreSQL cannot be started the PostgreSQL tests fail, saying why; set
//! `COURIER_SKIP_POSTGRES=1` to skip them deliberately.
#![allow(dead_code)]

pub mod forge;
pub mod proxy;
pub mod serve;
pub mod sshd;
pub mod tls;
pub mod webdriver;

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use courier::store::Store;
use courier_core::config::Store as StoreConfig;
use secrecy::SecretString;
use sqlx::Connection;
use tempfile::TempDir;

/// The backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A store for one test, with what it takes to open more handles on the same database
/// (to play several replicas, or to reopen).
pub struct TestStore {
    pub store: Store,
    pub config: StoreConfig,
    pub backend: Backend,
    /// Keeps the SQLite directory alive for the test.
    _dir: Option<TempDir>,
}

impl TestStore {
    /// `None` only when PostgreSQL is skipped on purpose.
    pub async fn new(backend: Backend) -> Option<TestStore> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let config = StoreConfig::Sqlite {
                    path: dir.path().join("data").join("courier.db"),
                };
                let store = Store::open(&config).await.expect("open SQLite store");
                Some(TestStore {
                    store,
                    config,
                    backend,
                    _dir: Some(dir),
                })
            }
            Backend::Postgres => {
                if std::env::var_os("COURIER_SKIP_POSTGRES").is_some_and(|v| v == "1") {
                    eprintln!("COURIER_SKIP_POSTGRES=1: PostgreSQL test skipped");
                    return None;
                }
                let server = match pg_server() {
                    Ok(server) => server,
                    Err(e) => panic!(
                        "cannot start PostgreSQL for the store tests: {e}\n\
                         (install PostgreSQL server binaries, set COURIER_PG_BIN, or set \
                         COURIER_SKIP_POSTGRES=1 to skip these tests)"
                    ),
                };
                let url = server.create_database().await;
                let config = StoreConfig::Postgres {
                    url: SecretString::from(url),
                };
                let store = Store::open(&config).await.expect("open PostgreSQL store");
                Some(TestStore {
                    store,
                    config,
                    backend,
                    _dir: None,
                })
            }
        }
    }

    /// Another handle on the same database, as another replica (or a restart) would have.
    pub async fn reopen(&self) -> Store {
        Store::open(&self.config).await.expect("reopen store")
    }
}

/// The URL of a fresh, empty database on the shared test PostgreSQL (started on first
/// use), for tests that hand it to `courier serve` processes. `None` only when
/// PostgreSQL is skipped on purpose (`COURIER_SKIP_POSTGRES=1`).
pub async fn postgres_database_url() -> Option<String> {
    if std::env::var_os("COURIER_SKIP_POSTGRES").is_some_and(|v| v == "1") {
        eprintln!("COURIER_SKIP_POSTGRES=1: PostgreSQL test skipped");
        return None;
    }
    match pg_server() {
        Ok(server) => Some(server.create_database().await),
        Err(e) => panic!(
            "cannot start PostgreSQL: {e}\n(install PostgreSQL server binaries, set \
             COURIER_PG_BIN, or set COURIER_SKIP_POSTGRES=1 to skip these tests)"
        ),
    }
}

pub struct PgServer {
    port: u16,
    databases: AtomicUsize,
    /// The CA that signed the server's certificate (TLS is on, and optional for clients).
    pub ca: PathBuf,
}

static SERVER: OnceLock<Result<PgServer, String>> = OnceLock::new();

pub fn pg_server() -> Result<&'static PgServer, String> {
    SERVER
        .get_or_init(start_postgres)
        .as_ref()
        .map_err(Clone::clone)
}

impl PgServer {
    pub fn url(&self, database: &str) -> String {
        format!("postgres://courier@127.0.0.1:{}/{database}", self.port)
    }

    /// A fresh, empty database for one test.
    pub async fn create_database(&self) -> String {
        let name = format!(
            "t{}_{}",
            std::process::id(),
            self.databases.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = sqlx::PgConnection::connect(&self.url("postgres"))
            .await
            .expect("connect to the test PostgreSQL");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create a test database");
        admin.close().await.ok();
        self.url(&name)
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn pg_bin_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("COURIER_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut found: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| format!("no /usr/lib/postgresql ({e})"))?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            (bin.join("initdb").exists() && bin.join("postgres").exists()).then_some((version, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin".to_owned())
}

/// A command run as the unprivileged `postgres` user when we are root.
fn as_server_user(program: &Path, root: bool) -> Command {
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// Waits (at most 20 s) until something listens on `127.0.0.1:port`; `why_not` says what
/// went wrong otherwise (a server's log).
pub fn wait_listening(port: u16, what: &str, why_not: impl Fn() -> String) {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{what} did not listen: {}",
            why_not()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

fn openssl(args: impl FnOnce(&mut Command) -> &mut Command) -> Result<(), String> {
    let mut command = Command::new("openssl");
    args(&mut command);
    let out = command
        .output()
        .map_err(|e| format!("cannot run openssl to make test certificates: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "openssl failed to make test certificates: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// A test certificate authority and a server certificate for 127.0.0.1 it issued (PEM
/// files, EC P-256, valid two days), made with the `openssl` CLI.
pub struct TestCa {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Makes a [`TestCa`] in `dir`.
pub fn test_ca(dir: &Path) -> Result<TestCa, String> {
    let ca = dir.join("ca.crt");
    let ca_key = dir.join("ca.key");
    let cert = dir.join("server.crt");
    let key = dir.join("server.key");
    let csr = dir.join("server.csr");
    let ext = dir.join("server.ext");
    fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .map_err(|e| e.to_string())?;
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(|c| {
        c.args(["req", "-x509", "-days", "2", "-subj", "/CN=courier test CA"])
            .args(ec)
            .arg("-keyout")
            .arg(&ca_key)
            .arg("-out")
            .arg(&ca)
    })?;
    openssl(|c| {
        c.args(["req", "-subj", "/CN=127.0.0.1"])
            .args(ec)
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&csr)
    })?;
    openssl(|c| {
        c.args(["x509", "-req", "-days", "2", "-CAcreateserial"])
            .arg("-in")
            .arg(&csr)
            .arg("-CA")
            .arg(&ca)
            .arg("-CAkey")
            .arg(&ca_key)
            .arg("-extfile")
            .arg(&ext)
            .arg("-out")
            .arg(&cert)
    })?;
    Ok(TestCa { ca, cert, key })
}

fn start_postgres() -> Result<PgServer, String> {
    let bin = pg_bin_dir()?;
    let root = is_root();
    // Kept on purpose: the watchdog removes it when the test binary is gone.
    let dir = tempfile::Builder::new()
        .prefix("courier-pg-")
        .tempdir()
        .map_err(|e| format!("temporary directory: {e}"))?
        .keep();
    let data = dir.join("data");
    let log = dir.join("postgres.log");
    // Started first, so the directory goes away even if the server never starts.
    let runas = if root { "runuser -u postgres -- " } else { "" };
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
         {runas}'{pg_ctl}' -D '{data}' stop -m immediate >/dev/null 2>&1; rm -rf '{dir}'",
        pid = std::process::id(),
        pg_ctl = bin.join("pg_ctl").display(),
        data = data.display(),
        dir = dir.display(),
    );
    Command::new("setsid")
        .args(["sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the PostgreSQL watchdog: {e}"))?;

    // A test CA and a server certificate for 127.0.0.1 signed by it, so TLS connections
    // can be tested with full verification.
    let TestCa { ca, cert, key } = test_ca(&dir)?;
    if root {
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status()
            .map_err(|e| format!("chown: {e}"))?;
        if !status.success() {
            return Err(format!(
                "cannot give {} to the `postgres` user (does it exist? the server refuses to run as root)",
                dir.display()
            ));
        }
    }
    let initdb = as_server_user(&bin.join("initdb"), root)
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            "courier",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        ])
        .output()
        .map_err(|e| format!("cannot run initdb: {e}"))?;
    if !initdb.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&initdb.stderr)
        ));
    }
    let port = free_port()?;
    let log_file = fs::File::create(&log).map_err(|e| format!("log file: {e}"))?;
    let mut server = as_server_user(&bin.join("postgres"), root)
        .arg("-D")
        .arg(&data)
        .args(["-p", &port.to_string()])
        .args(["-c", "listen_addresses=127.0.0.1"])
        .arg("-k")
        .arg(&dir)
        .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
        .args(["-c", "full_page_writes=off", "-c", "max_connections=300"])
        .args(["-c", "ssl=on"])
        .arg("-c")
        .arg(format!("ssl_cert_file={}", cert.display()))
        .arg("-c")
        .arg(format!("ssl_key_file={}", key.display()))
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("cannot start postgres: {e}"))?;

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = fs::read_to_string(&log).unwrap_or_default();
        if text.contains("ready to accept connections") {
            break;
        }
        if let Ok(Some(status)) = server.try_wait() {
            return Err(format!("postgres exited with {status}:\n{text}"));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "postgres did not become ready within 60 s:\n{text}"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(PgServer {
        port,
        databases: AtomicUsize::new(0),
        ca,
    })
}

/// Each scenario once per forge: `scenario::github`, `scenario::gitlab`, `scenario::azure`.
#[macro_export]
macro_rules! on_each_forge {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[test]
            fn github() {
                super::$scenario($crate::common::forge::Kind::GitHub);
            }

            #[test]
            fn gitlab() {
                super::$scenario($crate::common::forge::Kind::GitLab);
            }

            #[test]
            fn azure() {
                super::$scenario($crate::common::forge::Kind::Azure);
            }
        }
    )*};
}
