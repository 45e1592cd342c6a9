//! A headless Chromium driven over the W3C WebDriver protocol: Debian's `chromedriver` on a
//! free port on 127.0.0.1, spoken to as plain HTTP/JSON with [`exchange`] (no WebDriver
//! crate: the handful of commands the dashboard tests use fit in a page). Also axe-core,
//! the accessibility checker, installed from npm once under the target directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use tempfile::TempDir;

use super::serve::exchange;
use super::{free_port, wait_listening};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// W3C's key for an element reference in JSON.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Fails, saying how to get them, when Chromium or its driver is missing: these tests are
/// part of the suite and CI installs both, so a missing browser must not pass unnoticed.
fn require_browser() {
    for path in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(path).exists(),
            "{path} is missing: the browser tests need Debian's `chromium` and \
             `chromium-driver`; run scripts/install-deps.sh"
        );
    }
}

/// A running `chromedriver`; killed when dropped.
pub struct Chromedriver {
    pub port: u16,
    child: Child,
    log: PathBuf,
    /// Chromium's profile, its own for each test.
    pub profile: TempDir,
}

impl Chromedriver {
    pub fn start() -> Chromedriver {
        require_browser();
        let profile = tempfile::tempdir().unwrap();
        let log = profile.path().join("chromedriver.log");
        let port = free_port().unwrap();
        let mut command = Command::new(CHROMEDRIVER);
        let child = courier_testkit::without_proxy_env(&mut command)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        wait_listening(port, "chromedriver", || {
            std::fs::read_to_string(&log).unwrap_or_default()
        });
        Chromedriver {
            port,
            child,
            log,
            profile,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser session; the browser quits when it is dropped.
pub struct Session {
    driver: SocketAddr,
    id: String,
}

/// An element found on the current page.
pub struct Element<'a> {
    session: &'a Session,
    id: String,
}

impl Session {
    /// A new headless Chromium with its profile in `profile`, behind the chromedriver
    /// listening on `port`.
    pub fn new(port: u16, profile: &Path) -> Session {
        let driver = SocketAddr::from(([127, 0, 0, 1], port));
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new",
                    // Tests run as root, where Chromium's sandbox cannot start.
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-proxy-server",
                    "--no-first-run",
                    // Cleaner screenshots; the layout check measures the page, not bars.
                    "--hide-scrollbars",
                    format!("--user-data-dir={}", profile.join("chromium").display()),
                ],
            },
        }}});
        let answer = call(driver, "POST", "/session", &capabilities);
        let id = answer["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {answer}"))
            .to_owned();
        let session = Session { driver, id };
        // Finding an element waits up to 5 s for it, so a step can follow a page load.
        session.command(
            "POST",
            "/timeouts",
            json!({"implicit": 5000, "script": 30000}),
        );
        session
    }

    /// A command on this session; its `value`.
    fn command(&self, method: &str, path: &str, body: Value) -> Value {
        call(
            self.driver,
            method,
            &format!("/session/{}{path}", self.id),
            &body,
        )
    }

    pub fn goto(&self, url: &str) {
        self.command("POST", "/url", json!({ "url": url }));
    }

    pub fn url(&self) -> String {
        self.command("GET", "/url", Value::Null)
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub fn page_source(&self) -> String {
        self.command("GET", "/source", Value::Null)
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The first element matching the CSS selector, waiting for it a little.
    pub fn find(&self, css: &str) -> Element<'_> {
        let found = self.command(
            "POST",
            "/element",
            json!({"using": "css selector", "value": css}),
        );
        let id = found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element `{css}` on {}", self.url()))
            .to_owned();
        Element { session: self, id }
    }

    /// How many elements match the CSS selector now (no waiting for one to appear).
    pub fn count(&self, css: &str) -> usize {
        let script = "return document.querySelectorAll(arguments[0]).length";
        self.execute(script, json!([css])).as_u64().unwrap() as usize
    }

    /// Runs `script` (a function body, `arguments` holding `args`) in the page.
    pub fn execute(&self, script: &str, args: Value) -> Value {
        self.command(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": args}),
        )
    }

    /// Runs `script`, which calls its last argument with the result, and waits for that.
    pub fn execute_async(&self, script: &str, args: Value) -> Value {
        self.command(
            "POST",
            "/execute/async",
            json!({"script": script, "args": args}),
        )
    }

    /// The viewport as a PNG.
    pub fn screenshot_png(&self) -> Vec<u8> {
        let encoded = self.command("GET", "/screenshot", Value::Null);
        base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap())
            .unwrap()
    }

    /// Makes the viewport (not the window, whose frame differs between modes) this size.
    pub fn set_window_size(&self, width: u32, height: u32) {
        let inner = "return [window.innerWidth, window.innerHeight]";
        let (mut outer_w, mut outer_h) = (width, height);
        for _ in 0..2 {
            let rect = json!({"width": outer_w, "height": outer_h});
            self.command("POST", "/window/rect", rect);
            let now = self.execute(inner, json!([]));
            let (w, h) = (now[0].as_u64().unwrap(), now[1].as_u64().unwrap());
            if (w, h) == (u64::from(width), u64::from(height)) {
                return;
            }
            outer_w = (u64::from(outer_w) + u64::from(width) - w) as u32;
            outer_h = (u64::from(outer_h) + u64::from(height) - h) as u32;
        }
        panic!("cannot make the viewport {width}x{height}");
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let path = format!("/session/{}", self.id);
        let _ = exchange(self.driver, "DELETE", &path, &[], "");
    }
}

impl Element<'_> {
    fn command(&self, method: &str, path: &str, body: Value) -> Value {
        let path = format!("/element/{}{path}", self.id);
        self.session.command(method, &path, body)
    }

    pub fn send_keys(&self, text: &str) {
        self.command("POST", "/value", json!({ "text": text }));
    }

    pub fn click(&self) {
        self.command("POST", "/click", json!({}));
    }

    /// Clicks, and waits for the page it leads to: a click returns before a form's
    /// answer has loaded, so wait until the document it was on is gone.
    pub fn click_to_navigate(&self) {
        let before = self.session.find("html").id;
        self.click();
        let started = Instant::now();
        while self.session.find("html").id == before {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the click led nowhere: {}",
                self.session.url()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The rendered text.
    pub fn text(&self) -> String {
        self.command("GET", "/text", Value::Null)
            .as_str()
            .unwrap()
            .to_owned()
    }
}

/// One WebDriver call; its `value`, failing the test on a WebDriver error.
fn call(driver: SocketAddr, method: &str, path: &str, body: &Value) -> Value {
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let answer = exchange(
        driver,
        method,
        path,
        &[("Content-Type", "application/json")],
        &body,
    );
    let mut json: Value = serde_json::from_str(&answer.body)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}: {}", answer.body));
    assert_eq!(
        answer.status, 200,
        "{method} {path} {body}: {}",
        json["value"]
    );
    json["value"].take()
}

/// `axe.min.js` from the npm package axe-core, installed once under the target directory
/// (`npm install`, so the first run needs the npm registry) and reused.
pub fn axe_script() -> String {
    const VERSION: &str = "4.14.1";
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("axe-core-{VERSION}"));
    let script = root.join("node_modules/axe-core/axe.min.js");
    if !script.exists() {
        // Into a directory of our own, then renamed: tests installing at once do not
        // see each other's half-written files.
        let partial = root.with_extension(format!("{}", std::process::id()));
        let out = Command::new("npm")
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--no-save",
                "--prefix",
            ])
            .arg(&partial)
            .arg(format!("axe-core@{VERSION}"))
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run npm to install axe-core ({e}); run scripts/install-deps.sh")
            });
        assert!(
            out.status.success(),
            "npm install axe-core failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if std::fs::rename(&partial, &root).is_err() {
            // Another test got there first.
            let _ = std::fs::remove_dir_all(&partial);
        }
    }
    std::fs::read_to_string(&script).unwrap()
}

/// Runs axe-core on the current page (injected through WebDriver, which the page's CSP
/// does not govern); the violations of impact `serious` or `critical`, described.
pub fn serious_accessibility_violations(session: &Session, axe: &str) -> Vec<String> {
    session.execute(axe, json!([]));
    let run = "const done = arguments[arguments.length - 1];
        axe.run(document).then(
            r => done({violations: r.violations, passes: r.passes.length}),
            e => done({error: String(e)}));";
    let result = session.execute_async(run, json!([]));
    // Rules that passed: proof that axe looked at a page, not at nothing.
    assert!(
        result["passes"].as_u64().is_some_and(|n| n > 0),
        "axe did not run: {result}"
    );
    let list = result["violations"].as_array().unwrap();
    let (serious, lesser): (Vec<&Value>, Vec<&Value>) = list
        .iter()
        .partition(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")));
    for v in lesser {
        eprintln!(
            "axe, {} (not failing): {}: {}",
            v["impact"], v["id"], v["help"]
        );
    }
    serious
        .into_iter()
        .map(|v| {
            let targets: Vec<String> = v["nodes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|n| format!("{} ({})", n["target"], n["failureSummary"]))
                .collect();
            format!(
                "{} [{}]: {}: {}",
                v["id"],
                v["impact"],
                v["help"],
                targets.join("; ")
            )
        })
        .collect()
}
