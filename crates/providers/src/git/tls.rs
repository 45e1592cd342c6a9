//! Whom git's HTTPS trusts. The TLS stream libgit2 runs on (`git/socket.rs`) starts its
//! sessions here: they record whether the system's authorities vouch for the server's
//! certificate and finish the handshake either way, and libgit2 fails a connection they
//! did not vouch for unless its certificate callback accepts it. The callback asks
//! [`vouches_for`] whether the connection's own authorities (`tls.ca_file`) do: they add
//! to the system's trust for that connection only, and never replace it.

use std::sync::{Arc, Mutex, OnceLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme};

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// The system's authorities, loaded at the first TLS connection; `None` when the system
/// has none (every certificate is then left to the callback).
fn system() -> Option<Arc<WebPkiServerVerifier>> {
    static SYSTEM: OnceLock<Option<Arc<WebPkiServerVerifier>>> = OnceLock::new();
    SYSTEM
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            roots.add_parsable_certificates(courier_core::tls::system_roots().iter().cloned());
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .ok()
        })
        .clone()
}

/// A client session to `host` whose handshake finishes whatever the system's authorities
/// say of the certificate, and the [`Verdict`] in which they say it. Handshake signatures
/// are always checked, so the session is authenticated by the certificate it records.
pub(crate) fn session(host: &str) -> Result<(ClientConnection, Arc<Verdict>), String> {
    let name = ServerName::try_from(host.to_owned())
        .map_err(|_| format!("{host} is not a valid TLS server name"))?;
    let verdict = Arc::new(Verdict {
        system: system(),
        provider: provider(),
        seen: Mutex::new(None),
    });
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verdict.clone())
        .with_no_client_auth();
    let session = ClientConnection::new(Arc::new(config), name)
        .map_err(|e| format!("TLS setup failed: {e}"))?;
    Ok((session, verdict))
}

/// What the system's authorities said of the certificate a [`session`]'s server showed.
#[derive(Debug)]
pub(crate) struct Verdict {
    system: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
    seen: Mutex<Option<Seen>>,
}

/// The certificate the server showed (DER), and whether the system vouches for it.
type Seen = (Vec<u8>, Result<(), String>);

impl Verdict {
    /// The certificate and the verdict, once the handshake is over.
    pub(crate) fn take(&self) -> Option<Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

impl ServerCertVerifier for Verdict {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let vouched = match &self.system {
            Some(system) => system
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            None => Err("the system has no certificate authorities".to_owned()),
        };
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some((end_entity.to_vec(), vouched));
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Whether `leaf` (DER), the certificate the server showed, is valid for `host` and issued
/// by one of `roots` (DER). libgit2 hands over the leaf only, so the file must hold the
/// certificate authority that issued it (an intermediate, if there is one).
pub(crate) fn vouches_for(roots: &[Vec<u8>], leaf: &[u8], host: &str) -> bool {
    let mut store = rustls::RootCertStore::empty();
    for der in roots {
        // An unusable root is ignored; the file was checked at load.
        let _ = store.add(CertificateDer::from(der.clone()));
    }
    let Ok(verifier) =
        WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider()).build()
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
