//! [`TestTrust`], the switch that lets tests serve documents from a local TLS server, and the
//! TLS configuration of the fetch (rustls with the ring provider, the webpki roots).

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

/// Why a test CA was refused: no certificate in the text, or one rustls cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("test CA: {0}")]
pub struct TestCaError(String);

/// **For tests only.** What a test's local TLS server needs of the fetch: a CA to trust besides
/// the webpki roots, and, if allowed, loopback addresses (`127.0.0.0/8`, `::1`), which are
/// otherwise refused like every inside address. Private, link-local and unique-local addresses
/// stay refused.
///
/// Never configure it in production: a trusted test CA lets whoever holds its key serve any
/// client's document, and loopback lets a `client_id` reach this host's own services.
///
/// ```
/// use tower_agent_auth::oauth::AuthorizationServer;
/// use tower_agent_auth::oauth::document::TestTrust;
/// use tower_agent_auth::store::{MemoryStore, MemoryUserDirectory};
/// use tower_agent_auth::token::TokenFormat;
///
/// // The test's own CA (its server's certificate is signed by it), here made with rcgen.
/// let key = rcgen::KeyPair::generate().unwrap();
/// let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
/// ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
/// let ca_pem = ca.self_signed(&key).unwrap().pem();
///
/// let trust = TestTrust::from_pem(ca_pem.as_bytes()).unwrap().allow_loopback(true);
/// let store = MemoryStore::new(TokenFormat::new("acme").unwrap(), MemoryUserDirectory::new());
/// let server = AuthorizationServer::new(store, "http://127.0.0.1:8080")
///     .unwrap()
///     .metadata_documents_for_tests(trust);
/// assert_eq!(server.metadata()["client_id_metadata_document_supported"], true);
/// assert!(TestTrust::from_pem(b"not a certificate").is_err());
/// ```
#[derive(Clone)]
pub struct TestTrust {
    certificates: Vec<CertificateDer<'static>>,
    allow_loopback: bool,
}

impl std::fmt::Debug for TestTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestTrust")
            .field("certificates", &self.certificates.len())
            .field("allow_loopback", &self.allow_loopback)
            .finish()
    }
}

impl TestTrust {
    /// Trusts the CA certificates in `pem` (one or more `CERTIFICATE` blocks). Loopback stays
    /// refused until [`TestTrust::allow_loopback`].
    pub fn from_pem(pem: &[u8]) -> Result<Self, TestCaError> {
        let invalid = TestCaError;
        let certificates = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| invalid(error.to_string()))?;
        if certificates.is_empty() {
            return Err(invalid("no certificate in the PEM text".into()));
        }
        let mut roots = RootCertStore::empty();
        for certificate in &certificates {
            roots
                .add(certificate.clone())
                .map_err(|error| invalid(error.to_string()))?;
        }
        Ok(Self {
            certificates,
            allow_loopback: false,
        })
    }

    /// Also fetches from loopback addresses (a test server on `127.0.0.1`).
    pub fn allow_loopback(mut self, allow: bool) -> Self {
        self.allow_loopback = allow;
        self
    }

    /// Whether loopback addresses are allowed.
    pub fn allows_loopback(&self) -> bool {
        self.allow_loopback
    }
}

/// The TLS connector: the webpki roots, and `trust`'s CA; HTTP/1.1 only. `None` (and an error
/// in the log) if rustls cannot be set up, which the ring provider's defaults never cause.
pub(crate) fn connector(trust: Option<&TestTrust>) -> Option<TlsConnector> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for certificate in trust.map_or(&[][..], |t| &t.certificates[..]) {
        // Checked when the trust was made.
        let _ = roots.add(certificate.clone());
    }
    // ring, whose provider rustls 0.23.48 deprecated for its lack of post-quantum key
    // exchange. What that protects is confidentiality against later decryption; a metadata
    // document is public, and what matters is its origin, which the certificate check gives.
    // ring builds with a C compiler alone, where aws-lc-rs needs more of the toolchain.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config =
        match ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions() {
            Ok(builder) => builder.with_root_certificates(roots).with_no_client_auth(),
            Err(error) => {
                tracing::error!(%error, "oauth: no TLS for metadata documents");
                return None;
            }
        };
    let mut config = config;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Some(TlsConnector::from(Arc::new(config)))
}
