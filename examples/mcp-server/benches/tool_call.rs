//! What the layers add to an MCP tool call: `tools/call` of a trivial tool through rmcp's
//! Streamable HTTP service in-process, alone and behind `AgentAuthLayer` (a memory store) and
//! `McpLayer`, the same request for both (2026-07-28: stateless, `Mcp-Method` and `Mcp-Name`
//! headers, JSON answers).
//!
//! `cargo bench -p mcp-server`
//!
//! * `tools_call/rmcp` and `tools_call/layers_and_rmcp`: criterion's figures, one after the
//!   other;
//! * `paired`: on a noisy machine the figures to read. Each round times a chunk of calls
//!   without the layers, then with them (the order alternating), so a slow spell slows both;
//!   the median and quartiles of the per-round ratio are printed, for `AgentAuthLayer` alone
//!   and for both layers with JSON answers, and for both layers with rmcp's default event
//!   stream answers.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes, HttpBody};
use axum::http::{Request, Response};
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::BodyExt;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ServerHandler, tool, tool_handler, tool_router};
use tokio::runtime::Runtime;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_agent_auth::AgentAuthLayer;
use tower_agent_auth::ceiling::{CapabilitySet, Policy};
use tower_agent_auth::mcp::McpLayer;
use tower_agent_auth::store::{MemoryStore, MemoryUserDirectory, NewAgent, NewToken, UserRecord};
use tower_agent_auth::token::TokenFormat;

const MCP: &str = "http://127.0.0.1/mcp";

/// The trivial tool.
#[derive(Clone)]
struct Ping {
    tool_router: ToolRouter<Self>,
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
fn rmcp(json: bool) -> StreamableHttpService<Ping, LocalSessionManager> {
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

const CALL: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ping","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"bench","version":"1.0"},"io.modelcontextprotocol/clientCapabilities":{}}}}"#;

fn request(authorization: &str) -> Request<Body> {
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
async fn call<S, B>(service: &S, authorization: &str) -> Bytes
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
async fn token(store: &MemoryStore) -> String {
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

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let users = MemoryUserDirectory::new();
    users.insert(UserRecord::new("alice", Policy::unrestricted()));
    let store = MemoryStore::new(TokenFormat::new("agent").unwrap(), users);
    let authorization = &runtime.block_on(token(&store));
    let authenticate = AgentAuthLayer::new(store).resource(MCP).require_audience();
    let layered = |json| {
        ServiceBuilder::new()
            .layer(authenticate.clone())
            .layer(McpLayer::new())
            .service(rmcp(json))
    };
    // The authentication alone (rmcp's body mapped to one the layer can write its 401 in).
    let authenticated = ServiceBuilder::new()
        .layer(authenticate.clone())
        .map_response(|response: Response<_>| response.map(Body::new))
        .service(rmcp(true));
    let (alone, layers) = (rmcp(true), layered(true));
    let (alone_streaming, layers_streaming) = (rmcp(false), layered(false));
    // Every one answers the call: the layers are measured letting it through.
    for answer in [
        runtime.block_on(call(&alone, authorization)),
        runtime.block_on(call(&layers, authorization)),
        runtime.block_on(call(&authenticated, authorization)),
        runtime.block_on(call(&alone_streaming, authorization)),
        runtime.block_on(call(&layers_streaming, authorization)),
    ] {
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.contains(r#""text":"pong""#), "{answer}");
    }

    let mut group = c.benchmark_group("tools_call");
    group.bench_function("rmcp", |b| {
        b.to_async(&runtime)
            .iter(|| async { black_box(call(&alone, authorization).await) })
    });
    group.bench_function("layers_and_rmcp", |b| {
        b.to_async(&runtime)
            .iter(|| async { black_box(call(&layers, authorization).await) })
    });
    group.finish();

    let rmcp = async || call(&alone, authorization).await;
    paired(
        &runtime,
        "JSON answers, AgentAuthLayer alone",
        rmcp,
        async || call(&authenticated, authorization).await,
    );
    paired(&runtime, "JSON answers, both layers", rmcp, async || {
        call(&layers, authorization).await
    });
    paired(
        &runtime,
        "event-stream answers (rmcp's default), both layers",
        async || call(&alone_streaming, authorization).await,
        async || call(&layers_streaming, authorization).await,
    );
}

/// Rounds of a chunk of `base` calls and a chunk of `with` calls, back to back; the per-round
/// ratio's median and quartiles.
fn paired(
    runtime: &Runtime,
    name: &str,
    base: impl AsyncFn() -> Bytes,
    with: impl AsyncFn() -> Bytes,
) {
    const ROUNDS: usize = 60;
    const CHUNK: u32 = 200;
    let time = |layers: bool| {
        runtime.block_on(async {
            let started = Instant::now();
            for _ in 0..CHUNK {
                if layers {
                    black_box(with().await);
                } else {
                    black_box(base().await);
                }
            }
            started.elapsed() / CHUNK
        })
    };
    let rounds: Vec<(Duration, Duration)> = (0..ROUNDS)
        .map(|round| {
            if round % 2 == 0 {
                let base = time(false);
                (base, time(true))
            } else {
                let with = time(true);
                (time(false), with)
            }
        })
        .collect();
    let quartiles = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
        (at(0.25), at(0.5), at(0.75))
    };
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    let (_, base, _) = quartiles(rounds.iter().map(|r| micros(r.0)).collect());
    let (_, with, _) = quartiles(rounds.iter().map(|r| micros(r.1)).collect());
    let (low, ratio, high) = quartiles(rounds.iter().map(|r| micros(r.1) / micros(r.0)).collect());
    println!(
        "paired, {name}: rmcp {base:.2} µs, with the layers {with:.2} µs (medians of {ROUNDS} \
         rounds of {CHUNK} calls); ratio median {ratio:.3}, quartiles {low:.3}–{high:.3}"
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
