//! SSH remotes: the key libgit2 authenticates with, and the check of the server's host key
//! against the configured `known_hosts` file. libgit2 with libssh2 has no known-hosts
//! check of its own, so without this one any server answering on the address would do.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use hmac::{KeyInit as _, Mac as _};
use secrecy::SecretString;
use sha2::Digest as _;

/// A private key, its passphrase, and the host keys to trust.
#[derive(Clone)]
pub struct SshKey {
    pub key: PathBuf,
    pub passphrase: Option<SecretString>,
    pub known_hosts: PathBuf,
}

impl fmt::Debug for SshKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SshKey")
            .field("key", &self.key)
            .field(
                "passphrase",
                &self.passphrase.as_ref().map(|_| "[redacted]"),
            )
            .field("known_hosts", &self.known_hosts)
            .finish()
    }
}

/// `SHA256:…`, as `ssh-keygen -l` and OpenSSH's own prompts show a key.
pub(crate) fn fingerprint(raw: &[u8]) -> String {
    format!(
        "SHA256:{}",
        STANDARD_NO_PAD.encode(sha2::Sha256::digest(raw))
    )
}

/// Ok when `known_hosts` lists `raw` (the server's key as the SSH protocol sends it) for
/// `host` on `port`; otherwise why not, with the key's fingerprint so that an operator can
/// compare it with the server's and add the line.
pub(crate) fn check_host_key(
    known_hosts: &Path,
    host: &str,
    port: u16,
    raw: &[u8],
) -> Result<(), String> {
    let text = std::fs::read_to_string(known_hosts)
        .map_err(|e| format!("cannot read {}: {e}", known_hosts.display()))?;
    // How OpenSSH names a host in the file: bare on port 22, `[host]:port` otherwise.
    let name = if port == 22 {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    };
    let (mut listed, mut listed_other_key) = (false, false);
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (marker, rest) = match fields.first() {
            None => continue,
            Some(first) if first.starts_with('#') => continue,
            Some(first) if first.starts_with('@') => (Some(*first), &fields[1..]),
            Some(_) => (None, &fields[..]),
        };
        let [patterns, _kind, key, ..] = rest else {
            continue;
        };
        if !host_matches(patterns, &name) {
            continue;
        }
        let same_key = STANDARD.decode(key).is_ok_and(|k| k == raw);
        match marker {
            // Wherever it stands in the file, a revocation wins.
            Some("@revoked") if same_key => {
                return Err(format!(
                    "the host key of {name} ({}) is marked revoked in {}",
                    fingerprint(raw),
                    known_hosts.display()
                ));
            }
            // Certificates are not checked; a CA line trusts no plain key.
            Some(_) => {}
            None if same_key => listed = true,
            None => listed_other_key = true,
        }
    }
    if listed {
        return Ok(());
    }
    let why = if listed_other_key {
        "does not match the key"
    } else {
        "is not"
    };
    Err(format!(
        "the host key of {name} ({}) {why} listed for it in {}; if this is the right server, add its key (`ssh-keyscan -p {port} {host}`)",
        fingerprint(raw),
        known_hosts.display()
    ))
}

/// A `known_hosts` host field: comma-separated patterns (`*` and `?` wildcards, `!` to
/// negate), or one hashed name (`|1|salt|hash`, HMAC-SHA1 of the name).
fn host_matches(patterns: &str, name: &str) -> bool {
    if let Some(hashed) = patterns.strip_prefix("|1|") {
        let Some((salt, hash)) = hashed.split_once('|') else {
            return false;
        };
        let (Ok(salt), Ok(hash)) = (STANDARD.decode(salt), STANDARD.decode(hash)) else {
            return false;
        };
        let Ok(mut mac) = hmac::Hmac::<sha1::Sha1>::new_from_slice(&salt) else {
            return false;
        };
        mac.update(name.as_bytes());
        return mac.verify_slice(&hash).is_ok();
    }
    let mut matched = false;
    for pattern in patterns.split(',') {
        match pattern.strip_prefix('!') {
            Some(negated) if glob(negated, name) => return false,
            Some(_) => {}
            None => matched |= glob(pattern, name),
        }
    }
    matched
}

/// OpenSSH's pattern match: `*` any run, `?` one character, case-insensitive.
fn glob(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (
        pattern.to_ascii_lowercase().chars().collect(),
        name.to_ascii_lowercase().chars().collect(),
    );
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] =
        b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20abcdefghijklmnopqrstuvwxyz012345";

    fn file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn plain_hashed_wildcard_and_negated_hosts() {
        let key = STANDARD.encode(KEY);
        let plain = file(&format!("# comment\n[127.0.0.1]:2222 ssh-ed25519 {key}\n"));
        assert!(check_host_key(plain.path(), "127.0.0.1", 2222, KEY).is_ok());
        // The same host on another port is another entry.
        let err = check_host_key(plain.path(), "127.0.0.1", 22, KEY).unwrap_err();
        assert!(
            err.contains("is not listed") && err.contains("SHA256:"),
            "{err}"
        );

        // `ssh-keygen -H` hashes `git.example.com` with this salt.
        let salt = [7u8; 20];
        let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(&salt).unwrap();
        mac.update(b"git.example.com");
        let hash = mac.finalize().into_bytes();
        let hashed = file(&format!(
            "|1|{}|{} ssh-ed25519 {key}\n",
            STANDARD.encode(salt),
            STANDARD.encode(hash)
        ));
        assert!(check_host_key(hashed.path(), "git.example.com", 22, KEY).is_ok());
        assert!(check_host_key(hashed.path(), "other.example.com", 22, KEY).is_err());

        let wild = file(&format!(
            "*.example.com,!evil.example.com ssh-ed25519 {key}\n"
        ));
        assert!(check_host_key(wild.path(), "GIT.example.com", 22, KEY).is_ok());
        assert!(check_host_key(wild.path(), "evil.example.com", 22, KEY).is_err());
    }

    #[test]
    fn another_key_or_a_revoked_one_is_refused() {
        let other = STANDARD.encode(b"another key");
        let listed = file(&format!("git.example.com ssh-ed25519 {other}\n"));
        let err = check_host_key(listed.path(), "git.example.com", 22, KEY).unwrap_err();
        assert!(err.contains("does not match"), "{err}");

        let key = STANDARD.encode(KEY);
        let revoked = file(&format!(
            "git.example.com ssh-ed25519 {key}\n@revoked git.example.com ssh-ed25519 {key}\n"
        ));
        let err = check_host_key(revoked.path(), "git.example.com", 22, KEY).unwrap_err();
        assert!(err.contains("revoked"), "{err}");
    }
}
