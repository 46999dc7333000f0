//! What the metadata-document tests share: a local HTTPS server (a CA and a certificate for
//! `localhost`, `docs.test` and `127.0.0.1`, made with rcgen; tokio-rustls and hyper) whose
//! answer is set per path, and a resolver that answers from a script, differently at each call
//! if told to.
#![cfg(feature = "client-id-metadata-documents")]
#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Frame, Incoming};
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tower_agent_auth::oauth::document::Resolve;

/// How a path is answered.
#[derive(Clone)]
pub enum Reply {
    /// 200, `application/json`, with a `Cache-Control` if given.
    Json(String, Option<&'static str>),
    /// This status with a `Location`.
    Redirect(u16, String),
    /// This status, with a JSON body.
    Status(u16),
    /// 200 after a wait.
    Late(Duration, String),
    /// 200 and the headers at once; the body after a wait.
    SlowBody(Duration, String),
    /// 200, the body in 1 KiB chunks, with no `Content-Length`.
    Chunked(String),
    /// 200 as `text/html`.
    Html(String),
}

/// A running HTTPS server; stopped when dropped.
pub struct DocumentServer {
    pub port: u16,
    /// The CA that signed its certificate, in PEM.
    pub ca_pem: String,
    replies: Arc<Mutex<HashMap<String, Reply>>>,
    hits: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DocumentServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A CA, and a certificate it signed for these names, with its key.
fn certificates(names: &[&str]) -> (String, CertificateDer<'static>, PrivateKeyDer<'static>) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "tower-agent-auth test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let cert = CertificateParams::new(names)
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (
        ca_cert.pem(),
        cert.der().clone(),
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
}

fn body(text: impl Into<Bytes>) -> BoxBody<Bytes, Infallible> {
    Full::new(text.into()).boxed()
}

fn json(status: StatusCode, text: String) -> Response<BoxBody<Bytes, Infallible>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body(text))
        .unwrap()
}

async fn answer(reply: Option<Reply>) -> Response<BoxBody<Bytes, Infallible>> {
    match reply {
        None => json(StatusCode::NOT_FOUND, "{}".into()),
        Some(Reply::Json(text, cache)) => {
            let mut response = json(StatusCode::OK, text);
            if let Some(cache) = cache {
                response
                    .headers_mut()
                    .insert(header::CACHE_CONTROL, cache.parse().unwrap());
            }
            response
        }
        Some(Reply::Redirect(status, location)) => Response::builder()
            .status(status)
            .header(header::LOCATION, location)
            .body(body(""))
            .unwrap(),
        Some(Reply::Status(status)) => json(StatusCode::from_u16(status).unwrap(), "{}".into()),
        Some(Reply::Late(wait, text)) => {
            tokio::time::sleep(wait).await;
            json(StatusCode::OK, text)
        }
        Some(Reply::SlowBody(wait, text)) => {
            let (mut sender, channel) =
                http_body_util::channel::Channel::<Bytes, Infallible>::new(1);
            tokio::spawn(async move {
                tokio::time::sleep(wait).await;
                let _ = sender.send(Frame::data(Bytes::from(text))).await;
            });
            Response::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .body(channel.boxed())
                .unwrap()
        }
        Some(Reply::Chunked(text)) => {
            let (mut sender, channel) =
                http_body_util::channel::Channel::<Bytes, Infallible>::new(4);
            tokio::spawn(async move {
                for chunk in text.into_bytes().chunks(1024) {
                    if sender
                        .send_data(Bytes::copy_from_slice(chunk))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
            Response::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .body(channel.boxed())
                .unwrap()
        }
        Some(Reply::Html(text)) => Response::builder()
            .header(header::CONTENT_TYPE, "text/html")
            .body(body(text))
            .unwrap(),
    }
}

impl DocumentServer {
    /// A server on 127.0.0.1, a free port, answering 404 until told otherwise.
    pub async fn start() -> Self {
        let (ca_pem, cert, key) = certificates(&["localhost", "docs.test", "127.0.0.1"]);
        #[allow(deprecated)]
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let replies: Arc<Mutex<HashMap<String, Reply>>> = Arc::default();
        let hits: Arc<Mutex<Vec<String>>> = Arc::default();
        let (r, h) = (replies.clone(), hits.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, replies, hits) = (acceptor.clone(), r.clone(), h.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                        let path = request.uri().path().to_owned();
                        hits.lock().unwrap().push(path.clone());
                        let reply = replies.lock().unwrap().get(&path).cloned();
                        async move { Ok::<_, Infallible>(answer(reply).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Self {
            port,
            ca_pem,
            replies,
            hits,
            task,
        }
    }

    /// `https://<host>:<port><path>`.
    pub fn url(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.port)
    }

    /// Answers `path` with `reply` from now on.
    pub fn set(&self, path: &str, reply: Reply) {
        self.replies.lock().unwrap().insert(path.to_owned(), reply);
    }

    /// How many requests reached `path`.
    pub fn hits(&self, path: &str) -> usize {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|p| *p == path)
            .count()
    }

    /// How many requests reached the server at all.
    pub fn all_hits(&self) -> usize {
        self.hits.lock().unwrap().len()
    }
}

/// Each name's answers, and how many calls it had.
type Answers = HashMap<String, (Vec<Vec<IpAddr>>, usize)>;

/// A resolver that answers from a script: for each name, its answers in turn, one a call, the
/// last one repeated; an unknown name does not resolve.
#[derive(Clone, Default)]
pub struct Script {
    answers: Arc<Mutex<Answers>>,
    calls: Arc<AtomicUsize>,
}

impl Script {
    /// `name` answers `addresses` after the answers given before.
    pub fn answer(&self, name: &str, addresses: &[&str]) -> &Self {
        let addresses = addresses.iter().map(|a| a.parse().unwrap()).collect();
        (self.answers.lock().unwrap())
            .entry(name.to_owned())
            .or_default()
            .0
            .push(addresses);
        self
    }

    /// How many times it was asked.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl Resolve for Script {
    async fn resolve(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mut answers = self.answers.lock().unwrap();
        let (list, asked) = answers
            .get_mut(host)
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such host"))?;
        let answer = list[(*asked).min(list.len() - 1)].clone();
        *asked += 1;
        Ok(answer)
    }
}

/// A document's URL on the test server, under the name `docs.test`.
pub const HOST: &str = "docs.test";

/// The test application over a document server, its resolver answering `docs.test` with
/// 127.0.0.1 (allowed, as loopback is for tests) unless `script` was given other answers first.
pub struct Documents {
    pub oauth: crate::oauth_support::OAuth,
    pub server: DocumentServer,
    pub script: Script,
}

impl Documents {
    /// With loopback allowed, documents kept 1 minute to 1 day, and a time limit of 1 s.
    pub async fn new() -> Self {
        Self::with(true, |documents| documents).await
    }

    /// With loopback allowed or not, and `configure` applied to the documents' settings.
    pub async fn with(
        allow_loopback: bool,
        configure: impl FnOnce(
            tower_agent_auth::oauth::document::MetadataDocuments,
        ) -> tower_agent_auth::oauth::document::MetadataDocuments,
    ) -> Self {
        use tower_agent_auth::oauth::document::{MetadataDocuments, TestTrust};
        let server = DocumentServer::start().await;
        let script = Script::default();
        let trust = TestTrust::from_pem(server.ca_pem.as_bytes())
            .unwrap()
            .allow_loopback(allow_loopback);
        let documents = configure(
            MetadataDocuments::new()
                .resolver(script.clone())
                .timeout(Duration::from_secs(1)),
        );
        let oauth = crate::oauth_support::OAuth::configured(move |s| {
            s.metadata_documents(documents)
                .metadata_documents_for_tests(trust)
        })
        .await;
        Self {
            oauth,
            server,
            script,
        }
    }

    /// The URL of `path` under `docs.test`.
    pub fn url(&self, path: &str) -> String {
        self.server.url(HOST, path)
    }

    /// A valid document for `path`, sending people back to the test application's redirect
    /// URI.
    pub fn document(&self, path: &str) -> serde_json::Value {
        serde_json::json!({
            "client_id": self.url(path),
            "client_name": "Docs <b>search</b>",
            "redirect_uris": [crate::oauth_support::REDIRECT],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
        })
    }

    /// Serves the valid document at `path`, with a `Cache-Control` if given.
    pub fn serve(&self, path: &str, cache: Option<&'static str>) -> String {
        self.server
            .set(path, Reply::Json(self.document(path).to_string(), cache));
        self.url(path)
    }

    /// How the authorization server reads the document at `url` now.
    pub async fn read(
        &self,
        url: &str,
    ) -> Result<tower_agent_auth::oauth::Client, tower_agent_auth::oauth::document::DocumentError>
    {
        self.oauth
            .server
            .authority()
            .metadata_document(url)
            .await
            .expect("metadata documents are accepted")
    }

    /// The consent page (or the error page) for an authorization request of `client_id`.
    pub async fn authorize_page(
        &self,
        cookie: &str,
        client_id: &str,
    ) -> crate::oauth_support::Answer {
        let (_, challenge) = crate::oauth_support::pkce();
        self.oauth
            .consent_page(
                cookie,
                &[
                    ("response_type", "code"),
                    ("client_id", client_id),
                    ("redirect_uri", crate::oauth_support::REDIRECT),
                    ("state", "xyz"),
                    ("code_challenge", &challenge),
                    ("code_challenge_method", "S256"),
                    ("resource", crate::oauth_support::RESOURCE),
                    ("scope", "notes:read"),
                ],
            )
            .await
    }

    /// Asserts that `answer` is an error page naming `code`: never a redirect.
    pub fn assert_refused_page(answer: &crate::oauth_support::Answer, code: &str) {
        assert!(
            answer.location().is_none(),
            "a redirect: {:?}",
            answer.location()
        );
        assert!(answer.status.is_client_error() || answer.status.is_server_error());
        assert!(answer.body.contains("<!doctype html>"), "{}", answer.body);
        assert!(answer.body.contains(code), "{code}: {}", answer.body);
    }
}
