//! Routers for a server in front of the stores (feature `server`): a management REST API, a
//! minimal login with cookie sessions, and the JSON views both use. The `agent-auth serve`
//! reference server is these routers on a SQL store.
//!
//! Management is for people, not agents: its routes require a session principal (a request
//! authenticated by an agent token gets 403), and every call goes through
//! [`Managed`](crate::store::Managed), so the access rules and the audit trail are the
//! library's.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use axum::{Router, body::Body};
//! use http::{Request, StatusCode};
//! use tower::ServiceExt;
//! use tower_agent_auth::server::{ManageState, PasswordVerifier, Sessions, login_router, manage_router};
//! use tower_agent_auth::store::{MemoryStore, MemoryUserDirectory, UserDirectory, UserRecord};
//! use tower_agent_auth::{AgentAuthLayer, token::TokenFormat};
//! use tower_agent_auth::ceiling::Policy;
//! use tower_agent_auth::principal::UserId;
//!
//! /// Your accounts: check a password, say who it is.
//! struct Accounts;
//! #[async_trait::async_trait]
//! impl PasswordVerifier for Accounts {
//!     async fn verify(&self, user: &str, password: &str)
//!         -> Result<Option<UserId>, tower_agent_auth::reason::BoxError> {
//!         Ok((user == "alice" && password == "correct horse").then(|| UserId::from(user)))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let users = MemoryUserDirectory::new();
//! users.insert(UserRecord::new("alice", Policy::unrestricted()));
//! let store = MemoryStore::new(TokenFormat::new("acme").unwrap(), users.clone());
//! let directory: Arc<dyn UserDirectory> = Arc::new(users);
//! let sessions = Sessions::new(directory, Duration::from_secs(8 * 3600));
//!
//! let app = Router::new()
//!     .merge(login_router(sessions.clone(), Arc::new(Accounts), false))
//!     .merge(manage_router(ManageState { store: store.clone(), audit: None }))
//!     .layer(AgentAuthLayer::new(store).optional().with_session_resolver(sessions));
//!
//! // Not signed in: management answers 401.
//! let response = app.oneshot(Request::get("/api/agents").body(Body::empty()).unwrap()).await.unwrap();
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! # }
//! ```

mod csrf;
mod error;
mod login;
mod manage;
mod pages;
mod panic;
mod password;
mod sessions;
mod throttle;
pub mod views;

pub use csrf::{SameOrigin, SameOriginFuture, SameOriginLayer};
pub use error::ApiError;
pub use login::{Login, login_router};
pub use manage::{ManageState, home_router, manage_router};
pub use panic::{catch_panics, panic_response};
pub use password::{
    HashingError, PasswordHashing, PasswordVerifier, hash_password, hash_password_off_runtime,
    verify_password, verify_password_off_runtime,
};
pub use sessions::{SESSION_COOKIE, Sessions};
pub use throttle::{LoginLimits, LoginThrottle, ThrottleLimit, Throttled};
