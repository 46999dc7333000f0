//! What the OAuth tests share: an application with sign-in, the authorization server and a
//! protected API over one memory store; a browser-like helper for the consent steps; PKCE; and
//! a witness of every secret handed out, every URL requested and every `Location` answered, to
//! assert that no secret travels where it must not.
#![cfg(feature = "oauth")]
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower_agent_auth::store::Backend as _;

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tower::ServiceExt;
use tower_agent_auth::audit::{
    AuditEvent, AuditFilter, AuditQuery, AuditWriter, MemoryAuditSink, WriterOptions,
};
use tower_agent_auth::ceiling::Policy;
use tower_agent_auth::clock::ManualClock;
use tower_agent_auth::oauth::{AuthorizationServer, Client, ClientAuth, ClientKind};
use tower_agent_auth::principal::UserId;
use tower_agent_auth::server::{Login, PasswordVerifier, Sessions};
use tower_agent_auth::store::{
    Agent, MemoryBackend, MemoryStore, MemoryUserDirectory, NewAgent, UserDirectory, UserRecord,
};
use tower_agent_auth::token::{TokenFormat, TokenHash};
use tower_agent_auth::{AgentAuthLayer, Principal};

use crate::common::caps;

pub const ISSUER: &str = "http://127.0.0.1:8080";
pub const RESOURCE: &str = "http://127.0.0.1:8080/api";
pub const OTHER_RESOURCE: &str = "http://127.0.0.1:8080/other";
pub const REDIRECT: &str = "http://127.0.0.1:9999/callback";

/// Everyone's password is "pw".
struct Passwords;

#[async_trait::async_trait]
impl PasswordVerifier for Passwords {
    async fn verify(
        &self,
        user: &str,
        password: &str,
    ) -> Result<Option<UserId>, tower_agent_auth::error::BoxError> {
        Ok((password == "pw").then(|| UserId::from(user)))
    }
}

/// Every secret handed out, and every place a secret must not be.
#[derive(Default)]
pub struct Witness {
    /// (what, value): access and refresh tokens, client secrets, verifiers.
    secrets: Vec<(&'static str, String)>,
    /// Authorization codes: they travel in exactly one `Location` each.
    codes: Vec<String>,
    /// Every request URL and every `Location` answered.
    urls: Vec<String>,
}

/// The test application.
pub struct OAuth {
    pub app: Router,
    pub store: MemoryStore,
    pub users: MemoryUserDirectory,
    pub clock: Arc<ManualClock>,
    pub server: AuthorizationServer<MemoryBackend>,
    pub sink: Arc<MemoryAuditSink>,
    pub writer: AuditWriter,
    pub witness: Arc<Mutex<Witness>>,
    /// alice's agent `writer`, registered as a client of redirect URI [`REDIRECT`].
    pub writer_agent: Agent,
    /// The sessions the application resolves.
    pub sessions: Sessions,
}

/// An answer, read whole.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    pub fn location(&self) -> Option<&str> {
        self.headers
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap())
    }

    /// The query parameters of the `Location`.
    pub fn location_params(&self) -> Vec<(String, String)> {
        let location = self.location().expect("a Location");
        let query = location.split_once('?').map_or("", |(_, q)| q);
        url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect()
    }

    pub fn location_param(&self, name: &str) -> Option<String> {
        self.location_params()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }
}

pub fn form(pairs: &[(&str, &str)]) -> String {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        form.append_pair(name, value);
    }
    form.finish()
}

/// A PKCE pair: (verifier, S256 challenge).
pub fn pkce() -> (String, String) {
    let mut bytes = [0u8; 48];
    getrandom::fill(&mut bytes).unwrap();
    let verifier = URL_SAFE_NO_PAD.encode(bytes);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// The fixture's clock at the start (Unix seconds): it moves only when a test moves it.
pub const START: i64 = 1_767_225_600;

impl OAuth {
    pub async fn new() -> Self {
        Self::configured(|server| server).await
    }

    /// With the server changed by `configure` (limits, lifetimes).
    pub async fn configured(
        configure: impl FnOnce(AuthorizationServer<MemoryBackend>) -> AuthorizationServer<MemoryBackend>,
    ) -> Self {
        let users = MemoryUserDirectory::new();
        users.insert(UserRecord::new(
            "alice",
            Policy::allow(caps(&["notes:*", "profile:read"])),
        ));
        users.insert(UserRecord::new("bob", Policy::allow(caps(&["notes:read"]))));
        users.insert(UserRecord::new("mallory", Policy::unrestricted()));
        let clock = Arc::new(ManualClock::new(
            time::OffsetDateTime::from_unix_timestamp(START).unwrap(),
        ));
        let store = MemoryStore::new(TokenFormat::new("acme").unwrap(), users.clone())
            .with_clock(clock.clone());
        let sink = Arc::new(MemoryAuditSink::default());
        let writer = AuditWriter::spawn(sink.clone(), WriterOptions::default());
        let server = AuthorizationServer::new(store.clone(), ISSUER)
            .unwrap()
            .resource(RESOURCE)
            .resource(OTHER_RESOURCE)
            .scopes_supported(["notes:read"])
            .audit(writer.clone());
        let server = configure(server);

        let writer_agent = store
            .create_agent(NewAgent::new("writer", "alice"))
            .await
            .unwrap();
        let now = clock.now_for_tests();
        let mut client = Client::new(
            "writer",
            ClientKind::Agent(writer_agent.id.clone()),
            "Writer",
            now,
        );
        client.redirect_uris = vec!["http://127.0.0.1/callback".into()];
        assert!(
            store
                .backend()
                .insert_client(&client, None, now)
                .await
                .unwrap()
        );

        let directory: Arc<dyn UserDirectory> = Arc::new(users.clone());
        let sessions = Sessions::new(directory, Duration::from_secs(3600));
        let api = Router::new()
            .route(
                "/api/notes",
                get(|p: Principal| async move { allowed(&p, "notes:read") }),
            )
            .route(
                "/api/notes/write",
                post(|p: Principal| async move { allowed(&p, "notes:write") }),
            )
            .layer(AgentAuthLayer::new(store.clone()));
        let app = Router::new()
            .merge(Login::new(sessions.clone(), Arc::new(Passwords)).router())
            .merge(server.router())
            .layer(
                AgentAuthLayer::new(store.clone())
                    .optional()
                    .with_session_resolver(sessions.clone()),
            )
            .merge(api);
        Self {
            app,
            store,
            users,
            clock,
            server,
            sink,
            writer,
            witness: Arc::default(),
            writer_agent,
            sessions,
        }
    }

    /// Sends `request`, noting its URL and any `Location` in the witness.
    pub async fn call(&self, request: Request<Body>) -> Answer {
        self.witness
            .lock()
            .unwrap()
            .urls
            .push(request.uri().to_string());
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let answer = Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        };
        if let Some(location) = answer.location() {
            self.witness.lock().unwrap().urls.push(location.to_owned());
        }
        answer
    }

    pub async fn get(&self, uri: &str, cookie: Option<&str>) -> Answer {
        let mut request = Request::get(uri);
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        self.call(request.body(Body::empty()).unwrap()).await
    }

    pub async fn post_form(&self, uri: &str, body: String, headers: &[(&str, &str)]) -> Answer {
        let mut request =
            Request::post(uri).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.call(request.body(Body::from(body)).unwrap()).await
    }

    /// Signs in; the session cookie.
    pub async fn sign_in(&self, user: &str) -> String {
        let fields = [("user", user), ("password", "pw")];
        let request = crate::page_forms::sign_in_request(&self.app, &fields).await;
        let answer = self.call(request).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        let cookie = answer.headers[header::SET_COOKIE].to_str().unwrap();
        cookie.split(';').next().unwrap().to_owned()
    }

    /// Registers a client: the answer (201 expected by the caller).
    pub async fn register(&self, metadata: Value) -> Answer {
        let answer = self
            .call(
                Request::post("/oauth/register")
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(metadata.to_string()))
                    .unwrap(),
            )
            .await;
        if let Some(secret) = answer.json()["client_secret"].as_str() {
            self.secret("client secret", secret);
        }
        answer
    }

    /// Registers a public client redirecting to [`REDIRECT`]: its id.
    pub async fn public_client(&self) -> String {
        let answer = self
            .register(serde_json::json!({
                "client_name": "Test MCP client",
                "redirect_uris": [REDIRECT],
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"],
                "application_type": "native",
            }))
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        answer.json()["client_id"].as_str().unwrap().to_owned()
    }

    /// Notes a secret handed out.
    pub fn secret(&self, what: &'static str, value: &str) {
        self.witness
            .lock()
            .unwrap()
            .secrets
            .push((what, value.to_owned()));
    }

    /// Notes an authorization code handed out.
    pub fn code(&self, value: &str) {
        self.witness.lock().unwrap().codes.push(value.to_owned());
    }

    /// The consent page for an authorization request with these parameters.
    pub async fn consent_page(&self, cookie: &str, params: &[(&str, &str)]) -> Answer {
        self.get(&format!("/oauth/authorize?{}", form(params)), Some(cookie))
            .await
    }

    /// Posts the consent form of `page`, with `ticked` capabilities (all shown, if `None`).
    pub async fn decide(
        &self,
        cookie: &str,
        page: &Answer,
        ticked: Option<&[&str]>,
        decision: &str,
    ) -> Answer {
        let mut fields = hidden_fields(&page.body);
        let shown = checkboxes(&page.body);
        for capability in &shown {
            if ticked.is_none_or(|t| t.contains(&capability.as_str())) {
                fields.push(("capability".into(), capability.clone()));
            }
        }
        fields.push(("decision".into(), decision.into()));
        let pairs: Vec<(&str, &str)> = fields
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let answer = self
            .post_form(
                "/oauth/authorize",
                form(&pairs),
                &[(header::COOKIE.as_str(), cookie)],
            )
            .await;
        if answer.status == StatusCode::FOUND {
            if let Some(code) = answer.location_param("code") {
                self.code(&code);
            }
        }
        answer
    }

    /// The whole browser part for a public client: consent to `scope` (all of it, or
    /// `ticked`); the code and the verifier.
    pub async fn authorize(
        &self,
        cookie: &str,
        client_id: &str,
        scope: &str,
        ticked: Option<&[&str]>,
    ) -> (String, String) {
        let (verifier, challenge) = pkce();
        self.secret("verifier", &verifier);
        let page = self
            .consent_page(
                cookie,
                &[
                    ("response_type", "code"),
                    ("client_id", client_id),
                    ("redirect_uri", REDIRECT),
                    ("state", "xyz"),
                    ("code_challenge", &challenge),
                    ("code_challenge_method", "S256"),
                    ("resource", RESOURCE),
                    ("scope", scope),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let answer = self.decide(cookie, &page, ticked, "allow").await;
        assert_eq!(answer.status, StatusCode::FOUND, "{}", answer.body);
        assert_eq!(answer.location_param("state").as_deref(), Some("xyz"));
        assert_eq!(answer.location_param("iss").as_deref(), Some(ISSUER));
        let code = answer.location_param("code").expect("a code");
        (code, verifier)
    }

    /// `POST /oauth/token` with `pairs`, and Basic credentials if given.
    pub async fn token(&self, pairs: &[(&str, &str)], basic: Option<(&str, &str)>) -> Answer {
        let mut headers = Vec::new();
        let encoded;
        if let Some((id, secret)) = basic {
            encoded = format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")));
            headers.push((header::AUTHORIZATION.as_str(), encoded.as_str()));
        }
        let answer = self.post_form("/oauth/token", form(pairs), &headers).await;
        let json = answer.json();
        for (field, what) in [
            ("access_token", "access token"),
            ("refresh_token", "refresh token"),
        ] {
            if let Some(secret) = json[field].as_str() {
                self.secret(what, secret);
            }
        }
        answer
    }

    /// Exchanges a code for a public client: the token answer.
    pub async fn exchange(&self, client_id: &str, code: &str, verifier: &str) -> Answer {
        self.token(
            &[
                ("grant_type", "authorization_code"),
                ("client_id", client_id),
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", verifier),
                ("resource", RESOURCE),
            ],
            None,
        )
        .await
    }

    /// Calls the protected API with a bearer token.
    pub async fn api(&self, path: &str, token: &str) -> StatusCode {
        let method = if path.ends_with("write") {
            "POST"
        } else {
            "GET"
        };
        self.call(
            Request::builder()
                .method(method)
                .uri(path)
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .status
    }

    /// A confidential client allowed to introspect: (id, secret).
    pub async fn introspector(&self) -> (String, String) {
        let now = self.clock.now_for_tests();
        let secret = "cs_introspector-secret_0123456789abcdefghijklmnopq".to_owned();
        let mut client = Client::new("c_resource-server", ClientKind::Registered, "RS", now);
        client.auth = ClientAuth::SecretBasic;
        client.secret_hash = Some(TokenHash::of(&secret));
        client.may_introspect = true;
        self.store
            .backend()
            .insert_client(&client, None, now)
            .await
            .unwrap();
        self.secret("client secret", &secret);
        (client.id, secret)
    }

    /// Every audit event recorded so far: the writer writes a partial batch after 20 ms, so
    /// waiting a little longer finds everything queued before the call.
    pub async fn events(&self) -> Vec<AuditEvent> {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(self.writer.dropped(), 0);
        self.sink.events(&AuditFilter::default()).await.unwrap()
    }

    /// Asserts that no access or refresh token, client secret or verifier appears in any
    /// URL or `Location`, that each code appears in exactly one `Location` (its authorization
    /// response), and that none of them appears in the audit trail.
    pub async fn assert_no_secret_leaked(&self) {
        let events = format!("{:?}", self.events().await);
        let witness = self.witness.lock().unwrap();
        for (what, secret) in &witness.secrets {
            for url in &witness.urls {
                assert!(!url.contains(secret.as_str()), "a {what} in a URL: {url}");
            }
            assert!(
                !events.contains(secret.as_str()),
                "a {what} in the audit trail"
            );
        }
        for code in &witness.codes {
            let carrying = witness
                .urls
                .iter()
                .filter(|u| u.contains(code.as_str()))
                .count();
            assert_eq!(carrying, 1, "a code travelled in {carrying} URLs");
            assert!(!events.contains(code.as_str()), "a code in the audit trail");
        }
        assert!(
            !witness.secrets.is_empty(),
            "the witness saw no secret at all"
        );
    }
}

fn allowed(principal: &Principal, capability: &str) -> StatusCode {
    if principal.can(capability) {
        StatusCode::OK
    } else {
        StatusCode::FORBIDDEN
    }
}

/// The hidden inputs of a page: (name, value), unescaped.
pub fn hidden_fields(html: &str) -> Vec<(String, String)> {
    inputs(html, "hidden")
}

/// The values of the page's capability checkboxes.
pub fn checkboxes(html: &str) -> Vec<String> {
    inputs(html, "checkbox")
        .into_iter()
        .map(|(_, v)| v)
        .collect()
}

fn inputs(html: &str, kind: &str) -> Vec<(String, String)> {
    let marker = format!("<input type=\"{kind}\" name=\"");
    html.split(&marker)
        .skip(1)
        .filter_map(|rest| {
            let (name, rest) = rest.split_once('"')?;
            let value = rest.split_once("value=\"")?.1.split_once('"')?.0;
            Some((unescape(name), unescape(value)))
        })
        .collect()
}

/// `text` with the entities the pages' templates write (askama's: `&#34;`, `&#39;`, `&#60;`,
/// `&#62;`, `&#38;`) decoded.
pub fn unescape(text: &str) -> String {
    text.replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&#38;", "&")
}

/// The store's clock, read by tests.
pub trait NowForTests {
    fn now_for_tests(&self) -> time::OffsetDateTime;
}

impl NowForTests for ManualClock {
    fn now_for_tests(&self) -> time::OffsetDateTime {
        tower_agent_auth::clock::Clock::now(self)
    }
}
