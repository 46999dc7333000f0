//! Per-tool authorization for MCP servers (feature `mcp`): [`McpLayer`], inside
//! [`AgentAuthLayer`](crate::AgentAuthLayer), lets an MCP request through only if the
//! caller's ceiling allows what it asks (`tools/call` of `send_payment` needs
//! `mcp:tools:send_payment`, or what the host declares), and answers a missing capability
//! with the `403 insufficient_scope` challenge an MCP client steps up from.
//!
//! ```
//! use http::{Request, Response, StatusCode};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//! use tower_agent_auth::AgentAuthLayer;
//! use tower_agent_auth::ceiling::{CapabilitySet, Policy};
//! use tower_agent_auth::mcp::McpLayer;
//! use tower_agent_auth::store::{MemoryStore, MemoryUserDirectory, NewAgent, NewToken, UserRecord};
//! use tower_agent_auth::token::TokenFormat;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let users = MemoryUserDirectory::new();
//! users.insert(UserRecord::new("alice", Policy::unrestricted()));
//! let store = MemoryStore::new(TokenFormat::new("acme")?, users);
//! let agent = store.create_agent(NewAgent::new("helper", "alice")).await?;
//! let token = store
//!     .create_token(
//!         &agent.id,
//!         NewToken::new("mcp").with_capabilities(CapabilitySet::parse(["mcp:connect", "mcp:tools:get.weather"])?),
//!     )
//!     .await?;
//!
//! // The MCP server: here a stand-in that answers every call.
//! let server = service_fn(|_: Request<http_body_util::Full<bytes::Bytes>>| async {
//!     Ok::<_, std::convert::Infallible>(Response::new(http_body_util::Full::new(bytes::Bytes::from_static(b"{}"))))
//! });
//! let app = ServiceBuilder::new()
//!     .layer(AgentAuthLayer::new(store))
//!     .layer(McpLayer::new().tool("send_payment", "payments:send"))
//!     .service(server);
//!
//! let call = |tool: &str| {
//!     Request::post("/mcp")
//!         .header("authorization", format!("Bearer {}", token.token.expose_secret()))
//!         .header("content-type", "application/json")
//!         .body(format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{tool}"}}}}"#))
//!         .unwrap()
//! };
//! // `getWeather` needs `mcp:tools:get.weather`, which the token holds.
//! let response = app.clone().oneshot(call("getWeather")).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//!
//! // `send_payment` needs `payments:send`: 403, and the scope to ask for.
//! let response = app.clone().oneshot(call("send_payment")).await?;
//! assert_eq!(response.status(), StatusCode::FORBIDDEN);
//! assert_eq!(
//!     response.headers()["www-authenticate"],
//!     r#"Bearer realm="api", error="insufficient_scope", scope="mcp:connect mcp:tools:get.weather payments:send""#
//! );
//! # Ok(()) }
//! ```
//!
//! # How a request is read
//!
//! - A request of the 2026-07-28 transport names its method and target in `Mcp-Method` and
//!   `Mcp-Name` (`=?base64?…?=` for names that are not printable ASCII): a refusal is decided
//!   from them, before the body is read.
//! - The body is read in every case (up to [`McpLayer::max_body`], `413` past it), since
//!   clients of earlier versions send no headers, and because the headers are only a claim: a
//!   request whose headers disagree with its body is refused (`400`, JSON-RPC `-32020`), so a
//!   forged `Mcp-Name` never reaches a tool, even on a server that does not compare them.
//! - A JSON-RPC batch is checked entry by entry: one entry the caller may not send refuses
//!   the whole batch. A body that is not JSON, or that the server could read otherwise (a key
//!   given twice, `params` that is not an object), is refused with `400`.
//! - The inner service gets the body as read, and never the `Authorization` header.
//! - A session (`Mcp-Session-Id`) is its starter's: the person and agent whose request the
//!   server answered with the id. Another caller naming it, even with a valid token, is
//!   answered `404` as for a session that does not exist, and cannot end it.
//!
//! | answer | when |
//! |---|---|
//! | `403`, `WWW-Authenticate: Bearer realm="…", resource_metadata="…", error="insufficient_scope", scope="…"` | a capability is missing; `scope` holds what the token has and what it lacks, so a client that re-authorizes with it keeps both |
//! | `403`, JSON-RPC `-32602` | a name that cannot be mapped to a capability |
//! | `400`, JSON-RPC `-32700` / `-32600` / `-32020` | not JSON / not readable as a request / headers that disagree with the body |
//! | `413` | a body over the bound |
//! | `404`, JSON-RPC `-32600` | a session id another caller started, or one the layer does not know |
//! | `200`, JSON-RPC [`APPROVAL_REQUIRED`] | a supervised agent's critical call waits for a person ([`McpLayer::supervision`]) |
//!
//! The `401` of a missing, invalid, or other-audience token is
//! [`AgentAuthLayer`](crate::AgentAuthLayer)'s: build it with `resource` (the MCP endpoint's
//! URL), `require_audience` and `resource_metadata`, so every `401` points to the metadata
//! and a token issued for another server is refused.
//!
//! # Names and capabilities
//!
//! MCP names are case-sensitive and may hold any character; capabilities are segments of
//! `[a-z0-9_.-]`. A name is escaped into one segment, so that no two names share a
//! capability:
//!
//! | in the name | in the capability |
//! |---|---|
//! | `a`–`z`, `0`–`9`, `_`, `-` | the same: `get_weather` → `mcp:tools:get_weather` |
//! | `A`–`Z` | `.` and the lower-case letter: `getWeather` → `mcp:tools:get.weather` |
//! | `.` | `..`: `files.read` → `mcp:tools:files..read` |
//! | any other byte of its UTF-8 | `._` and two hex digits: `files/read` → `mcp:tools:files._2fread` |
//!
//! So `getWeather` and `getweather` need different capabilities, and `mcp:tools:*` grants
//! every tool. A name whose capability would pass 128 bytes is refused, never cut short:
//! declare a capability for it with [`McpLayer::tool`] (or `prompt`, `resource`), as for a
//! tool that should need an application capability (`payments:send`).
#![cfg_attr(
    feature = "rmcp",
    doc = "\n# In tool handlers\n\nWith feature `rmcp`, a tool handler of an `rmcp` server gets the caller as [`McpPrincipal`]."
)]

mod answer;
mod approval;
mod body;
mod config;
mod layer;
mod list;
mod name;
mod request;
#[cfg(feature = "rmcp")]
mod rmcp;
mod service;
mod session;

pub use approval::{APPROVAL_DENIED, APPROVAL_REQUIRED, TOO_MANY_APPROVALS};
pub use body::ResponseBody;
pub use config::{DEFAULT_BASELINE, DEFAULT_MAX_BODY};
pub use layer::McpLayer;
#[cfg(feature = "rmcp")]
pub use rmcp::McpPrincipal;
pub use service::{Mcp, ResponseFuture};
