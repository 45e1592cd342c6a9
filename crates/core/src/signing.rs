//! Commit signatures: the `gpgsig` header git writes, in one of git's two formats. `ssh`
//! (`gpg.format=ssh`) is an armored `sshsig` over the commit object in the `git`
//! namespace; `openpgp` (git's default) is a detached OpenPGP signature, as `gpg
//! --detach-sign --armor` makes it. The key is read and unlocked once, when the
//! configuration is loaded, so a wrong passphrase stops Courier at start with the key's
//! path, not a delivery later.

mod openpgp;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey};

/// The namespace git signs and verifies commits in.
const GIT_NAMESPACE: &str = "git";

/// Which of git's signature formats a key signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningFormat {
    /// `gpg.format=ssh`: an OpenSSH Ed25519 private key.
    Ssh,
    /// `gpg.format=openpgp`: an ASCII-armored OpenPGP secret key.
    OpenPgp,
}

/// Why a key cannot be loaded or cannot sign. Messages name the key's path, never the
/// passphrase.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("cannot read {}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not {expected}: {detail}", path.display())]
    NotAKey {
        path: PathBuf,
        expected: &'static str,
        detail: String,
    },
    #[error("{} is protected by a passphrase and none is configured", path.display())]
    NoPassphrase { path: PathBuf },
    #[error("the passphrase does not unlock {}", path.display())]
    WrongPassphrase { path: PathBuf },
    #[error("{} is a {algorithm} key; Courier signs with Ed25519 keys (ssh-keygen -t ed25519)", path.display())]
    UnsupportedSshKey { path: PathBuf, algorithm: String },
    #[error(
        "{} has no key that can sign: neither its primary key nor a subkey is marked for signing (add one: gpg --quick-add-key <fingerprint> ed25519 sign)",
        path.display()
    )]
    NoSigningKey { path: PathBuf },
    #[error("signing with {} failed: {detail}", path.display())]
    Sign { path: PathBuf, detail: String },
}

/// An unlocked signing key. Its `Debug` shows the path and fingerprint only.
#[derive(Clone)]
pub struct SigningKey {
    path: PathBuf,
    /// The e-mail addresses the key names its owner by: an SSH key's comment when it is
    /// one, an OpenPGP key's user IDs'.
    identities: Vec<String>,
    key: Key,
}

#[derive(Clone)]
enum Key {
    Ssh(Arc<PrivateKey>),
    OpenPgp(Arc<openpgp::Signer>),
}

impl SigningKey {
    /// Reads the private key at `path` in `format` and unlocks it with `passphrase` when
    /// it is protected.
    pub fn load(
        format: SigningFormat,
        path: &Path,
        passphrase: Option<&SecretString>,
    ) -> Result<SigningKey, SigningError> {
        match format {
            SigningFormat::Ssh => Self::load_ssh(path, passphrase),
            SigningFormat::OpenPgp => {
                let signer = openpgp::Signer::load(path, passphrase)?;
                Ok(SigningKey {
                    path: path.to_owned(),
                    identities: signer.emails(),
                    key: Key::OpenPgp(Arc::new(signer)),
                })
            }
        }
    }

    fn load_ssh(
        path: &Path,
        passphrase: Option<&SecretString>,
    ) -> Result<SigningKey, SigningError> {
        let key = unlock(path, passphrase)?.map_err(|e| SigningError::NotAKey {
            path: path.to_owned(),
            expected: "an OpenSSH private key",
            detail: e.to_string(),
        })?;
        if key.algorithm() != Algorithm::Ed25519 {
            return Err(SigningError::UnsupportedSshKey {
                path: path.to_owned(),
                algorithm: key.algorithm().to_string(),
            });
        }
        let identities = Some(key.comment())
            .filter(|c| c.contains('@'))
            .map(str::to_owned)
            .into_iter()
            .collect();
        Ok(SigningKey {
            path: path.to_owned(),
            identities,
            key: Key::Ssh(Arc::new(key)),
        })
    }

    pub fn format(&self) -> SigningFormat {
        match self.key {
            Key::Ssh(_) => SigningFormat::Ssh,
            Key::OpenPgp(_) => SigningFormat::OpenPgp,
        }
    }

    /// The e-mail addresses the key belongs to (none when it names no address): git and
    /// the forges match a signature to the commit's e-mail through them.
    pub fn identities(&self) -> &[String] {
        &self.identities
    }

    /// The public key: a line of `authorized_keys`/`allowed_signers`, or an armored
    /// OpenPGP public key block.
    pub fn public_key(&self) -> String {
        match &self.key {
            Key::Ssh(key) => key
                .public_key()
                .to_openssh()
                .unwrap_or_else(|e| format!("<unencodable: {e}>")),
            Key::OpenPgp(signer) => signer.public_key().to_owned(),
        }
    }

    /// The armored signature git puts in a commit's `gpgsig` header, over `commit` (the
    /// commit object without the header).
    pub fn sign_commit(&self, commit: &[u8]) -> Result<String, SigningError> {
        let failed = |detail: String| SigningError::Sign {
            path: self.path.clone(),
            detail,
        };
        match &self.key {
            Key::Ssh(key) => key
                .sign(GIT_NAMESPACE, HashAlg::Sha512, commit)
                .and_then(|signature| signature.to_pem(LineEnding::LF))
                .map_err(|e| failed(e.to_string())),
            Key::OpenPgp(signer) => signer.sign(commit).map_err(failed),
        }
    }
}

/// Checks that an SSH private key in OpenSSH's format opens with `passphrase` (a deploy
/// key, which libssh2 reads later), so a wrong or missing passphrase is a load error naming
/// the key rather than a failed connection. Any key type; a key in another format is left
/// to libssh2.
pub fn check_unlocks(path: &Path, passphrase: Option<&SecretString>) -> Result<(), SigningError> {
    unlock(path, passphrase).map(|_| ())
}

/// The key at `path`, unlocked with `passphrase` when it is protected; the inner error when
/// the file is not an OpenSSH private key.
fn unlock(
    path: &Path,
    passphrase: Option<&SecretString>,
) -> Result<Result<PrivateKey, ssh_key::Error>, SigningError> {
    let text = read(path)?;
    let key = match PrivateKey::from_openssh(&text) {
        Ok(key) => key,
        Err(e) => return Ok(Err(e)),
    };
    match (key.is_encrypted(), passphrase) {
        (false, _) => Ok(Ok(key)),
        (true, None) => Err(SigningError::NoPassphrase {
            path: path.to_owned(),
        }),
        (true, Some(passphrase)) => key
            .decrypt(passphrase.expose_secret().as_bytes())
            .map(Ok)
            .map_err(|_| SigningError::WrongPassphrase {
                path: path.to_owned(),
            }),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, SigningError> {
    std::fs::read(path).map_err(|source| SigningError::Unreadable {
        path: path.to_owned(),
        source,
    })
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fingerprint = match &self.key {
            Key::Ssh(key) => key.fingerprint(HashAlg::Sha256).to_string(),
            Key::OpenPgp(signer) => signer.fingerprint(),
        };
        write!(f, "SigningKey({}, {fingerprint})", self.path.display())
    }
}
