//! Commit signatures in git's SSH format: the `gpgsig` header git writes for
//! `gpg.format=ssh`, an armored `sshsig` over the commit object in the `git` namespace.
//! The key is read and unlocked once, when the configuration is loaded, so a wrong
//! passphrase stops Courier at start with the key's path, not a delivery later.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey};

/// The namespace git signs and verifies commits in.
const GIT_NAMESPACE: &str = "git";

/// An unlocked SSH signing key. Its `Debug` shows the path and fingerprint only.
#[derive(Clone)]
pub struct SigningKey {
    path: PathBuf,
    key: Arc<PrivateKey>,
}

impl SigningKey {
    /// Reads the OpenSSH private key at `path` and unlocks it with `passphrase` when it
    /// is protected. Errors name the key's path, never the passphrase.
    pub fn load(path: &Path, passphrase: Option<&SecretString>) -> Result<SigningKey, String> {
        let shown = path.display();
        let key = unlock(path, passphrase)?
            .map_err(|e| format!("{shown} is not an OpenSSH private key: {e}"))?;
        if key.algorithm() != Algorithm::Ed25519 {
            return Err(format!(
                "{shown} is a {} key; Courier signs with Ed25519 keys (ssh-keygen -t ed25519)",
                key.algorithm()
            ));
        }
        Ok(SigningKey {
            path: path.to_owned(),
            key: Arc::new(key),
        })
    }

    /// The key's comment (often its owner's e-mail address).
    pub fn comment(&self) -> &str {
        self.key.comment()
    }

    /// The public key, as a line of `authorized_keys` or `allowed_signers`.
    pub fn public_key(&self) -> String {
        self.key
            .public_key()
            .to_openssh()
            .unwrap_or_else(|e| format!("<unencodable: {e}>"))
    }

    /// The armored signature git puts in a commit's `gpgsig` header, over `commit` (the
    /// commit object without the header).
    pub fn sign_commit(&self, commit: &[u8]) -> Result<String, String> {
        let shown = self.path.display();
        let signature = self
            .key
            .sign(GIT_NAMESPACE, HashAlg::Sha512, commit)
            .map_err(|e| format!("signing with {shown} failed: {e}"))?;
        signature
            .to_pem(LineEnding::LF)
            .map_err(|e| format!("signing with {shown} failed: {e}"))
    }
}

/// Checks that an SSH private key in OpenSSH's format opens with `passphrase` (a deploy
/// key, which libssh2 reads later), so a wrong or missing passphrase is a load error naming
/// the key rather than a failed connection. Any key type; a key in another format is left
/// to libssh2.
pub fn check_unlocks(path: &Path, passphrase: Option<&SecretString>) -> Result<(), String> {
    unlock(path, passphrase).map(|_| ())
}

/// The key at `path`, unlocked with `passphrase` when it is protected; the inner error when
/// the file is not an OpenSSH private key. Errors name the path, never the passphrase.
fn unlock(
    path: &Path,
    passphrase: Option<&SecretString>,
) -> Result<Result<PrivateKey, ssh_key::Error>, String> {
    let shown = path.display();
    let text = std::fs::read(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let key = match PrivateKey::from_openssh(&text) {
        Ok(key) => key,
        Err(e) => return Ok(Err(e)),
    };
    match (key.is_encrypted(), passphrase) {
        (false, _) => Ok(Ok(key)),
        (true, None) => Err(format!(
            "{shown} is protected by a passphrase and none is configured"
        )),
        (true, Some(passphrase)) => key
            .decrypt(passphrase.expose_secret().as_bytes())
            .map(Ok)
            .map_err(|_| format!("the passphrase does not unlock {shown}")),
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SigningKey({}, {})",
            self.path.display(),
            self.key.fingerprint(HashAlg::Sha256)
        )
    }
}
