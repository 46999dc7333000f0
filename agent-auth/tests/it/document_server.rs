//! A local HTTPS server that serves one Client ID Metadata Document, for `serve` started with
//! the hidden test switch (`AGENT_AUTH_TEST_METADATA_DOCUMENT_CA`): a CA and a certificate for
//! `localhost` made with rcgen, served with tokio-rustls and hyper on its own thread.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// The path the document is served at.
pub const PATH: &str = "/mcp-client.json";

/// The server: where the document is, the CA to trust, and how often it was fetched.
pub struct DocumentServer {
    /// `https://localhost:<port>/mcp-client.json`: the client's `client_id`.
    pub url: String,
    /// The CA that signed the server's certificate, in PEM.
    pub ca_pem: String,
    fetches: Arc<AtomicUsize>,
}

impl DocumentServer {
    /// Serves, at [`PATH`], the document of a public client redirecting to `redirect_uri`.
    pub fn start(client_name: &str, redirect_uri: &str) -> Self {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "agent-auth test CA");
        let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        #[allow(deprecated)]
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!(
            "https://localhost:{}{PATH}",
            listener.local_addr().unwrap().port()
        );
        let document = serde_json::json!({
            "client_id": url,
            "client_name": client_name,
            "redirect_uris": [redirect_uri],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
        })
        .to_string();
        let fetches = Arc::new(AtomicUsize::new(0));
        let counted = fetches.clone();
        // Its own runtime on its own thread: the tests that use it are synchronous. It lives
        // as long as the test binary.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        return;
                    };
                    let (acceptor, document, counted) =
                        (acceptor.clone(), document.clone(), counted.clone());
                    tokio::spawn(async move {
                        let Ok(tls) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let service =
                            hyper::service::service_fn(move |request: http::Request<_>| {
                                let found = request.uri().path() == PATH;
                                if found {
                                    counted.fetch_add(1, Ordering::SeqCst);
                                }
                                let document = document.clone();
                                async move {
                                    let response = http::Response::builder()
                                        .status(if found { 200 } else { 404 })
                                        .header("content-type", "application/json")
                                        .header("cache-control", "max-age=300")
                                        .body(Full::new(Bytes::from(if found {
                                            document
                                        } else {
                                            "{}".to_owned()
                                        })))
                                        .unwrap();
                                    Ok::<_, Infallible>(response)
                                }
                            });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(tls), service)
                            .await;
                    });
                }
            });
        });
        Self {
            url,
            ca_pem,
            fetches,
        }
    }

    /// How many times the document was fetched.
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}
