//! OpenPGP keys: an armored transferable secret key (`gpg --armor --export-secret-keys`),
//! of which one key packet signs: the primary when its self-signatures allow signing, else
//! the newest signing subkey that is neither revoked nor expired (what gpg picks too).

use std::path::Path;

use pgp::composed::{
    ArmorOptions, Deserializable, DetachedSignature, SignedSecretKey, SignedSecretSubKey,
};
use pgp::packet::{SecretKey, SecretSubkey, Signature, SignatureType};
use pgp::types::{KeyDetails, Password, SecretParams, SigningKey, Timestamp};
use secrecy::{ExposeSecret, SecretString};

use super::SigningError;

const EXPECTED: &str = "an ASCII-armored OpenPGP secret key (gpg --armor --export-secret-keys)";

/// The unlocked key packet that signs, and what the configuration checks against.
pub(super) struct Signer {
    key: Part,
    emails: Vec<String>,
    public: String,
}

enum Part {
    Primary(SecretKey),
    Subkey(SecretSubkey),
}

impl Signer {
    pub(super) fn load(
        path: &Path,
        passphrase: Option<&SecretString>,
    ) -> Result<Signer, SigningError> {
        let not_a_key = |detail: String| SigningError::NotAKey {
            path: path.to_owned(),
            expected: EXPECTED,
            detail,
        };
        let text = super::read(path)?;
        let (key, _) = SignedSecretKey::from_armor_single(text.as_slice())
            .map_err(|e| not_a_key(e.to_string()))?;
        // Key flags and expiry are read from the self-signatures: only trusted once checked.
        key.verify_bindings()
            .map_err(|e| not_a_key(format!("its self-signatures do not verify: {e}")))?;
        let mut part =
            choose(&key, Timestamp::now()).ok_or_else(|| SigningError::NoSigningKey {
                path: path.to_owned(),
            })?;
        if part.is_encrypted() {
            let Some(passphrase) = passphrase else {
                return Err(SigningError::NoPassphrase {
                    path: path.to_owned(),
                });
            };
            part.remove_password(&Password::from(passphrase.expose_secret()))
                .map_err(|_| SigningError::WrongPassphrase {
                    path: path.to_owned(),
                })?;
        }
        let signer = Signer {
            key: part,
            emails: emails(&key),
            public: key
                .to_public_key()
                .to_armored_string(ArmorOptions::default())
                .unwrap_or_else(|e| format!("<unencodable: {e}>")),
        };
        // A key rpgp cannot sign with (an algorithm or curve it lacks) is found now, not at
        // the first delivery.
        signer.sign(b"").map_err(|detail| SigningError::Sign {
            path: path.to_owned(),
            detail: format!("a {:?} key: {detail}", signer.key.algorithm()),
        })?;
        Ok(signer)
    }

    pub(super) fn emails(&self) -> Vec<String> {
        self.emails.clone()
    }

    pub(super) fn public_key(&self) -> &str {
        &self.public
    }

    /// The signing key packet's fingerprint, as gpg prints it.
    pub(super) fn fingerprint(&self) -> String {
        format!("{:X}", self.key.fingerprint())
    }

    /// An armored detached signature of `data` as binary (not text) data, with the
    /// key's hash (SHA-256 or stronger), the issuer's fingerprint and the creation time.
    pub(super) fn sign(&self, data: &[u8]) -> Result<String, String> {
        let signature = match &self.key {
            Part::Primary(key) => detached(key, data),
            Part::Subkey(key) => detached(key, data),
        };
        signature
            .and_then(|s| s.to_armored_string(ArmorOptions::default()))
            .map_err(|e| e.to_string())
    }
}

fn detached(key: &impl SigningKey, data: &[u8]) -> pgp::errors::Result<DetachedSignature> {
    // The passphrase was removed at load; the random source salts v6 signatures only.
    DetachedSignature::sign_binary_data(
        rand::thread_rng(),
        key,
        &Password::empty(),
        key.hash_alg(),
        data,
    )
}

impl Part {
    fn is_encrypted(&self) -> bool {
        let params = match self {
            Part::Primary(key) => key.secret_params(),
            Part::Subkey(key) => key.secret_params(),
        };
        matches!(params, SecretParams::Encrypted(_))
    }

    fn remove_password(&mut self, password: &Password) -> pgp::errors::Result<()> {
        match self {
            Part::Primary(key) => key.remove_password(password),
            Part::Subkey(key) => key.remove_password(password),
        }
    }

    fn algorithm(&self) -> pgp::crypto::public_key::PublicKeyAlgorithm {
        match self {
            Part::Primary(key) => key.algorithm(),
            Part::Subkey(key) => key.algorithm(),
        }
    }

    fn fingerprint(&self) -> pgp::types::Fingerprint {
        match self {
            Part::Primary(key) => key.fingerprint(),
            Part::Subkey(key) => key.fingerprint(),
        }
    }
}

/// The key packet that signs: the primary when a self-signature marks it for signing,
/// else the newest usable signing subkey.
fn choose(key: &SignedSecretKey, now: Timestamp) -> Option<Part> {
    let primary_signs = key
        .details
        .users
        .iter()
        .flat_map(|user| &user.signatures)
        .chain(&key.details.direct_signatures)
        .any(|s| s.key_flags().sign());
    if primary_signs {
        return Some(Part::Primary(key.primary_key.clone()));
    }
    key.secret_subkeys
        .iter()
        .filter(|sub| usable_for_signing(sub, now))
        .max_by_key(|sub| sub.key.created_at().as_secs())
        .map(|sub| Part::Subkey(sub.key.clone()))
}

fn usable_for_signing(sub: &SignedSecretSubKey, now: Timestamp) -> bool {
    let revoked = sub
        .signatures
        .iter()
        .any(|s| s.typ() == Some(SignatureType::SubkeyRevocation));
    let binding: Option<&Signature> = sub
        .signatures
        .iter()
        .filter(|s| s.typ() == Some(SignatureType::SubkeyBinding))
        .max_by_key(|s| s.created().map_or(0, Timestamp::as_secs));
    let Some(binding) = binding else {
        return false;
    };
    // A key expiration time counts from the key's creation; zero means never.
    let expired = binding.key_expiration_time().is_some_and(|valid| {
        let valid = valid.as_secs();
        valid != 0
            && u64::from(sub.key.created_at().as_secs()) + u64::from(valid)
                <= u64::from(now.as_secs())
    });
    !revoked && !expired && binding.key_flags().sign()
}

/// The e-mail addresses of the key's user IDs: `Name <address>`, or a bare address.
fn emails(key: &SignedSecretKey) -> Vec<String> {
    key.details
        .users
        .iter()
        .filter_map(|user| user.id.as_str())
        .filter_map(|id| {
            let address = match id.rsplit_once('<') {
                Some((_, rest)) => rest.split_once('>')?.0,
                None => id.trim(),
            };
            (address.contains('@') && !address.contains(char::is_whitespace))
                .then(|| address.to_owned())
        })
        .collect()
}
