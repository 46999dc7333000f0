//! One app, two kinds of callers: people signed in with a session cookie, and their agents with
//! bearer tokens. Both reach the same handlers with the same `Principal` type.
//!
//! `cargo run --example sessions_and_agents --features axum` sends a few requests in-process and
//! prints what each got.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use http::Request;
use http_body_util::BodyExt;
use tower::ServiceExt;
use tower_agent_auth::axum::Require;
use tower_agent_auth::ceiling::{CapabilitySet, Policy};
use tower_agent_auth::store::{
    MemoryStore, MemoryUserDirectory, NewAgent, NewToken, UserDirectory, UserRecord,
};
use tower_agent_auth::token::TokenFormat;
use tower_agent_auth::{AgentAuthLayer, Principal, ResolveError, SessionResolver, capability};

capability!(
    /// May delete posts: editors may, their agents' policy forbids it.
    DeletePosts = "posts:delete"
);

/// Sessions the application already has: session id → user id.
#[derive(Clone)]
struct Sessions {
    ids: Arc<RwLock<HashMap<String, String>>>,
    users: MemoryUserDirectory,
}

#[async_trait::async_trait]
impl SessionResolver for Sessions {
    async fn resolve_session(
        &self,
        request: &http::request::Parts,
    ) -> Result<Option<Principal>, ResolveError> {
        let session_id = request
            .headers
            .get_all("cookie")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .find_map(|pair| pair.trim().strip_prefix("sid="));
        let user_id = match session_id {
            Some(id) => self.ids.read().expect("lock").get(id).cloned(),
            None => None,
        };
        let Some(user_id) = user_id else {
            return Ok(None);
        };
        let user = self
            .users
            .user(&user_id.into())
            .await
            .map_err(ResolveError::Unavailable)?;
        Ok(user
            .filter(UserRecord::is_active)
            .map(|user| user.session_principal()))
    }
}

async fn me(principal: Principal) -> String {
    format!(
        "{} via {} (agent: {})",
        principal.user_id(),
        principal.auth_source().as_str(),
        principal.agent_ref().map_or("none", |a| a.slug())
    )
}

async fn delete_post(Require(principal, ..): Require<DeletePosts>) -> String {
    format!("deleted by {}", principal.user_id())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let users = MemoryUserDirectory::new();
    users.insert(UserRecord::new(
        "carol",
        Policy::allow(CapabilitySet::parse(["posts:*"])?),
    ));
    let store = MemoryStore::new(TokenFormat::new("blog")?, users.clone());
    // Carol's agent may do what she may, except delete.
    let no_delete = Policy::unrestricted().with_deny(CapabilitySet::parse(["posts:delete"])?);
    let agent = store
        .create_agent(NewAgent::new("drafting-agent", "carol").with_policy(no_delete))
        .await?;
    let token = store
        .create_token(&agent.id, NewToken::new("laptop"))
        .await?
        .token;

    let sessions = Sessions {
        ids: Arc::new(RwLock::new(HashMap::from([(
            "s3cr3t".into(),
            "carol".into(),
        )]))),
        users,
    };
    let app = Router::new()
        .route("/me", get(me))
        .route("/posts/1/delete", post(delete_post))
        .layer(AgentAuthLayer::new(store).with_session_resolver(sessions));

    let bearer = format!("Bearer {}", token.expose_secret());
    let cases = [
        (
            "session  GET  /me",
            "GET",
            "/me",
            Some(("cookie", "sid=s3cr3t")),
        ),
        (
            "agent    GET  /me",
            "GET",
            "/me",
            Some(("authorization", bearer.as_str())),
        ),
        (
            "session  POST delete",
            "POST",
            "/posts/1/delete",
            Some(("cookie", "sid=s3cr3t")),
        ),
        (
            "agent    POST delete",
            "POST",
            "/posts/1/delete",
            Some(("authorization", bearer.as_str())),
        ),
        ("nobody   GET  /me", "GET", "/me", None),
    ];
    for (label, method, path, header) in cases {
        let mut request = Request::builder().method(method).uri(path);
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        let response = app.clone().oneshot(request.body(Body::empty())?).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        println!("{label:<22} → {status} {}", String::from_utf8_lossy(&body));
    }
    Ok(())
}
