//! `/mcp` under `--demo`: an MCP server (rmcp, Streamable HTTP) with three tools that need
//! three capabilities, one of them critical, behind its own `AgentAuthLayer` (tokens bound to
//! `/mcp`) and the MCP layer, so that an operator can point an MCP client at it.

use std::sync::Arc;

use axum::Router;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{Implementation, ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ServerHandler, schemars, tool, tool_handler, tool_router};
use tower_agent_auth::AgentAuthLayer;
use tower_agent_auth::approval::Supervision;
use tower_agent_auth::mcp::{McpLayer, McpPrincipal};
use tower_agent_auth::store::{Backend, Store};

/// What a new client is told to ask for on its first `401`: to connect and list posts.
pub(super) const FIRST_SCOPE: &str = "mcp:connect mcp:tools:list_posts";
/// The scopes the demo's MCP server is advertised with: connecting and each tool.
pub(super) const SCOPES: [&str; 4] = [
    "mcp:connect",
    "mcp:tools:list_posts",
    "mcp:tools:publish.post",
    "payments:send",
];

/// The demo's tools.
#[derive(Clone)]
struct DemoTools {
    #[allow(dead_code)] // read by the code `tool_handler` generates
    tool_router: ToolRouter<Self>,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Post {
    /// The post's title.
    title: String,
    /// Its text.
    body: String,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Payment {
    /// How much, in whole units.
    amount: u64,
    /// ISO 4217, such as EUR.
    currency: String,
    /// The payee.
    to: String,
}

fn caller(principal: &McpPrincipal) -> String {
    match principal.agent_ref() {
        Some(agent) => format!("{} via {}", principal.user_id(), agent.slug()),
        None => principal.user_id().to_string(),
    }
}

#[tool_router]
impl DemoTools {
    fn new() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }

    #[tool(description = "List the demo posts (needs mcp:tools:list_posts)")]
    async fn list_posts(&self, principal: McpPrincipal) -> String {
        format!("[\"hello\", \"world\"] (read by {})", caller(&principal))
    }

    #[tool(
        name = "publishPost",
        description = "Publish a post (needs mcp:tools:publish.post)"
    )]
    async fn publish_post(
        &self,
        principal: McpPrincipal,
        Parameters(post): Parameters<Post>,
    ) -> String {
        format!(
            "published {:?} ({} bytes) as {}",
            post.title,
            post.body.len(),
            caller(&principal)
        )
    }

    #[tool(
        description = "Send a payment (needs payments:send; a supervised agent's payment waits for its person's approval)"
    )]
    async fn send_payment(
        &self,
        principal: McpPrincipal,
        Parameters(payment): Parameters<Payment>,
    ) -> String {
        format!(
            "sent {} {} to {} for {}",
            payment.amount,
            payment.currency,
            payment.to,
            caller(&principal)
        )
    }
}

#[tool_handler]
impl ServerHandler for DemoTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build()).with_server_info(
            Implementation::new("agent-auth demo", env!("CARGO_PKG_VERSION")),
        )
    }
}

/// `/mcp`: the tools behind `auth` (its own layer: tokens bound to `/mcp`, its metadata in
/// every challenge) and the MCP layer; `hosts` are the `Host` values rmcp accepts.
pub(super) fn router<B: Backend>(
    auth: AgentAuthLayer,
    supervision: Supervision<Store<B>>,
    hosts: Vec<String>,
) -> Router {
    let config = StreamableHttpServerConfig::default().with_allowed_hosts(hosts);
    let service = StreamableHttpService::new(
        || Ok(DemoTools::new()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let mcp = McpLayer::new()
        .tool("send_payment", "payments:send")
        .hide_uncallable_tools()
        .supervision(supervision);
    Router::new().route_service(
        "/mcp",
        tower::ServiceBuilder::new()
            .layer(auth)
            .layer(mcp)
            .service(service),
    )
}
