//! What a token resolves to, and every reason it is refused.

use super::{Env, caps, concurrent_use_limit, refused, resolve};
use crate::TokenResolver;
use crate::ceiling::Policy;
use crate::clock::Clock;
use crate::error::{Conflict, InputError, StoreError};
use crate::principal::UserId;
use crate::store::{AgentStatus, Backend, ImportedToken, NewAgent, NewToken};
use crate::token::{TokenFormat, TokenHash};
use crate::{InvalidReason, TokenLookup};

pub async fn case_token_binds_agent_and_owner<B: Backend>(env: Env<B>) {
    let (agent, issued) = env.agent_with_token("writer").await;
    let principal = env.resolve(&issued).await.unwrap();
    assert_eq!(principal.user_id(), &UserId::from("alice"));
    assert_eq!(principal.agent_id(), Some(&agent.id));
    assert_eq!(principal.token_id(), Some(&issued.info.id));
    assert!(principal.can("posts:publish"));
    assert!(!principal.can("users:delete"));
}

pub async fn case_unknown_token_is_refused<B: Backend>(env: Env<B>) {
    env.agent("writer").await;
    let stranger = TokenFormat::new("acme").unwrap().mint("writer").unwrap();
    assert_eq!(
        refused(resolve(&env.store, stranger.expose_secret()).await),
        InvalidReason::Unknown
    );
}

pub async fn case_revoked_token_is_refused<B: Backend>(env: Env<B>) {
    let agent = env.agent("writer").await;
    let keep = env.token(&agent.id, NewToken::new("keep")).await;
    let drop = env.token(&agent.id, NewToken::new("drop")).await;
    let revoked = env
        .store
        .revoke_token(&agent.id, &drop.info.id)
        .await
        .unwrap();
    assert!(revoked.revoked_at.is_some());
    assert_eq!(env.refusal(&drop).await, InvalidReason::Revoked);
    assert!(env.resolve(&keep).await.is_ok());
    // Revoking again keeps the first revocation time.
    env.clock.advance(std::time::Duration::from_secs(60));
    let again = env
        .store
        .revoke_token(&agent.id, &drop.info.id)
        .await
        .unwrap();
    assert_eq!(again.revoked_at, revoked.revoked_at);
}

pub async fn case_expiry_follows_the_clock<B: Backend>(env: Env<B>) {
    let (_, t) = env
        .agent_with_token_as(
            "writer",
            NewToken::new("t").expires_in(std::time::Duration::from_secs(10 * 60)),
        )
        .await;
    env.clock
        .advance(std::time::Duration::from_secs(10 * 60) - std::time::Duration::from_secs(1));
    assert!(env.resolve(&t).await.is_ok());
    env.clock.advance(std::time::Duration::from_secs(1));
    assert_eq!(env.refusal(&t).await, InvalidReason::Expired);
}

pub async fn case_disabled_agent_is_refused_until_enabled<B: Backend>(env: Env<B>) {
    let (agent, t) = env.agent_with_token("writer").await;
    let disabled = env
        .store
        .set_agent_status(&agent.id, AgentStatus::Disabled)
        .await
        .unwrap();
    assert_eq!(disabled.status, AgentStatus::Disabled);
    assert_eq!(env.refusal(&t).await, InvalidReason::AgentDisabled);
    env.store
        .set_agent_status(&agent.id, AgentStatus::Active)
        .await
        .unwrap();
    assert!(env.resolve(&t).await.is_ok());
}

pub async fn case_owner_changes_apply_at_once<B: Backend>(env: Env<B>) {
    let (_, t) = env.agent_with_token("writer").await;
    assert!(env.resolve(&t).await.unwrap().can("posts:publish"));
    env.users
        .set_role(&"alice".into(), Policy::allow(caps(&["comments:read"])));
    assert!(!env.resolve(&t).await.unwrap().can("posts:publish"));
    env.users.set_active(&"alice".into(), false);
    assert_eq!(env.refusal(&t).await, InvalidReason::OwnerInactive);
    env.users.remove(&"alice".into());
    assert_eq!(env.refusal(&t).await, InvalidReason::OwnerMissing);
}

pub async fn case_use_limit_is_exact<B: Backend>(env: Env<B>) {
    let (agent, t) = env
        .agent_with_token_as("worker", NewToken::new("t").max_operations(3))
        .await;
    for _ in 0..3 {
        env.resolve(&t).await.unwrap();
    }
    assert_eq!(env.refusal(&t).await, InvalidReason::Exhausted);
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

pub async fn case_refused_requests_use_no_operation<B: Backend>(env: Env<B>) {
    let (agent, t) = env
        .agent_with_token_as("worker", NewToken::new("t").max_operations(2))
        .await;
    env.users.set_active(&"alice".into(), false);
    env.refusal(&t).await;
    env.users.set_active(&"alice".into(), true);
    let info = env
        .store
        .token(&agent.id, &t.info.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.operations_remaining, Some(2));
}

pub async fn case_expires_on_completion<B: Backend>(env: Env<B>) {
    let agent = env.agent("worker").await;
    let new = NewToken::new("t")
        .max_operations(2)
        .expires_on_completion()
        .task_id("task-1");
    let t = env.token(&agent.id, new).await;
    assert_eq!(t.info.expires_at, None);
    env.resolve(&t).await.unwrap();
    env.resolve(&t).await.unwrap();
    let info = env
        .store
        .token(&agent.id, &t.info.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        info.expires_at,
        Some(env.now_micros()),
        "expired on completion"
    );
    // Expired before exhausted: the token's own expiry is checked first (the pipeline's order).
    assert_eq!(refused(env.resolve(&t).await), InvalidReason::Expired);
    let bad = env
        .store
        .create_token(&agent.id, NewToken::new("t").expires_on_completion())
        .await;
    assert!(
        matches!(bad, Err(StoreError::Input(InputError::Invalid(_)))),
        "{bad:?}"
    );
    let zero = env
        .store
        .create_token(&agent.id, NewToken::new("t").max_operations(0))
        .await;
    assert!(
        matches!(zero, Err(StoreError::Input(InputError::Invalid(_)))),
        "{zero:?}"
    );
    // Past what every backend counts in: refused, never clamped.
    let huge = env
        .store
        .create_token(&agent.id, NewToken::new("t").max_operations(u64::MAX))
        .await;
    assert!(
        matches!(huge, Err(StoreError::Input(InputError::Invalid(_)))),
        "{huge:?}"
    );
}

pub async fn case_concurrent_use_limit_is_exact<B: Backend>(env: Env<B>) {
    concurrent_use_limit(vec![env.store.clone()], &env.users).await;
}

pub async fn case_import_by_hash<B: Backend>(env: Env<B>) {
    let agent = env.agent("content-bot").await;
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
        Err(StoreError::Conflict(Conflict::Token))
    ));
    let expired = ImportedToken::new(TokenHash::of("acme_content-bot_x"), "old")
        .expires_at(env.clock.now() - time::Duration::days(1));
    assert!(matches!(
        env.store.import_token(&agent.id, expired).await,
        Err(StoreError::Input(InputError::InvalidLifetime(_)))
    ));
    assert_eq!(env.store.list_tokens(&agent.id).await.unwrap().len(), 1);
}

/// Disabling an identity refuses every one of its credentials at once; enabling restores them.
pub async fn case_disabled_identity_refuses_every_credential<B: Backend>(env: Env<B>) {
    let agent = env.agent("writer").await;
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
        assert_eq!(env.refusal(t).await, InvalidReason::AgentDisabled);
    }
    env.store
        .set_agent_status(&agent.id, AgentStatus::Active)
        .await
        .unwrap();
    for t in &tokens {
        assert!(env.resolve(t).await.is_ok());
    }
}

/// A store may reuse the verdict of one request for the next; no change may be missed by it.
/// Each change comes after the token was admitted twice (so any cached verdict is in use).
pub async fn case_an_admitted_token_sees_every_later_change<B: Backend>(env: Env<B>) {
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
    let own = env.token(&parent.id, NewToken::new("own")).await;
    let threads = env.token(&child.id, NewToken::new("thread")).await;
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
    env.clock.advance(std::time::Duration::from_secs(3600));
    for raw in [&own_raw, &thread_raw] {
        let reason = refused(resolve(&env.store, raw).await);
        assert!(
            matches!(reason, InvalidReason::Expired | InvalidReason::AgentExpired),
            "{reason:?}"
        );
    }

    // Revocation, after admission.
    let (agent, t) = env.agent_with_token("writer").await;
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
pub async fn case_a_lookup_naming_another_agent_is_refused<B: Backend>(env: Env<B>) {
    let (_, t) = env.agent_with_token("writer").await;
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
