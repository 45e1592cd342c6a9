//! Certificate authorities a connection trusts on top of the system's (`tls.ca_file`),
//! for libgit2's HTTPS: libgit2 verifies against the system's roots only, and the process-
//! wide switch it has would apply to every connection; so its certificate callback asks
//! here whether the connection's own authorities vouch for the server's certificate.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

/// Whether `leaf` (DER), the certificate the server showed, is valid for `host` and issued
/// by one of `roots` (DER). libgit2 hands over the leaf only, so the file must hold the
/// certificate authority that issued it (an intermediate, if there is one).
pub(crate) fn vouches_for(roots: &[Vec<u8>], leaf: &[u8], host: &str) -> bool {
    let mut store = rustls::RootCertStore::empty();
    for der in roots {
        // An unusable root is ignored; the file was checked at load.
        let _ = store.add(CertificateDer::from(der.clone()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let Ok(verifier) =
        WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider).build()
    else {
        return false;
    };
    let Ok(name) = ServerName::try_from(host.to_owned()) else {
        return false;
    };
    verifier
        .verify_server_cert(
            &CertificateDer::from(leaf.to_vec()),
            &[],
            &name,
            &[],
            UnixTime::now(),
        )
        .is_ok()
}
