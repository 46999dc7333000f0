//! The pages for people (feature `server`): server-rendered with [askama](https://docs.rs/askama)
//! templates (`templates/`, checked at compile time, escaping everything by default), one
//! layout, one stylesheet and one small script (`assets/`). Every page works without script.
//!
//! Every page is served with a strict `Content-Security-Policy` (scripts and styles only from
//! `/assets`, no inline script or style, never framed), `X-Frame-Options: DENY` and
//! `Cache-Control: no-store`. Every form carries a per-session CSRF token
//! ([`FormToken`]): a post without it, or with another session's, is refused with 403; the
//! same-origin rule ([`SameOriginLayer`](crate::server::SameOriginLayer)) applies too. The pages
//! act through [`Managed`](crate::store::Managed), so each enforces exactly the access rule of
//! the REST API, and what a person may not do is not shown.
//!
//! | route | page |
//! |---|---|
//! | `GET /` | home: my agents, their status and last use, pending approvals |
//! | `GET /approvals?page=N` | pending approvals (approve and deny for the agent's owner or admin), the history, paged |
//! | `GET /approvals/pending` | the pending list alone: what the script fetches to show new approvals without a reload |
//! | `POST /approvals/{id}/approve`, `/deny` | decide one, back to `/approvals` |
//! | `GET /audit?agent=…&action=…&outcome=…&since=…&until=…&page=N` | the trail of the agents whose trail the person may read, newest first, 50 a page |
//! | `POST /agents` | create an agent (the home page's form) |
//! | `GET /agents/{slug}` | an agent: its policy, tokens, activity chart, children and grants |
//! | `POST /agents/{slug}/tokens`, `…/tokens/rotate`, `…/tokens/revoke` | create (shown once), rotate, revoke a token |
//! | `POST /agents/{slug}/grants`, `…/grants/remove` | grant a role, withdraw it |
//! | `GET`, `POST /agents/{slug}/policy` | edit the policy |
//! | `GET`, `POST /agents/{slug}/disable`, `…/delete`; `POST …/enable` | confirm, then disable or delete; enable |
//! | `GET /apps`, `GET`/`POST /apps/disconnect` | connected apps: the OAuth clients I connected, and disconnecting one (feature `oauth`) |
//! | `GET /users`, `POST /users`, `/users/role`, `GET`/`POST /users/active` | users (site admins, with [`Pages::accounts`]): add, change a role, deactivate and activate |
//! | `GET /account`, `POST /account/password` | my account: who I am, my role, changing my password (with [`Pages::accounts`]) |
//! | `GET /assets/app.css`, `/assets/app.js` | the stylesheet and the script |

mod account;
mod agent;
mod agent_names;
mod approvals;
mod apps;
mod assets;
mod audit;
mod chart;
mod chrome;
mod form_check;
mod form_token;
mod grants;
mod headers;
mod home;
mod layers;
mod lifecycle;
pub(crate) mod message;
mod new_agent;
mod pages;
mod policy;
mod render;
mod target;
mod time;
mod tokens;
mod users;

pub use chrome::MANAGE_USERS;
pub(crate) use chrome::{Chrome, Viewer};
pub use form_token::{FORM_COOKIE, FORM_FIELD, FormToken};
#[cfg(feature = "oauth")]
pub(crate) use headers::AUTHORIZATION_CSP;
pub(crate) use headers::CSP;
pub(crate) use layers::pages;
#[cfg(feature = "callback")]
pub(crate) use layers::with_session_form_tokens;
pub use pages::Pages;
pub(crate) use render::render;
