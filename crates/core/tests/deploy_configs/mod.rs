//! Loading the configurations shipped under `deploy/`: every variable gets a fake value,
//! and the key files an example names for signing are made for it with the real tools.

use std::path::{Path, PathBuf};

use courier_testkit::keys::Keyring;
use courier_testkit::ssh_keygen;

/// Every variable resolves to a value long enough for a token.
pub fn fake_env(name: &str) -> Option<String> {
    Some(match name {
        "GITHUB_APP_ID" => "12345".to_owned(),
        "DATABASE_URL" => "postgres://courier@db/courier".to_owned(),
        _ => format!("fake-{}-0123456789abcdef", name.to_ascii_lowercase()),
    })
}

/// A shipped configuration where it can be loaded from: in place, or (the signing
/// example) copied into a scratch directory next to the keys it names.
pub struct Loadable {
    pub path: PathBuf,
    // Dropped before the scratch directory: stops the gpg-agent.
    _keyring: Option<Keyring>,
    _scratch: Option<tempfile::TempDir>,
}

pub fn loadable(config: &Path) -> Loadable {
    if config.file_name().and_then(|n| n.to_str()) != Some("signed-commits.yaml") {
        return Loadable {
            path: config.to_owned(),
            _keyring: None,
            _scratch: None,
        };
    }
    let scratch = tempfile::tempdir().unwrap();
    let keys = scratch.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let path = scratch.path().join("signed-commits.yaml");
    std::fs::copy(config, &path).unwrap();
    ssh_keygen(
        &keys.join("courier-signing"),
        "design-bot@acme.example",
        &fake_env("COURIER_SIGNING_PASSPHRASE").unwrap(),
    );
    let keyring = Keyring::new(&scratch.path().join("gnupg"));
    keyring.generate(
        "Design Bot <design-bot@acme.example>",
        "ed25519",
        "sign",
        &fake_env("COURIER_GPG_PASSPHRASE").unwrap(),
        &keys.join("courier-signing.asc"),
    );
    Loadable {
        path,
        _keyring: Some(keyring),
        _scratch: Some(scratch),
    }
}
