//! What the callback receiver's tests share: a fake provider (an axum app on a loopback port,
//! the other service's authorize and token endpoints, checking PKCE), and this application
//! (sign-in and the receiver) over any store, with a witness of every URL and a capture of
//! every log line down to TRACE.
#![cfg(feature = "callback")]
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use tower::ServiceExt;
use tower_agent_auth::AgentAuthLayer;
use tower_agent_auth::audit::{
    AuditEvent, AuditFilter, AuditQuery, AuditWriter, MemoryAuditSink, WriterOptions,
};
use tower_agent_auth::ceiling::Policy;
use tower_agent_auth::oauth::callback::{CallbackKey, CallbackReceiver, Provider};
use tower_agent_auth::principal::UserId;
use tower_agent_auth::server::{Login, PasswordVerifier, Sessions};
use tower_agent_auth::store::{
    Agent, Backend, MemoryUserDirectory, NewAgent, NewToken, Store, UserDirectory, UserRecord,
};

pub const CLIENT_ID: &str = "app-at-provider";
pub const CLIENT_SECRET: &str = "cs-provider-secret-0123456789";
pub const ACCESS: &str = "gho_access_token_0123456789abcdef";
pub const REFRESH: &str = "ghr_refresh_token_0123456789abcdef";
pub const CALLBACK: &str = "/connect/fake/callback";
pub const KEY: [u8; 32] = [42; 32];

/// What the fake provider saw and issued.
#[derive(Default)]
pub struct Seen {
    /// Codes issued: (redirect_uri, challenge).
    codes: HashMap<String, (String, String)>,
    /// The verifiers the token endpoint was given.
    pub verifiers: Vec<String>,
    /// Token requests answered with a token.
    pub exchanges: usize,
    /// Token requests refused.
    pub refusals: Vec<String>,
    /// Every URL asked of it.
    pub urls: Vec<String>,
    /// Answer every token request with `invalid_grant`.
    pub refuse_all: bool,
}

pub type Fake = Arc<Mutex<Seen>>;

fn pairs(text: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(text.as_bytes())
        .into_owned()
        .collect()
}

fn oauth_error(code: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "application/json")],
        format!(r#"{{"error":"{code}"}}"#),
    )
        .into_response()
}

async fn authorize(State(fake): State<Fake>, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    let params = pairs(&query);
    let mut seen = fake.lock().unwrap();
    seen.urls.push(format!("/authorize?{query}"));
    let ok = params.get("response_type").map(String::as_str) == Some("code")
        && params.get("client_id").map(String::as_str) == Some(CLIENT_ID)
        && params.get("code_challenge_method").map(String::as_str) == Some("S256")
        && params.get("state").is_some_and(|s| s.len() >= 32)
        && !params.contains_key("client_secret");
    if !ok {
        return (StatusCode::BAD_REQUEST, "bad authorization request").into_response();
    }
    let code = format!("code-{}", seen.codes.len() + 1);
    let redirect = params["redirect_uri"].clone();
    seen.codes.insert(
        code.clone(),
        (redirect.clone(), params["code_challenge"].clone()),
    );
    let mut back = url::Url::parse(&redirect).unwrap();
    back.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &params["state"]);
    (StatusCode::FOUND, [(header::LOCATION, back.to_string())]).into_response()
}

async fn token(State(fake): State<Fake>, headers: HeaderMap, body: String) -> Response {
    let form = pairs(&body);
    let mut seen = fake.lock().unwrap();
    seen.urls.push("/token".into());
    let basic = format!(
        "Basic {}",
        STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(basic.as_str())
    {
        seen.refusals.push("client".into());
        return oauth_error("invalid_client");
    }
    if let Some(verifier) = form.get("code_verifier") {
        seen.verifiers.push(verifier.clone());
    }
    if seen.refuse_all {
        seen.refusals.push("refused".into());
        return oauth_error("invalid_grant");
    }
    let code = form.get("code").cloned().unwrap_or_default();
    let Some((redirect, challenge)) = seen.codes.remove(&code) else {
        seen.refusals.push("code".into());
        return oauth_error("invalid_grant");
    };
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    if form.get("grant_type").map(String::as_str) != Some("authorization_code")
        || form.get("redirect_uri") != Some(&redirect)
        || computed != challenge
    {
        seen.refusals.push("pkce or redirect".into());
        return oauth_error("invalid_grant");
    }
    seen.exchanges += 1;
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({
            "access_token": ACCESS,
            "refresh_token": REFRESH,
            "token_type": "Bearer",
            "expires_in": 3600,
            "scope": "repo read:user",
        })
        .to_string(),
    )
        .into_response()
}

/// The fake provider, listening on a loopback port: its base URL.
pub async fn fake_provider() -> (Fake, String) {
    let fake = Fake::default();
    let app = Router::new()
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (fake, base)
}

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

/// An answer, read whole.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn location(&self) -> &str {
        self.headers[header::LOCATION].to_str().unwrap()
    }
}

/// This application: sign-in and the receiver over `store`, alice owning `writer`.
pub struct App<B> {
    pub app: Router,
    pub store: Store<B>,
    pub receiver: CallbackReceiver<B>,
    pub sink: Arc<MemoryAuditSink>,
    pub writer: AuditWriter,
    pub fake: Fake,
    pub provider_base: String,
    pub agent: Agent,
    /// Every URL requested of the application or the provider, and every `Location`.
    pub urls: Arc<Mutex<Vec<String>>>,
}

/// The users of every test: alice (owns `writer`), bob (nothing), carol (admin of `writer`).
pub fn users() -> MemoryUserDirectory {
    let users = MemoryUserDirectory::new();
    for user in ["alice", "bob", "carol"] {
        users.insert(UserRecord::new(user, Policy::unrestricted()));
    }
    users
}

impl<B: Backend> App<B> {
    pub async fn new(store: Store<B>, users: MemoryUserDirectory) -> Self {
        let (fake, provider_base) = fake_provider().await;
        let provider = Provider::new(
            "fake",
            &format!("{provider_base}/authorize"),
            &format!("{provider_base}/token"),
            CLIENT_ID,
            &format!("http://127.0.0.1:8080{CALLBACK}"),
        )
        .unwrap()
        .client_secret(CLIENT_SECRET)
        .scopes(["repo", "read:user"]);
        let sink = Arc::new(MemoryAuditSink::default());
        let writer = AuditWriter::spawn(sink.clone(), WriterOptions::default());
        let receiver = CallbackReceiver::new(store.clone(), CallbackKey::new(KEY))
            .provider(provider)
            .unwrap()
            .audit(writer.clone());
        let agent = store
            .create_agent(NewAgent::new("writer", "alice"))
            .await
            .unwrap();
        store
            .grant(
                &agent.id,
                &"carol".into(),
                tower_agent_auth::store::AccessRole::Admin,
            )
            .await
            .unwrap();
        let directory: Arc<dyn UserDirectory> = Arc::new(users);
        let sessions = Sessions::new(directory, Duration::from_secs(3600));
        let app = Router::new()
            .merge(Login::new(sessions.clone(), Arc::new(Passwords)).router())
            .merge(receiver.router())
            .layer(
                AgentAuthLayer::new(store.clone())
                    .optional()
                    .with_session_resolver(sessions),
            );
        Self {
            app,
            store,
            receiver,
            sink,
            writer,
            fake,
            provider_base,
            agent,
            urls: Arc::default(),
        }
    }

    pub async fn call(&self, request: Request<Body>) -> Answer {
        self.urls.lock().unwrap().push(request.uri().to_string());
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        if let Some(location) = headers.get(header::LOCATION) {
            self.urls
                .lock()
                .unwrap()
                .push(location.to_str().unwrap().to_owned());
        }
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// Signs `user` in: the session cookie.
    pub async fn sign_in(&self, user: &str) -> String {
        let fields = [("user", user), ("password", "pw")];
        let request = crate::page_forms::sign_in_request(&self.app, &fields).await;
        let answer = self.call(request).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        let cookie = answer.headers[header::SET_COOKIE].to_str().unwrap();
        cookie.split(';').next().unwrap().to_owned()
    }

    /// `POST /connect/fake` for `agent`, as the application's own page would.
    pub async fn start(&self, cookie: Option<&str>, agent: &str) -> Answer {
        let mut request = Request::post("/connect/fake")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("sec-fetch-site", "same-origin");
        let mut body = format!("agent={agent}");
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
            // The form's token, as the page puts it in the form: bound to the session.
            let secret = cookie.split_once('=').map_or(cookie, |(_, value)| value);
            let token = tower_agent_auth::server::FormToken::for_secret(secret);
            body.push_str(&format!("&csrf={}", token.as_str()));
        }
        self.call(request.body(Body::from(body)).unwrap()).await
    }

    /// The provider's part, as a browser follows it: the authorization request the start
    /// redirected to, answered with a redirect back here; the callback's path and query.
    pub async fn at_provider(&self, start: &Answer) -> String {
        assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.body);
        let location = start.location();
        let path = location
            .strip_prefix(&self.provider_base)
            .expect("to the provider");
        let response = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(format!("{}{path}", self.provider_base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FOUND);
        let back = response.headers()[header::LOCATION]
            .to_str()
            .unwrap()
            .to_owned();
        self.urls.lock().unwrap().push(back.clone());
        back.strip_prefix("http://127.0.0.1:8080")
            .unwrap()
            .to_owned()
    }

    /// The callback, with `cookie`.
    pub async fn callback(&self, path_and_query: &str, cookie: Option<&str>) -> Answer {
        let mut request = Request::get(path_and_query);
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        self.call(request.body(Body::empty()).unwrap()).await
    }

    /// A whole connection of `writer` by the person of `cookie`: the callback's answer.
    pub async fn connect(&self, cookie: &str) -> (Answer, String) {
        let start = self.start(Some(cookie), "writer").await;
        let back = self.at_provider(&start).await;
        (self.callback(&back, Some(cookie)).await, back)
    }

    /// `GET` of a JSON route with `cookie`.
    pub async fn json(&self, uri: &str, cookie: &str) -> (StatusCode, serde_json::Value) {
        let answer = self
            .call(
                Request::get(uri)
                    .header(header::COOKIE, cookie)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        let json = serde_json::from_str(&answer.body).unwrap_or_default();
        (answer.status, json)
    }

    /// The audit trail so far.
    pub async fn events(&self) -> Vec<AuditEvent> {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(self.writer.dropped(), 0);
        self.sink.events(&AuditFilter::default()).await.unwrap()
    }

    /// A token for `writer`, to present as an agent.
    pub async fn agent_token(&self) -> String {
        let issued = self
            .store
            .create_token(&self.agent.id, NewToken::new("t"))
            .await
            .unwrap();
        issued.token.expose_secret().to_owned()
    }
}

/// Log lines down to TRACE, for the thread of a current-thread runtime.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// Captures every event on this thread until the guard drops.
    pub fn capture(&self) -> tracing::subscriber::DefaultGuard {
        let logs = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || logs.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}
