//! Per-request cost of `AgentAuthLayer` (issue: core middleware).
//!
//! `cargo bench --features cache --bench layer` (without `cache`, the cached lines are left out)
//!
//! * `baseline/no_layer` — the inner service alone, same request construction;
//! * `layer/valid_token` — through the layer with the in-memory store (10 000 tokens stored);
//!   the layer's overhead is the difference between the two;
//! * `layer/valid_token_cached` — the same store behind its verdict cache, as `serve` runs it
//!   (feature `cache`): a hit answers from a held principal;
//! * `reference/sha256_plus_hashmap` — the floor: SHA-256 of the token + a `HashMap` lookup;
//! * `reference/jwt_hs256_verify` — `jsonwebtoken` HS256 verification of an equivalent claim set;
//! * `reject/*` — offline rejection: the token parser alone on a bad-checksum and a malformed
//!   token, and the whole layer answering 401 for a bad checksum;
//! * `delegation/direct_token` and `delegation/depth_3_token` — the layer's per-request cost for
//!   a token minted directly and for one delegated three times (every link checked, its
//!   capabilities a layer), side by side on one in-memory store;
//! * `paired` — the figures the targets are about, measured robustly on a noisy machine: each
//!   round times a chunk of requests without the layer, with it, the floor, and the work any
//!   such layer cannot avoid (below) back to back, so a slow spell slows all four alike; the
//!   medians and spreads of the per-round overhead and ratios are printed.
//!
//! "Unavoidable work" is what any layer that resolves an opaque token and hands the handler a
//! principal must do per request, with nothing of this crate in it: read the `Authorization`
//! header, check the prefix, hex digits and CRC32, SHA-256 the token, look the digest up in a
//! `HashMap`, read the wall clock (for expiry) and insert a principal into the request
//! extensions (which allocates the extensions map on a fresh request).
//!
//! Futures are polled once with a no-op waker: the in-memory path never waits, so this measures
//! CPU work, not an executor.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tower::{Service, ServiceBuilder};
use tower_agent_auth::AgentAuthLayer;
use tower_agent_auth::ceiling::{CapabilitySet, Policy};
use tower_agent_auth::layer::AgentAuth;
use tower_agent_auth::store::{MemoryStore, MemoryUserDirectory, NewAgent, NewToken, UserRecord};
use tower_agent_auth::token::{RawToken, TokenFormat};

fn poll_now<F: Future>(future: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the in-memory path never waits"),
    }
}

fn request(authorization: &str) -> Request<String> {
    Request::builder()
        .uri("/posts")
        .header("authorization", authorization)
        .body(String::new())
        .unwrap()
}

fn call<S>(service: &mut S, request: Request<String>) -> Response<String>
where
    S: Service<Request<String>, Response = Response<String>, Error = Infallible>,
{
    let mut cx = Context::from_waker(Waker::noop());
    assert!(service.poll_ready(&mut cx).is_ready());
    poll_now(service.call(request)).unwrap()
}

const STORED_TOKENS: usize = 10_000;

fn store_with_tokens() -> (MemoryStore, RawToken) {
    let users = MemoryUserDirectory::new();
    users.insert(UserRecord::new(
        "alice",
        Policy::allow(CapabilitySet::parse(["posts:*", "comments:*"]).unwrap()),
    ));
    let store = MemoryStore::new(TokenFormat::new("acme").unwrap(), users);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let token = runtime.block_on(async {
        let agent = store
            .create_agent(NewAgent::new("writer", "alice"))
            .await
            .unwrap();
        let mut last = None;
        for i in 0..STORED_TOKENS {
            let capabilities = CapabilitySet::parse(["posts:read", "posts:publish"]).unwrap();
            let new = NewToken::new(format!("t{i}")).with_capabilities(capabilities);
            last = Some(store.create_token(&agent.id, new).await.unwrap().token);
        }
        last.unwrap()
    });
    (store, token)
}

#[derive(Serialize, Deserialize)]
struct Claims {
    sub: String,
    agent: String,
    jti: String,
    exp: u64,
    iat: u64,
    capabilities: Vec<String>,
}

fn bench_layer(c: &mut Criterion) {
    let (store, token) = store_with_tokens();
    let bearer = format!("Bearer {}", token.expose_secret());
    let inner = tower::service_fn(|_: Request<String>| async {
        Ok::<_, Infallible>(Response::new(String::new()))
    });

    let mut bare = inner;
    c.bench_function("baseline/no_layer", |b| {
        b.iter(|| call(&mut bare, request(black_box(&bearer))))
    });

    let mut layered = ServiceBuilder::new()
        .layer(AgentAuthLayer::new(store.clone()))
        .service(inner);
    assert_eq!(call(&mut layered, request(&bearer)).status(), 200);
    c.bench_function("layer/valid_token", |b| {
        b.iter(|| call(&mut layered, request(black_box(&bearer))))
    });

    let raw = token.expose_secret().to_owned();
    let table = floor_table(&raw);
    c.bench_function("reference/sha256_plus_hashmap", |b| {
        b.iter(|| black_box(floor(&table, &raw)))
    });

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = Claims {
        sub: "alice".into(),
        agent: "writer".into(),
        jti: "tok_0123456789abcdef".into(),
        exp: now + 3600,
        iat: now,
        capabilities: vec!["posts:read".into(), "posts:publish".into()],
    };
    let secret = b"a-32-byte-secret-for-hs256-bench";
    let jwt = jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap();
    let key = DecodingKey::from_secret(secret);
    let validation = Validation::new(Algorithm::HS256);
    c.bench_function("reference/jwt_hs256_verify", |b| {
        b.iter(|| jsonwebtoken::decode::<Claims>(black_box(&jwt), &key, &validation).unwrap())
    });

    let format = TokenFormat::new("acme").unwrap();
    let mut bad_checksum = raw.clone();
    let last = bad_checksum.pop().unwrap();
    bad_checksum.push(if last == '0' { '1' } else { '0' });
    c.bench_function("reject/parse_bad_checksum", |b| {
        b.iter(|| format.parse(black_box(&bad_checksum)).is_err())
    });
    let malformed = format!("acme_writer_{}", "z".repeat(64));
    c.bench_function("reject/parse_malformed", |b| {
        b.iter(|| format.parse(black_box(&malformed)).is_err())
    });
    let bad_bearer = format!("Bearer {bad_checksum}");
    assert_eq!(call(&mut layered, request(&bad_bearer)).status(), 401);
    c.bench_function("reject/layer_bad_checksum_401", |b| {
        b.iter(|| call(&mut layered, request(black_box(&bad_bearer))))
    });

    // The configuration `serve` runs: the store behind its verdict cache.
    #[cfg(feature = "cache")]
    let mut cached = {
        use tower_agent_auth::cache::CachingResolver;
        let resolver = CachingResolver::new(store.clone(), store.verdict_cache());
        let mut cached = ServiceBuilder::new()
            .layer(AgentAuthLayer::new(resolver))
            .service(inner);
        assert_eq!(call(&mut cached, request(&bearer)).status(), 200);
        c.bench_function("layer/valid_token_cached", |b| {
            b.iter(|| call(&mut cached, request(black_box(&bearer))))
        });
        cached
    };
    #[cfg(feature = "cache")]
    let cached = Some(&mut cached);
    #[cfg(not(feature = "cache"))]
    let cached = None;
    paired_rounds(&table, &raw, &mut bare, &mut layered, cached);
}

type Table = HashMap<[u8; 32], Arc<u64>>;

/// A std `HashMap` of as many digests as the store holds tokens, `raw`'s among them.
fn floor_table(raw: &str) -> Table {
    let mut table: Table = (0..STORED_TOKENS as u64)
        .map(|i| (Sha256::digest(i.to_le_bytes()).into(), Arc::new(i)))
        .collect();
    table.insert(Sha256::digest(raw.as_bytes()).into(), Arc::new(42));
    table
}

/// The floor: hash the token and look the digest up.
fn floor<'t>(table: &'t Table, raw: &str) -> Option<&'t Arc<u64>> {
    let digest: [u8; 32] = Sha256::digest(black_box(raw.as_bytes())).into();
    table.get(&digest)
}

/// What any layer with this job must do per request (see the module docs), written plainly.
fn unavoidable_work(table: &Table, mut request: Request<String>, prefix: &[u8]) -> Request<String> {
    let value = request.headers().get(http::header::AUTHORIZATION).unwrap();
    let token = &value.as_bytes()["Bearer ".len()..];
    let (checked, digits) = token.split_at(token.len() - 8);
    let well_formed = token.starts_with(prefix)
        && token[token.len() - 64..]
            .iter()
            .fold(true, |all, &b| all & b.is_ascii_hexdigit());
    let checksum = u32::from_str_radix(std::str::from_utf8(digits).unwrap(), 16).unwrap();
    assert!(well_formed && crc32fast::hash(checked) == checksum);
    let digest: [u8; 32] = Sha256::digest(token).into();
    let now = SystemTime::now();
    let principal = table.get(&digest).cloned().unwrap();
    black_box(now);
    request.extensions_mut().insert(principal);
    request
}

/// Times `n` runs of `f`.
fn timed(n: u32, mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed()
}

/// The per-round figures of `paired_rounds`, in nanoseconds per request.
struct Round {
    overhead: f64,
    /// Through the layer over the store behind its verdict cache (feature `cache`).
    overhead_cached: Option<f64>,
    floor: f64,
    unavoidable: f64,
}

fn percentile(sorted: &[f64], p: usize) -> f64 {
    sorted[(sorted.len() - 1) * p / 100]
}

fn summary(name: &str, mut values: Vec<f64>, unit: &str) {
    values.sort_by(f64::total_cmp);
    println!(
        "paired/{name:<24} median {:>7.2}{unit}  (p10 {:.2}, p90 {:.2})",
        percentile(&values, 50),
        percentile(&values, 10),
        percentile(&values, 90),
    );
}

fn paired_rounds<S, C>(
    table: &Table,
    raw: &str,
    bare: &mut S,
    layered: &mut AgentAuth<S>,
    mut cached: Option<&mut C>,
) where
    S: Service<Request<String>, Response = Response<String>, Error = Infallible> + Clone,
    C: Service<Request<String>, Response = Response<String>, Error = Infallible>,
{
    const ROUNDS: usize = 3_000;
    const CHUNK: u32 = 200;
    let bearer = format!("Bearer {raw}");
    let per_request = |d: Duration| d.as_nanos() as f64 / f64::from(CHUNK);

    let rounds: Vec<Round> = (0..ROUNDS)
        .map(|_| {
            let without = timed(CHUNK, || {
                black_box(call(bare, request(black_box(&bearer))));
            });
            let with = timed(CHUNK, || {
                black_box(call(layered, request(black_box(&bearer))));
            });
            let floor = timed(CHUNK, || {
                black_box(floor(table, raw));
            });
            let unavoidable = timed(CHUNK, || {
                let request = request(black_box(&bearer));
                black_box(unavoidable_work(table, request, b"acme_"));
            });
            let with_cache = cached.as_mut().map(|cached| {
                timed(CHUNK, || {
                    black_box(call(*cached, request(black_box(&bearer))));
                })
            });
            Round {
                overhead: per_request(with) - per_request(without),
                overhead_cached: with_cache.map(|d| per_request(d) - per_request(without)),
                floor: per_request(floor),
                unavoidable: per_request(unavoidable) - per_request(without),
            }
        })
        .collect();
    summary(
        "layer_overhead",
        rounds.iter().map(|r| r.overhead).collect(),
        " ns",
    );
    summary("floor", rounds.iter().map(|r| r.floor).collect(), " ns");
    summary(
        "unavoidable_work",
        rounds.iter().map(|r| r.unavoidable).collect(),
        " ns",
    );
    summary(
        "overhead/floor",
        rounds.iter().map(|r| r.overhead / r.floor).collect(),
        "×",
    );
    summary(
        "unavoidable/floor",
        rounds.iter().map(|r| r.unavoidable / r.floor).collect(),
        "×",
    );
    summary(
        "overhead/unavoidable",
        rounds.iter().map(|r| r.overhead / r.unavoidable).collect(),
        "×",
    );
    if rounds.iter().all(|r| r.overhead_cached.is_some()) {
        let cached = |r: &Round| r.overhead_cached.unwrap_or_default();
        summary(
            "cached_overhead",
            rounds.iter().map(cached).collect(),
            " ns",
        );
        summary(
            "cached/unavoidable",
            rounds.iter().map(|r| cached(r) / r.unavoidable).collect(),
            "×",
        );
    }
}

/// A direct token and one at depth 3 (planner → writer → editor → reviewer), on one store.
fn delegated_tokens() -> (MemoryStore, RawToken, RawToken) {
    use tower_agent_auth::delegation::Delegation;
    let users = MemoryUserDirectory::new();
    users.insert(UserRecord::new(
        "alice",
        Policy::allow(CapabilitySet::parse(["posts:*", "comments:*"]).unwrap()),
    ));
    let store = MemoryStore::new(TokenFormat::new("acme").unwrap(), users);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (direct, delegated) = runtime.block_on(async {
        let mut agents = Vec::new();
        for slug in ["planner", "writer", "editor", "reviewer"] {
            let agent = store
                .create_agent(NewAgent::new(slug, "alice"))
                .await
                .unwrap();
            agents.push(agent);
        }
        let capabilities = CapabilitySet::parse(["posts:read", "posts:publish"]).unwrap();
        let new = NewToken::new("root").with_capabilities(capabilities);
        let root = store.create_token(&agents[0].id, new).await.unwrap();
        let direct = root.token.clone();
        let mut token = root.token;
        for agent in &agents[1..] {
            let request = Delegation::to(agent.id.clone(), "link")
                .with_capabilities(CapabilitySet::parse(["posts:read"]).unwrap());
            token = store
                .delegate(token.expose_secret(), request)
                .await
                .unwrap()
                .token;
        }
        (direct, token)
    });
    (store, direct, delegated)
}

fn bench_delegation(c: &mut Criterion) {
    let (store, direct, delegated) = delegated_tokens();
    let inner = tower::service_fn(|_: Request<String>| async {
        Ok::<_, Infallible>(Response::new(String::new()))
    });
    let mut layered = ServiceBuilder::new()
        .layer(AgentAuthLayer::new(store))
        .service(inner);
    let mut group = c.benchmark_group("delegation");
    for (name, token) in [("direct_token", &direct), ("depth_3_token", &delegated)] {
        let bearer = format!("Bearer {}", token.expose_secret());
        assert_eq!(call(&mut layered, request(&bearer)).status(), 200);
        group.bench_function(name, |b| {
            b.iter(|| call(&mut layered, request(black_box(&bearer))))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_layer, bench_delegation);
criterion_main!(benches);
