//! Routers for a server in front of the stores (feature `server`): a management REST API, a
//! minimal login with cookie sessions, and the JSON views both use. The `agent-auth serve`
//! reference server is these routers on a SQL store.
//!
//! Management is for people, not agents: its routes require a session principal (a request
//! authenticated by an agent token gets 403), and every call goes through
//! [`Managed`](crate::store::Managed), so the access rules and the audit trail are the
//! library's.

mod error;
mod login;
mod manage;
mod password;
mod sessions;
pub mod views;

pub use error::ApiError;
pub use login::login_router;
pub use manage::{ManageState, manage_router};
pub use password::{PasswordVerifier, hash_password, verify_password};
pub use sessions::{SESSION_COOKIE, Sessions};
