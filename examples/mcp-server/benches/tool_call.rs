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
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::Response;
use criterion::{Criterion, criterion_group, criterion_main};
use tokio::runtime::Runtime;
use tower::ServiceBuilder;
use tower_agent_auth::AgentAuthLayer;
use tower_agent_auth::ceiling::Policy;
use tower_agent_auth::mcp::McpLayer;
use tower_agent_auth::store::{MemoryStore, MemoryUserDirectory, UserRecord};
use tower_agent_auth::token::TokenFormat;

mod common;

use common::{MCP, call, rmcp, token};

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
