//! A hit of the verdict cache next to the in-memory store, on the layer's synchronous path.
//!
//! `cargo bench --bench cache --features sqlite`
//!
//! * `cache_hit/caching_resolver_over_sqlite` — `CachingResolver::resolve_now` over a
//!   `SqliteStore`, the verdict already cached (the store is never asked);
//! * `cache_hit/memory_store` — `MemoryStore::resolve_now`, which reads the in-memory records
//!   synchronously;
//! * `cache_miss/caching_resolver_over_postgres` (with `AGENT_AUTH_TEST_POSTGRES_URL` set and
//!   `--features sqlite,postgres`) — the token's verdict dropped before each request, so each
//!   goes to PostgreSQL through the cache and is cached again: what a miss costs.
//!
//! Both resolve the same kind of token (a direct token of an agent owned by an active user) from
//! a parsed lookup, so the difference is the cache's hit path against the memory store's.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tower_agent_auth::cache::{CacheConfig, CachingResolver, VerdictCache};
use tower_agent_auth::ceiling::{CapabilitySet, Policy};
use tower_agent_auth::store::{
    Backend, MemoryStore, MemoryUserDirectory, NewAgent, NewToken, SqliteStore, Store, StoreConfig,
    UserRecord,
};
use tower_agent_auth::token::{RawToken, TokenFormat};
use tower_agent_auth::{TokenLookup, TokenResolver};

fn users() -> MemoryUserDirectory {
    let users = MemoryUserDirectory::new();
    let role = Policy::allow(CapabilitySet::parse(["posts:*"]).unwrap());
    users.insert(UserRecord::new("alice", role));
    users
}

async fn token_in<B: Backend>(store: &Store<B>) -> RawToken {
    let agent = store
        .create_agent(NewAgent::new("writer", "alice"))
        .await
        .unwrap();
    store
        .create_token(&agent.id, NewToken::new("bench"))
        .await
        .unwrap()
        .token
}

fn hit<R: TokenResolver>(resolver: &R, format: &TokenFormat, raw: &RawToken) {
    let parsed = format.parse(raw.expose_secret()).unwrap();
    let lookup = TokenLookup::new(parsed.hash(), parsed.slug(), parsed.is_legacy());
    let answer = resolver.resolve_now(&lookup).expect("answered at once");
    black_box(answer.expect("admitted"));
}

fn bench_cache_hit(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let format = TokenFormat::new("acme").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("bench.db").display().to_string();
    let (cached, sqlite_token, memory, memory_token) = runtime.block_on(async {
        let config = StoreConfig::new(format.clone(), users());
        let sqlite = SqliteStore::open(&url, config).await.unwrap();
        let sqlite_token = token_in(&sqlite).await;
        let cached = CachingResolver::new(sqlite, VerdictCache::new(CacheConfig::new()));
        // The first request fills the cache.
        let parsed = format.parse(sqlite_token.expose_secret()).unwrap();
        let lookup = TokenLookup::new(parsed.hash(), parsed.slug(), parsed.is_legacy());
        cached.resolve(&lookup).await.unwrap();
        let memory = MemoryStore::new(format.clone(), users());
        let memory_token = token_in(&memory).await;
        (cached, sqlite_token, memory, memory_token)
    });
    // The SQL store records last-used in the background: inside the runtime.
    let _entered = runtime.enter();
    let mut group = c.benchmark_group("cache_hit");
    group.bench_function("caching_resolver_over_sqlite", |b| {
        b.iter(|| hit(&cached, &format, &sqlite_token))
    });
    group.bench_function("memory_store", |b| {
        b.iter(|| hit(&memory, &format, &memory_token))
    });
    group.finish();
}

#[cfg(feature = "postgres")]
fn bench_cache_miss(c: &mut Criterion) {
    use tower_agent_auth::cache::Change;
    use tower_agent_auth::store::PgStore;
    let Ok(url) = std::env::var("AGENT_AUTH_TEST_POSTGRES_URL") else {
        eprintln!("cache_miss skipped: set AGENT_AUTH_TEST_POSTGRES_URL");
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let format = TokenFormat::new("acme").unwrap();
    let (cached, raw, id) = runtime.block_on(async {
        use sqlx::Connection;
        // One schema, emptied at each run: runs leave nothing behind but it.
        let schema = "agent_auth_bench_miss";
        let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .execute(&mut admin)
            .await
            .unwrap();
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&mut admin)
            .await
            .unwrap();
        let separator = if url.contains('?') { '&' } else { '?' };
        let url = format!("{url}{separator}options=-csearch_path%3D{schema}");
        let store = PgStore::connect(&url, StoreConfig::new(format.clone(), users()))
            .await
            .unwrap();
        let raw = token_in(&store).await;
        let id = store
            .list_tokens(&store.agent_by_slug("writer").await.unwrap().unwrap().id)
            .await
            .unwrap()[0]
            .id
            .clone();
        (
            CachingResolver::new(store, VerdictCache::new(CacheConfig::new())),
            raw,
            id,
        )
    });
    let change = Change::Token(id);
    let mut group = c.benchmark_group("cache_miss");
    group.bench_function("caching_resolver_over_postgres", |b| {
        b.to_async(&runtime).iter(|| async {
            cached.cache().apply(&change);
            let parsed = format.parse(raw.expose_secret()).unwrap();
            let lookup = TokenLookup::new(parsed.hash(), parsed.slug(), parsed.is_legacy());
            black_box(cached.resolve(&lookup).await.expect("admitted"));
        })
    });
    group.finish();
}

#[cfg(not(feature = "postgres"))]
fn bench_cache_miss(_: &mut Criterion) {}

criterion_group!(benches, bench_cache_hit, bench_cache_miss);
criterion_main!(benches);
