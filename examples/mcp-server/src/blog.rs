//! [`Blog`]: the MCP server, three tools that need three different capabilities. None of them
//! checks a capability itself: `McpLayer` has, before the call reached rmcp.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{ServerCapabilities, ServerConfig};
use rmcp::{ServerHandler, schemars, tool, tool_handler, tool_router};
use tower_agent_auth::Principal;
use tower_agent_auth::mcp::McpPrincipal;

/// The MCP server: one per rmcp session, all of them sharing the posts.
#[derive(Clone)]
pub struct Blog {
    shared: Arc<Shared>,
    tool_router: ToolRouter<Self>,
}

#[derive(Default)]
struct Shared {
    posts: Mutex<Vec<Post>>,
    calls: AtomicUsize,
}

struct Post {
    title: String,
    author: String,
}

/// What `publishPost` takes.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct NewPost {
    /// The post's title.
    pub title: String,
    /// The post's text.
    pub body: String,
}

/// What `send_payment` takes.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct Payment {
    /// In the currency's smallest unit.
    pub amount: u64,
    /// Three capital letters: `EUR`.
    pub currency: String,
    /// The payee.
    pub to: String,
}

impl Default for Blog {
    fn default() -> Self {
        Self::new()
    }
}

impl Blog {
    /// A blog without posts.
    pub fn new() -> Self {
        Self {
            shared: Arc::default(),
            tool_router: Self::tool_router(),
        }
    }

    /// How many tool calls reached a tool: what the layers let through.
    pub fn calls(&self) -> usize {
        self.shared.calls.load(Ordering::Relaxed)
    }

    fn called(&self) {
        self.shared.calls.fetch_add(1, Ordering::Relaxed);
    }
}

/// `alice via writer-bot`, or `alice` signed in herself.
fn who(caller: &Principal) -> String {
    match caller.agent_ref() {
        Some(agent) => format!("{} via {}", caller.user_id(), agent.slug()),
        None => caller.user_id().to_string(),
    }
}

#[tool_router]
impl Blog {
    /// Needs `mcp:tools:list_posts`.
    #[tool(description = "List the blog's posts")]
    fn list_posts(&self, McpPrincipal(caller): McpPrincipal) -> String {
        self.called();
        let posts = self.shared.posts.lock().unwrap_or_else(|e| e.into_inner());
        let mut answer = format!("{} posts, read by {}", posts.len(), who(&caller));
        for post in posts.iter() {
            answer.push_str(&format!("\n- {} (by {})", post.title, post.author));
        }
        answer
    }

    /// Needs `mcp:tools:publish.post`: the capability escapes the capital letter.
    #[tool(name = "publishPost", description = "Publish a post")]
    fn publish_post(
        &self,
        McpPrincipal(caller): McpPrincipal,
        Parameters(post): Parameters<NewPost>,
    ) -> String {
        self.called();
        let author = who(&caller);
        let answer = format!(
            "published {:?} ({} bytes) as {author}",
            post.title,
            post.body.len()
        );
        let mut posts = self.shared.posts.lock().unwrap_or_else(|e| e.into_inner());
        posts.push(Post {
            title: post.title,
            author,
        });
        answer
    }

    /// Needs `payments:send`, declared with `McpLayer::tool`; a supervised agent's call waits
    /// for a person's approval of exactly these arguments.
    #[tool(description = "Send a payment")]
    fn send_payment(
        &self,
        McpPrincipal(caller): McpPrincipal,
        Parameters(payment): Parameters<Payment>,
    ) -> String {
        self.called();
        format!(
            "paid {} {} to {} as {}",
            payment.amount,
            payment.currency,
            payment.to,
            who(&caller)
        )
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Blog {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_instructions("A blog: list and publish posts, and pay its authors.")
    }
}
