//! The caller in an `rmcp` tool handler: [`McpPrincipal`] (feature `rmcp`).
//!
//! rmcp's Streamable HTTP service puts the request's [`http::request::Parts`] into each
//! request context; the principal [`AgentAuthLayer`](crate::AgentAuthLayer) found is in their
//! extensions.

use rmcp::ErrorData;
use rmcp::handler::server::common::{AsRequestContext, FromContextPart};
use rmcp::service::{RequestContext, RoleServer};

use crate::Principal;

/// The caller of a tool, prompt or resource handler of an `rmcp` server behind
/// [`AgentAuthLayer`](crate::AgentAuthLayer): an extractor for `#[tool]` functions, and
/// [`McpPrincipal::of`] for a handler that holds the [`RequestContext`].
///
/// With it a handler checks a capability of its own ([`can`](crate::ExecutionPrincipal::can)),
/// asks a person through `Supervision::check` before a critical step, or records who did
/// what. A request that reached the handler without the layer (a misconfigured server) is
/// answered with a JSON-RPC internal error, never served anonymously.
///
/// In a `#[tool]` function it is an argument like `Parameters<T>`
/// (`async fn pay(&self, caller: McpPrincipal, Parameters(p): Parameters<Payment>)`); from a
/// context:
///
/// ```
/// use rmcp::ErrorData;
/// use rmcp::service::{RequestContext, RoleServer};
/// use tower_agent_auth::mcp::McpPrincipal;
///
/// fn may_refund(context: &RequestContext<RoleServer>) -> Result<bool, ErrorData> {
///     let caller = McpPrincipal::of(context)?;
///     Ok(caller.can("payments:refund"))
/// }
/// ```
#[derive(Debug, Clone)]
pub struct McpPrincipal(pub Principal);

impl McpPrincipal {
    /// The caller of the request `context` serves.
    pub fn of(context: &RequestContext<RoleServer>) -> Result<Self, ErrorData> {
        context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Principal>())
            .cloned()
            .map(Self)
            .ok_or_else(|| {
                ErrorData::internal_error(
                    "no caller: is the MCP service behind AgentAuthLayer?",
                    None,
                )
            })
    }
}

impl std::ops::Deref for McpPrincipal {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.0
    }
}

impl<C: AsRequestContext> FromContextPart<C> for McpPrincipal {
    fn from_context_part(context: &mut C) -> Result<Self, ErrorData> {
        Self::of(context.as_request_context())
    }
}
