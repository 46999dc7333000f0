//! The Redis second-level cache: the latency of a `get` that hits, on loopback.
//!
//! `AGENT_AUTH_TEST_REDIS_URL=redis://127.0.0.1:6379 cargo bench --bench redis --features redis`
//!
//! * `redis/l2_get_hit` — criterion's mean of one `RedisSecondLevel::get` of a stored entry
//!   (one `GET` round trip and the decoding of a delegated principal with a three-layer
//!   ceiling);
//! * then p50/p99 of 10 000 individually timed gets, printed.
//!
//! Without `AGENT_AUTH_TEST_REDIS_URL` it prints a notice and measures nothing. Keys live under
//! a prefix of this run's own and expire after a minute.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use tower_agent_auth::ExecutionPrincipal;
use tower_agent_auth::cache::{RedisSecondLevel, SecondLevel};
use tower_agent_auth::ceiling::{CapabilityCeiling, CapabilitySet, LayerSource, Policy};
use tower_agent_auth::principal::{AgentRef, DelegationLink};
use tower_agent_auth::token::TokenHash;

/// The secret the nodes share to tag second-level entries (32 bytes at least).
const SECRET: &[u8] = b"a test secret of at least 32 bytes, never a real one";

const SAMPLES: usize = 10_000;

fn principal() -> tower_agent_auth::Principal {
    let policy =
        |patterns: &[&str]| Arc::new(Policy::allow(CapabilitySet::parse(patterns).unwrap()));
    let ceiling = CapabilityCeiling::new(policy(&["posts:*", "comments:*"]))
        .narrowed_by(LayerSource::AgentPolicy, policy(&["posts:*"]))
        .narrowed_by(
            LayerSource::Token,
            policy(&["posts:read", "posts:drafts:*"]),
        );
    ExecutionPrincipal::agent(
        "alice".into(),
        AgentRef::new("agt_2", "writer"),
        "tok_2".into(),
        ceiling,
    )
    .with_delegation_chain(vec![DelegationLink::new(
        AgentRef::new("agt_1", "lead"),
        "tok_1",
    )])
    .into()
}

fn bench_l2_get(c: &mut Criterion) {
    let Ok(url) = std::env::var("AGENT_AUTH_TEST_REDIS_URL") else {
        println!("Redis skipped: set AGENT_AUTH_TEST_REDIS_URL");
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let prefix = format!("agent_auth_bench:{}:", std::process::id());
    let hash = TokenHash::of("acme_writer_bench");
    let l2 = runtime.block_on(async {
        let l2 = RedisSecondLevel::connect(&url, SECRET)
            .await
            .unwrap()
            .with_prefix(prefix);
        l2.put(&hash, 1, &principal(), Duration::from_secs(60))
            .await
            .unwrap();
        assert!(
            l2.get(&hash, 1).await.unwrap().is_some(),
            "the entry is there"
        );
        l2
    });

    c.bench_function("redis/l2_get_hit", |b| {
        b.to_async(&runtime)
            .iter(|| async { l2.get(&hash, 1).await.unwrap().unwrap() })
    });

    let mut timings: Vec<Duration> = runtime.block_on(async {
        let mut timings = Vec::with_capacity(SAMPLES);
        for _ in 0..SAMPLES {
            let started = Instant::now();
            let found = l2.get(&hash, 1).await.unwrap();
            timings.push(started.elapsed());
            assert!(found.is_some());
        }
        timings
    });
    timings.sort_unstable();
    let at = |q: f64| timings[((timings.len() as f64 * q) as usize).min(timings.len() - 1)];
    let mean = timings.iter().sum::<Duration>() / timings.len() as u32;
    println!(
        "redis L2 get hit, {SAMPLES} gets on loopback: mean {mean:?}, p50 {:?}, p99 {:?}",
        at(0.50),
        at(0.99)
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(Duration::from_secs(5));
    targets = bench_l2_get
}
criterion_main!(benches);
