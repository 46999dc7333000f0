//! SQL stores: cold resolution latency and last-used write rate (issue: token lifecycle).
//!
//! `cargo bench --bench store --features sqlite,postgres`
//! (PostgreSQL parts run when `AGENT_AUTH_TEST_POSTGRES_URL` is set, e.g.
//! `postgres://postgres@127.0.0.1:5432/test`; they use a fresh schema and drop it.)
//!
//! * cold resolve: the store has no cache, so every resolution is an indexed lookup of the token
//!   joined with its agent. 1 000 real tokens are minted through the API; the rest of the rows
//!   (up to 1 000 000) are bulk-inserted with random hashes. Each sample resolves the next of the
//!   1 000 real tokens; p50/p99 come from 5 000 individually timed resolutions, the criterion
//!   line from criterion's own sampling.
//! * last-used writes: one token resolved in a tight loop for 5 s with a 1 s coalescing interval;
//!   the write rate is bounded by the interval, not by the request rate.

use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::config;
use criterion::{Criterion, criterion_group, criterion_main};
use sha2::{Digest, Sha256};
use tower_agent_auth::store::{Backend, NewAgent, NewToken, PgStore, SqliteStore, Store};
use tower_agent_auth::token::RawToken;
use tower_agent_auth::{TokenLookup, TokenResolver};

const REAL_TOKENS: usize = 1_000;
const SAMPLES: usize = 5_000;

async fn resolve<S: TokenResolver>(store: &S, raw: &RawToken) {
    let parsed = store.token_format().parse(raw.expose_secret()).unwrap();
    let lookup = TokenLookup::new(parsed.hash(), parsed.slug(), false);
    store.resolve(&lookup).await.expect("valid token");
}

/// Mints the real tokens, returns them and the agent id.
async fn seed_real<B: Backend>(store: &Store<B>) -> (Vec<RawToken>, String) {
    let agent = store
        .create_agent(NewAgent::new("bench-agent", "alice"))
        .await
        .unwrap();
    let mut tokens = Vec::with_capacity(REAL_TOKENS);
    for i in 0..REAL_TOKENS {
        tokens.push(
            store
                .create_token(&agent.id, NewToken::new(format!("t{i}")))
                .await
                .unwrap()
                .token,
        );
    }
    (tokens, agent.id.to_string())
}

fn filler_hash(i: usize) -> Vec<u8> {
    Sha256::digest(format!("filler-{i}").as_bytes()).to_vec()
}

async fn fill_sqlite(store: &SqliteStore, agent: &str, rows: usize) {
    let mut tx = store.pool().begin().await.unwrap();
    for i in 0..rows {
        sqlx::query(
            "INSERT INTO agent_auth_tokens (id, agent_id, hash, display_prefix, label, created_at) \
             VALUES (?, ?, ?, 'bench_…', 'filler', 0)",
        )
        .bind(format!("filler-{i}"))
        .bind(agent)
        .bind(filler_hash(i))
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
}

async fn fill_postgres(store: &PgStore, agent: &str, rows: usize) {
    for start in (0..rows).step_by(10_000) {
        let end = (start + 10_000).min(rows);
        let ids: Vec<String> = (start..end).map(|i| format!("filler-{i}")).collect();
        let hashes: Vec<Vec<u8>> = (start..end).map(filler_hash).collect();
        sqlx::query(
            "INSERT INTO agent_auth_tokens (id, agent_id, hash, display_prefix, label, created_at) \
             SELECT id, $1, hash, 'bench_…', 'filler', 0 FROM UNNEST($2::text[], $3::bytea[]) AS f(id, hash)",
        )
        .bind(agent)
        .bind(&ids)
        .bind(&hashes)
        .execute(store.pool())
        .await
        .unwrap();
    }
}

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    (
        samples[samples.len() / 2],
        samples[samples.len() * 99 / 100],
    )
}

async fn timed_resolves<S: TokenResolver>(store: &S, tokens: &[RawToken]) -> (Duration, Duration) {
    for token in tokens.iter().take(200) {
        resolve(store, token).await; // warm the connection pool
    }
    let mut samples = Vec::with_capacity(SAMPLES);
    for i in 0..SAMPLES {
        let started = Instant::now();
        resolve(store, &tokens[i % tokens.len()]).await;
        samples.push(started.elapsed());
    }
    percentiles(samples)
}

fn report(label: &str, (p50, p99): (Duration, Duration)) {
    println!(
        "{label:<40} p50 {:>8.1} µs   p99 {:>8.1} µs",
        p50.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6
    );
}

fn bench_cold_resolve(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for stored in [1_000usize, 1_000_000] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bench.db").display().to_string();
        let (store, tokens) = runtime.block_on(async {
            let store = SqliteStore::open(&path, config()).await.unwrap();
            let (tokens, agent) = seed_real(&store).await;
            fill_sqlite(&store, &agent, stored - REAL_TOKENS).await;
            (store, tokens)
        });
        report(
            &format!("sqlite cold resolve, {stored} tokens"),
            runtime.block_on(timed_resolves(&store, &tokens)),
        );
        let mut next = 0;
        c.bench_function(&format!("store/sqlite/cold_resolve/{stored}"), |b| {
            b.to_async(&runtime).iter(|| {
                next = (next + 1) % tokens.len();
                resolve(&store, &tokens[next])
            })
        });
    }

    let Ok(url) = std::env::var("AGENT_AUTH_TEST_POSTGRES_URL") else {
        println!("PostgreSQL skipped: set AGENT_AUTH_TEST_POSTGRES_URL");
        return;
    };
    for stored in [1_000usize, 1_000_000] {
        let schema = format!("agent_auth_bench_{}", std::process::id());
        let (store, tokens, admin) = runtime.block_on(async {
            let (store, admin) = common::pg_store_in_schema(&url, &schema).await;
            let (tokens, agent) = seed_real(&store).await;
            fill_postgres(&store, &agent, stored - REAL_TOKENS).await;
            sqlx::query("ANALYZE agent_auth_tokens")
                .execute(store.pool())
                .await
                .unwrap();
            (store, tokens, admin)
        });
        report(
            &format!("postgres cold resolve, {stored} tokens"),
            runtime.block_on(timed_resolves(&store, &tokens)),
        );
        let mut next = 0;
        c.bench_function(&format!("store/postgres/cold_resolve/{stored}"), |b| {
            b.to_async(&runtime).iter(|| {
                next = (next + 1) % tokens.len();
                resolve(&store, &tokens[next])
            })
        });
        runtime.block_on(common::drop_schema(store, &admin, &schema));
    }
}

fn bench_last_used_writes(_: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db").display().to_string();
    runtime.block_on(async {
        let config = config().last_used_interval(Duration::from_secs(1));
        let store = Arc::new(SqliteStore::open(&path, config).await.unwrap());
        let agent = store.create_agent(NewAgent::new("steady", "alice")).await.unwrap();
        let token = store.create_token(&agent.id, NewToken::new("t")).await.unwrap().token;
        let writes_before = store.last_used_writes();
        let started = Instant::now();
        let mut requests = 0u64;
        while started.elapsed() < Duration::from_secs(5) {
            resolve(&*store, &token).await;
            requests += 1;
        }
        let seconds = started.elapsed().as_secs_f64();
        let writes = store.last_used_writes() - writes_before;
        println!(
            "last-used, one token, 1 s interval: {:.0} requests/s, {:.2} writes/s ({writes} writes in {seconds:.1} s)",
            requests as f64 / seconds,
            writes as f64 / seconds
        );
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(5));
    targets = bench_cold_resolve, bench_last_used_writes
}
criterion_main!(benches);
