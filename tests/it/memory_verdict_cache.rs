//! The in-memory store's verdict cache (`MemoryStore::verdict_cache` under a
//! `CachingResolver`): a verdict is reused — no owner lookup, the same principal — while
//! neither the store's records nor the user directory changed and no expiry passed; and never
//! after one of them did: a change is seen by the very next request.
#![cfg(all(feature = "testing", feature = "cache"))]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tower_agent_auth::cache::CachingResolver;
use tower_agent_auth::ceiling::Policy;
use tower_agent_auth::clock::{Clock, ManualClock};
use tower_agent_auth::error::BoxError;
use tower_agent_auth::principal::UserId;
use tower_agent_auth::store::{
    AgentStatus, ImportedToken, IssuedToken, MemoryStore, MemoryUserDirectory, NewAgent, NewToken,
    StoreConfig, UserDirectory, UserRecord,
};
use tower_agent_auth::token::TokenHash;
use tower_agent_auth::{InvalidReason, Principal, ResolveError, testing};

/// The suite's users behind a directory that counts owner lookups. `revision: false` hides the
/// directory's revision, as a directory that cannot tell; `at_once: false` never answers
/// without waiting, so resolution takes the awaited path.
#[derive(Clone)]
struct Counting {
    users: MemoryUserDirectory,
    lookups: Arc<AtomicUsize>,
    revision: bool,
    at_once: bool,
}

#[async_trait::async_trait]
impl UserDirectory for Counting {
    fn user_now(&self, id: &UserId) -> Option<Result<Option<UserRecord>, BoxError>> {
        if !self.at_once {
            return None;
        }
        self.lookups.fetch_add(1, Ordering::SeqCst);
        self.users.user_now(id)
    }

    async fn user(&self, id: &UserId) -> Result<Option<UserRecord>, BoxError> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        self.users.user(id).await
    }

    fn revision(&self) -> Option<u64> {
        if self.revision {
            self.users.revision()
        } else {
            None
        }
    }
}

struct Env {
    store: MemoryStore,
    resolver: CachingResolver<MemoryStore>,
    users: MemoryUserDirectory,
    clock: Arc<ManualClock>,
    lookups: Arc<AtomicUsize>,
}

impl Env {
    fn new(revision: bool, at_once: bool) -> Self {
        let users = testing::users();
        let clock = testing::clock();
        let lookups = Arc::new(AtomicUsize::new(0));
        let directory = Counting {
            users: users.clone(),
            lookups: lookups.clone(),
            revision,
            at_once,
        };
        let config = StoreConfig::new(testing::format(), directory).clock(clock.clone());
        let store = MemoryStore::with_config(config);
        Self {
            resolver: CachingResolver::new(store.clone(), store.verdict_cache()),
            store,
            users,
            clock,
            lookups,
        }
    }

    /// Creating an agent looks its owner up too: a case counts from after its setup.
    fn count_lookups_from_here(&self) {
        self.lookups.store(0, Ordering::SeqCst);
    }

    fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }

    async fn token_of(&self, new: NewAgent) -> IssuedToken {
        let agent = self.store.create_agent(new).await.unwrap();
        self.store
            .create_token(&agent.id, NewToken::new("t"))
            .await
            .unwrap()
    }

    async fn resolve(&self, token: &IssuedToken) -> Result<Principal, ResolveError> {
        testing::resolve(&self.resolver, token.token.expose_secret()).await
    }

    async fn admit(&self, token: &IssuedToken) -> Principal {
        self.resolve(token).await.expect("admitted")
    }
}

fn same(a: Principal, b: Principal) -> bool {
    Arc::ptr_eq(&a.into_inner(), &b.into_inner())
}

fn reason(result: Result<Principal, ResolveError>) -> Option<InvalidReason> {
    result.err().and_then(|error| error.reason())
}

#[tokio::test]
async fn a_standing_verdict_is_reused_without_an_owner_lookup() {
    let env = Env::new(true, true);
    let t = env.token_of(NewAgent::new("writer", "alice")).await;
    env.count_lookups_from_here();
    let first = env.admit(&t).await;
    let second = env.admit(&t).await;
    assert_eq!(env.lookups(), 1, "the second request reuses the verdict");
    assert!(same(first, second));
}

#[tokio::test]
async fn a_standing_verdict_is_reused_on_the_awaited_path_too() {
    let env = Env::new(true, false);
    let t = env.token_of(NewAgent::new("writer", "alice")).await;
    env.count_lookups_from_here();
    env.admit(&t).await;
    env.admit(&t).await;
    assert_eq!(env.lookups(), 1);
}

#[tokio::test]
async fn without_a_directory_revision_every_request_looks_the_owner_up() {
    let env = Env::new(false, true);
    let t = env.token_of(NewAgent::new("writer", "alice")).await;
    env.count_lookups_from_here();
    env.admit(&t).await;
    env.admit(&t).await;
    assert_eq!(env.lookups(), 2);
}

#[tokio::test]
async fn any_directory_change_ends_the_verdict() {
    let env = Env::new(true, true);
    let t = env.token_of(NewAgent::new("writer", "alice")).await;
    env.count_lookups_from_here();
    env.admit(&t).await;
    env.users
        .insert(UserRecord::new("carol", Policy::unrestricted()));
    env.admit(&t).await;
    assert_eq!(
        env.lookups(),
        2,
        "looked up again after the directory changed"
    );
}

#[tokio::test]
async fn any_agent_record_change_ends_the_verdict() {
    let env = Env::new(true, true);
    let t = env.token_of(NewAgent::new("writer", "alice")).await;
    let other = env
        .store
        .create_agent(NewAgent::new("other", "alice"))
        .await
        .unwrap();
    env.count_lookups_from_here();
    env.admit(&t).await;
    env.store
        .set_agent_status(&other.id, AgentStatus::Disabled)
        .await
        .unwrap();
    env.admit(&t).await;
    assert_eq!(env.lookups(), 2, "looked up again after an agent changed");
}

#[tokio::test]
async fn a_demoted_owner_is_seen_by_the_next_request() {
    let env = Env::new(true, true);
    let t = env.token_of(NewAgent::new("writer", "alice")).await;
    env.count_lookups_from_here();
    assert!(env.admit(&t).await.can("posts:publish"));
    env.users.set_role(
        &"alice".into(),
        Policy::allow(testing::caps(&["comments:read"])),
    );
    let demoted = env.admit(&t).await;
    assert!(!demoted.can("posts:publish"));
    assert!(demoted.can("comments:read"));
}

#[tokio::test]
async fn a_replaced_agent_record_gets_a_new_principal() {
    let env = Env::new(true, true);
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
    env.count_lookups_from_here();
    let first = env.admit(&t).await;
    for status in [AgentStatus::Disabled, AgentStatus::Active] {
        env.store.set_agent_status(&agent.id, status).await.unwrap();
    }
    let second = env.admit(&t).await;
    assert!(!same(first, second), "the agent record changed: built anew");
}

#[tokio::test]
async fn the_verdict_ends_at_the_agents_expiry_instant() {
    let env = Env::new(true, true);
    let expiry = env.clock.now() + time::Duration::minutes(1);
    let t = env
        .token_of(NewAgent::new("writer", "alice").with_expires_at(expiry))
        .await;
    env.count_lookups_from_here();
    env.admit(&t).await;
    env.clock.set(expiry - time::Duration::microseconds(1));
    env.admit(&t).await;
    assert_eq!(env.lookups(), 1, "still standing just before the expiry");
    env.clock.set(expiry);
    assert_eq!(
        reason(env.resolve(&t).await),
        Some(InvalidReason::AgentExpired)
    );
}

#[tokio::test]
async fn the_verdict_ends_at_the_parents_expiry_instant() {
    let env = Env::new(true, true);
    let expiry = env.clock.now() + time::Duration::minutes(1);
    let parent = env
        .store
        .create_agent(NewAgent::new("codex", "alice").with_expires_at(expiry))
        .await
        .unwrap();
    let t = env.token_of(NewAgent::child("codex-task", parent.id)).await;
    env.count_lookups_from_here();
    env.admit(&t).await;
    env.clock.set(expiry);
    assert_eq!(
        reason(env.resolve(&t).await),
        Some(InvalidReason::AgentExpired)
    );
}

#[tokio::test]
async fn the_verdict_ends_at_the_tokens_expiry_instant() {
    let env = Env::new(true, true);
    let agent = env
        .store
        .create_agent(NewAgent::new("writer", "alice"))
        .await
        .unwrap();
    let t = env
        .store
        .create_token(
            &agent.id,
            NewToken::new("t").expires_in(std::time::Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let expiry = t.info.expires_at.expect("an expiry");
    let first = env.admit(&t).await;
    assert_eq!(first.expires_at(), Some(expiry));
    env.clock.set(expiry - time::Duration::microseconds(1));
    env.admit(&t).await;
    env.clock.set(expiry);
    assert_eq!(reason(env.resolve(&t).await), Some(InvalidReason::Expired));
}

#[tokio::test]
async fn a_revoked_token_is_refused_by_the_next_request() {
    let env = Env::new(true, true);
    let t = env.token_of(NewAgent::new("writer", "alice")).await;
    env.admit(&t).await;
    env.store
        .revoke_token(&t.info.agent_id, &t.info.id)
        .await
        .unwrap();
    assert_eq!(reason(env.resolve(&t).await), Some(InvalidReason::Revoked));
}

#[tokio::test]
async fn a_rotated_token_is_refused_by_the_next_request() {
    let env = Env::new(true, true);
    let t = env.token_of(NewAgent::new("writer", "alice")).await;
    env.admit(&t).await;
    env.store
        .rotate_token(&t.info.agent_id, &t.info.id, std::time::Duration::ZERO)
        .await
        .unwrap();
    assert!(
        env.resolve(&t).await.is_err(),
        "the old secret ends at once"
    );
}

#[tokio::test]
async fn an_unknown_token_imported_later_is_admitted_by_the_next_request() {
    let env = Env::new(true, true);
    let agent = env
        .store
        .create_agent(NewAgent::new("writer", "alice"))
        .await
        .unwrap();
    let raw = testing::format().mint("writer").unwrap();
    let raw = raw.expose_secret();
    assert_eq!(
        reason(testing::resolve(&env.resolver, raw).await),
        Some(InvalidReason::Unknown)
    );
    env.store
        .import_token(
            &agent.id,
            ImportedToken::new(TokenHash::of(raw), "imported"),
        )
        .await
        .unwrap();
    assert!(
        testing::resolve(&env.resolver, raw).await.is_ok(),
        "the unknown hash is not remembered past a change"
    );
}

#[tokio::test]
async fn a_use_does_not_end_the_verdict() {
    let env = Env::new(true, true);
    let t = env.token_of(NewAgent::new("writer", "alice")).await;
    env.count_lookups_from_here();
    for _ in 0..3 {
        env.admit(&t).await;
    }
    assert_eq!(env.lookups(), 1, "recording last-used changes no revision");
}

#[tokio::test]
async fn a_completed_task_is_refused_by_the_next_request() {
    let env = Env::new(true, true);
    let agent = env
        .store
        .create_agent(NewAgent::new("writer", "alice"))
        .await
        .unwrap();
    let t = env
        .store
        .create_token(&agent.id, NewToken::new("t").task_id("build"))
        .await
        .unwrap();
    env.admit(&t).await;
    env.store
        .complete_task(&UserId::from("alice"), "build")
        .await
        .unwrap();
    assert_eq!(reason(env.resolve(&t).await), Some(InvalidReason::Expired));
}

#[tokio::test]
async fn a_revoked_token_tree_is_refused_by_the_next_request() {
    let env = Env::new(true, true);
    let t = env.token_of(NewAgent::new("writer", "alice")).await;
    env.admit(&t).await;
    env.store
        .revoke_token_tree(&t.info.agent_id, &t.info.id)
        .await
        .unwrap();
    assert_eq!(reason(env.resolve(&t).await), Some(InvalidReason::Revoked));
}
