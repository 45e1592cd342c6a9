//! Whom Courier's HTTPS clients trust: the system's certificate authorities, read once per
//! process, and on top of them a connection's own (`tls.ca_file`), never instead.
//!
//! reqwest would read the system's authorities again for every client it builds: the
//! bundle and every file of the certificate directory, decoded from PEM. A delivery builds
//! several clients (the download, the fetch, the push), and that reading was about 5% of a
//! warm delivery's samples. Like Go's system pool, the authorities are read at first use
//! and kept: a change to the system's store is seen after a restart.

use std::collections::BTreeSet;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use rustls::pki_types::CertificateDer;

/// How many times this process read the system's authorities: once, or never.
static LOADS: AtomicUsize = AtomicUsize::new(0);

/// reqwest is built without a bundled crypto provider; install ring (the only one in the
/// tree) once per process. If someone installed a provider first, theirs is used.
pub fn install_crypto_provider() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The system's certificate authorities (`SSL_CERT_FILE`, `SSL_CERT_DIR` or the
/// platform's usual places), read at the first call. The bundle and the directory usually
/// hold the same certificates; each is kept once. One that rustls cannot use is left out,
/// as reqwest's own loading does, rather than failing every client.
pub fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        LOADS.fetch_add(1, Ordering::Relaxed);
        let loaded = rustls_native_certs::load_native_certs();
        for error in &loaded.errors {
            tracing::warn!(%error, "a system certificate authority could not be read");
        }
        let mut seen = BTreeSet::new();
        loaded
            .certs
            .into_iter()
            .filter(|cert| seen.insert(cert.as_ref().to_vec()))
            .filter(|cert| rustls::RootCertStore::empty().add(cert.clone()).is_ok())
            .collect()
    })
}

/// A reqwest client builder with ring installed, trusting the system's authorities and
/// `extra_roots` (DER), and no proxy yet. An extra authority rustls cannot use fails the
/// client's `build`: a `tls.ca_file` is never ignored.
pub fn client_builder(extra_roots: &[Vec<u8>]) -> reqwest::ClientBuilder {
    install_crypto_provider();
    let roots = system_roots()
        .iter()
        .map(|der| der.as_ref())
        .chain(extra_roots.iter().map(Vec::as_slice))
        .filter_map(|der| reqwest::Certificate::from_der(der).ok());
    reqwest::Client::builder().no_proxy().tls_certs_only(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_authorities_are_read_once_and_kept_once_each() {
        // Each test runs in a process of its own (nextest): nothing read them before.
        for _ in 0..3 {
            client_builder(&[]).build().expect("a client");
        }
        assert_eq!(
            LOADS.load(Ordering::Relaxed),
            1,
            "three clients, one reading of the system's authorities"
        );
        let first = system_roots();
        assert!(
            std::ptr::eq(first, system_roots()),
            "a second call reads nothing again"
        );
        let distinct: BTreeSet<&[u8]> = first.iter().map(|c| c.as_ref()).collect();
        assert_eq!(distinct.len(), first.len(), "no authority twice");
    }

    #[test]
    fn an_extra_authority_that_is_not_der_is_refused() {
        let built = client_builder(&[b"not a certificate".to_vec()]).build();
        assert!(built.is_err(), "a broken tls.ca_file must not be ignored");
        client_builder(&[])
            .build()
            .expect("the system's authorities alone");
    }
}
