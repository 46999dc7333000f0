//! For counting instructions (`valgrind --tool=callgrind`): N in-process `tools/call`s of a
//! trivial tool through rmcp alone (`alone`), behind `AgentAuthLayer` (`auth`), or behind it and
//! `McpLayer` (`layers`), as `benches/tool_call.rs` sends them. Instructions per call are the
//! difference of two runs of different N divided by the difference of N, so setup cancels out:
//!
//! ```text
//! cargo build --release -p mcp-server --example calls
//! for n in 1000 3000; do valgrind --tool=callgrind target/release/examples/calls layers $n; done
//! ```

#[path = "../benches/common/mod.rs"]
mod common;

use axum::body::Body;
use axum::http::Response;
use tower::ServiceBuilder;
use tower_agent_auth::AgentAuthLayer;
use tower_agent_auth::ceiling::Policy;
use tower_agent_auth::mcp::McpLayer;
use tower_agent_auth::store::{MemoryStore, MemoryUserDirectory, UserRecord};
use tower_agent_auth::token::TokenFormat;

use common::{MCP, call, rmcp, token};

fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: calls alone|auth|layers N";
    let mode = args.next().expect(usage);
    let n: u32 = args.next().and_then(|n| n.parse().ok()).expect(usage);
    assert!(
        ["alone", "auth", "layers"].contains(&mode.as_str()),
        "{usage}"
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let users = MemoryUserDirectory::new();
        users.insert(UserRecord::new("alice", Policy::unrestricted()));
        let store = MemoryStore::new(TokenFormat::new("agent").unwrap(), users);
        let authorization = token(&store).await;
        let alone = rmcp(true);
        let layers = ServiceBuilder::new()
            .layer(
                AgentAuthLayer::new(store.clone())
                    .resource(MCP)
                    .require_audience(),
            )
            .layer(McpLayer::new())
            .service(rmcp(true));
        let auth_only = ServiceBuilder::new()
            .layer(
                AgentAuthLayer::new(store.clone())
                    .resource(MCP)
                    .require_audience(),
            )
            .map_response(|r: Response<_>| r.map(Body::new))
            .service(rmcp(true));
        for _ in 0..n {
            if mode == "alone" {
                std::hint::black_box(call(&alone, &authorization).await);
            } else if mode == "auth" {
                std::hint::black_box(call(&auth_only, &authorization).await);
            } else {
                std::hint::black_box(call(&layers, &authorization).await);
            }
        }
    });
}
