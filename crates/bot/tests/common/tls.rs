//! TLS in front of a plain-HTTP test server: Debian's `socat` terminating TLS on 127.0.0.1
//! with a certificate from a test CA ([`super::test_ca`]) and forwarding to the server,
//! as a company's reverse proxy with a private certificate authority would. Killed when
//! dropped.

use std::process::{Child, Command, Stdio};

use super::TestCa;

pub struct TlsFront {
    child: Child,
    pub port: u16,
}

impl TlsFront {
    /// Serves TLS with `ca`'s server certificate, forwarding to `127.0.0.1:upstream`;
    /// with `only_from`, to clients connecting from that address only (a proxy's).
    pub fn start(ca: &TestCa, upstream: u16, only_from: Option<&str>) -> TlsFront {
        let port = super::free_port().unwrap();
        let range = only_from.map_or(String::new(), |ip| format!(",range={ip}/32"));
        let child = Command::new("socat")
            .arg(format!(
                "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,verify=0,cert={},key={}{range}",
                ca.cert.display(),
                ca.key.display()
            ))
            .arg(format!("TCP:127.0.0.1:{upstream}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start socat (Debian's socat package)");
        super::wait_listening(port, "socat", String::new);
        TlsFront { child, port }
    }

    /// `url` (an `http://127.0.0.1:PORT...` URL of the server behind) as seen through TLS.
    pub fn https(&self, url: &str) -> String {
        let rest = url
            .strip_prefix("http://127.0.0.1:")
            .expect("a URL on 127.0.0.1");
        let path = rest.find('/').map_or("", |i| &rest[i..]);
        format!("https://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
