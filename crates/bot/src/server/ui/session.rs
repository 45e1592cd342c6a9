//! The dashboard's sessions: a signed cookie that carries its own expiry, and CSRF tokens
//! derived from it. Nothing is stored server-side, so a restart keeps everyone signed in
//! (the key lives in the data directory) and several workers need no shared table.

use std::fmt;
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit as _, Mac as _};
use rand::RngCore as _;
use subtle::ConstantTimeEq as _;

use crate::server::auth::Role;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The cookie's name.
pub const COOKIE: &str = "courier_session";
/// How long a session lasts: a working day, then the token is asked for again.
pub const LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// The key's file in the data directory.
pub const KEY_FILE: &str = "ui-session.key";

const KEY_LEN: usize = 32;
const ID_LEN: usize = 16;
const MAC_LEN: usize = 32;
const EXPIRY_LEN: usize = 8;
const ROLE_LEN: usize = 1;
// Each MAC says what it is for, so a CSRF token can never pass as a session or back.
const SESSION_PURPOSE: &[u8] = b"courier-ui-session\0";
const CSRF_PURPOSE: &[u8] = b"courier-ui-csrf\0";

/// The key that signs sessions. Its `Debug` never shows it.
pub struct Key([u8; KEY_LEN]);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

/// A valid session: its random id (what CSRF tokens are bound to) and what the token it
/// was opened with may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    id: [u8; ID_LEN],
    role: Role,
}

impl Session {
    pub fn role(&self) -> Role {
        self.role
    }
}

fn role_byte(role: Role) -> u8 {
    match role {
        Role::Admin => 1,
        Role::Viewer => 2,
    }
}

impl Key {
    /// The key in `{data_dir}/ui-session.key`, made (32 random bytes, mode 0600) when
    /// absent. A file of another size is an error rather than silently replaced: replacing
    /// it would sign everyone out, which the operator should choose.
    pub fn load_or_create(data_dir: &Path) -> io::Result<Key> {
        std::fs::create_dir_all(data_dir)?;
        let path = data_dir.join(KEY_FILE);
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path);
        match created {
            Ok(mut file) => {
                let mut key = [0u8; KEY_LEN];
                rand::rngs::OsRng.fill_bytes(&mut key);
                file.write_all(&key)?;
                file.sync_all()?;
                Ok(Key(key))
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let bytes = std::fs::read(&path)?;
                let len = bytes.len();
                let key = bytes.try_into().map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{} holds {len} bytes, not {KEY_LEN}: delete it to make a new key \
                             (this signs everyone out of the dashboard)",
                            path.display()
                        ),
                    )
                })?;
                Ok(Key(key))
            }
            Err(e) => Err(e),
        }
    }

    #[cfg(test)]
    fn from_bytes(key: [u8; KEY_LEN]) -> Key {
        Key(key)
    }

    fn mac(&self, purpose: &[u8], parts: &[&[u8]]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(purpose);
        for part in parts {
            mac.update(part);
        }
        mac
    }

    /// A new session for `role` lasting [`LIFETIME`] from `now`, and the cookie value that
    /// carries it: expiry (seconds since the epoch), role, random id and their MAC, in
    /// base64url. The role is signed with the rest: a viewer cannot make itself an admin.
    pub fn issue(&self, now: SystemTime, role: Role) -> (Session, String) {
        let expires = seconds(now)
            .saturating_add(LIFETIME.as_secs())
            .to_be_bytes();
        let role_part = [role_byte(role)];
        let mut id = [0u8; ID_LEN];
        rand::rngs::OsRng.fill_bytes(&mut id);
        let tag = self
            .mac(SESSION_PURPOSE, &[&expires, &role_part, &id])
            .finalize()
            .into_bytes();
        let mut value = Vec::with_capacity(EXPIRY_LEN + ROLE_LEN + ID_LEN + MAC_LEN);
        value.extend_from_slice(&expires);
        value.extend_from_slice(&role_part);
        value.extend_from_slice(&id);
        value.extend_from_slice(&tag);
        (Session { id, role }, URL_SAFE_NO_PAD.encode(value))
    }

    /// The session a cookie value carries, if this key signed it and it has not expired.
    pub fn verify(&self, value: &str, now: SystemTime) -> Option<Session> {
        let bytes = URL_SAFE_NO_PAD.decode(value).ok()?;
        if bytes.len() != EXPIRY_LEN + ROLE_LEN + ID_LEN + MAC_LEN {
            return None;
        }
        let (expires, rest) = bytes.split_at(EXPIRY_LEN);
        let (role, rest) = rest.split_at(ROLE_LEN);
        let (id, tag) = rest.split_at(ID_LEN);
        // The MAC first, in constant time: expiry and role are only trusted once signed.
        self.mac(SESSION_PURPOSE, &[expires, role, id])
            .verify_slice(tag)
            .ok()?;
        let role = [Role::Admin, Role::Viewer]
            .into_iter()
            .find(|r| role_byte(*r) == role[0])?;
        let expires = u64::from_be_bytes(expires.try_into().ok()?);
        (seconds(now) < expires).then(|| Session {
            id: id.try_into().expect("split at ID_LEN"),
            role,
        })
    }

    /// The CSRF token of `session`, for the hidden field of its forms.
    pub fn csrf(&self, session: &Session) -> String {
        URL_SAFE_NO_PAD.encode(
            self.mac(CSRF_PURPOSE, &[&session.id])
                .finalize()
                .into_bytes(),
        )
    }

    /// Whether `presented` is `session`'s CSRF token (compared in constant time).
    pub fn csrf_matches(&self, session: &Session, presented: &str) -> bool {
        self.csrf(session)
            .as_bytes()
            .ct_eq(presented.as_bytes())
            .into()
    }
}

fn seconds(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_verifies_until_it_expires_and_only_under_its_key() {
        let key = Key::from_bytes([7; KEY_LEN]);
        let now = SystemTime::now();
        let (session, value) = key.issue(now, Role::Admin);
        assert_eq!(key.verify(&value, now), Some(session.clone()));
        assert_eq!(key.verify(&value, now + LIFETIME), None, "expired");
        assert_eq!(Key::from_bytes([8; KEY_LEN]).verify(&value, now), None);
        // Any changed byte (here the expiry, pushed later) breaks the MAC.
        let mut bytes = URL_SAFE_NO_PAD.decode(&value).unwrap();
        bytes[0] ^= 1;
        assert_eq!(key.verify(&URL_SAFE_NO_PAD.encode(&bytes), now), None);
        assert_eq!(key.verify("", now), None);
        assert_eq!(key.verify("not base64!", now), None);
    }

    #[test]
    fn the_role_is_signed_with_the_session() {
        let key = Key::from_bytes([7; KEY_LEN]);
        let now = SystemTime::now();
        let (viewer, value) = key.issue(now, Role::Viewer);
        assert_eq!(viewer.role(), Role::Viewer);
        assert_eq!(
            key.verify(&value, now).map(|s| s.role()),
            Some(Role::Viewer)
        );
        // Turning the role byte into the admin's breaks the MAC.
        let mut bytes = URL_SAFE_NO_PAD.decode(&value).unwrap();
        bytes[EXPIRY_LEN] = role_byte(Role::Admin);
        assert_eq!(key.verify(&URL_SAFE_NO_PAD.encode(&bytes), now), None);
    }

    #[test]
    fn csrf_tokens_belong_to_one_session() {
        let key = Key::from_bytes([7; KEY_LEN]);
        let now = SystemTime::now();
        let (first, first_cookie) = key.issue(now, Role::Admin);
        let (second, _) = key.issue(now, Role::Admin);
        let token = key.csrf(&first);
        assert!(key.csrf_matches(&first, &token));
        assert!(!key.csrf_matches(&second, &token));
        assert!(!key.csrf_matches(&first, ""));
        // A CSRF token is not a session, nor the other way round.
        assert_eq!(key.verify(&token, now), None);
        assert!(!key.csrf_matches(&first, &first_cookie));
    }

    #[test]
    fn the_key_is_made_once_private_and_kept() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let first = Key::load_or_create(&data).unwrap();
        let mode = std::fs::metadata(data.join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = Key::load_or_create(&data).unwrap();
        assert_eq!(first.0, again.0, "survives a restart");
        assert_eq!(format!("{first:?}"), "Key(<redacted>)");
        std::fs::write(data.join(KEY_FILE), b"short").unwrap();
        let err = Key::load_or_create(&data).unwrap_err();
        assert!(err.to_string().contains("holds 5 bytes"), "{err}");
    }
}
