//! What the tests share: a fixture (one user, one agent, one token, a clock the test
//! controls), a recording inner service, cookie sessions, and whether tests needing a service
//! (PostgreSQL, Redis) must run.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::{Request, Response};
use tower_agent_auth::ceiling::{CapabilitySet, Policy};
use tower_agent_auth::clock::ManualClock;
use tower_agent_auth::store::{
    Agent, MemoryStore, MemoryUserDirectory, NewAgent, NewToken, UserRecord,
};
use tower_agent_auth::token::{RawToken, TokenFormat};
use tower_agent_auth::{Principal, ResolveError, SessionResolver};

pub const PREFIX: &str = "acme";

pub fn caps(patterns: &[&str]) -> CapabilitySet {
    CapabilitySet::parse(patterns).unwrap()
}

pub struct Fixture {
    pub users: MemoryUserDirectory,
    pub store: MemoryStore,
    pub clock: Arc<ManualClock>,
    pub agent: Agent,
    pub token: RawToken,
}

impl Fixture {
    pub async fn new() -> Self {
        Self::with_token(NewToken::new("test")).await
    }

    pub async fn with_token(token: NewToken) -> Self {
        let users = MemoryUserDirectory::new();
        users.insert(UserRecord::new(
            "alice",
            Policy::allow(caps(&["posts:*", "comments:read"])),
        ));
        let clock = Arc::new(ManualClock::new(
            time::OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap(),
        ));
        let store = MemoryStore::new(TokenFormat::new(PREFIX).unwrap(), users.clone())
            .with_clock(clock.clone());
        let agent = store
            .create_agent(NewAgent::new("writer", "alice"))
            .await
            .unwrap();
        let token = store.create_token(&agent.id, token).await.unwrap().token;
        Self {
            users,
            store,
            clock,
            agent,
            token,
        }
    }

    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.token.expose_secret())
    }
}

/// What the inner service saw.
#[derive(Clone, Default)]
pub struct Seen {
    pub calls: Arc<AtomicUsize>,
    pub principal: Arc<std::sync::Mutex<Option<Principal>>>,
    pub authorization: Arc<std::sync::Mutex<Option<String>>>,
}

impl Seen {
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub fn principal(&self) -> Option<Principal> {
        self.principal.lock().unwrap().clone()
    }

    pub fn authorization(&self) -> Option<String> {
        self.authorization.lock().unwrap().clone()
    }

    /// An inner service that records its request and answers 200 "inner".
    pub fn service(
        &self,
    ) -> impl tower::Service<
        Request<String>,
        Response = Response<String>,
        Error = std::convert::Infallible,
        Future = impl Send,
    > + Clone
    + Send
    + 'static {
        let seen = self.clone();
        tower::service_fn(move |request: Request<String>| {
            let seen = seen.clone();
            async move {
                seen.calls.fetch_add(1, Ordering::SeqCst);
                *seen.principal.lock().unwrap() = request.extensions().get::<Principal>().cloned();
                *seen.authorization.lock().unwrap() = request
                    .headers()
                    .get("authorization")
                    .map(|v| v.to_str().unwrap().to_owned());
                Ok(Response::new("inner".to_owned()))
            }
        })
    }
}

/// A session resolver reading `cookie: session=<user id>` (a stand-in for a real session layer).
#[derive(Clone)]
pub struct CookieSessions(pub MemoryUserDirectory);

#[async_trait::async_trait]
impl SessionResolver for CookieSessions {
    async fn resolve_session(
        &self,
        request: &http::request::Parts,
    ) -> Result<Option<Principal>, ResolveError> {
        use tower_agent_auth::store::UserDirectory;
        let Some(user) = request
            .headers
            .get("cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("session="))
        else {
            return Ok(None);
        };
        Ok(self
            .0
            .user(&user.into())
            .await
            .map_err(ResolveError::Unavailable)?
            .filter(|u| u.is_active())
            .map(|u| u.session_principal()))
    }
}

/// Whether tests needing a service must run (CI) or may skip.
pub fn services_required() -> bool {
    std::env::var_os("AGENT_AUTH_REQUIRE_SERVICES").is_some_and(|v| v != "0" && !v.is_empty())
}

/// Says once per test binary that service-backed tests were skipped. Written to the stderr
/// handle itself: libtest hides `eprintln!` output of passing tests.
pub fn skip_notice(service: &str, variable: &str) {
    use std::io::Write;
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| {
        let _ = writeln!(
            std::io::stderr(),
            "notice: {service} tests skipped; set {variable} to run them \
             (AGENT_AUTH_REQUIRE_SERVICES=1 makes this a failure)"
        );
    });
}
