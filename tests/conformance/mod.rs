//! One behaviour, every backend: each `case_*` function runs against memory, SQLite and
//! PostgreSQL through `conformance_suite!`.
#![allow(dead_code)]

use std::sync::Arc;

use http::{Request, Response, StatusCode};
use tower::{ServiceBuilder, ServiceExt};
use tower_agent_auth::audit::{AuditQuery, AuditSink};
use tower_agent_auth::clock::{Clock, ManualClock};
use tower_agent_auth::store::{
    AccessRole, AgentStatus, AgentStore, AgentType, GrantStore, ImportedToken, Managed,
    MemoryUserDirectory, NewAgent, NewToken, StoreConfig, StoreError, TokenStore, UserRecord,
};

#[cfg(feature = "audit")]
pub mod audit;
use tower_agent_auth::token::{TokenFormat, TokenHash};
use tower_agent_auth::{
    AgentAuthLayer, CapabilitySet, InvalidReason, Policy, ResolveError, TokenLookup, TokenResolver,
    UserId,
};

pub fn caps(patterns: &[&str]) -> CapabilitySet {
    CapabilitySet::parse(patterns).unwrap()
}

/// What every case gets: the store under test, its users and its clock.
pub struct Env<S> {
    pub store: S,
    pub users: MemoryUserDirectory,
    pub clock: Arc<ManualClock>,
}

pub fn users() -> MemoryUserDirectory {
    let users = MemoryUserDirectory::new();
    users.insert(UserRecord::new(
        "alice",
        Policy::allow(caps(&["posts:*", "comments:read"])),
    ));
    users.insert(UserRecord::new("bob", Policy::unrestricted()));
    users
}

pub fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(
        time::OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap(),
    ))
}

pub fn config(users: &MemoryUserDirectory, clock: &Arc<ManualClock>) -> StoreConfig {
    StoreConfig::new(
        TokenFormat::new("acme").unwrap().accept_legacy(true),
        users.clone(),
    )
    .clock(clock.clone())
}

/// Whether tests needing a service must run (CI) or may skip.
pub fn services_required() -> bool {
    std::env::var_os("AGENT_AUTH_REQUIRE_SERVICES").is_some_and(|v| v != "0" && !v.is_empty())
}

/// Says once per test binary that service-backed tests were skipped. Written to the stderr
/// handle itself: libtest hides `eprintln!` output of passing tests.
pub fn skip_notice(service: &str, variable: &str) {
    use std::io::Write;
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| {
        let _ = writeln!(
            std::io::stderr(),
            "notice: {service} tests skipped; set {variable} to run them \
             (AGENT_AUTH_REQUIRE_SERVICES=1 makes this a failure)"
        );
    });
}

/// Resolves a raw token the way the layer does.
pub async fn resolve<S: TokenResolver>(
    store: &S,
    raw: &str,
) -> Result<tower_agent_auth::Principal, ResolveError> {
    let parsed = store
        .token_format()
        .parse(raw)
        .expect("a well-formed token");
    let lookup = TokenLookup::new(parsed.hash(), parsed.slug(), parsed.is_legacy());
    match store.resolve_now(&lookup) {
        Some(verdict) => verdict,
        None => store.resolve(&lookup).await,
    }
}

fn refused(result: Result<tower_agent_auth::Principal, ResolveError>) -> InvalidReason {
    match result {
        Err(ResolveError::Invalid(reason)) => reason,
        Err(ResolveError::Refused(refused)) => refused.reason,
        Err(other) => panic!("expected a refusal, got {other:?}"),
        Ok(p) => panic!("expected a refusal, got a principal for {}", p.user_id()),
    }
}

pub trait Store:
    AgentStore + TokenStore + GrantStore + TokenResolver + AuditSink + AuditQuery + Clone + 'static
{
}
impl<T> Store for T where
    T: AgentStore
        + TokenStore
        + GrantStore
        + TokenResolver
        + AuditSink
        + AuditQuery
        + Clone
        + 'static
{
}

pub async fn case_token_binds_agent_and_owner<S: Store>(env: Env<S>) {
    let agent = env
        .store
        .create_agent(NewAgent::new("writer", "alice"))
        .await
        .unwrap();
    let issued = env
        .store
        .create_token(&agent.id, NewToken::new("t"))
        .await
        .unwrap();
    let principal = resolve(&env.store, issued.token.expose_secret())
        .await
        .unwrap();
    assert_eq!(principal.user_id(), &UserId::from("alice"));
    assert_eq!(principal.agent_id(), Some(&agent.id));
    assert_eq!(principal.token_id(), Some(&issued.info.id));
    assert!(principal.can("posts:publish"));
    assert!(!principal.can("users:delete"));
}

pub async fn case_unknown_token_is_refused<S: Store>(env: Env<S>) {
    env.store
        .create_agent(NewAgent::new("writer", "alice"))
        .await
        .unwrap();
    let stranger = TokenFormat::new("acme").unwrap().mint("writer").unwrap();
    assert_eq!(
        refused(resolve(&env.store, stranger.expose_secret()).await),
        InvalidReason::Unknown
    );
}

pub async fn case_agents_round_trip<S: Store>(env: Env<S>) {
    let policy = Policy::allow(caps(&["posts:*"])).with_deny(caps(&["posts:delete"]));
    let created = env
        .store
        .create_agent(
            NewAgent::new("writer", "alice")
                .with_policy(policy)
                .with_type(AgentType::Supervised),
        )
        .await
        .unwrap();
    assert_eq!(
        env.store.agent(&created.id).await.unwrap(),
        Some(created.clone())
    );
    assert_eq!(
        env.store.agent_by_slug("writer").await.unwrap(),
        Some(created.clone())
    );
    env.store
        .create_agent(NewAgent::new("archivist", "bob"))
        .await
        .unwrap();
    let slugs: Vec<String> = env
        .store
        .list_agents()
        .await
        .unwrap()
        .iter()
        .map(|a| a.slug.to_string())
        .collect();
    assert_eq!(slugs, ["archivist", "writer"]);
    assert_eq!(env.store.agent_by_slug("nobody").await.unwrap(), None);
}

pub async fn case_duplicate_slug_changes_nothing<S: Store>(env: Env<S>) {
    let first = env
        .store
        .create_agent(NewAgent::new("writer", "alice"))
        .await
        .unwrap();
    let again = env.store.create_agent(NewAgent::new("writer", "bob")).await;
    assert!(
        matches!(again, Err(StoreError::DuplicateSlug(ref s)) if s == "writer"),
        "{again:?}"
    );
    let agents = env.store.list_agents().await.unwrap();
    assert_eq!(agents, vec![first]);
}

pub async fn case_invalid_slug_and_unknown_owner_are_refused<S: Store>(env: Env<S>) {
    let bad = env
        .store
        .create_agent(NewAgent::new("Not_A_Slug", "alice"))
        .await;
    assert!(matches!(bad, Err(StoreError::InvalidSlug(_))), "{bad:?}");
    let nobody = env
        .store
        .create_agent(NewAgent::new("orphan", "mallory"))
        .await;
    assert!(
        matches!(nobody, Err(StoreError::UnknownUser(_))),
        "{nobody:?}"
    );
    assert!(env.store.list_agents().await.unwrap().is_empty());
}

pub async fn case_token_for_unknown_agent_is_refused<S: Store>(env: Env<S>) {
    let result = env
        .store
        .create_token(&"agt_missing".into(), NewToken::new("t"))
        .await;
    assert!(
        matches!(result, Err(StoreError::UnknownAgent(_))),
        "{result:?}"
    );
}

pub async fn case_capabilities_outside_policy_change_nothing<S: Store>(env: Env<S>) {
    let policy = Policy::allow(caps(&["posts:read"]));
    let agent = env
        .store
        .create_agent(NewAgent::new("reader", "alice").with_policy(policy))
        .await
        .unwrap();
    let wide = NewToken::new("t").with_capabilities(caps(&["posts:*"]));
    let result = env.store.create_token(&agent.id, wide).await;
    assert!(
        matches!(result, Err(StoreError::CapabilitiesOutsidePolicy(_))),
        "{result:?}"
    );
    assert!(env.store.list_tokens(&agent.id).await.unwrap().is_empty());
}

pub async fn case_lifetime_policy_is_enforced<S: Store>(env: Env<S>) {
    let agent = env
        .store
        .create_agent(NewAgent::new("runner", "alice").with_type(AgentType::Ephemeral))
        .await
        .unwrap();
    let too_long = NewToken::new("t").expires_in(time::Duration::hours(2));
    let result = env.store.create_token(&agent.id, too_long).await;
    assert!(
        matches!(result, Err(StoreError::InvalidLifetime(_))),
        "{result:?}"
    );
    let zero = NewToken::new("t").expires_in(time::Duration::ZERO);
    assert!(matches!(
        env.store.create_token(&agent.id, zero).await,
        Err(StoreError::InvalidLifetime(_))
    ));
    assert!(env.store.list_tokens(&agent.id).await.unwrap().is_empty());
    // Without a lifetime, the agent type's default (15 minutes) applies.
    let issued = env
        .store
        .create_token(&agent.id, NewToken::new("default"))
        .await
        .unwrap();
    assert_eq!(
        issued.info.expires_at.unwrap() - issued.info.created_at,
        time::Duration::minutes(15)
    );
}

pub async fn case_list_and_get_show_metadata_only<S: Store>(env: Env<S>) {
    let agent = env
        .store
        .create_agent(NewAgent::new("writer", "alice"))
        .await
        .unwrap();
    let first = env
        .store
        .create_token(
            &agent.id,
            NewToken::new("laptop")
                .with_capabilities(caps(&["posts:read"]))
                .created_by("alice")
                .task_id("task-7")
                .intent("draft the weekly post")
                .expires_in(time::Duration::days(30)),
        )
        .await
        .unwrap();
    env.clock.advance(time::Duration::seconds(1));
    let second = env
        .store
        .create_token(&agent.id, NewToken::new("ci"))
        .await
        .unwrap();
    let listed = env.store.list_tokens(&agent.id).await.unwrap();
    assert_eq!(listed, vec![first.info.clone(), second.info.clone()]);
    assert_eq!(
        env.store.token(&agent.id, &first.info.id).await.unwrap(),
        Some(first.info.clone())
    );
    let shown = format!("{listed:?}");
    assert!(
        !shown.contains(&first.token.expose_secret()[20..]),
        "no secret in metadata"
    );
    assert!(first.info.display_prefix.starts_with("acme_writer_"));
}

pub async fn case_revoked_token_is_refused<S: Store>(env: Env<S>) {
    let agent = env
        .store
        .create_agent(NewAgent::new("writer", "alice"))
        .await
        .unwrap();
    let keep = env
        .store
        .create_token(&agent.id, NewToken::new("keep"))
        .await
        .unwrap();
    let drop = env
        .store
        .create_token(&agent.id, NewToken::new("drop"))
        .await
        .unwrap();
    let revoked = env
        .store
        .revoke_token(&agent.id, &drop.info.id)
        .await
        .unwrap();
    assert!(revoked.revoked_at.is_some());
    assert_eq!(
        refused(resolve(&env.store, drop.token.expose_secret()).await),
        InvalidReason::Revoked
    );
    assert!(
        resolve(&env.store, keep.token.expose_secret())
            .await
            .is_ok()
    );
    // Revoking again keeps the first revocation time.
    env.clock.advance(time::Duration::minutes(1));
    let again = env
        .store
        .revoke_token(&agent.id, &drop.info.id)
        .await
        .unwrap();
    assert_eq!(again.revoked_at, revoked.revoked_at);
}

pub async fn case_foreign_or_unknown_token_cannot_be_revoked<S: Store>(env: Env<S>) {
    let writer = env
        .store
        .create_agent(NewAgent::new("writer", "alice"))
        .await
        .unwrap();
    let other = env
        .store
        .create_agent(NewAgent::new("other", "bob"))
        .await
        .unwrap();
    let token = env
        .store
        .create_token(&writer.id, NewToken::new("t"))
        .await
        .unwrap();
    let through_other = env.store.revoke_token(&other.id, &token.info.id).await;
    assert!(
        matches!(through_other, Err(StoreError::UnknownToken { .. })),
        "{through_other:?}"
    );
    let unknown = env
        .store
        .revoke_token(&writer.id, &"tok_missing".into())
        .await;
    assert!(
        matches!(unknown, Err(StoreError::UnknownToken { .. })),
        "{unknown:?}"
    );
    assert!(
        resolve(&env.store, token.token.expose_secret())
            .await
            .is_ok(),
        "still valid"
    );
    assert_eq!(
        env.store.token(&other.id, &token.info.id).await.unwrap(),
        None
    );
}

pub async fn case_revoke_all_and_delete<S: Store>(env: Env<S>) {
    let agent = env
        .store
        .create_agent(NewAgent::new("writer", "alice"))
        .await
        .unwrap();
    let a = env
        .store
        .create_token(&agent.id, NewToken::new("a"))
        .await
        .unwrap();
    let b = env
        .store
        .create_token(&agent.id, NewToken::new("b"))
        .await
        .unwrap();
    assert_eq!(env.store.revoke_all_tokens(&agent.id).await.unwrap(), 2);
    assert_eq!(env.store.revoke_all_tokens(&agent.id).await.unwrap(), 0);
    for t in [&a, &b] {
        assert_eq!(
            refused(resolve(&env.store, t.token.expose_secret()).await),
            InvalidReason::Revoked
        );
    }
    let c = env
        .store
        .create_token(&agent.id, NewToken::new("c"))
        .await
        .unwrap();
    env.store.delete_agent(&agent.id).await.unwrap();
    assert_eq!(
        refused(resolve(&env.store, c.token.expose_secret()).await),
        InvalidReason::Unknown
    );
    assert!(matches!(
        env.store.list_tokens(&agent.id).await,
        Err(StoreError::UnknownAgent(_))
    ));
    assert!(matches!(
        env.store.delete_agent(&agent.id).await,
        Err(StoreError::UnknownAgent(_))
    ));
}

pub async fn case_expiry_follows_the_clock<S: Store>(env: Env<S>) {
    let agent = env
        .store
        .create_agent(NewAgent::new("writer", "alice"))
        .await
        .unwrap();
    let t = env
        .store
        .create_token(
            &agent.id,
            NewToken::new("t").expires_in(time::Duration::minutes(10)),
        )
        .await
        .unwrap();
    env.clock
        .advance(time::Duration::minutes(10) - time::Duration::SECOND);
    assert!(resolve(&env.store, t.token.expose_secret()).await.is_ok());
    env.clock.advance(time::Duration::SECOND);
    assert_eq!(
        refused(resolve(&env.store, t.token.expose_secret()).await),
        InvalidReason::Expired
    );
}

pub async fn case_disabled_agent_is_refused_until_enabled<S: Store>(env: Env<S>) {
    let agent = env
        .store
        .create_agent(NewAgent::new("writer", "alice"))
        .await
        .unwrap();
    let t = env
        .store
        .create_token(&agent.id, NewToken::new("t"))
        .await
        .unwrap();
    let disabled = env
        .store
        .set_agent_status(&agent.id, AgentStatus::Disabled)
        .await
        .unwrap();
    assert_eq!(disabled.status, AgentStatus::Disabled);
    assert_eq!(
        refused(resolve(&env.store, t.token.expose_secret()).await),
        InvalidReason::AgentDisabled
    );
    env.store
        .set_agent_status(&agent.id, AgentStatus::Active)
        .await
        .unwrap();
    assert!(resolve(&env.store, t.token.expose_secret()).await.is_ok());
}

pub async fn case_owner_changes_apply_at_once<S: Store>(env: Env<S>) {
    let agent = env
        .store
        .create_agent(NewAgent::new("writer", "alice"))
        .await
        .unwrap();
    let t = env
        .store
        .create_token(&agent.id, NewToken::new("t"))
        .await
        .unwrap();
    assert!(
        resolve(&env.store, t.token.expose_secret())
            .await
            .unwrap()
            .can("posts:publish")
    );
    env.users
        .set_role(&"alice".into(), Policy::allow(caps(&["comments:read"])));
    assert!(
        !resolve(&env.store, t.token.expose_secret())
            .await
            .unwrap()
            .can("posts:publish")
    );
    env.users.set_active(&"alice".into(), false);
    assert_eq!(
        refused(resolve(&env.store, t.token.expose_secret()).await),
        InvalidReason::OwnerInactive
    );
    env.users.remove(&"alice".into());
    assert_eq!(
        refused(resolve(&env.store, t.token.expose_secret()).await),
        InvalidReason::OwnerMissing
    );
}

pub async fn case_use_limit_is_exact<S: Store>(env: Env<S>) {
    let agent = env
        .store
        .create_agent(NewAgent::new("worker", "alice"))
        .await
        .unwrap();
    let t = env
        .store
        .create_token(&agent.id, NewToken::new("t").max_operations(3))
        .await
        .unwrap();
    for _ in 0..3 {
        resolve(&env.store, t.token.expose_secret()).await.unwrap();
    }
    assert_eq!(
        refused(resolve(&env.store, t.token.expose_secret()).await),
        InvalidReason::Exhausted
    );
    let info = env
        .store
        .token(&agent.id, &t.info.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (info.max_operations, info.operations_remaining),
        (Some(3), Some(0))
    );
    assert_eq!(
        info.expires_at, None,
        "no expiry without expires_on_completion"
    );
}

pub async fn case_refused_requests_use_no_operation<S: Store>(env: Env<S>) {
    let agent = env
        .store
        .create_agent(NewAgent::new("worker", "alice"))
        .await
        .unwrap();
    let t = env
        .store
        .create_token(&agent.id, NewToken::new("t").max_operations(2))
        .await
        .unwrap();
    env.users.set_active(&"alice".into(), false);
    refused(resolve(&env.store, t.token.expose_secret()).await);
    env.users.set_active(&"alice".into(), true);
    let info = env
        .store
        .token(&agent.id, &t.info.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.operations_remaining, Some(2));
}

pub async fn case_expires_on_completion<S: Store>(env: Env<S>) {
    let agent = env
        .store
        .create_agent(NewAgent::new("worker", "alice"))
        .await
        .unwrap();
    let new = NewToken::new("t")
        .max_operations(2)
        .expires_on_completion()
        .task_id("task-1");
    let t = env.store.create_token(&agent.id, new).await.unwrap();
    assert_eq!(t.info.expires_at, None);
    resolve(&env.store, t.token.expose_secret()).await.unwrap();
    resolve(&env.store, t.token.expose_secret()).await.unwrap();
    let info = env
        .store
        .token(&agent.id, &t.info.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        info.expires_at,
        Some(env.clock.now_micros()),
        "expired on completion"
    );
    let result = resolve(&env.store, t.token.expose_secret()).await;
    assert!(matches!(
        refused(result),
        InvalidReason::Expired | InvalidReason::Exhausted
    ));
    let bad = env
        .store
        .create_token(&agent.id, NewToken::new("t").expires_on_completion())
        .await;
    assert!(matches!(bad, Err(StoreError::InvalidInput(_))), "{bad:?}");
    let zero = env
        .store
        .create_token(&agent.id, NewToken::new("t").max_operations(0))
        .await;
    assert!(matches!(zero, Err(StoreError::InvalidInput(_))), "{zero:?}");
}

/// 1 000 concurrent requests through the layer for a token limited to 100 operations, spread
/// over `stores` (two stores on one database stand for two nodes).
pub async fn concurrent_use_limit<S: Store>(stores: Vec<S>, users: &MemoryUserDirectory) {
    let _ = users;
    let first = &stores[0];
    let agent = first
        .create_agent(NewAgent::new("swarm", "bob"))
        .await
        .unwrap();
    let t = first
        .create_token(&agent.id, NewToken::new("t").max_operations(100))
        .await
        .unwrap();
    let bearer = format!("Bearer {}", t.token.expose_secret());
    let services: Vec<_> = stores
        .iter()
        .map(|store| {
            ServiceBuilder::new()
                .layer(AgentAuthLayer::new(store.clone()))
                .service_fn(|_: Request<String>| async {
                    Ok::<_, std::convert::Infallible>(Response::new(String::new()))
                })
        })
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..1000 {
        let service = services[i % services.len()].clone();
        let bearer = bearer.clone();
        tasks.spawn(async move {
            let request = Request::builder()
                .header("authorization", bearer)
                .body(String::new())
                .unwrap();
            service.oneshot(request).await.unwrap().status()
        });
    }
    let (mut admitted, mut refused) = (0, 0);
    while let Some(status) = tasks.join_next().await {
        match status.unwrap() {
            StatusCode::OK => admitted += 1,
            StatusCode::UNAUTHORIZED => refused += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((admitted, refused), (100, 900));
}

pub async fn case_concurrent_use_limit_is_exact<S: Store>(env: Env<S>) {
    concurrent_use_limit(vec![env.store.clone()], &env.users).await;
}

pub async fn case_import_by_hash<S: Store>(env: Env<S>) {
    let agent = env
        .store
        .create_agent(NewAgent::new("content-bot", "alice"))
        .await
        .unwrap();
    // A Data Machine token: 64 hex, no checksum.
    let legacy =
        "acme_content-bot_9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let imported = ImportedToken::new(TokenHash::of(legacy), "from data machine")
        .with_capabilities(caps(&["posts:read"]));
    let info = env
        .store
        .import_token(&agent.id, imported.clone())
        .await
        .unwrap();
    let principal = resolve(&env.store, legacy).await.unwrap();
    assert_eq!(principal.token_id(), Some(&info.id));
    assert!(principal.can("posts:read") && !principal.can("posts:publish"));
    assert!(matches!(
        env.store.import_token(&agent.id, imported).await,
        Err(StoreError::DuplicateToken)
    ));
    let expired = ImportedToken::new(TokenHash::of("acme_content-bot_x"), "old")
        .expires_at(env.clock.now() - time::Duration::days(1));
    assert!(matches!(
        env.store.import_token(&agent.id, expired).await,
        Err(StoreError::InvalidLifetime(_))
    ));
    assert_eq!(env.store.list_tokens(&agent.id).await.unwrap().len(), 1);
}

pub async fn case_purge_removes_long_dead_tokens<S: Store>(env: Env<S>) {
    let agent = env
        .store
        .create_agent(NewAgent::new("writer", "alice"))
        .await
        .unwrap();
    let live = env
        .store
        .create_token(&agent.id, NewToken::new("live"))
        .await
        .unwrap();
    let revoked = env
        .store
        .create_token(&agent.id, NewToken::new("revoked"))
        .await
        .unwrap();
    let short = env
        .store
        .create_token(
            &agent.id,
            NewToken::new("short").expires_in(time::Duration::hours(1)),
        )
        .await
        .unwrap();
    env.store
        .revoke_token(&agent.id, &revoked.info.id)
        .await
        .unwrap();
    env.clock.advance(time::Duration::days(10));
    assert_eq!(env.store.purge(time::Duration::days(30)).await.unwrap(), 0);
    env.clock.advance(time::Duration::days(25));
    assert_eq!(env.store.purge(time::Duration::days(30)).await.unwrap(), 2);
    let left: Vec<_> = env
        .store
        .list_tokens(&agent.id)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(left, vec![live.info.id.clone()]);
    let _ = short;
}

pub async fn case_rotation_with_grace<S: Store>(env: Env<S>) {
    let agent = env
        .store
        .create_agent(NewAgent::new("writer", "alice"))
        .await
        .unwrap();
    let old = env
        .store
        .create_token(
            &agent.id,
            NewToken::new("laptop")
                .with_capabilities(caps(&["posts:read"]))
                .task_id("t-1"),
        )
        .await
        .unwrap();
    let new = env
        .store
        .rotate_token(&agent.id, &old.info.id, time::Duration::minutes(10))
        .await
        .unwrap();
    assert_ne!(new.info.id, old.info.id);
    assert_eq!(
        (new.info.label.as_str(), new.info.task_id.as_deref()),
        ("laptop", Some("t-1"))
    );
    assert_eq!(new.info.capabilities, old.info.capabilities);
    // During the grace period both work; after it, only the new one.
    assert!(resolve(&env.store, old.token.expose_secret()).await.is_ok());
    assert!(resolve(&env.store, new.token.expose_secret()).await.is_ok());
    env.clock.advance(time::Duration::minutes(10));
    assert_eq!(
        refused(resolve(&env.store, old.token.expose_secret()).await),
        InvalidReason::Expired
    );
    assert!(resolve(&env.store, new.token.expose_secret()).await.is_ok());
    // A retired token cannot be rotated again.
    let again = env
        .store
        .rotate_token(&agent.id, &old.info.id, time::Duration::minutes(1))
        .await;
    assert!(
        matches!(again, Err(StoreError::InvalidInput(_))),
        "{again:?}"
    );
}

pub async fn case_rotation_grace_never_outlasts_expiry_and_zero_revokes<S: Store>(env: Env<S>) {
    let agent = env
        .store
        .create_agent(NewAgent::new("writer", "alice"))
        .await
        .unwrap();
    let short = env
        .store
        .create_token(
            &agent.id,
            NewToken::new("short").expires_in(time::Duration::minutes(5)),
        )
        .await
        .unwrap();
    let rotated = env
        .store
        .rotate_token(&agent.id, &short.info.id, time::Duration::hours(1))
        .await
        .unwrap();
    let old = env
        .store
        .token(&agent.id, &short.info.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        old.expires_at, short.info.expires_at,
        "grace never outlasts the old expiry"
    );
    assert_eq!(
        rotated.info.expires_at, short.info.expires_at,
        "the new token keeps the expiry"
    );

    let other = env
        .store
        .create_token(&agent.id, NewToken::new("other"))
        .await
        .unwrap();
    env.store
        .rotate_token(&agent.id, &other.info.id, time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        refused(resolve(&env.store, other.token.expose_secret()).await),
        InvalidReason::Revoked
    );
    let negative = env
        .store
        .rotate_token(&agent.id, &rotated.info.id, -time::Duration::SECOND)
        .await;
    assert!(
        matches!(negative, Err(StoreError::InvalidInput(_))),
        "{negative:?}"
    );
    let foreign = env
        .store
        .create_agent(NewAgent::new("other", "bob"))
        .await
        .unwrap();
    let through_other = env
        .store
        .rotate_token(&foreign.id, &rotated.info.id, time::Duration::ZERO)
        .await;
    assert!(
        matches!(through_other, Err(StoreError::UnknownToken { .. })),
        "{through_other:?}"
    );
}

pub async fn case_grants_are_kept_per_agent_and_user<S: Store>(env: Env<S>) {
    let agent = env
        .store
        .create_agent(NewAgent::new("writer", "alice"))
        .await
        .unwrap();
    env.store
        .grant(&agent.id, &"bob".into(), AccessRole::Viewer)
        .await
        .unwrap();
    env.store
        .grant(&agent.id, &"bob".into(), AccessRole::Admin)
        .await
        .unwrap();
    let grants = env.store.grants(&agent.id).await.unwrap();
    assert_eq!(grants.len(), 1, "a second grant replaces the first");
    assert_eq!(grants[0].role, AccessRole::Admin);
    assert_eq!(
        env.store.role_of(&agent.id, &"bob".into()).await.unwrap(),
        Some(AccessRole::Admin)
    );
    let stranger = env
        .store
        .grant(&agent.id, &"mallory".into(), AccessRole::Admin)
        .await;
    assert!(
        matches!(stranger, Err(StoreError::UnknownUser(_))),
        "{stranger:?}"
    );
    let no_agent = env
        .store
        .grant(&"agt_missing".into(), &"bob".into(), AccessRole::Admin)
        .await;
    assert!(
        matches!(no_agent, Err(StoreError::UnknownAgent(_))),
        "{no_agent:?}"
    );
    env.store
        .revoke_grant(&agent.id, &"bob".into())
        .await
        .unwrap();
    let again = env.store.revoke_grant(&agent.id, &"bob".into()).await;
    assert!(
        matches!(again, Err(StoreError::UnknownGrant { .. })),
        "{again:?}"
    );
    env.store
        .grant(&agent.id, &"bob".into(), AccessRole::Operator)
        .await
        .unwrap();
    env.store.delete_agent(&agent.id).await.unwrap();
    assert_eq!(
        env.store.role_of(&agent.id, &"bob".into()).await.unwrap(),
        None,
        "grants go with the agent"
    );
}

/// Every actor × every operation, against the rule: owner and admin may do everything,
/// operators may list, viewers and strangers nothing.
pub async fn case_access_role_matrix<S: Store>(env: Env<S>) {
    for user in ["admin-user", "operator-user", "viewer-user", "stranger"] {
        env.users
            .insert(UserRecord::new(user, Policy::unrestricted()));
    }
    let agent = env
        .store
        .create_agent(NewAgent::new("writer", "alice"))
        .await
        .unwrap();
    env.store
        .grant(&agent.id, &"admin-user".into(), AccessRole::Admin)
        .await
        .unwrap();
    env.store
        .grant(&agent.id, &"operator-user".into(), AccessRole::Operator)
        .await
        .unwrap();
    env.store
        .grant(&agent.id, &"viewer-user".into(), AccessRole::Viewer)
        .await
        .unwrap();
    // (actor, may see, may list and read the trail, may issue/rotate/revoke/manage)
    let matrix = [
        ("alice", true, true, true),
        ("admin-user", true, true, true),
        ("operator-user", true, true, false),
        ("viewer-user", true, false, false),
        ("stranger", false, false, false),
    ];
    for (n, (actor, may_view, may_list, may_manage)) in matrix.into_iter().enumerate() {
        let managed = Managed::new(&env.store, actor);
        let target = env
            .store
            .create_token(&agent.id, NewToken::new("target"))
            .await
            .unwrap();
        let allowed = |r: Result<(), StoreError>, expected: bool, op: &str| match r {
            Ok(()) => assert!(expected, "{actor} may not {op}"),
            Err(StoreError::Forbidden { .. }) => assert!(!expected, "{actor} may {op}"),
            Err(other) => panic!("{actor} {op}: {other:?}"),
        };
        allowed(managed.agent(&agent.id).await.map(drop), may_view, "see");
        allowed(
            managed.list_tokens(&agent.id).await.map(drop),
            may_list,
            "list",
        );
        allowed(
            managed
                .audit_events(&agent.id, tower_agent_auth::audit::AuditFilter::default())
                .await
                .map(drop),
            may_list,
            "read the trail",
        );
        allowed(
            managed.grants(&agent.id).await.map(drop),
            may_list,
            "list grants",
        );
        let issued = managed.create_token(&agent.id, NewToken::new("by")).await;
        if let Ok(issued) = &issued {
            assert_eq!(
                issued.info.created_by.as_ref().map(|u| u.as_str()),
                Some(actor)
            );
        }
        allowed(issued.map(drop), may_manage, "issue");
        allowed(
            managed
                .rotate_token(&agent.id, &target.info.id, time::Duration::minutes(1))
                .await
                .map(drop),
            may_manage,
            "rotate",
        );
        allowed(
            managed
                .revoke_token(&agent.id, &target.info.id)
                .await
                .map(drop),
            may_manage,
            "revoke",
        );
        allowed(
            managed
                .grant(&agent.id, &"stranger".into(), AccessRole::Viewer)
                .await
                .map(drop),
            may_manage,
            "grant",
        );
        if may_manage {
            managed
                .revoke_grant(&agent.id, &"stranger".into())
                .await
                .unwrap();
        } else {
            allowed(
                managed.revoke_grant(&agent.id, &"viewer-user".into()).await,
                false,
                "withdraw a grant",
            );
        }
        allowed(
            managed
                .set_agent_status(&agent.id, AgentStatus::Disabled)
                .await
                .map(drop),
            may_manage,
            "disable",
        );
        allowed(
            managed
                .set_agent_status(&agent.id, AgentStatus::Active)
                .await
                .map(drop),
            may_manage,
            "enable",
        );
        let child = managed
            .create_agent(NewAgent::child(format!("thread-{n}"), agent.id.clone()))
            .await;
        let child_id = match &child {
            Ok(child) => child.id.clone(),
            Err(_) => {
                env.store
                    .create_agent(NewAgent::child(format!("thread-{n}"), agent.id.clone()))
                    .await
                    .unwrap()
                    .id
            }
        };
        allowed(child.map(drop), may_manage, "create a child");
        allowed(
            managed.delete_agent(&child_id).await,
            may_manage,
            "delete a child",
        );
        assert_eq!(
            env.store.agent(&child_id).await.unwrap().is_some(),
            !may_manage,
            "{actor}: a refused delete keeps the identity"
        );
        // A top-level agent is created by its owner only, for themselves.
        allowed(
            managed
                .create_agent(NewAgent::new(format!("for-alice-{n}"), "alice"))
                .await
                .map(drop),
            actor == "alice",
            "create an agent for alice",
        );
        allowed(
            managed.revoke_all_tokens(&agent.id).await.map(drop),
            may_manage,
            "revoke all",
        );
        // A refused operation changed nothing.
        if !may_manage {
            assert_eq!(
                env.store.agent(&agent.id).await.unwrap().unwrap().status,
                AgentStatus::Active
            );
            let still = env
                .store
                .token(&agent.id, &target.info.id)
                .await
                .unwrap()
                .unwrap();
            assert!(
                still.revoked_at.is_none() && still.expires_at.is_none(),
                "{actor} changed a token"
            );
        }
    }
    // Grants on one agent say nothing about another.
    let other = env
        .store
        .create_agent(NewAgent::new("other", "bob"))
        .await
        .unwrap();
    let refused = Managed::new(&env.store, "admin-user")
        .list_tokens(&other.id)
        .await;
    assert!(
        matches!(refused, Err(StoreError::Forbidden { .. })),
        "{refused:?}"
    );
}

/// One agent thread gets a scoped identity and a credential and acts; the credential is revoked
/// and refused while the identity stays, and a new credential works.
pub async fn case_thread_identity_lifecycle<S: Store>(env: Env<S>) {
    let parent = env
        .store
        .create_agent(
            NewAgent::new("codex", "alice")
                .with_policy(Policy::allow(caps(&["posts:*"])))
                .with_scopes(["workspace:1", "workspace:2"])
                .with_modes(["chat", "pipeline"]),
        )
        .await
        .unwrap();
    let thread = env
        .store
        .create_agent(
            NewAgent::child("codex-thread-7f3a", parent.id.clone()).with_scopes(["workspace:1"]),
        )
        .await
        .unwrap();
    assert_eq!(thread.parent.as_ref(), Some(&parent.id));
    assert_eq!(
        thread.owner, parent.owner,
        "a child acts for its parent's owner"
    );
    let first = env
        .store
        .create_token(&thread.id, NewToken::new("thread").task_id("task-42"))
        .await
        .unwrap();
    let principal = resolve(&env.store, first.token.expose_secret())
        .await
        .unwrap();
    let agent = principal.agent_ref().unwrap();
    assert_eq!(agent.id(), &thread.id);
    assert_eq!(agent.parent(), Some(&parent.id));
    assert!(agent.allows_scope("workspace:1") && !agent.allows_scope("workspace:2"));
    assert!(
        agent.allows_mode("chat"),
        "modes are inherited from the parent"
    );
    assert!(!agent.allows_mode("admin"));
    assert_eq!(principal.task_id(), Some("task-42"));
    assert!(principal.can("posts:publish"));
    assert!(
        !principal.can("comments:read"),
        "the parent's policy bounds the child"
    );

    env.store
        .revoke_token(&thread.id, &first.info.id)
        .await
        .unwrap();
    assert_eq!(
        refused(resolve(&env.store, first.token.expose_secret()).await),
        InvalidReason::Revoked
    );
    let still = env.store.agent(&thread.id).await.unwrap().unwrap();
    assert_eq!(still.status, AgentStatus::Active, "the identity stays");
    let second = env
        .store
        .create_token(&thread.id, NewToken::new("thread, again"))
        .await
        .unwrap();
    assert!(
        resolve(&env.store, second.token.expose_secret())
            .await
            .is_ok()
    );

    // Retiring the thread is deleting its identity; the parent is untouched.
    let parent_token = env
        .store
        .create_token(&parent.id, NewToken::new("parent"))
        .await
        .unwrap();
    env.store.delete_agent(&thread.id).await.unwrap();
    assert_eq!(
        refused(resolve(&env.store, second.token.expose_secret()).await),
        InvalidReason::Unknown
    );
    assert!(
        resolve(&env.store, parent_token.token.expose_secret())
            .await
            .is_ok()
    );
}

/// A child is never wider than its parent: wider requests are refused and change nothing, and
/// the parent's state bounds the child at every request.
pub async fn case_children_are_never_wider_than_the_parent<S: Store>(env: Env<S>) {
    let expires = env.clock.now_micros() + time::Duration::days(1);
    let parent = env
        .store
        .create_agent(
            NewAgent::new("codex", "alice")
                .with_policy(Policy::allow(caps(&["posts:read"])))
                .with_scopes(["workspace:1"])
                .with_modes(["chat"])
                .with_expires_at(expires),
        )
        .await
        .unwrap();
    let wider = [
        NewAgent::child("t-scope", parent.id.clone()).with_scopes(["workspace:2"]),
        NewAgent::child("t-mode", parent.id.clone()).with_modes(["pipeline"]),
        NewAgent::child("t-policy", parent.id.clone())
            .with_policy(Policy::allow(caps(&["posts:*"]))),
        NewAgent::child("t-expiry", parent.id.clone())
            .with_expires_at(expires + time::Duration::seconds(1)),
    ];
    for (n, new) in wider.into_iter().enumerate() {
        let result = env.store.create_agent(new).await;
        assert!(
            matches!(
                result,
                Err(StoreError::InvalidInput(_)
                    | StoreError::CapabilitiesOutsidePolicy(_)
                    | StoreError::InvalidLifetime(_))
            ),
            "case {n}: {result:?}"
        );
    }
    assert_eq!(
        env.store.list_agents().await.unwrap().len(),
        1,
        "nothing was created"
    );

    let child = env
        .store
        .create_agent(NewAgent::child("codex-thread-1", parent.id.clone()))
        .await
        .unwrap();
    assert_eq!(
        child.expires_at,
        Some(expires),
        "a child inherits the parent's expiry"
    );
    assert_eq!(child.scopes, parent.scopes);
    let children = env.store.children(&parent.id).await.unwrap();
    assert_eq!(
        children.iter().map(|c| &c.id).collect::<Vec<_>>(),
        [&child.id]
    );
    assert!(env.store.children(&child.id).await.unwrap().is_empty());
    let grandchild = env
        .store
        .create_agent(NewAgent::child("codex-thread-1-sub", child.id.clone()))
        .await;
    assert!(
        matches!(grandchild, Err(StoreError::InvalidInput(_))),
        "{grandchild:?}"
    );
    let orphan = env
        .store
        .create_agent(NewAgent::child("orphan", "agt_missing"))
        .await;
    assert!(
        matches!(orphan, Err(StoreError::UnknownAgent(_))),
        "{orphan:?}"
    );

    let t = env
        .store
        .create_token(&child.id, NewToken::new("t"))
        .await
        .unwrap();
    let principal = resolve(&env.store, t.token.expose_secret()).await.unwrap();
    assert!(principal.can("posts:read") && !principal.can("posts:publish"));
    let wider_token = env
        .store
        .create_token(
            &child.id,
            NewToken::new("wide").with_capabilities(caps(&["posts:publish"])),
        )
        .await;
    assert!(
        matches!(wider_token, Err(StoreError::CapabilitiesOutsidePolicy(_))),
        "a child's token is checked against the parent's policy: {wider_token:?}"
    );

    env.store
        .set_agent_status(&parent.id, AgentStatus::Disabled)
        .await
        .unwrap();
    assert_eq!(
        refused(resolve(&env.store, t.token.expose_secret()).await),
        InvalidReason::AgentDisabled,
        "disabling the parent stops the child"
    );
    env.store
        .set_agent_status(&parent.id, AgentStatus::Active)
        .await
        .unwrap();
    assert!(resolve(&env.store, t.token.expose_secret()).await.is_ok());

    env.store.delete_agent(&parent.id).await.unwrap();
    assert!(
        env.store.agent(&child.id).await.unwrap().is_none(),
        "children go with the parent"
    );
    assert_eq!(
        refused(resolve(&env.store, t.token.expose_secret()).await),
        InvalidReason::Unknown
    );
}

/// Disabling an identity refuses every one of its credentials at once; enabling restores them.
pub async fn case_disabled_identity_refuses_every_credential<S: Store>(env: Env<S>) {
    let agent = env
        .store
        .create_agent(NewAgent::new("writer", "alice"))
        .await
        .unwrap();
    let mut tokens = Vec::new();
    for label in ["laptop", "ci", "phone"] {
        tokens.push(
            env.store
                .create_token(&agent.id, NewToken::new(label))
                .await
                .unwrap(),
        );
    }
    env.store
        .set_agent_status(&agent.id, AgentStatus::Disabled)
        .await
        .unwrap();
    for t in &tokens {
        assert_eq!(
            refused(resolve(&env.store, t.token.expose_secret()).await),
            InvalidReason::AgentDisabled
        );
    }
    env.store
        .set_agent_status(&agent.id, AgentStatus::Active)
        .await
        .unwrap();
    for t in &tokens {
        assert!(resolve(&env.store, t.token.expose_secret()).await.is_ok());
    }
}

/// A store may reuse the verdict of one request for the next; no change may be missed by it.
/// Each change comes after the token was admitted twice (so any cached verdict is in use).
pub async fn case_an_admitted_token_sees_every_later_change<S: Store>(env: Env<S>) {
    let expiry = env.clock.now() + time::Duration::hours(1);
    let parent = env
        .store
        .create_agent(NewAgent::new("lead", "alice").with_expires_at(expiry))
        .await
        .unwrap();
    let child = env
        .store
        .create_agent(NewAgent::child("lead-thread-1", parent.id.clone()))
        .await
        .unwrap();
    let own = env
        .store
        .create_token(&parent.id, NewToken::new("own"))
        .await
        .unwrap();
    let threads = env
        .store
        .create_token(&child.id, NewToken::new("thread"))
        .await
        .unwrap();
    let admitted_twice = |raw: String| {
        let store = env.store.clone();
        async move {
            for _ in 0..2 {
                assert!(resolve(&store, &raw).await.is_ok());
            }
        }
    };
    let own_raw = own.token.expose_secret().to_owned();
    let thread_raw = threads.token.expose_secret().to_owned();

    admitted_twice(own_raw.clone()).await;
    admitted_twice(thread_raw.clone()).await;
    env.store
        .set_agent_status(&parent.id, AgentStatus::Disabled)
        .await
        .unwrap();
    assert_eq!(
        refused(resolve(&env.store, &own_raw).await),
        InvalidReason::AgentDisabled
    );
    // The parent's status bounds its thread-scoped child too.
    assert_eq!(
        refused(resolve(&env.store, &thread_raw).await),
        InvalidReason::AgentDisabled
    );
    env.store
        .set_agent_status(&parent.id, AgentStatus::Active)
        .await
        .unwrap();
    admitted_twice(own_raw.clone()).await;
    admitted_twice(thread_raw.clone()).await;

    // The parent's expiry ends both (their tokens' own expiry is capped at it, so either
    // reason may be the first to apply).
    env.clock.advance(time::Duration::hours(1));
    for raw in [&own_raw, &thread_raw] {
        let reason = refused(resolve(&env.store, raw).await);
        assert!(
            matches!(reason, InvalidReason::Expired | InvalidReason::AgentExpired),
            "{reason:?}"
        );
    }

    // Revocation, after admission.
    let agent = env
        .store
        .create_agent(NewAgent::new("writer", "alice"))
        .await
        .unwrap();
    let t = env
        .store
        .create_token(&agent.id, NewToken::new("t"))
        .await
        .unwrap();
    let raw = t.token.expose_secret().to_owned();
    admitted_twice(raw.clone()).await;
    env.store.revoke_token(&agent.id, &t.info.id).await.unwrap();
    assert_eq!(
        refused(resolve(&env.store, &raw).await),
        InvalidReason::Revoked
    );
}

/// A lookup built by hand (`TokenLookup::new`) whose slug does not name the token's agent is
/// refused, also after the token was admitted with the right one.
pub async fn case_a_lookup_naming_another_agent_is_refused<S: Store>(env: Env<S>) {
    let agent = env
        .store
        .create_agent(NewAgent::new("writer", "alice"))
        .await
        .unwrap();
    let t = env
        .store
        .create_token(&agent.id, NewToken::new("t"))
        .await
        .unwrap();
    let raw = t.token.expose_secret();
    for _ in 0..2 {
        assert!(resolve(&env.store, raw).await.is_ok());
    }
    let lookup = TokenLookup::new(TokenHash::of(raw), "someone-else", false);
    let verdict = match env.store.resolve_now(&lookup) {
        Some(verdict) => verdict,
        None => env.store.resolve(&lookup).await,
    };
    assert_eq!(refused(verdict), InvalidReason::AgentMismatch);
}

/// A lifetime past what a clock can hold is refused, not a panic.
pub async fn case_absurd_lifetimes_are_refused<S: Store>(env: Env<S>) {
    let agent = env
        .store
        .create_agent(NewAgent::new("writer", "alice"))
        .await
        .unwrap();
    let forever = env
        .store
        .create_token(
            &agent.id,
            NewToken::new("t").expires_in(time::Duration::MAX),
        )
        .await;
    assert!(
        matches!(forever, Err(StoreError::InvalidLifetime(_))),
        "{forever:?}"
    );
    let t = env
        .store
        .create_token(&agent.id, NewToken::new("t"))
        .await
        .unwrap();
    let rotated = env
        .store
        .rotate_token(&agent.id, &t.info.id, time::Duration::MAX)
        .await;
    assert!(
        matches!(rotated, Err(StoreError::InvalidLifetime(_))),
        "{rotated:?}"
    );
    assert!(
        resolve(&env.store, t.token.expose_secret()).await.is_ok(),
        "nothing changed"
    );
    assert_eq!(env.store.list_tokens(&agent.id).await.unwrap().len(), 1);
}

/// A batch larger than any statement a sink uses is written whole, in order.
pub async fn case_a_large_audit_batch_is_written_whole_and_in_order<S: Store>(env: Env<S>) {
    use tower_agent_auth::audit::{AuditAction, AuditEvent, AuditFilter, Outcome};
    let at = env.clock.now_micros();
    let batch: Vec<AuditEvent> = (0..300)
        .map(|n| {
            AuditEvent::new(at, AuditAction::Request, Outcome::Success)
                .identity("agt_x")
                .request("GET", &format!("/{n}"), 200)
        })
        .collect();
    env.store.write_batch(&batch).await.unwrap();
    env.store.write_batch(&batch[..3]).await.unwrap();
    let read = env
        .store
        .events(&AuditFilter::identity("agt_x"))
        .await
        .unwrap();
    let paths: Vec<String> = read
        .iter()
        .map(|e| e.request.as_ref().unwrap().path.clone())
        .collect();
    let expected: Vec<String> = (0..300).chain(0..3).map(|n| format!("/{n}")).collect();
    assert_eq!(paths, expected);
    assert_eq!(read[0], batch[0]);
}

/// Rotation is recorded on the identity.
pub async fn case_rotation_is_recorded_on_the_identity<S: Store>(env: Env<S>) {
    let agent = env
        .store
        .create_agent(NewAgent::new("writer", "alice"))
        .await
        .unwrap();
    assert_eq!(agent.last_rotated_at, None);
    let t = env
        .store
        .create_token(&agent.id, NewToken::new("t"))
        .await
        .unwrap();
    env.clock.advance(time::Duration::seconds(5));
    let rotated = env
        .store
        .rotate_token(&agent.id, &t.info.id, time::Duration::minutes(5))
        .await
        .unwrap();
    let after = env.store.agent(&agent.id).await.unwrap().unwrap();
    assert_eq!(after.last_rotated_at, Some(rotated.info.created_at));
}

pub trait ClockExt {
    fn now_micros(&self) -> time::OffsetDateTime;
}

impl ClockExt for ManualClock {
    fn now_micros(&self) -> time::OffsetDateTime {
        let now = self.now();
        now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
            .unwrap()
    }
}

/// Instantiates every case for one backend. `$open` is an async block-producing closure
/// `|users, clock| -> Option<(Store, Cleanup)>`.
#[macro_export]
macro_rules! conformance_suite {
    ($open:path) => {
        $crate::conformance_suite!(@cases $open;
            case_token_binds_agent_and_owner,
            case_unknown_token_is_refused,
            case_agents_round_trip,
            case_duplicate_slug_changes_nothing,
            case_invalid_slug_and_unknown_owner_are_refused,
            case_token_for_unknown_agent_is_refused,
            case_capabilities_outside_policy_change_nothing,
            case_lifetime_policy_is_enforced,
            case_list_and_get_show_metadata_only,
            case_revoked_token_is_refused,
            case_foreign_or_unknown_token_cannot_be_revoked,
            case_revoke_all_and_delete,
            case_expiry_follows_the_clock,
            case_disabled_agent_is_refused_until_enabled,
            case_owner_changes_apply_at_once,
            case_use_limit_is_exact,
            case_refused_requests_use_no_operation,
            case_expires_on_completion,
            case_concurrent_use_limit_is_exact,
            case_import_by_hash,
            case_purge_removes_long_dead_tokens,
            case_rotation_with_grace,
            case_rotation_grace_never_outlasts_expiry_and_zero_revokes,
            case_grants_are_kept_per_agent_and_user,
            case_access_role_matrix,
            case_thread_identity_lifecycle,
            case_children_are_never_wider_than_the_parent,
            case_disabled_identity_refuses_every_credential,
            case_an_admitted_token_sees_every_later_change,
            case_a_lookup_naming_another_agent_is_refused,
            case_rotation_is_recorded_on_the_identity,
            case_absurd_lifetimes_are_refused,
            case_a_large_audit_batch_is_written_whole_and_in_order,
        );
        $crate::conformance_suite!(@audit_cases $open;
            case_audit_answers_what_an_identity_did,
            case_audit_records_management_and_denials,
        );
    };
    (@audit_cases $open:path; $($case:ident,)*) => {
        $(
            #[cfg(feature = "audit")]
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let users = conformance::users();
                let clock = conformance::clock();
                let Some((store, cleanup)) = $open(users.clone(), clock.clone()).await else {
                    return;
                };
                conformance::audit::$case(conformance::Env { store, users, clock }).await;
                cleanup.await;
            }
        )*
    };
    (@cases $open:path; $($case:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let users = conformance::users();
                let clock = conformance::clock();
                let Some((store, cleanup)) = $open(users.clone(), clock.clone()).await else {
                    return;
                };
                conformance::$case(conformance::Env { store, users, clock }).await;
                cleanup.await;
            }
        )*
    };
}
