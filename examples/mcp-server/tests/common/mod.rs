//! The application over a memory store, tokens minted with the store, and MCP requests of both
//! transports: 2026-07-28 (stateless, `Mcp-Method`/`Mcp-Name` headers) and 2025-11-25
//! (`initialize`, a session, the body alone).

#![allow(dead_code)]

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use mcp_server::{Accounts, Blog, app};
use serde_json::{Value, json};
use tower::ServiceExt;
use tower_agent_auth::ceiling::{CapabilitySet, Policy};
use tower_agent_auth::principal::AgentType;
use tower_agent_auth::store::{MemoryStore, NewAgent, NewToken, UserRecord};
use tower_agent_auth::token::TokenFormat;

pub const BASE: &str = "http://127.0.0.1:3000";
pub const MCP: &str = "http://127.0.0.1:3000/mcp";
const HOST: &str = "127.0.0.1:3000";
pub const STATELESS: &str = "2026-07-28";
pub const LEGACY: &str = "2025-11-25";

/// The application, its store, and the blog whose tool calls it counts.
pub struct Server {
    pub app: Router,
    pub store: MemoryStore,
    pub blog: Blog,
}

impl Server {
    /// `alice`, whose role allows every tool and payments, and no agent yet.
    pub fn new() -> Self {
        let accounts = Accounts::new();
        accounts
            .directory()
            .insert(UserRecord::new("alice", role()));
        Self::with(accounts)
    }

    /// The application for `accounts`.
    pub fn with(accounts: Accounts) -> Self {
        let store = MemoryStore::new(TokenFormat::new("agent").unwrap(), accounts.directory());
        let blog = Blog::new();
        let app = app(store.clone(), accounts, BASE, blog.clone()).unwrap();
        Self { app, store, blog }
    }

    /// A token of a new agent of alice's (`slug`) for `/mcp`, holding `capabilities`.
    pub async fn token(&self, slug: &str, kind: AgentType, capabilities: &[&str]) -> String {
        let agent = NewAgent::new(slug, "alice").with_type(kind);
        let agent = self.store.create_agent(agent).await.unwrap();
        let token = NewToken::new("test")
            .resource(MCP)
            .with_capabilities(CapabilitySet::parse(capabilities).unwrap());
        let issued = self.store.create_token(&agent.id, token).await.unwrap();
        issued.token.expose_secret().to_owned()
    }

    pub async fn send(&self, request: Request<Body>) -> Response<Body> {
        self.app.clone().oneshot(request).await.unwrap()
    }

    /// A 2026-07-28 request: `Mcp-Method` and `Mcp-Name` as given, `body`'s `params` with
    /// the per-request `_meta` that version needs.
    pub async fn stateless(
        &self,
        token: &str,
        method: &str,
        name: Option<&str>,
        mut body: Value,
    ) -> Response<Body> {
        body["params"]["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": STATELESS,
            "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1.0"},
            "io.modelcontextprotocol/clientCapabilities": {},
        });
        let mut request = post(token)
            .header("mcp-protocol-version", STATELESS)
            .header("mcp-method", method);
        if let Some(name) = name {
            request = request.header("mcp-name", name);
        }
        self.send(request.body(Body::from(body.to_string())).unwrap())
            .await
    }

    /// A 2025-11-25 session: `initialize`, then `notifications/initialized`; its id.
    pub async fn session(&self, token: &str) -> String {
        let initialize = json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {
                "protocolVersion": LEGACY,
                "capabilities": {},
                "clientInfo": {"name": "test", "version": "1.0"},
            },
        });
        let response = self
            .send(
                post(token)
                    .body(Body::from(initialize.to_string()))
                    .unwrap(),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let session = response.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let answer = messages(response).await;
        assert_eq!(answer[0]["result"]["protocolVersion"], LEGACY, "{answer:?}");
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let response = self.legacy(token, &session, initialized).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        session
    }

    /// A request of the session `session`: the body alone says what it asks.
    pub async fn legacy(&self, token: &str, session: &str, body: Value) -> Response<Body> {
        let request = post(token)
            .header("mcp-protocol-version", LEGACY)
            .header("mcp-session-id", session);
        self.send(request.body(Body::from(body.to_string())).unwrap())
            .await
    }
}

/// alice's role: every tool, and payments.
pub fn role() -> Policy {
    Policy::allow(CapabilitySet::parse(["mcp:*", "payments:send"]).unwrap())
}

/// A POST to `/mcp` with the headers every transport sends.
fn post(token: &str) -> axum::http::request::Builder {
    Request::post("/mcp")
        .header("host", HOST)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
}

/// `tools/call` of `tool` with `arguments`.
pub fn call(id: u64, tool: &str, arguments: Value) -> Value {
    json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": tool, "arguments": arguments},
    })
}

/// `tools/list`.
pub fn list(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/list", "params": {}})
}

/// The JSON-RPC messages of an answer: its JSON body, or the data of its events.
pub async fn messages(response: Response<Body>) -> Vec<Value> {
    let event_stream = response
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    // A POST's event stream ends after its answer; a stream that does not is a failure.
    let body = tokio::time::timeout(Duration::from_secs(5), response.into_body().collect())
        .await
        .expect("the answer ends")
        .unwrap()
        .to_bytes();
    let text = String::from_utf8(body.to_vec()).unwrap();
    if !event_stream {
        return vec![serde_json::from_str(&text).unwrap()];
    }
    text.split("\n\n")
        .filter_map(|event| {
            let data: Vec<&str> = event
                .lines()
                .filter_map(|line| line.strip_prefix("data:"))
                .map(str::trim_start)
                .collect();
            let data = data.join("\n");
            (!data.is_empty()).then(|| serde_json::from_str(&data).unwrap())
        })
        .collect()
}

/// The one JSON-RPC answer of a response.
pub async fn answer(response: Response<Body>) -> Value {
    let mut messages = messages(response).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    messages.remove(0)
}

/// The text a tool answered.
pub fn text(answer: &Value) -> &str {
    answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text in {answer}"))
}

/// The tools a `tools/list` answer names, in order.
pub fn names(answer: &Value) -> Vec<&str> {
    answer["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools in {answer}"))
        .iter()
        .map(|tool| tool["name"].as_str().unwrap())
        .collect()
}
