//! A real OpenSSH server for SSH-remote tests: Debian's `sshd`, started on 127.0.0.1 on a
//! free port with its own host key and configuration (key-only logins for the user running
//! the tests, no PAM), killed when dropped. Repositories are served by path, as on any bare
//! git server over SSH.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub use courier_testkit::ssh_keygen as keygen;

pub struct Sshd {
    child: Child,
    pub port: u16,
    /// The user it lets in: whoever runs the tests.
    pub user: String,
    /// The server's public host key, as `ssh-ed25519 AAAA… comment`.
    pub host_key: String,
    /// Whose public keys may log in.
    pub authorized_keys: PathBuf,
    log: PathBuf,
}

impl Sshd {
    /// Starts `sshd` under `dir`, letting in `authorized_key` (a public key line).
    pub fn start(dir: &Path, authorized_key: &str) -> Sshd {
        std::fs::create_dir_all(dir).unwrap();
        let host_key = keygen(&dir.join("host_key"), "test sshd", "");
        let authorized_keys = dir.join("authorized_keys");
        std::fs::write(&authorized_keys, authorized_key).unwrap();
        let port = super::free_port().unwrap();
        let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_owned();
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {dir}/host_key\nPidFile {dir}/sshd.pid\n\
                 AuthorizedKeysFile {keys}\nAuthenticationMethods publickey\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n\
                 PermitRootLogin prohibit-password\nAllowUsers {user}\nLogLevel VERBOSE\n",
                dir = dir.display(),
                keys = authorized_keys.display(),
            ),
        )
        .unwrap();
        // As root, sshd wants its privilege-separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        let log = dir.join("sshd.log");
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start sshd (Debian's openssh-server)");
        super::wait_listening(port, "sshd", || {
            std::fs::read_to_string(&log).unwrap_or_default()
        });
        Sshd {
            child,
            port,
            user,
            host_key,
            authorized_keys,
            log,
        }
    }

    /// `known_hosts` text trusting this server's host key.
    pub fn known_hosts_line(&self) -> String {
        format!("[127.0.0.1]:{} {}", self.port, self.host_key)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
