//! What the grant tests share, over any store: the authorization server and a protected API
//! (`GET /api/posts` needs `posts:read`, `POST` `posts:write`, bound to [`RESOURCE`]) on one
//! store, an audit trail, and a witness of every secret handed out and every URL requested;
//! and the stores to run on — memory, SQLite (a temporary file), PostgreSQL (a fresh schema,
//! when `AGENT_AUTH_TEST_POSTGRES_URL` is set).
#![cfg(all(feature = "oauth", feature = "testing"))]
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use tower_agent_auth::audit::{
    AuditFilter, AuditQuery, AuditWriter, MemoryAuditSink, WriterOptions,
};
use tower_agent_auth::clock::ManualClock;
use tower_agent_auth::oauth::AuthorizationServer;
use tower_agent_auth::principal::AgentId;
use tower_agent_auth::store::{
    Backend, IssuedToken, MemoryUserDirectory, NewAgent, NewToken, Store,
};
use tower_agent_auth::{AgentAuthLayer, Principal};

pub const ISSUER: &str = "http://127.0.0.1:8080";
pub const RESOURCE: &str = "http://127.0.0.1:8080/api";
pub const OTHER_RESOURCE: &str = "http://127.0.0.1:8080/other";
pub const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";

/// An answer, read whole.
pub struct Answer {
    pub status: StatusCode,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// The OAuth error code, asserting the status that goes with it.
    pub fn error(&self) -> String {
        let error = self.json()["error"].as_str().unwrap_or_default().to_owned();
        let status = if error == "invalid_client" { 401 } else { 400 };
        assert_eq!(self.status.as_u16(), status, "{error}: {}", self.body);
        error
    }

    /// The access token of a 200 answer.
    pub fn access_token(&self) -> String {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        self.json()["access_token"].as_str().unwrap().to_owned()
    }
}

/// The application over one store (users `alice`: `posts:*`, `comments:read`; `bob`: anything).
pub struct Env<B: Backend> {
    pub store: Store<B>,
    pub users: MemoryUserDirectory,
    pub clock: Arc<ManualClock>,
    pub app: Router,
    sink: Arc<MemoryAuditSink>,
    writer: AuditWriter,
    secrets: Mutex<Vec<String>>,
    urls: Mutex<Vec<String>>,
}

fn allowed(principal: &Principal, capability: &str) -> StatusCode {
    if principal.can(capability) {
        StatusCode::OK
    } else {
        StatusCode::FORBIDDEN
    }
}

impl<B: Backend> Env<B> {
    pub fn new(store: Store<B>, users: MemoryUserDirectory, clock: Arc<ManualClock>) -> Self {
        let sink = Arc::new(MemoryAuditSink::default());
        let writer = AuditWriter::spawn(sink.clone(), WriterOptions::default());
        let server = AuthorizationServer::new(store.clone(), ISSUER)
            .unwrap()
            .resource(RESOURCE)
            .resource(OTHER_RESOURCE)
            .audit(writer.clone());
        let api = Router::new()
            .route(
                "/api/posts",
                get(|p: Principal| async move { allowed(&p, "posts:read") })
                    .post(|p: Principal| async move { allowed(&p, "posts:write") }),
            )
            .layer(AgentAuthLayer::new(store.clone()).resource(RESOURCE));
        Self {
            app: server.router().merge(api),
            store,
            users,
            clock,
            sink,
            writer,
            secrets: Mutex::default(),
            urls: Mutex::default(),
        }
    }

    /// A secret handed out, to look for where it must not be.
    pub fn secret(&self, value: &str) {
        self.secrets.lock().unwrap().push(value.to_owned());
    }

    /// `POST path` with a form and, if given, Basic credentials; access tokens answered are
    /// noted as secrets.
    pub async fn post(
        &self,
        path: &str,
        pairs: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> Answer {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in pairs {
            form.append_pair(name, value);
        }
        let mut request =
            Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some((id, secret)) = basic {
            let encoded = STANDARD.encode(format!("{id}:{secret}"));
            request = request.header(header::AUTHORIZATION, format!("Basic {encoded}"));
        }
        let answer = self
            .send(request.body(Body::from(form.finish())).unwrap())
            .await;
        if let Some(token) = answer.json()["access_token"].as_str() {
            self.secret(token);
        }
        answer
    }

    async fn send(&self, request: Request<Body>) -> Answer {
        self.urls.lock().unwrap().push(request.uri().to_string());
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// `POST /oauth/token`.
    pub async fn token(&self, pairs: &[(&str, &str)], basic: Option<(&str, &str)>) -> Answer {
        self.post("/oauth/token", pairs, basic).await
    }

    /// The protected API with a bearer token: `GET` (`posts:read`) or `POST` (`posts:write`).
    pub async fn api(&self, method: &str, token: &str) -> StatusCode {
        let request = Request::builder()
            .method(method)
            .uri("/api/posts")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        self.send(request).await.status
    }

    /// An agent of `owner`.
    pub async fn agent(&self, slug: &str, owner: &str) -> AgentId {
        self.agent_from(NewAgent::new(slug, owner)).await
    }

    pub async fn agent_from(&self, new: NewAgent) -> AgentId {
        self.store.create_agent(new).await.unwrap().id
    }

    /// A token of `agent`, minted as the CLI does (no client, no resource).
    pub async fn cli_token(&self, agent: &AgentId) -> IssuedToken {
        let issued = self
            .store
            .create_token(agent, NewToken::new("cli"))
            .await
            .unwrap();
        self.secret(issued.token.expose_secret());
        issued
    }

    /// Gives `agent` a client secret: (client id, secret).
    pub async fn agent_client(&self, agent: &AgentId) -> (String, String) {
        let registered = self.store.register_agent_client(agent).await.unwrap();
        let secret = registered.secret.unwrap().expose_secret().to_owned();
        self.secret(&secret);
        (registered.client.id, secret)
    }

    /// Introspects `token` as a resource server allowed to (registered on first use).
    pub async fn introspect(&self, token: &str) -> Value {
        use tower_agent_auth::oauth::NewClient;
        let registered = self
            .store
            .register_client(NewClient::new("resource server").may_introspect())
            .await
            .unwrap();
        let secret = registered.secret.unwrap().expose_secret().to_owned();
        self.secret(&secret);
        let answer = self
            .post(
                "/oauth/introspect",
                &[("token", token)],
                Some((&registered.client.id, &secret)),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        answer.json()
    }

    /// Every audit event's text, once the writer wrote what was queued.
    pub async fn trail(&self) -> String {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(self.writer.dropped(), 0);
        format!(
            "{:?}",
            self.sink.events(&AuditFilter::default()).await.unwrap()
        )
    }

    /// No secret handed out in a URL requested or in the audit trail.
    pub async fn assert_no_secret_leaked(&self) {
        let trail = self.trail().await;
        let secrets = self.secrets.lock().unwrap().clone();
        assert!(secrets.len() >= 2, "the witness saw too few secrets");
        for secret in &secrets {
            assert!(
                !trail.contains(secret.as_str()),
                "a secret in the audit trail"
            );
            for url in self.urls.lock().unwrap().iter() {
                assert!(!url.contains(secret.as_str()), "a secret in a URL: {url}");
            }
        }
    }
}

/// A store the cases run on, and what to await when the case is done.
pub type Opened<B> = Option<(
    Env<B>,
    std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
)>;

pub async fn memory() -> Opened<tower_agent_auth::store::MemoryBackend> {
    let (users, clock) = (
        tower_agent_auth::testing::users(),
        tower_agent_auth::testing::clock(),
    );
    let config = tower_agent_auth::testing::config(&users, &clock);
    let store = tower_agent_auth::store::MemoryStore::with_config(config);
    Some((Env::new(store, users, clock), Box::pin(async {})))
}

#[cfg(feature = "sqlite")]
pub async fn sqlite() -> Opened<impl Backend> {
    let (users, clock) = (
        tower_agent_auth::testing::users(),
        tower_agent_auth::testing::clock(),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grants.db").display().to_string();
    let config = tower_agent_auth::testing::config(&users, &clock);
    let store = tower_agent_auth::store::SqliteStore::open(&path, config)
        .await
        .unwrap();
    Some((
        Env::new(store, users, clock),
        Box::pin(async move { drop(dir) }),
    ))
}

#[cfg(feature = "postgres")]
pub async fn postgres() -> Opened<impl Backend> {
    let url = crate::store_postgres::server_url()?;
    let (users, clock) = (
        tower_agent_auth::testing::users(),
        tower_agent_auth::testing::clock(),
    );
    let (pool, cleanup) = crate::store_postgres::fresh_schema(&url).await;
    let config = tower_agent_auth::testing::config(&users, &clock);
    let store = tower_agent_auth::store::PgStore::from_pool(pool, config)
        .await
        .unwrap();
    Some((Env::new(store, users, clock), Box::pin(cleanup)))
}

/// One `#[tokio::test]` per case and store: `mod memory`, `mod sqlite`, `mod postgres`.
macro_rules! on_every_store {
    ($($case:ident),* $(,)?) => {
        on_every_store!(@mod memory, all(), [$($case),*]);
        on_every_store!(@mod sqlite, feature = "sqlite", [$($case),*]);
        on_every_store!(@mod postgres, feature = "postgres", [$($case),*]);
    };
    (@mod $store:ident, $cfg:meta, [$($case:ident),*]) => {
        #[cfg($cfg)]
        mod $store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some((env, done)) = crate::oauth_grants_env::$store().await else {
                        return;
                    };
                    super::$case(env).await;
                    done.await;
                }
            )*
        }
    };
}

pub(crate) use on_every_store;
