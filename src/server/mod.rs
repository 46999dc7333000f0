//! Routers for a server in front of the stores (feature `server`): a management REST API, a
//! minimal login with cookie sessions, a landing page, and the JSON views they use. The
//! `agent-auth serve` reference server is these routers on a SQL store.
//!
//! Management is for people, not agents: its routes require a session principal (a request
//! authenticated by an agent token gets 403), and every call goes through
//! [`Managed`](crate::store::Managed), so the access rules and the audit trail are the
//! library's.
//!
//! What the routers do against abuse, and what is left to the host application:
//!
//! * **Passwords off the runtime.** Argon2 is slow on purpose; run on the async workers, a few
//!   concurrent sign-ins stall every request. A [`PasswordVerifier`] should verify with
//!   [`verify_password_off_runtime`] (or its own [`PasswordHashing`] pool): the blocking pool,
//!   half the cores at most, a bounded queue (past it, 503 with `Retry-After`).
//! * **Sign-in limits.** [`login_router`] / [`Login`] count failed attempts (wrong passwords)
//!   per account and client address, per address and per account ([`LoginThrottle`]): a
//!   correct password is never refused because of earlier correct ones, and concurrent
//!   guesses are held to the limit (each takes its attempt before verification; a correct one
//!   gives it back). Over a limit the answer is 429 with `Retry-After`, logged, and audited as
//!   `sign_in_throttled`. The client address is the connection's `ConnectInfo<SocketAddr>`:
//!   serve with `into_make_service_with_connect_info::<SocketAddr>()`.
//! * **Sessions.** [`Sessions`] keeps login sessions in a `tower-sessions` store: in memory
//!   ([`Sessions::new`]), or on the application's database ([`Sessions::with_store`] with
//!   `tower-sessions-sqlx-store`), so that they survive a restart and work on every node. The
//!   store holds a digest of the cookie, never the cookie; a password change ends the
//!   sessions begun with the old one; a store that cannot answer is a 503, not a sign-out.
//! * **CSRF.** State-changing requests with the session cookie from another site are refused
//!   ([`SameOriginLayer`], by `Sec-Fetch-Site` and `Origin`): [`manage_router`] applies it to
//!   its routes, [`login_router`] to sign-in and sign-out (with or without a cookie). A route of
//!   your own that changes state on a session needs `.layer(SameOriginLayer::for_session_cookie())`.
//! * **Panics.** [`catch_panics`] turns a handler's panic into a 500 with a JSON body instead of
//!   a dropped connection; wrap the whole application in it.
//! * **Connections** (header and idle timeouts, a connection cap) are the HTTP server's:
//!   `agent-auth serve` shows one way, with hyper's connection builder.
//!
//! [`approvals_router`] answers what supervised agents asked a person's approval for (list,
//! approve, deny; see [`approval`](crate::approval)), for a store that keeps approvals.
//!
//! [`tasks_router`] adds the management calls of [delegation](crate::delegation) (revoke a
//! token with everything delegated from it, complete a task), with the conventions of
//! [`manage_router`]. [`delegations_router`] is the one route for agents, not people:
//! `POST /api/delegations`, where the holder of a token, authenticated by it as a bearer
//! token, gets a narrower child token for another agent of its owner.
//!
//! [`Pages`] are the pages for people (home, agents and tokens, connected apps, approvals,
//! the audit trail, users), server-rendered from templates; [`login_router`] serves the
//! sign-in and sign-out pages in the same layout.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use axum::{Router, body::Body};
//! use http::{Request, StatusCode};
//! use tower::ServiceExt;
//! use tower_agent_auth::server::{
//!     ManageState, Pages, PasswordVerifier, Sessions, catch_panics, login_router,
//!     manage_router,
//! };
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
//! let manage = ManageState { store: store.clone(), audit: None };
//! let app = Router::new()
//!     .merge(login_router(sessions.clone(), Arc::new(Accounts), false))
//!     .merge(Pages::new(manage.clone()).router())
//!     .merge(manage_router(manage))
//!     .layer(AgentAuthLayer::new(store).optional().with_session_resolver(sessions));
//! let app = catch_panics(app);
//!
//! // Not signed in: management answers 401, and the landing page sends you to sign in.
//! let response = app.clone().oneshot(Request::get("/api/agents").body(Body::empty()).unwrap()).await.unwrap();
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! let response = app.oneshot(Request::get("/").body(Body::empty()).unwrap()).await.unwrap();
//! assert_eq!(response.status(), StatusCode::SEE_OTHER);
//! # }
//! ```

mod accounts;
mod body;
mod csrf;
mod delegate;
mod duration;
mod error;
mod login;
mod manage;
mod panic;
mod password;
mod sessions;
mod throttle;
pub mod views;
pub(crate) mod web;

pub use accounts::{AccountAdmin, AccountSummary};
pub use csrf::{SameOrigin, SameOriginFuture, SameOriginLayer};
pub use delegate::{delegations_router, tasks_router};
pub use duration::parse_duration;
pub use error::ApiError;
pub use login::{Login, login_router};
pub use manage::{ManageState, approvals_router, manage_router};
pub use panic::{catch_panics, panic_response};
pub use password::{
    HashingError, PasswordHashing, PasswordVerifier, hash_password, hash_password_off_runtime,
    verify_password, verify_password_off_runtime,
};
pub use sessions::{SESSION_COOKIE, SessionStore, Sessions};
pub use throttle::{Attempt, DEVICE_COOKIE, LoginLimits, LoginThrottle, ThrottleLimit, Throttled};
pub use web::{FORM_COOKIE, FORM_FIELD, FormToken, MANAGE_USERS, Pages};

/// The pages for people over `state` ([`Pages`] with the defaults); the home page at `/`.
#[deprecated(note = "use `Pages::new(state).router()`: every page, not only the home page")]
pub fn home_router<B: crate::store::Backend>(
    state: ManageState<crate::store::Store<B>>,
) -> ::axum::Router {
    Pages::new(state).router()
}
