//! [`McpLayer`]: what each MCP request needs, and how much of it the layer reads.

use std::borrow::Cow;
use std::sync::Arc;

use tower_layer::Layer;

use super::config::{Config, Kind, checked};
use super::service::Mcp;

/// A tower [`Layer`] for an MCP endpoint (Streamable HTTP): each request passes only if the
/// principal's ceiling allows what it asks. Place it inside
/// [`AgentAuthLayer`](crate::AgentAuthLayer), which finds the principal.
///
/// | request | capability needed |
/// |---|---|
/// | `tools/call` of `name` | `mcp:tools:<name>` |
/// | `prompts/get` of `name` | `mcp:prompts:<name>` |
/// | `resources/read` of `uri` | `mcp:resources:<uri>` |
/// | anything else (`initialize`, `tools/list`, notifications, `GET` and `DELETE`) | the baseline, `mcp:connect` |
///
/// Names are escaped into the capability grammar so that no two share one (`getWeather` →
/// `mcp:tools:get.weather`; the rule is in the [module docs](super)); a capability declared
/// with [`McpLayer::tool`] (or `prompt`, `resource`) replaces the escaped one.
#[derive(Debug, Clone)]
pub struct McpLayer {
    pub(crate) config: Arc<Config>,
}

impl Default for McpLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl McpLayer {
    /// The mapping of the table above, a 1 MiB body bound, `tools/list` answered whole.
    pub fn new() -> Self {
        Self {
            config: Arc::new(Config::new()),
        }
    }

    fn config(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// What every request needs that is not a call of a tool, prompt or resource.
    ///
    /// # Panics
    /// If `capability` is not a capability name (a configuration error).
    pub fn baseline(mut self, capability: &str) -> Self {
        self.config().baseline = checked(capability);
        self
    }

    /// Calling the tool `name` (exactly, case and all) needs `capability` instead of
    /// `mcp:tools:<name>`: a tool that spends money can need `payments:send`, and a tool whose
    /// name is too long to escape gets one here.
    ///
    /// # Panics
    /// If `capability` is not a capability name.
    pub fn tool(self, name: impl Into<String>, capability: &str) -> Self {
        self.declare(Kind::Tool, name.into(), capability)
    }

    /// Getting the prompt `name` needs `capability` instead of `mcp:prompts:<name>`.
    ///
    /// # Panics
    /// If `capability` is not a capability name.
    pub fn prompt(self, name: impl Into<String>, capability: &str) -> Self {
        self.declare(Kind::Prompt, name.into(), capability)
    }

    /// Reading the resource `uri` needs `capability` instead of `mcp:resources:<uri>`.
    ///
    /// # Panics
    /// If `capability` is not a capability name.
    pub fn resource(self, uri: impl Into<String>, capability: &str) -> Self {
        self.declare(Kind::Resource, uri.into(), capability)
    }

    fn declare(mut self, kind: Kind, name: String, capability: &str) -> Self {
        self.config().declare(kind, name, checked(capability));
        self
    }

    /// The largest request body the layer reads (default [`DEFAULT_MAX_BODY`](super::DEFAULT_MAX_BODY)); a larger one
    /// is answered `413`.
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.config().max_body = bytes;
        self
    }

    /// Answers `tools/list` with only the tools the caller may call: the agent's view of the
    /// server is its ceiling. The list is cut from the server's answer (JSON or an event
    /// stream); each call is still authorized on its own.
    pub fn hide_uncallable_tools(mut self) -> Self {
        self.config().hide_uncallable_tools = true;
        self
    }

    /// Holds the calls whose capability `supervision` finds critical for a person's approval,
    /// when the caller is a supervised agent: the approval binds the tool's name and its
    /// arguments, and until it is given the call is answered with a JSON-RPC error that says
    /// how to retry ([`APPROVAL_REQUIRED`](super::APPROVAL_REQUIRED)). The person reads the
    /// tool's name and its arguments, and both are kept with the approval and written to the
    /// audit trail: a critical tool should take no secret as an argument.
    pub fn supervision<B: crate::store::Backend>(
        mut self,
        supervision: crate::approval::Supervision<crate::store::Store<B>>,
    ) -> Self {
        self.config().gate = Some(Arc::new(supervision));
        self
    }

    /// The capability the JSON-RPC `method` needs, with `target` the tool's or prompt's name
    /// or the resource's URI; `None` when the target cannot be mapped (see the type's docs),
    /// which the layer refuses.
    ///
    /// ```
    /// use tower_agent_auth::mcp::McpLayer;
    /// let layer = McpLayer::new().tool("send_payment", "payments:send");
    /// assert_eq!(layer.capability_for("tools/call", Some("getWeather")).as_deref(), Some("mcp:tools:get.weather"));
    /// assert_eq!(layer.capability_for("tools/call", Some("send_payment")).as_deref(), Some("payments:send"));
    /// assert_eq!(layer.capability_for("tools/list", None).as_deref(), Some("mcp:connect"));
    /// ```
    pub fn capability_for<'a>(
        &'a self,
        method: &str,
        target: Option<&str>,
    ) -> Option<Cow<'a, str>> {
        self.config.capability_for(method, target)
    }
}

impl<S> Layer<S> for McpLayer {
    type Service = Mcp<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Mcp::new(inner, self.config.clone())
    }
}
