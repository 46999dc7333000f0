//! What the benchmark and the instruction-counting example share: the trivial tool, rmcp's
//! service for it, the request, one call, and a token.
#![allow(dead_code)] // each user takes what it needs

use std::sync::Arc;

use axum::body::{Body, Bytes, HttpBody};
use axum::http::{Request, Response};
use http_body_util::BodyExt;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ServerHandler, tool, tool_handler, tool_router};
use tower::{Service, ServiceExt};
use tower_agent_auth::ceiling::CapabilitySet;
use tower_agent_auth::store::{MemoryStore, NewAgent, NewToken};

pub const MCP: &str = "http://127.0.0.1/mcp";

/// The trivial tool.
#[derive(Clone)]
pub struct Ping {
    pub tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Ping {
    #[tool(description = "Answers pong")]
    fn ping(&self) -> String {
        "pong".into()
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Ping {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

/// rmcp's service answering with JSON when it can (`json`), else with an event stream (its
/// default).
pub fn rmcp(json: bool) -> StreamableHttpService<Ping, LocalSessionManager> {
    StreamableHttpService::new(
        || {
            Ok(Ping {
                tool_router: Ping::tool_router(),
            })
        },
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default().with_json_response(json),
    )
}

pub const CALL: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ping","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"bench","version":"1.0"},"io.modelcontextprotocol/clientCapabilities":{}}}}"#;

pub fn request(authorization: &str) -> Request<Body> {
    Request::post("/mcp")
        .header("host", "127.0.0.1")
        .header("authorization", authorization)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "ping")
        .body(Body::from(Bytes::from_static(CALL.as_bytes())))
        .unwrap()
}

/// One call, its answer read whole.
pub async fn call<S, B>(service: &S, authorization: &str) -> Bytes
where
    S: Service<Request<Body>, Response = Response<B>> + Clone,
    S::Error: std::fmt::Debug,
    B: HttpBody<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let response = service
        .clone()
        .oneshot(request(authorization))
        .await
        .unwrap();
    response.into_body().collect().await.unwrap().to_bytes()
}

/// A token for `/mcp` that may connect and call `ping`, as its `Authorization` header.
pub async fn token(store: &MemoryStore) -> String {
    let agent = store
        .create_agent(NewAgent::new("bench", "alice"))
        .await
        .unwrap();
    let token = NewToken::new("bench")
        .resource(MCP)
        .with_capabilities(CapabilitySet::parse(["mcp:connect", "mcp:tools:ping"]).unwrap());
    let issued = store.create_token(&agent.id, token).await.unwrap();
    format!("Bearer {}", issued.token.expose_secret())
}
