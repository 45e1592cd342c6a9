//! A real forward proxy between Courier and the test servers: Debian's `squid`, started on
//! 127.0.0.1 with basic auth (its `basic_ncsa_auth` helper), as a company network's
//! outbound proxy would be. What went through it is read from its access log. Killed when
//! dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The user name and password the proxy asks for.
pub const PROXY_USER: &str = "courier";
pub const PROXY_PASSWORD: &str = "proxy-pw-4c1b7e93";

pub struct Squid {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

/// One line of the access log: what was asked, and the status the proxy answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    pub status: u16,
    /// `GET http://host:port/path` for plain HTTP, `CONNECT host:port` for a tunnel.
    pub request: String,
}

impl Squid {
    /// With `bind`, the proxy's own connections leave from that loopback address (a test
    /// server that accepts only it is then reached through the proxy or not at all).
    pub fn start(dir: &Path, bind: Option<&str>) -> Squid {
        std::fs::create_dir_all(dir).unwrap();
        // Squid drops to its own user when started as root; it must write here.
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let port = super::free_port().unwrap();
        let log = dir.join("access.log");
        let passwords = dir.join("passwd");
        let hashed = Command::new("openssl")
            .args(["passwd", "-apr1", PROXY_PASSWORD])
            .output()
            .expect("openssl passwd");
        std::fs::write(
            &passwords,
            format!("{PROXY_USER}:{}", String::from_utf8_lossy(&hashed.stdout)),
        )
        .unwrap();
        std::fs::set_permissions(&passwords, std::fs::Permissions::from_mode(0o644)).unwrap();
        let config = dir.join("squid.conf");
        let d = dir.display();
        std::fs::write(
            &config,
            format!(
                "http_port 127.0.0.1:{port}\npid_filename {d}/squid.pid\ncache deny all\n\
                 access_log stdio:{d}/access.log\ncache_log {d}/cache.log\ncache_store_log none\n\
                 coredump_dir {d}\nauth_param basic program /usr/lib/squid/basic_ncsa_auth {}\n\
                 auth_param basic children 2\nacl authed proxy_auth REQUIRED\n\
                 http_access allow authed\nhttp_access deny all\nshutdown_lifetime 0 seconds\n{}",
                passwords.display(),
                bind.map_or(String::new(), |ip| format!("tcp_outgoing_address {ip}\n"))
            ),
        )
        .unwrap();
        // Its own service name: squid names its shared-memory segments after it, and two
        // proxies started at once under the default one collide (`shm_open`: File exists).
        let child = Command::new("squid")
            .arg("-N")
            .arg("-n")
            .arg(format!("courier{port}"))
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("squid.out")).unwrap())
            .spawn()
            .expect("start squid (Debian's squid package)");
        let why = dir.to_owned();
        super::wait_listening(port, "squid", move || {
            ["squid.out", "cache.log"]
                .map(|f| std::fs::read_to_string(why.join(f)).unwrap_or_default())
                .join("\n")
        });
        Squid { child, port, log }
    }

    /// `http://127.0.0.1:PORT`, without credentials.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request the proxy finished, in order. A tunnel is logged when it closes.
    pub fn logged(&self) -> Vec<Logged> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| {
                // time elapsed client CODE/STATUS bytes METHOD URL user hierarchy type
                let fields: Vec<&str> = line.split_whitespace().collect();
                let status = fields.get(3)?.split_once('/')?.1.parse().ok()?;
                Some(Logged {
                    status,
                    request: format!("{} {}", fields.get(5)?, fields.get(6)?),
                })
            })
            .collect()
    }

    /// The requests to `127.0.0.1:port` the proxy let through (not its `407`s), in
    /// either form.
    pub fn passed_to(&self, port: u16) -> Vec<String> {
        let plain = format!(" http://127.0.0.1:{port}/");
        let tunnel = format!("CONNECT 127.0.0.1:{port}");
        self.logged()
            .into_iter()
            .filter(|l| l.status != 407)
            .map(|l| l.request)
            .filter(|r| r.contains(&plain) || r == &tunnel)
            .collect()
    }

    /// Waits until the log stops growing (tunnels are logged when the client lets go).
    pub fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = self.logged().len();
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(300));
            let now = self.logged().len();
            if now == seen {
                return;
            }
            seen = now;
        }
    }
}

impl Drop for Squid {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Killed, squid leaves its shared-memory segments behind (`-n` above).
        for segment in ["metadata", "queues", "readers"] {
            let _ =
                std::fs::remove_file(format!("/dev/shm/courier{}-cf__{segment}.shm", self.port));
        }
    }
}
