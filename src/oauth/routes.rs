//! Where the endpoints are, under the issuer's path, and the CORS of those a browser-based
//! client calls.

use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderName, Method};
use tower_http::cors::{Any, CorsLayer};

/// The authorization endpoint.
pub(crate) const AUTHORIZE: &str = "/oauth/authorize";
/// The token endpoint.
pub(crate) const TOKEN: &str = "/oauth/token";
/// The registration endpoint.
pub(crate) const REGISTER: &str = "/oauth/register";
/// The introspection endpoint.
pub(crate) const INTROSPECT: &str = "/oauth/introspect";
/// The revocation endpoint.
pub(crate) const REVOKE: &str = "/oauth/revoke";
/// The "Agent Tokens" endpoint: an orchestrator's task tokens.
pub(crate) const AGENT_TOKEN: &str = "/oauth/agent-token";
/// The device authorization endpoint (RFC 8628).
pub(crate) const DEVICE_AUTHORIZATION: &str = "/oauth/device_authorization";
/// Where a person enters a device's user code (RFC 8628's verification URI).
pub(crate) const DEVICE: &str = "/oauth/device";

/// CORS for the endpoints a browser-based client (the MCP Inspector) calls from its own
/// origin: any origin, no cookies, the headers those clients send.
pub(crate) fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([
            AUTHORIZATION,
            CONTENT_TYPE,
            HeaderName::from_static("mcp-protocol-version"),
        ])
}
