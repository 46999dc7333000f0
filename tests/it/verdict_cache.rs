//! The verdict cache over any resolver: what a hit answers, what it never answers, and what
//! each change drops. A counting inner resolver shows which requests reached it.
#![cfg(all(feature = "testing", feature = "cache"))]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use tower::{ServiceBuilder, ServiceExt};
use tower_agent_auth::cache::{CacheConfig, CachingResolver, Change, VerdictCache};
use tower_agent_auth::ceiling::{CapabilityCeiling, Policy};
use tower_agent_auth::clock::{Clock, ManualClock};
use tower_agent_auth::error::RefusedCredential;
use tower_agent_auth::principal::{AgentId, AgentRef, DelegationLink, TaskScope, TokenId, UserId};
use tower_agent_auth::store::{MemoryStore, NewAgent, NewToken};
use tower_agent_auth::token::{TokenFormat, TokenHash};
use tower_agent_auth::{
    AgentAuthLayer, ExecutionPrincipal, InvalidReason, Principal, ResolveError, TokenLookup,
    TokenResolver, testing,
};

/// A resolver that answers from a table by hash, only when awaited (so a `resolve_now` that
/// answers is the cache's), and counts what reached it.
#[derive(Default)]
struct Table {
    principals: Mutex<HashMap<TokenHash, Principal>>,
    refusals: Mutex<HashMap<TokenHash, RefusedCredential>>,
    resolved: AtomicUsize,
    touched: AtomicUsize,
}

impl Table {
    fn put(&self, hash: TokenHash, principal: Principal) {
        self.principals.lock().unwrap().insert(hash, principal);
    }

    /// `hash` is a stored token, refused for `reason`.
    fn refuse(&self, hash: TokenHash, reason: InvalidReason, agent: &str, token: &str) {
        let refused =
            RefusedCredential::new(reason, "alice".into(), agent.into(), TokenId::from(token));
        self.refusals.lock().unwrap().insert(hash, refused);
    }

    fn resolved(&self) -> usize {
        self.resolved.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl TokenResolver for Table {
    fn token_format(&self) -> &TokenFormat {
        static FORMAT: std::sync::OnceLock<TokenFormat> = std::sync::OnceLock::new();
        FORMAT.get_or_init(testing::format)
    }

    async fn resolve(&self, token: &TokenLookup<'_>) -> Result<Principal, ResolveError> {
        self.resolved.fetch_add(1, Ordering::SeqCst);
        if let Some(refused) = self.refusals.lock().unwrap().get(token.hash()) {
            return Err(ResolveError::Refused(Box::new(refused.clone())));
        }
        let found = self.principals.lock().unwrap().get(token.hash()).cloned();
        found.ok_or_else(|| InvalidReason::Unknown.into())
    }

    fn touch(&self, _: &Principal) {
        self.touched.fetch_add(1, Ordering::SeqCst);
    }
}

fn hash(name: &str) -> TokenHash {
    TokenHash::of(name)
}

fn lookup(name: &str, slug: &'static str) -> TokenLookup<'static> {
    TokenLookup::new(hash(name), slug, false)
}

fn ceiling() -> CapabilityCeiling {
    CapabilityCeiling::new(Arc::new(Policy::unrestricted()))
}

/// A direct token's principal: `token` of `agent` (slug = id), owned by `user`.
fn direct(user: &str, agent: &str, token: &str) -> ExecutionPrincipal {
    ExecutionPrincipal::agent(
        UserId::from(user),
        AgentRef::new(AgentId::from(agent), agent),
        TokenId::from(token),
        ceiling(),
    )
}

fn cache_over(table: &Arc<Table>, config: CacheConfig) -> CachingResolver<Arc<Table>> {
    CachingResolver::new(table.clone(), VerdictCache::new(config))
}

/// Resolves as the layer does: the synchronous path first.
async fn resolve<R: TokenResolver>(
    resolver: &R,
    token: &TokenLookup<'_>,
) -> Result<Principal, ResolveError> {
    match resolver.resolve_now(token) {
        Some(answer) => answer,
        None => resolver.resolve(token).await,
    }
}

/// Whether the cache answers `token` without waiting (a hit, with this table).
fn hit<R: TokenResolver>(resolver: &R, token: &TokenLookup<'_>) -> bool {
    resolver.resolve_now(token).is_some()
}

fn ok_service() -> impl tower::Service<
    Request<String>,
    Response = Response<String>,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone {
    tower::service_fn(|_: Request<String>| async {
        Ok::<_, std::convert::Infallible>(Response::new(String::new()))
    })
}

fn bearer(raw: &str) -> Request<String> {
    Request::builder()
        .uri("/posts")
        .header("authorization", format!("Bearer {raw}"))
        .body(String::new())
        .unwrap()
}

#[tokio::test]
async fn a_hit_is_answered_through_the_layers_synchronous_path() {
    let table = Arc::new(Table::default());
    let raw = testing::format().mint("writer").unwrap();
    let raw = raw.expose_secret().to_owned();
    table.put(
        TokenHash::of(&raw),
        direct("alice", "writer", "tok_1").into(),
    );
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let resolver = cache_over(&table, CacheConfig::new().clock(clock.clone()));
    let service = ServiceBuilder::new()
        .layer(AgentAuthLayer::new(resolver.clone()))
        .service(ok_service());
    for _ in 0..3 {
        let response = service.clone().oneshot(bearer(&raw)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(
        table.resolved(),
        1,
        "only the first request reached the resolver"
    );
    assert_eq!(
        table.touched.load(Ordering::SeqCst),
        0,
        "the miss recorded the use of this second"
    );
    clock.advance(Duration::from_secs(1));
    for _ in 0..3 {
        let response = service.clone().oneshot(bearer(&raw)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(
        table.touched.load(Ordering::SeqCst),
        1,
        "the first hit of the next second recorded its use, once"
    );
    let parsed = testing::format().parse(&raw).unwrap();
    let token = TokenLookup::new(parsed.hash(), parsed.slug(), false);
    assert!(hit(&resolver, &token), "answered without a future");
    assert_eq!(resolver.cache().status().hits, 6);
}

/// A hit is served from a copy the thread keeps; a change applied on another thread ends it
/// there too, at once.
#[tokio::test]
async fn a_change_applied_on_another_thread_ends_this_threads_copy() {
    let table = Arc::new(Table::default());
    table.put(hash("t1"), direct("alice", "writer", "tok_1").into());
    let resolver = cache_over(&table, CacheConfig::new());
    resolve(&resolver, &lookup("t1", "writer")).await.unwrap();
    let (copied, applied) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
    let reader = std::thread::spawn({
        let resolver = resolver.clone();
        move || {
            // The second hit is answered from this thread's copy.
            let before = (0..2).all(|_| hit(&resolver, &lookup("t1", "writer")));
            copied.0.send(()).unwrap();
            applied.1.recv().unwrap();
            (before, hit(&resolver, &lookup("t1", "writer")))
        }
    });
    copied.1.recv().unwrap();
    resolver
        .cache()
        .apply(&Change::Token(TokenId::from("tok_1")));
    applied.0.send(()).unwrap();
    let (before, after) = reader.join().unwrap();
    assert!(before, "hits before the change");
    assert!(!after, "no hit after it");
}

#[tokio::test]
async fn a_slug_other_than_the_principals_agent_misses() {
    let table = Arc::new(Table::default());
    table.put(hash("t1"), direct("alice", "writer", "tok_1").into());
    let resolver = cache_over(&table, CacheConfig::new());
    resolve(&resolver, &lookup("t1", "writer")).await.unwrap();
    assert!(!hit(&resolver, &lookup("t1", "reader")));
    assert!(hit(&resolver, &lookup("t1", "writer")));
}

#[tokio::test]
async fn an_unknown_token_is_remembered_as_unknown() {
    let table = Arc::new(Table::default());
    let resolver = cache_over(&table, CacheConfig::new());
    let token = lookup("nobody", "writer");
    let first = resolve(&resolver, &token).await;
    assert_eq!(
        first.err().and_then(|e| e.reason()),
        Some(InvalidReason::Unknown)
    );
    let again = resolver.resolve_now(&token).expect("a negative hit");
    assert_eq!(
        again.err().and_then(|e| e.reason()),
        Some(InvalidReason::Unknown)
    );
    assert_eq!(table.resolved(), 1);
}

#[tokio::test]
async fn a_token_refused_for_good_is_held_with_whose_it_is() {
    for reason in [
        InvalidReason::Revoked,
        InvalidReason::Expired,
        InvalidReason::Exhausted,
    ] {
        let table = Arc::new(Table::default());
        table.refuse(hash("dead"), reason, "writer", "tok_dead");
        let resolver = cache_over(&table, CacheConfig::new());
        let token = lookup("dead", "writer");
        let _ = resolve(&resolver, &token).await;
        let Some(Err(ResolveError::Refused(refused))) = resolver.resolve_now(&token) else {
            panic!("{reason:?}: a held refusal, with whose token it is (for the audit trail)");
        };
        assert_eq!(refused.reason, reason);
        assert_eq!(refused.token_id, TokenId::from("tok_dead"));
        assert_eq!(table.resolved(), 1, "{reason:?}");
    }
}

#[tokio::test]
async fn a_refusal_that_can_be_undone_is_not_held() {
    for reason in [
        InvalidReason::AgentDisabled,
        InvalidReason::AgentExpired,
        InvalidReason::OwnerInactive,
        InvalidReason::OwnerMissing,
        InvalidReason::DelegatorRefused,
        InvalidReason::AgentMismatch,
    ] {
        let table = Arc::new(Table::default());
        table.refuse(hash("off"), reason, "writer", "tok_off");
        let resolver = cache_over(&table, CacheConfig::new());
        let _ = resolve(&resolver, &lookup("off", "writer")).await;
        assert!(!hit(&resolver, &lookup("off", "writer")), "{reason:?}");
    }
}

#[tokio::test]
async fn a_held_refusal_is_dropped_by_the_changes_of_its_token_agent_and_owner() {
    let changes = [
        Change::Token(TokenId::from("tok_dead")),
        Change::Agent(AgentId::from("writer")),
        Change::User(UserId::from("alice")),
        Change::All,
    ];
    for change in changes {
        let table = Arc::new(Table::default());
        table.refuse(hash("dead"), InvalidReason::Revoked, "writer", "tok_dead");
        let resolver = cache_over(&table, CacheConfig::new());
        let _ = resolve(&resolver, &lookup("dead", "writer")).await;
        resolver
            .cache()
            .apply(&Change::Token(TokenId::from("tok_other")));
        assert!(hit(&resolver, &lookup("dead", "writer")), "another change");
        resolver.cache().apply(&change);
        assert!(!hit(&resolver, &lookup("dead", "writer")), "{change:?}");
    }
}

#[tokio::test]
async fn refusals_are_forgotten_after_their_ttl() {
    let table = Arc::new(Table::default());
    table.refuse(hash("dead"), InvalidReason::Revoked, "writer", "tok_dead");
    let config = CacheConfig::new().negative_ttl(Duration::from_millis(50));
    let resolver = cache_over(&table, config);
    let _ = resolve(&resolver, &lookup("dead", "writer")).await;
    assert!(hit(&resolver, &lookup("dead", "writer")));
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert!(!hit(&resolver, &lookup("dead", "writer")), "expired");
}

#[tokio::test]
async fn unknown_tokens_are_forgotten_after_their_ttl() {
    let table = Arc::new(Table::default());
    let config = CacheConfig::new().negative_ttl(Duration::from_millis(50));
    let resolver = cache_over(&table, config);
    let token = lookup("nobody", "writer");
    let _ = resolve(&resolver, &token).await;
    assert!(hit(&resolver, &token));
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert!(!hit(&resolver, &token), "expired");
}

#[tokio::test]
async fn unknown_tokens_are_bounded_in_number() {
    let table = Arc::new(Table::default());
    let config = CacheConfig::new().negative_max_entries(10);
    let resolver = cache_over(&table, config);
    for i in 0..200 {
        let _ = resolve(&resolver, &lookup(&format!("made-up-{i}"), "writer")).await;
    }
    resolver.cache().run_pending_tasks();
    assert!(resolver.cache().negative_entry_count() <= 10);
}

#[tokio::test]
async fn a_verdict_is_never_served_from_its_expiry_on() {
    let table = Arc::new(Table::default());
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let expiry = clock.now() + time::Duration::minutes(1);
    let principal = direct("alice", "writer", "tok_1").with_expires_at(expiry);
    table.put(hash("t1"), principal.into());
    let resolver = cache_over(&table, CacheConfig::new().clock(clock.clone()));
    let token = lookup("t1", "writer");
    resolve(&resolver, &token).await.unwrap();
    clock.set(expiry - time::Duration::nanoseconds(1));
    assert!(hit(&resolver, &token), "still standing just before");
    clock.set(expiry);
    assert!(!hit(&resolver, &token), "not at the instant");
}

#[tokio::test]
async fn an_expired_verdict_is_not_kept() {
    let table = Arc::new(Table::default());
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let principal = direct("alice", "writer", "tok_1").with_expires_at(clock.now());
    table.put(hash("t1"), principal.into());
    let resolver = cache_over(&table, CacheConfig::new().clock(clock.clone()));
    let token = lookup("t1", "writer");
    resolve(&resolver, &token).await.unwrap();
    assert_eq!(resolver.cache().entry_count(), 0);
    assert!(!hit(&resolver, &token));
}

#[tokio::test]
async fn a_use_limited_principal_always_reaches_the_resolver() {
    let table = Arc::new(Table::default());
    let principal = direct("alice", "writer", "tok_1").with_max_operations(5);
    table.put(hash("t1"), principal.into());
    let resolver = cache_over(&table, CacheConfig::new());
    let token = lookup("t1", "writer");
    for _ in 0..3 {
        resolve(&resolver, &token).await.unwrap();
    }
    assert_eq!(table.resolved(), 3);
}

/// 3N concurrent requests through the layer over `resolver` for a token limited to N: exactly
/// N are admitted.
async fn exactly_the_limit<R: TokenResolver + Clone>(resolver: R, raw: String, limit: usize) {
    let service = ServiceBuilder::new()
        .layer(AgentAuthLayer::new(resolver))
        .service(ok_service());
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..3 * limit {
        let service = service.clone();
        let raw = raw.clone();
        tasks.spawn(async move { service.oneshot(bearer(&raw)).await.unwrap().status() });
    }
    let mut admitted = 0;
    while let Some(status) = tasks.join_next().await {
        match status.unwrap() {
            StatusCode::OK => admitted += 1,
            StatusCode::UNAUTHORIZED => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(admitted, limit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_use_limit_admits_exactly_its_uses_through_the_cache_over_memory() {
    let users = testing::users();
    let store = MemoryStore::with_config(testing::config(&users, &testing::clock()));
    let agent = store
        .create_agent(NewAgent::new("swarm", "bob"))
        .await
        .unwrap();
    let t = store
        .create_token(&agent.id, NewToken::new("t").max_operations(20))
        .await
        .unwrap();
    let resolver = CachingResolver::new(store, VerdictCache::new(CacheConfig::new()));
    exactly_the_limit(resolver, t.token.expose_secret().to_owned(), 20).await;
}

/// A SQLite store in `dir`, with the testing directory's users.
#[cfg(feature = "sqlite")]
async fn sqlite_store(dir: &tempfile::TempDir) -> tower_agent_auth::store::SqliteStore {
    let path = dir.path().join("cache.db");
    let users = testing::users();
    let config = testing::config(&users, &testing::clock());
    tower_agent_auth::store::SqliteStore::open(&path.display().to_string(), config)
        .await
        .unwrap()
}

/// A resolver that counts what reaches it, over another.
#[cfg(all(feature = "sqlite", feature = "feed"))]
struct Counting<R> {
    inner: R,
    resolved: AtomicUsize,
}

#[cfg(all(feature = "sqlite", feature = "feed"))]
#[async_trait::async_trait]
impl<R: TokenResolver> TokenResolver for Counting<R> {
    fn token_format(&self) -> &TokenFormat {
        self.inner.token_format()
    }

    fn resolve_now(&self, _: &TokenLookup<'_>) -> Option<Result<Principal, ResolveError>> {
        None
    }

    async fn resolve(&self, token: &TokenLookup<'_>) -> Result<Principal, ResolveError> {
        self.resolved.fetch_add(1, Ordering::SeqCst);
        self.inner.resolve(token).await
    }
}

/// A client looping on a revoked token, and on a made-up one, through the layer over SQLite
/// with the cache following the store's change log as `serve` does: a handful of lookups for
/// ten thousand requests each, one per negative lifetime.
#[cfg(all(feature = "sqlite", feature = "feed"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_requests_with_a_dead_token_reach_the_store_a_handful_of_times() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_store(&dir).await;
    let agent = store
        .create_agent(NewAgent::new("looper", "bob"))
        .await
        .unwrap();
    let issued = store
        .create_token(&agent.id, NewToken::new("t"))
        .await
        .unwrap();
    store
        .revoke_token(&agent.id, &issued.info.id)
        .await
        .unwrap();
    let cache = VerdictCache::new(CacheConfig::new().follows_feed());
    let follow = tokio::spawn(cache.follow(store.clone()));
    while !cache.status().fresh {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let counting = Arc::new(Counting {
        inner: store.clone(),
        resolved: AtomicUsize::new(0),
    });
    let service = ServiceBuilder::new()
        .layer(AgentAuthLayer::new(CachingResolver::new(
            counting.clone(),
            cache.clone(),
        )))
        .service(ok_service());
    let made_up = testing::format().mint("looper").unwrap();
    for raw in [issued.token.expose_secret(), made_up.expose_secret()] {
        counting.resolved.store(0, Ordering::SeqCst);
        let started = std::time::Instant::now();
        for _ in 0..10_000 {
            let response = service.clone().oneshot(bearer(raw)).await.unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
        // One lookup per negative lifetime (the bound, 1 s), and one more at each edge.
        let lifetimes = started.elapsed().as_secs() as usize + 2;
        let lookups = counting.resolved.load(Ordering::SeqCst);
        assert!(
            lookups <= lifetimes,
            "{lookups} lookups in {:?}",
            started.elapsed()
        );
    }
    follow.abort();
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_use_limit_admits_exactly_its_uses_through_the_cache_over_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_store(&dir).await;
    let agent = store
        .create_agent(NewAgent::new("swarm", "bob"))
        .await
        .unwrap();
    let t = store
        .create_token(&agent.id, NewToken::new("t").max_operations(20))
        .await
        .unwrap();
    let resolver = CachingResolver::new(store, VerdictCache::new(CacheConfig::new()));
    exactly_the_limit(resolver, t.token.expose_secret().to_owned(), 20).await;
}

/// Verdicts that depend on different things, all cached:
/// - `plain`: tok_p of agent `writer` (child of `boss`), owner alice;
/// - `delegated`: tok_d of agent `helper`, delegated from tok_root of agent `lead` (child of
///   `chief`), owner alice;
/// - `task`: tok_t of agent `worker`, minted by orchestrator `conductor` for carol, owner bob;
/// - `other`: tok_o of agent `loner`, owner dave.
async fn four_verdicts() -> (Arc<Table>, CachingResolver<Arc<Table>>) {
    let table = Arc::new(Table::default());
    let plain = ExecutionPrincipal::agent(
        UserId::from("alice"),
        AgentRef::new(AgentId::from("writer"), "writer").with_parent(Some(AgentId::from("boss"))),
        TokenId::from("tok_p"),
        ceiling(),
    );
    let lead =
        AgentRef::new(AgentId::from("lead"), "lead").with_parent(Some(AgentId::from("chief")));
    let delegated = direct("alice", "helper", "tok_d")
        .with_delegation_chain(vec![DelegationLink::new(lead, "tok_root")]);
    let mut scope = TaskScope::default();
    scope.task_id = Some("build".into());
    scope.delegated_by = Some(UserId::from("carol"));
    scope.orchestrator = Some(AgentId::from("conductor"));
    let task = direct("bob", "worker", "tok_t")
        .with_task(scope)
        .with_orchestrator(AgentRef::new(AgentId::from("conductor"), "conductor"));
    let other = direct("dave", "loner", "tok_o");
    table.put(hash("plain"), plain.into());
    table.put(hash("delegated"), delegated.into());
    table.put(hash("task"), task.into());
    table.put(hash("other"), other.into());
    let resolver = cache_over(&table, CacheConfig::new());
    for (name, slug) in NAMES {
        resolve(&resolver, &lookup(name, slug)).await.unwrap();
    }
    (table, resolver)
}

const NAMES: [(&str, &str); 4] = [
    ("plain", "writer"),
    ("delegated", "helper"),
    ("task", "worker"),
    ("other", "loner"),
];

/// Which of the four verdicts still hit after `change`.
async fn left_after(change: Change) -> Vec<&'static str> {
    let (_, resolver) = four_verdicts().await;
    resolver.cache().apply(&change);
    NAMES
        .iter()
        .filter(|(name, slug)| hit(&resolver, &lookup(name, slug)))
        .map(|(name, _)| *name)
        .collect()
}

#[tokio::test]
async fn a_token_change_drops_the_verdicts_of_that_token() {
    let left = left_after(Change::Token(TokenId::from("tok_p"))).await;
    assert_eq!(left, ["delegated", "task", "other"]);
}

#[tokio::test]
async fn a_token_change_drops_the_verdicts_delegated_from_it() {
    let left = left_after(Change::Token(TokenId::from("tok_root"))).await;
    assert_eq!(left, ["plain", "task", "other"]);
}

#[tokio::test]
async fn an_agent_change_drops_the_verdicts_of_its_tokens() {
    let left = left_after(Change::Agent(AgentId::from("loner"))).await;
    assert_eq!(left, ["plain", "delegated", "task"]);
}

#[tokio::test]
async fn an_agent_change_drops_the_verdicts_of_its_children() {
    let left = left_after(Change::Agent(AgentId::from("boss"))).await;
    assert_eq!(left, ["delegated", "task", "other"]);
}

#[tokio::test]
async fn an_agent_change_drops_the_verdicts_delegated_from_its_tokens() {
    let left = left_after(Change::Agent(AgentId::from("lead"))).await;
    assert_eq!(left, ["plain", "task", "other"]);
}

#[tokio::test]
async fn an_agent_change_drops_the_verdicts_delegated_from_its_childrens_tokens() {
    let left = left_after(Change::Agent(AgentId::from("chief"))).await;
    assert_eq!(left, ["plain", "task", "other"]);
}

#[tokio::test]
async fn an_orchestrator_change_drops_the_verdicts_of_its_task_tokens() {
    let left = left_after(Change::Agent(AgentId::from("conductor"))).await;
    assert_eq!(left, ["plain", "delegated", "other"]);
}

#[tokio::test]
async fn a_user_change_drops_the_verdicts_of_their_agents() {
    let left = left_after(Change::User(UserId::from("alice"))).await;
    assert_eq!(left, ["task", "other"]);
}

#[tokio::test]
async fn a_user_change_drops_the_task_tokens_minted_for_them() {
    let left = left_after(Change::User(UserId::from("carol"))).await;
    assert_eq!(left, ["plain", "delegated", "other"]);
}

#[tokio::test]
async fn an_all_change_drops_every_verdict_and_every_unknown() {
    let (table, resolver) = four_verdicts().await;
    let _ = resolve(&resolver, &lookup("nobody", "writer")).await;
    resolver.cache().apply(&Change::All);
    assert!(
        NAMES
            .iter()
            .all(|(name, slug)| !hit(&resolver, &lookup(name, slug)))
    );
    assert!(!hit(&resolver, &lookup("nobody", "writer")));
    assert_eq!(table.resolved(), 5);
}

/// A resolver that reads its verdict, then waits to be let go before answering: a change
/// applied meanwhile came after the read.
struct Slow {
    table: Arc<Table>,
    read: tokio::sync::Notify,
    go: tokio::sync::Notify,
}

#[async_trait::async_trait]
impl TokenResolver for Slow {
    fn token_format(&self) -> &TokenFormat {
        self.table.token_format()
    }

    async fn resolve(&self, token: &TokenLookup<'_>) -> Result<Principal, ResolveError> {
        let answer = self.table.resolve(token).await;
        self.read.notify_one();
        self.go.notified().await;
        answer
    }
}

#[tokio::test]
async fn a_verdict_read_before_a_change_is_not_kept_after_it() {
    let table = Arc::new(Table::default());
    table.put(hash("t1"), direct("alice", "writer", "tok_1").into());
    let slow = Arc::new(Slow {
        table,
        read: tokio::sync::Notify::new(),
        go: tokio::sync::Notify::new(),
    });
    let resolver = CachingResolver::new(slow.clone(), VerdictCache::new(CacheConfig::new()));
    let pending = {
        let resolver = resolver.clone();
        tokio::spawn(async move { resolver.resolve(&lookup("t1", "writer")).await })
    };
    slow.read.notified().await;
    resolver
        .cache()
        .apply(&Change::Token(TokenId::from("tok_1")));
    slow.go.notify_one();
    pending.await.unwrap().unwrap();
    assert!(
        !hit(&resolver, &lookup("t1", "writer")),
        "read before the change: not kept"
    );
}

#[tokio::test]
async fn a_verdict_stands_only_at_the_revision_it_was_reached_at() {
    let table = Arc::new(Table::default());
    table.put(hash("t1"), direct("alice", "writer", "tok_1").into());
    let revision = Arc::new(std::sync::atomic::AtomicU64::new(1));
    let source = revision.clone();
    let config = CacheConfig::new().revision(move || Some(source.load(Ordering::SeqCst)));
    let resolver = cache_over(&table, config);
    resolve(&resolver, &lookup("t1", "writer")).await.unwrap();
    assert!(hit(&resolver, &lookup("t1", "writer")));
    revision.store(2, Ordering::SeqCst);
    assert!(!hit(&resolver, &lookup("t1", "writer")));
}

#[tokio::test]
async fn a_revision_that_cannot_tell_serves_nothing() {
    let table = Arc::new(Table::default());
    table.put(hash("t1"), direct("alice", "writer", "tok_1").into());
    let resolver = cache_over(&table, CacheConfig::new().revision(|| None));
    resolve(&resolver, &lookup("t1", "writer")).await.unwrap();
    assert!(!hit(&resolver, &lookup("t1", "writer")));
}

#[cfg(feature = "feed")]
mod feed {
    //! A cache following a fake feed: its polls answer what the test set, its subscription
    //! what the test sends.

    use super::*;
    use tower_agent_auth::cache::{ChangeFeed, Changes, Notice, Subscription};
    use tower_agent_auth::error::BoxError;

    const BOUND: Duration = Duration::from_millis(200);

    #[derive(Default)]
    struct Fake {
        /// The store's changes, epoch = index + 1.
        log: Mutex<Vec<Change>>,
        /// Changes older than this epoch are no longer held.
        oldest: std::sync::atomic::AtomicU64,
        failing: std::sync::atomic::AtomicBool,
        /// An epoch left out of every answer that still says it is complete (0: none).
        hidden: std::sync::atomic::AtomicU64,
        /// The channel's sending end, for the subscription of the moment.
        sender: Mutex<Option<tokio::sync::mpsc::UnboundedSender<Result<Notice, BoxError>>>>,
        pushes: bool,
    }

    impl Fake {
        /// Commits `change`; returns its notice.
        fn commit(&self, change: Change) -> Notice {
            let mut log = self.log.lock().unwrap();
            log.push(change.clone());
            Notice {
                epoch: log.len() as u64,
                change,
            }
        }

        fn push(&self, notice: Result<Notice, BoxError>) {
            if let Some(sender) = self.sender.lock().unwrap().as_ref() {
                let _ = sender.send(notice);
            }
        }
    }

    /// The fake as the follower holds it.
    struct Feed(Arc<Fake>);

    struct Channel(tokio::sync::mpsc::UnboundedReceiver<Result<Notice, BoxError>>);

    #[async_trait::async_trait]
    impl Subscription for Channel {
        async fn next(&mut self) -> Result<Notice, BoxError> {
            match self.0.recv().await {
                Some(notice) => notice,
                None => Err("closed".into()),
            }
        }
    }

    #[async_trait::async_trait]
    impl ChangeFeed for Feed {
        async fn changes_since(&self, epoch: u64, limit: usize) -> Result<Changes, BoxError> {
            let fake = &self.0;
            if fake.failing.load(Ordering::SeqCst) {
                return Err("down".into());
            }
            let log = fake.log.lock().unwrap();
            let oldest = fake.oldest.load(Ordering::SeqCst);
            let notices = log
                .iter()
                .enumerate()
                .map(|(i, change)| Notice {
                    epoch: i as u64 + 1,
                    change: change.clone(),
                })
                .filter(|notice| notice.epoch > epoch && notice.epoch >= oldest)
                .filter(|notice| notice.epoch != fake.hidden.load(Ordering::SeqCst))
                .take(limit)
                .collect();
            Ok(Changes {
                notices,
                epoch: log.len() as u64,
                complete: epoch + 1 >= oldest,
            })
        }

        async fn subscribe(&self) -> Result<Option<Box<dyn Subscription>>, BoxError> {
            if !self.0.pushes {
                return Ok(None);
            }
            let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
            *self.0.sender.lock().unwrap() = Some(sender);
            Ok(Some(Box::new(Channel(receiver))))
        }
    }

    fn following(
        table: &Arc<Table>,
        fake: &Arc<Fake>,
    ) -> (CachingResolver<Arc<Table>>, tokio::task::JoinHandle<()>) {
        following_within(BOUND, table, fake)
    }

    fn following_within(
        bound: Duration,
        table: &Arc<Table>,
        fake: &Arc<Fake>,
    ) -> (CachingResolver<Arc<Table>>, tokio::task::JoinHandle<()>) {
        let cache = VerdictCache::new(CacheConfig::new().bound(bound).follows_feed());
        let follow = tokio::spawn(cache.follow(Feed(fake.clone())));
        (CachingResolver::new(table.clone(), cache), follow)
    }

    async fn until(what: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !what() {
            assert!(tokio::time::Instant::now() < deadline, "never happened");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn table() -> Arc<Table> {
        let table = Arc::new(Table::default());
        table.put(hash("t1"), direct("alice", "writer", "tok_1").into());
        table.put(hash("t2"), direct("bob", "reader", "tok_2").into());
        table
    }

    #[tokio::test]
    async fn nothing_is_served_before_the_first_poll() {
        let table = table();
        let cache = VerdictCache::new(CacheConfig::new().bound(BOUND).follows_feed());
        let resolver = CachingResolver::new(table.clone(), cache);
        resolve(&resolver, &lookup("t1", "writer")).await.unwrap();
        assert!(!hit(&resolver, &lookup("t1", "writer")));
        assert!(!resolver.cache().status().fresh);
    }

    #[tokio::test]
    async fn a_successful_poll_makes_the_cache_fresh() {
        let (table, fake) = (table(), Arc::new(Fake::default()));
        let (resolver, follow) = following(&table, &fake);
        until(|| resolver.cache().status().fresh).await;
        resolve(&resolver, &lookup("t1", "writer")).await.unwrap();
        assert!(hit(&resolver, &lookup("t1", "writer")));
        follow.abort();
    }

    #[tokio::test]
    async fn a_polled_change_drops_its_verdicts_within_the_bound() {
        let (table, fake) = (table(), Arc::new(Fake::default()));
        let (resolver, follow) = following(&table, &fake);
        until(|| resolver.cache().status().fresh).await;
        resolve(&resolver, &lookup("t1", "writer")).await.unwrap();
        resolve(&resolver, &lookup("t2", "reader")).await.unwrap();
        fake.commit(Change::Token(TokenId::from("tok_1")));
        until(|| resolver.cache().status().applied_epoch == 1).await;
        assert!(!hit(&resolver, &lookup("t1", "writer")));
        assert!(
            hit(&resolver, &lookup("t2", "reader")),
            "another token's verdict stays"
        );
        follow.abort();
    }

    #[tokio::test]
    async fn without_a_successful_poll_for_the_bound_nothing_is_served() {
        let (table, fake) = (table(), Arc::new(Fake::default()));
        let (resolver, follow) = following(&table, &fake);
        until(|| resolver.cache().status().fresh).await;
        resolve(&resolver, &lookup("t1", "writer")).await.unwrap();
        fake.failing.store(true, Ordering::SeqCst);
        tokio::time::sleep(BOUND + BOUND / 2).await;
        assert!(!resolver.cache().status().fresh);
        assert!(!hit(&resolver, &lookup("t1", "writer")));
        fake.failing.store(false, Ordering::SeqCst);
        until(|| resolver.cache().status().fresh).await;
        follow.abort();
    }

    #[tokio::test]
    async fn an_incomplete_answer_drops_every_verdict() {
        let (table, fake) = (table(), Arc::new(Fake::default()));
        let (resolver, follow) = following(&table, &fake);
        until(|| resolver.cache().status().fresh).await;
        resolve(&resolver, &lookup("t2", "reader")).await.unwrap();
        // The store forgot epoch 1: what it was is not known.
        fake.oldest.store(2, Ordering::SeqCst);
        fake.commit(Change::Token(TokenId::from("tok_1")));
        fake.commit(Change::Token(TokenId::from("tok_1")));
        until(|| resolver.cache().status().applied_epoch == 2).await;
        assert!(!hit(&resolver, &lookup("t2", "reader")));
        follow.abort();
    }

    #[tokio::test]
    async fn a_gap_in_a_polls_epochs_drops_every_verdict() {
        let (table, fake) = (table(), Arc::new(Fake::default()));
        let (resolver, follow) = following(&table, &fake);
        until(|| resolver.cache().status().fresh).await;
        resolve(&resolver, &lookup("t2", "reader")).await.unwrap();
        // Epoch 1 left out: a gap, though the answer says complete.
        fake.hidden.store(1, Ordering::SeqCst);
        fake.commit(Change::Token(TokenId::from("tok_1")));
        fake.commit(Change::Token(TokenId::from("tok_1")));
        until(|| resolver.cache().status().applied_epoch == 2).await;
        assert!(!hit(&resolver, &lookup("t2", "reader")));
        follow.abort();
    }

    /// A store restored from a backup and changed again reaches the same epoch with other
    /// changes: the poll sees that the change of the epoch it applied is not the one it
    /// applied, and drops every verdict (what changed in between is not known).
    #[tokio::test]
    async fn a_history_rewritten_to_the_same_epoch_drops_every_verdict() {
        let (table, fake) = (table(), Arc::new(Fake::default()));
        let (resolver, follow) = following(&table, &fake);
        fake.commit(Change::Token(TokenId::from("tok_9")));
        until(|| resolver.cache().status().applied_epoch == 1).await;
        // One poll more: it reads epoch 1 again and keeps it as the change applied.
        tokio::time::sleep(Duration::from_millis(600)).await;
        resolve(&resolver, &lookup("t2", "reader")).await.unwrap();
        assert!(hit(&resolver, &lookup("t2", "reader")));
        // Epoch 1 is now another change, by another history: the epoch did not move.
        fake.log.lock().unwrap()[0] = Change::Agent(AgentId::from("agt_other"));
        until(|| !hit(&resolver, &lookup("t2", "reader"))).await;
        follow.abort();
    }

    /// Revoked, then given back by a restore from a backup taken before the revocation: the
    /// refusal held is dropped with everything else, so the token is admitted again within the
    /// bound.
    #[tokio::test]
    async fn a_restore_ends_a_held_refusal_within_the_bound() {
        let (table, fake) = (table(), Arc::new(Fake::default()));
        let (resolver, follow) = following(&table, &fake);
        until(|| resolver.cache().status().fresh).await;
        let verdict = table
            .principals
            .lock()
            .unwrap()
            .remove(&hash("t1"))
            .unwrap();
        table.refuse(hash("t1"), InvalidReason::Revoked, "writer", "tok_1");
        fake.commit(Change::Token(TokenId::from("tok_1")));
        until(|| resolver.cache().status().applied_epoch == 1).await;
        let _ = resolve(&resolver, &lookup("t1", "writer")).await;
        assert!(
            hit(&resolver, &lookup("t1", "writer")),
            "the refusal is held"
        );
        // The backup: before the revocation (epoch 0); the store's history goes back.
        table.refusals.lock().unwrap().clear();
        table.put(hash("t1"), verdict);
        fake.log.lock().unwrap().clear();
        let started = std::time::Instant::now();
        until(|| !hit(&resolver, &lookup("t1", "writer"))).await;
        assert!(started.elapsed() < BOUND, "within the bound");
        resolve(&resolver, &lookup("t1", "writer")).await.unwrap();
        follow.abort();
    }

    #[tokio::test]
    async fn a_pushed_notice_is_applied_at_once() {
        let table = table();
        let fake = Arc::new(Fake {
            pushes: true,
            ..Fake::default()
        });
        let (resolver, follow) = following(&table, &fake);
        until(|| resolver.cache().status().fresh).await;
        resolve(&resolver, &lookup("t1", "writer")).await.unwrap();
        let notice = fake.commit(Change::Token(TokenId::from("tok_1")));
        fake.push(Ok(notice));
        until(|| resolver.cache().status().applied_epoch == 1).await;
        assert!(!hit(&resolver, &lookup("t1", "writer")));
        follow.abort();
    }

    #[tokio::test]
    async fn a_pushed_gap_brings_a_poll_at_once() {
        let table = table();
        let fake = Arc::new(Fake {
            pushes: true,
            ..Fake::default()
        });
        // Polls every 2.5 s: an answer within the test's wait came from the gap.
        let (resolver, follow) = following_within(Duration::from_secs(10), &table, &fake);
        until(|| resolver.cache().status().fresh).await;
        resolve(&resolver, &lookup("t1", "writer")).await.unwrap();
        fake.commit(Change::Token(TokenId::from("tok_1")));
        let second = fake.commit(Change::Token(TokenId::from("tok_2")));
        let started = std::time::Instant::now();
        fake.push(Ok(second));
        until(|| resolver.cache().status().applied_epoch == 2).await;
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "polled at once, not at the next interval"
        );
        assert!(!hit(&resolver, &lookup("t1", "writer")));
        follow.abort();
    }

    #[tokio::test]
    async fn a_broken_subscription_serves_nothing_until_resubscribed_and_caught_up() {
        let table = table();
        let fake = Arc::new(Fake {
            pushes: true,
            ..Fake::default()
        });
        let (resolver, follow) = following(&table, &fake);
        until(|| resolver.cache().status().fresh).await;
        assert!(resolver.cache().status().channel_up);
        resolve(&resolver, &lookup("t1", "writer")).await.unwrap();
        fake.failing.store(true, Ordering::SeqCst);
        fake.push(Err("connection reset".into()));
        until(|| !resolver.cache().status().channel_up).await;
        assert!(!resolver.cache().status().fresh);
        assert!(!hit(&resolver, &lookup("t1", "writer")));
        // Subscribed again (after the back-off), but no poll has succeeded since.
        until(|| resolver.cache().status().channel_up).await;
        tokio::time::sleep(BOUND / 2).await;
        assert!(!resolver.cache().status().fresh, "not caught up yet");
        fake.failing.store(false, Ordering::SeqCst);
        until(|| resolver.cache().status().fresh).await;
        resolve(&resolver, &lookup("t1", "writer")).await.unwrap();
        assert!(hit(&resolver, &lookup("t1", "writer")));
        follow.abort();
    }

    /// A second level that holds what it was given, by hash and epoch.
    #[derive(Default)]
    struct Shared {
        held: Mutex<HashMap<(TokenHash, u64), Principal>>,
    }

    #[derive(Clone, Default)]
    struct SecondLevel(Arc<Shared>);

    #[async_trait::async_trait]
    impl tower_agent_auth::cache::SecondLevel for SecondLevel {
        async fn get(&self, hash: &TokenHash, epoch: u64) -> Result<Option<Principal>, BoxError> {
            Ok(self.0.held.lock().unwrap().get(&(*hash, epoch)).cloned())
        }

        async fn put(
            &self,
            hash: &TokenHash,
            epoch: u64,
            principal: &Principal,
            _: Duration,
        ) -> Result<(), BoxError> {
            let mut held = self.0.held.lock().unwrap();
            held.insert((*hash, epoch), principal.clone());
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_second_level_answers_a_miss_of_another_node_at_the_same_epoch() {
        let (table, fake) = (table(), Arc::new(Fake::default()));
        let second = SecondLevel::default();
        let node = |second: &SecondLevel| {
            let config = CacheConfig::new()
                .bound(BOUND)
                .follows_feed()
                .second_level(second.clone());
            let cache = VerdictCache::new(config);
            let follow = tokio::spawn(cache.follow(Feed(fake.clone())));
            (CachingResolver::new(table.clone(), cache), follow)
        };
        let (first, first_follow) = node(&second);
        let (other, other_follow) = node(&second);
        until(|| first.cache().status().fresh && other.cache().status().fresh).await;
        resolve(&first, &lookup("t1", "writer")).await.unwrap();
        assert_eq!(table.resolved(), 1);
        resolve(&other, &lookup("t1", "writer")).await.unwrap();
        assert_eq!(
            table.resolved(),
            1,
            "the other node found it in the second level"
        );
        assert!(
            hit(&other, &lookup("t1", "writer")),
            "and keeps it in its own"
        );
        first_follow.abort();
        other_follow.abort();
    }

    /// Without a feed the epoch never moves, so an entry would outlive every revocation: a
    /// second level is neither written nor read.
    #[tokio::test]
    async fn a_second_level_without_a_feed_is_never_used() {
        let table = table();
        let second = SecondLevel::default();
        let node = || {
            let config = CacheConfig::new().bound(BOUND).second_level(second.clone());
            CachingResolver::new(table.clone(), VerdictCache::new(config))
        };
        let (first, other) = (node(), node());
        resolve(&first, &lookup("t1", "writer")).await.unwrap();
        assert!(second.0.held.lock().unwrap().is_empty(), "nothing written");
        resolve(&other, &lookup("t1", "writer")).await.unwrap();
        assert_eq!(table.resolved(), 2, "each node asked the store");
    }
}
