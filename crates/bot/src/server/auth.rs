//! Shared-secret checks, in constant time so that timing reveals nothing about a token.

use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

/// Whether `presented` equals one of `accepted`. Every configured token is compared, match
/// or not, so the time taken does not tell which one (or how much of one) matched.
pub fn matches_any(presented: &[u8], accepted: &[SecretString]) -> bool {
    let mut found = subtle::Choice::from(0);
    for token in accepted {
        found |= presented.ct_eq(token.expose_secret().as_bytes());
    }
    found.into()
}

/// What a token may do with the API and the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything, retries included.
    Admin,
    /// Read only.
    Viewer,
}

/// The role `presented` grants, if it is one of `admin`'s tokens; both lists are always
/// compared, so the time taken does not tell which kind matched.
pub fn role(presented: &[u8], admin: &courier_core::config::Admin) -> Option<Role> {
    let is_admin = matches_any(presented, &admin.tokens);
    let is_viewer = matches_any(presented, &admin.viewer_tokens);
    match (is_admin, is_viewer) {
        (true, _) => Some(Role::Admin),
        (false, true) => Some(Role::Viewer),
        (false, false) => None,
    }
}

/// The token of an `Authorization: Bearer <token>` header value.
pub fn bearer(header: Option<&axum::http::HeaderValue>) -> Option<&[u8]> {
    let value = header?.as_bytes();
    let scheme = value.get(..7)?;
    if scheme.eq_ignore_ascii_case(b"bearer ") {
        Some(value[7..].trim_ascii())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_only_a_configured_token() {
        let accepted = vec![
            SecretString::from("first-token-0123456789"),
            SecretString::from("second-token-0123456789"),
        ];
        assert!(matches_any(b"second-token-0123456789", &accepted));
        assert!(!matches_any(b"second-token-012345678", &accepted));
        assert!(!matches_any(b"", &accepted));
        assert!(!matches_any(b"anything", &[]));
    }

    #[test]
    fn parses_bearer_headers() {
        let h = |s: &str| axum::http::HeaderValue::from_str(s).unwrap();
        assert_eq!(bearer(Some(&h("Bearer abc"))), Some(&b"abc"[..]));
        assert_eq!(bearer(Some(&h("bearer  abc "))), Some(&b"abc"[..]));
        assert_eq!(bearer(Some(&h("Basic abc"))), None);
        assert_eq!(bearer(None), None);
    }
}
