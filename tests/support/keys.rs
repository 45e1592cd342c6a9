//! The keys the signing and SSH tests use: [`ssh_keygen`], and GnuPG with a keyring of the
//! test's own ([`Keyring`], `GNUPGHOME` in a directory it is given), which makes the
//! OpenPGP keys Courier signs with and is the keyring `git verify-commit` and `gpg
//! --verify` check signatures against.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `ssh-keygen` makes an Ed25519 key at `path` with this comment and passphrase (none
/// when empty); returns its public half.
pub fn ssh_keygen(path: &Path, comment: &str, passphrase: &str) -> String {
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-C", comment, "-N", passphrase, "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen ran");
    assert!(made.success());
    std::fs::read_to_string(path.with_extension("pub")).unwrap()
}

pub struct Keyring {
    pub home: PathBuf,
}

impl Keyring {
    pub fn new(home: &Path) -> Keyring {
        std::fs::create_dir_all(home).unwrap();
        // gpg warns about, and distrusts, a home others can read.
        std::fs::set_permissions(home, std::fs::Permissions::from_mode(0o700)).unwrap();
        Keyring {
            home: home.to_owned(),
        }
    }

    /// `program` (gpg, git, gpgconf) on this keyring, in English: tests read its words.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command.env("GNUPGHOME", &self.home).env("LC_ALL", "C");
        command
    }

    /// `gpg <args>` asking no one anything, with `passphrase` for any key it makes or
    /// unlocks (none when empty); its stdout. Panics with gpg's stderr when it fails.
    pub fn gpg(&self, passphrase: &str, args: &[&str]) -> Vec<u8> {
        let out = self
            .command("gpg")
            .args(["--batch", "--pinentry-mode", "loopback", "--passphrase"])
            .arg(passphrase)
            .args(args)
            .output()
            .expect("gpg ran");
        assert!(
            out.status.success(),
            "gpg {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Makes a key for `user_id` (`gpg --quick-gen-key <user_id> <algo> <usage> never`)
    /// and exports its armored secret key to `path`; returns its primary's fingerprint.
    pub fn generate(
        &self,
        user_id: &str,
        algo: &str,
        usage: &str,
        passphrase: &str,
        path: &Path,
    ) -> String {
        self.gpg(
            passphrase,
            &["--quick-gen-key", user_id, algo, usage, "never"],
        );
        self.export_secret(user_id, passphrase, path);
        self.fingerprints(user_id).swap_remove(0)
    }

    /// Writes the armored secret key of `user_id` (all its subkeys) to `path`.
    pub fn export_secret(&self, user_id: &str, passphrase: &str, path: &Path) {
        let armored = self.gpg(passphrase, &["--armor", "--export-secret-keys", user_id]);
        std::fs::write(path, armored).unwrap();
    }

    /// The fingerprints of `user_id`'s key: the primary's first, then its subkeys'.
    pub fn fingerprints(&self, user_id: &str) -> Vec<String> {
        let listing = self.gpg("", &["--with-colons", "--list-keys", user_id]);
        String::from_utf8(listing)
            .unwrap()
            .lines()
            .filter_map(|line| line.strip_prefix("fpr:"))
            .map(|rest| rest.trim_matches(':').to_owned())
            .collect()
    }
}

impl Drop for Keyring {
    /// Stops the gpg-agent the keyring started.
    fn drop(&mut self) {
        let _ = self.command("gpgconf").args(["--kill", "all"]).status();
    }
}
