//! An MCP server behind tower-agent-auth: [`Blog`]'s tools served by rmcp's Streamable HTTP
//! service at `/mcp`, each tool needing a capability of its own, and the OAuth authorization
//! server MCP clients get their tokens from (a person signs in, then consents).
//!
//! | tool | needs |
//! |---|---|
//! | `list_posts` | `mcp:tools:list_posts` (granted to every new client) |
//! | `publishPost` | `mcp:tools:publish.post` (the capital letter escaped) |
//! | `send_payment` | `payments:send` (declared; a supervised agent's call waits for a person) |
//!
//! The agents MCP clients act as are supervised: a payment waits for the person's approval.
//!
//! [`app`] assembles it all, for `main.rs` and the tests alike.

mod accounts;
mod blog;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tower::ServiceBuilder;
use tower_agent_auth::AgentAuthLayer;
use tower_agent_auth::approval::{Approval, ApprovalNotifier, Supervision};
use tower_agent_auth::ceiling::CapabilitySet;
use tower_agent_auth::error::BoxError;
use tower_agent_auth::mcp::McpLayer;
use tower_agent_auth::oauth::AuthorizationServer;
use tower_agent_auth::principal::AgentType;
use tower_agent_auth::server::{Login, ManageState, Pages, Sessions, approvals_router};
use tower_agent_auth::store::{Backend, Store};

pub use accounts::{Accounts, random_password};
pub use blog::{Blog, NewPost, Payment};

/// What a new MCP client is granted unless it asks for more: to connect, and to list posts.
/// Calling another tool is a step up: a `403 insufficient_scope` that names what to ask for.
pub const BASELINE: [&str; 2] = ["mcp:connect", "mcp:tools:list_posts"];

/// What a supervised agent needs a person's approval for.
pub const CRITICAL: &str = "payments:send";

/// The whole application for the server at `base` (`http://127.0.0.1:3000`, as clients reach
/// it): the MCP endpoint `<base>/mcp` and its protected-resource metadata, the OAuth
/// authorization server, sign-in, the landing page and the approvals API for people.
pub fn app<B: Backend>(
    store: Store<B>,
    accounts: Accounts,
    base: &str,
    blog: Blog,
) -> Result<Router, BoxError> {
    let oauth = AuthorizationServer::new(store.clone(), base)?;
    // The issuer as the server spells it (no trailing slash): the resource is named from it.
    let base = oauth.issuer().as_str().trim_end_matches('/').to_owned();
    let resource = format!("{base}/mcp");
    // Every MCP client a person connects acts as a supervised agent of theirs: its payments
    // wait for their approval.
    let oauth = oauth
        .resource(&resource)
        .scopes_supported(BASELINE)
        .connection_agent_type(AgentType::Supervised);
    let metadata = oauth.protected_resource(&resource)?;

    // rmcp checks `Host` against DNS rebinding: the authority clients are given.
    let authority = base.parse::<axum::http::Uri>()?;
    let authority = authority.authority().ok_or("the base URL names no host")?;
    let rmcp = StreamableHttpService::new(
        move || Ok(blog.clone()),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default().with_allowed_hosts([authority.as_str()]),
    );
    // Only tokens issued for `/mcp` pass; a 401 sends the client to the metadata, then to
    // the authorization server for the baseline.
    let authenticate = AgentAuthLayer::new(store.clone())
        .resource(&resource)
        .require_audience()
        .resource_metadata(&metadata.metadata_url())?
        .scope(&BASELINE.join(" "))?;
    let supervision = Supervision::new(store.clone(), CapabilitySet::parse([CRITICAL])?)
        .notifier(PrintApprovals { base: base.clone() });
    let authorize = McpLayer::new()
        .tool("send_payment", CRITICAL)
        .hide_uncallable_tools()
        .supervision(supervision);
    let mcp = ServiceBuilder::new()
        .layer(authenticate)
        .layer(authorize)
        .service(rmcp);

    // People: signed in by a session cookie, which the authorization endpoint reads.
    let sessions = Sessions::new(
        Arc::new(accounts.directory()),
        Duration::from_secs(8 * 3600),
    );
    let manage = ManageState {
        store: store.clone(),
        audit: None,
    };
    let people = Router::new()
        .merge(Login::new(sessions.clone(), Arc::new(accounts)).router())
        .merge(oauth.router())
        .merge(Pages::new(manage.clone()).router())
        .merge(approvals_router(manage))
        .layer(
            AgentAuthLayer::new(store)
                .optional()
                .with_session_resolver(sessions),
        );

    Ok(people.merge(metadata.router()).route_service("/mcp", mcp))
}

/// Tells the person on the terminal: this server sends no mail.
struct PrintApprovals {
    base: String,
}

#[tower_agent_auth::async_trait]
impl ApprovalNotifier for PrintApprovals {
    async fn notify(&self, approval: &Approval) -> Result<(), BoxError> {
        let Self { base } = self;
        let (id, owner) = (&approval.id, &approval.owner);
        let details = approval
            .details
            .as_ref()
            .map_or(String::new(), ToString::to_string);
        println!(
            "approval {id} waits for {owner}: {} {}",
            printable(&approval.binding_message),
            printable(&details)
        );
        // The sign-in form's token first: it is bound to the cookie `GET /login` sets.
        println!(
            "  curl -b jar -c jar -d user={owner} -d password=… -d csrf=$(curl -s -c jar {base}/login | sed -n 's/.*name=\"csrf\" value=\"\\([^\"]*\\)\".*/\\1/p') {base}/login"
        );
        println!("  curl -b jar -X POST {base}/api/approvals/{id}/approve");
        Ok(())
    }
}

/// `text` with every character but printable ASCII escaped: the agent chose the arguments, and
/// they reach a terminal.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            ' ' | '!'..='~' => c.to_string(),
            _ => c.escape_unicode().to_string(),
        })
        .collect()
}
