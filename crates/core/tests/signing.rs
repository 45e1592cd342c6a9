//! OpenPGP signing keys as GnuPG makes them: which key packet signs, how the passphrase
//! is checked, and that gpg accepts what Courier signs (binary-document signatures with
//! SHA-256, the issuer's fingerprint and the creation time).

use std::path::{Path, PathBuf};

use courier_core::signing::{SigningError, SigningFormat, SigningKey};
use courier_testkit::keys::Keyring;
use secrecy::SecretString;
use tempfile::TempDir;

const PASSPHRASE: &str = "correct horse battery staple";
const USER_ID: &str = "Courier <courier@noreply.invalid>";

/// A keyring and a directory for keys and signed files. The keyring goes first, so its
/// agent is stopped before the directory is removed.
struct World {
    keyring: Keyring,
    dir: TempDir,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    World {
        keyring: Keyring::new(&dir.path().join("gnupg")),
        dir,
    }
}

impl World {
    fn key_path(&self) -> PathBuf {
        self.dir.path().join("courier.asc")
    }

    fn load(&self, passphrase: Option<&str>) -> Result<SigningKey, SigningError> {
        let passphrase = passphrase.map(|p| SecretString::from(p.to_owned()));
        SigningKey::load(
            SigningFormat::OpenPgp,
            &self.key_path(),
            passphrase.as_ref(),
        )
    }

    /// Signs `data` as Courier signs a commit and has gpg check it: gpg's status lines
    /// (`VALIDSIG <signing key> ...`) and its listing of the signature packet.
    fn verify(&self, key: &SigningKey, data: &[u8]) -> (String, String) {
        let signature = key.sign_commit(data).unwrap();
        assert!(
            signature.starts_with("-----BEGIN PGP SIGNATURE-----\n"),
            "{signature}"
        );
        let (data_file, signature_file) = (
            self.dir.path().join("data"),
            self.dir.path().join("data.asc"),
        );
        std::fs::write(&data_file, data).unwrap();
        std::fs::write(&signature_file, &signature).unwrap();
        let status = self.keyring.gpg(
            "",
            &[
                "--status-fd=1",
                "--verify",
                path(&signature_file),
                path(&data_file),
            ],
        );
        let packets = self
            .keyring
            .gpg("", &["--list-packets", path(&signature_file)]);
        (
            String::from_utf8(status).unwrap(),
            String::from_utf8(packets).unwrap(),
        )
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

const COMMIT: &[u8] = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor Courier <courier@noreply.invalid> 1700000000 +0000\ncommitter Courier <courier@noreply.invalid> 1700000000 +0000\n\nDeliver\n";

#[test]
fn an_ed25519_primary_key_signs_binary_data_with_sha256_its_fingerprint_and_the_time() {
    let w = world();
    let fingerprint = w
        .keyring
        .generate(USER_ID, "ed25519", "sign", PASSPHRASE, &w.key_path());
    let key = w.load(Some(PASSPHRASE)).unwrap();
    assert_eq!(key.format(), SigningFormat::OpenPgp);
    assert_eq!(key.identities(), ["courier@noreply.invalid"]);
    assert_eq!(
        format!("{key:?}"),
        format!("SigningKey({}, {fingerprint})", w.key_path().display())
    );
    let (status, packets) = w.verify(&key, COMMIT);
    assert!(
        status.contains("[GNUPG:] GOODSIG")
            && status.contains(&format!("[GNUPG:] VALIDSIG {fingerprint} ")),
        "{status}"
    );
    for expected in [
        "sigclass 0x00".to_owned(),
        "digest algo 8,".to_owned(),
        format!("(issuer fpr v4 {fingerprint})"),
        "(sig created ".to_owned(),
    ] {
        assert!(packets.contains(&expected), "{expected} in:\n{packets}");
    }
}

#[test]
fn a_wrong_or_missing_passphrase_is_refused_naming_the_key_only() {
    let w = world();
    w.keyring
        .generate(USER_ID, "ed25519", "sign", PASSPHRASE, &w.key_path());
    let shown = w.key_path().display().to_string();
    let wrong = w.load(Some("not the passphrase")).unwrap_err();
    assert!(
        matches!(wrong, SigningError::WrongPassphrase { .. }),
        "{wrong:?}"
    );
    assert_eq!(
        wrong.to_string(),
        format!("the passphrase does not unlock {shown}")
    );
    let missing = w.load(None).unwrap_err();
    assert_eq!(
        missing.to_string(),
        format!("{shown} is protected by a passphrase and none is configured")
    );
}

#[test]
fn a_primary_key_that_only_certifies_signs_with_its_signing_subkey() {
    let w = world();
    let primary = w
        .keyring
        .generate(USER_ID, "ed25519", "cert", "", &w.key_path());
    // Without a signing subkey nothing can sign.
    let refused = w.load(None).unwrap_err();
    assert!(
        matches!(refused, SigningError::NoSigningKey { .. }),
        "{refused:?}"
    );

    w.keyring.gpg(
        "",
        &["--quick-add-key", &primary, "ed25519", "sign", "never"],
    );
    w.keyring.export_secret(USER_ID, "", &w.key_path());
    let subkey = w.keyring.fingerprints(USER_ID).swap_remove(1);
    let key = w.load(None).unwrap();
    assert!(format!("{key:?}").contains(&subkey), "{key:?}");
    let (status, packets) = w.verify(&key, COMMIT);
    // VALIDSIG names the key that signed, and last the primary it belongs to.
    let valid = status
        .lines()
        .find(|line| line.starts_with("[GNUPG:] VALIDSIG "))
        .unwrap_or_else(|| panic!("no VALIDSIG in:\n{status}"));
    assert!(
        valid.starts_with(&format!("[GNUPG:] VALIDSIG {subkey} ")) && valid.ends_with(&primary),
        "{valid}"
    );
    assert!(
        packets.contains(&format!("(issuer fpr v4 {subkey})")),
        "{packets}"
    );
}

#[test]
fn rsa_and_ecdsa_keys_sign_too() {
    for algo in ["rsa2048", "nistp256"] {
        let w = world();
        let fingerprint = w.keyring.generate(USER_ID, algo, "sign", "", &w.key_path());
        let key = w.load(None).unwrap();
        let (status, _) = w.verify(&key, COMMIT);
        assert!(
            status.contains(&format!("[GNUPG:] VALIDSIG {fingerprint} ")),
            "{algo}: {status}"
        );
    }
}

#[test]
fn a_file_that_is_no_armored_secret_key_is_refused() {
    let w = world();
    w.keyring
        .generate(USER_ID, "ed25519", "sign", "", &w.key_path());
    // The public key, as people export by mistake.
    let public = w.keyring.gpg("", &["--armor", "--export", USER_ID]);
    std::fs::write(w.key_path(), public).unwrap();
    let refused = w.load(None).unwrap_err();
    assert!(
        matches!(refused, SigningError::NotAKey { .. }),
        "{refused:?}"
    );
    assert!(
        refused
            .to_string()
            .contains(&w.key_path().display().to_string()),
        "{refused}"
    );
}
