//! Agents, tokens, rotation, purging and thread-scoped children.
//!
//! Long by design: one section of the conformance suite, a flat list of independent cases
//! that a store author reads top to bottom when one fails; splitting it would only scatter
//! them.

use super::{Env, caps};
use crate::InvalidReason;
use crate::ceiling::Policy;
use crate::error::{Conflict, InputError, NotFound, StoreError};
use crate::store::{AgentStatus, AgentType, Backend, NewAgent, NewToken};

pub async fn case_agents_round_trip<B: Backend>(env: Env<B>) {
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

pub async fn case_duplicate_slug_changes_nothing<B: Backend>(env: Env<B>) {
    let first = env.agent("writer").await;
    let again = env.store.create_agent(NewAgent::new("writer", "bob")).await;
    assert!(
        matches!(again, Err(StoreError::Conflict(Conflict::Slug(ref s))) if s == "writer"),
        "{again:?}"
    );
    let agents = env.store.list_agents().await.unwrap();
    assert_eq!(agents, vec![first]);
}

pub async fn case_invalid_slug_and_unknown_owner_are_refused<B: Backend>(env: Env<B>) {
    let bad = env
        .store
        .create_agent(NewAgent::new("Not_A_Slug", "alice"))
        .await;
    assert!(
        matches!(bad, Err(StoreError::Input(InputError::InvalidSlug(_)))),
        "{bad:?}"
    );
    let nobody = env
        .store
        .create_agent(NewAgent::new("orphan", "mallory"))
        .await;
    assert!(
        matches!(nobody, Err(StoreError::NotFound(NotFound::User(_)))),
        "{nobody:?}"
    );
    assert!(env.store.list_agents().await.unwrap().is_empty());
}

pub async fn case_token_for_unknown_agent_is_refused<B: Backend>(env: Env<B>) {
    let result = env
        .store
        .create_token(&"agt_missing".into(), NewToken::new("t"))
        .await;
    assert!(
        matches!(result, Err(StoreError::NotFound(NotFound::Agent(_)))),
        "{result:?}"
    );
}

pub async fn case_capabilities_outside_policy_change_nothing<B: Backend>(env: Env<B>) {
    let policy = Policy::allow(caps(&["posts:read"]));
    let agent = env
        .store
        .create_agent(NewAgent::new("reader", "alice").with_policy(policy))
        .await
        .unwrap();
    let wide = NewToken::new("t").with_capabilities(caps(&["posts:*"]));
    let result = env.store.create_token(&agent.id, wide).await;
    assert!(
        matches!(
            result,
            Err(StoreError::Input(InputError::CapabilitiesOutsidePolicy(_)))
        ),
        "{result:?}"
    );
    assert!(env.store.list_tokens(&agent.id).await.unwrap().is_empty());
}

pub async fn case_lifetime_policy_is_enforced<B: Backend>(env: Env<B>) {
    let agent = env
        .store
        .create_agent(NewAgent::new("runner", "alice").with_type(AgentType::Ephemeral))
        .await
        .unwrap();
    // Asking for more than the type's maximum gets the maximum: an hour.
    let too_long = NewToken::new("t").expires_in(std::time::Duration::from_secs(2 * 3600));
    let clamped = env.token(&agent.id, too_long).await;
    assert_eq!(
        clamped.info.expires_at.unwrap() - clamped.info.created_at,
        time::Duration::hours(1)
    );
    env.store
        .revoke_token(&agent.id, &clamped.info.id)
        .await
        .unwrap();
    let zero = NewToken::new("t").expires_in(std::time::Duration::ZERO);
    assert!(matches!(
        env.store.create_token(&agent.id, zero).await,
        Err(StoreError::Input(InputError::InvalidLifetime(_)))
    ));
    assert_eq!(env.store.list_tokens(&agent.id).await.unwrap().len(), 1);
    // Without a lifetime, the agent type's default (15 minutes) applies.
    let issued = env.token(&agent.id, NewToken::new("default")).await;
    assert_eq!(
        issued.info.expires_at.unwrap() - issued.info.created_at,
        time::Duration::minutes(15)
    );
}

pub async fn case_list_and_get_show_metadata_only<B: Backend>(env: Env<B>) {
    let agent = env.agent("writer").await;
    let first = env
        .token(
            &agent.id,
            NewToken::new("laptop")
                .with_capabilities(caps(&["posts:read"]))
                .created_by("alice")
                .task_id("task-7")
                .intent("draft the weekly post")
                .expires_in(std::time::Duration::from_secs(30 * 86_400)),
        )
        .await;
    env.clock.advance(std::time::Duration::from_secs(1));
    let second = env.token(&agent.id, NewToken::new("ci")).await;
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

pub async fn case_foreign_or_unknown_token_cannot_be_revoked<B: Backend>(env: Env<B>) {
    let writer = env.agent("writer").await;
    let other = env
        .store
        .create_agent(NewAgent::new("other", "bob"))
        .await
        .unwrap();
    let token = env.token(&writer.id, NewToken::new("t")).await;
    let through_other = env.store.revoke_token(&other.id, &token.info.id).await;
    assert!(
        matches!(
            through_other,
            Err(StoreError::NotFound(NotFound::Token { .. }))
        ),
        "{through_other:?}"
    );
    let unknown = env
        .store
        .revoke_token(&writer.id, &"tok_missing".into())
        .await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound(NotFound::Token { .. }))),
        "{unknown:?}"
    );
    assert!(env.resolve(&token).await.is_ok(), "still valid");
    assert_eq!(
        env.store.token(&other.id, &token.info.id).await.unwrap(),
        None
    );
}

pub async fn case_revoke_all_and_delete<B: Backend>(env: Env<B>) {
    let agent = env.agent("writer").await;
    let a = env.token(&agent.id, NewToken::new("a")).await;
    let b = env.token(&agent.id, NewToken::new("b")).await;
    assert_eq!(env.store.revoke_all_tokens(&agent.id).await.unwrap(), 2);
    assert_eq!(env.store.revoke_all_tokens(&agent.id).await.unwrap(), 0);
    for t in [&a, &b] {
        assert_eq!(env.refusal(t).await, InvalidReason::Revoked);
    }
    let c = env.token(&agent.id, NewToken::new("c")).await;
    env.store.delete_agent(&agent.id).await.unwrap();
    assert_eq!(env.refusal(&c).await, InvalidReason::Unknown);
    assert!(matches!(
        env.store.list_tokens(&agent.id).await,
        Err(StoreError::NotFound(NotFound::Agent(_)))
    ));
    assert!(matches!(
        env.store.delete_agent(&agent.id).await,
        Err(StoreError::NotFound(NotFound::Agent(_)))
    ));
}

pub async fn case_purge_removes_long_dead_tokens<B: Backend>(env: Env<B>) {
    let agent = env.agent("writer").await;
    let live = env.token(&agent.id, NewToken::new("live")).await;
    let revoked = env.token(&agent.id, NewToken::new("revoked")).await;
    let short = env
        .token(
            &agent.id,
            NewToken::new("short").expires_in(std::time::Duration::from_secs(3600)),
        )
        .await;
    env.store
        .revoke_token(&agent.id, &revoked.info.id)
        .await
        .unwrap();
    env.clock
        .advance(std::time::Duration::from_secs(10 * 86_400));
    assert_eq!(
        env.store
            .purge(std::time::Duration::from_secs(30 * 86_400))
            .await
            .unwrap(),
        0
    );
    env.clock
        .advance(std::time::Duration::from_secs(25 * 86_400));
    assert_eq!(
        env.store
            .purge(std::time::Duration::from_secs(30 * 86_400))
            .await
            .unwrap(),
        2
    );
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

/// Every way a token ends is found by a purge: revoked, retired by a rotation (its grace is an
/// expiry), completed with its task, completed with its last use. Stores may find them through
/// indexes of each end (so a purge reads what it deletes, not every token): none may be missed,
/// and no live token taken.
pub async fn case_purge_finds_tokens_by_every_end<B: Backend>(env: Env<B>) {
    let day = std::time::Duration::from_secs(86_400);
    let agent = env.agent("writer").await;
    let live = env.token(&agent.id, NewToken::new("live")).await;
    let revoked = env.token(&agent.id, NewToken::new("revoked")).await;
    env.store
        .revoke_token(&agent.id, &revoked.info.id)
        .await
        .unwrap();
    let rotated = env.token(&agent.id, NewToken::new("rotated")).await;
    let successor = env
        .store
        .rotate_token(
            &agent.id,
            &rotated.info.id,
            std::time::Duration::from_secs(60),
        )
        .await
        .unwrap();
    let tasked = env
        .token(&agent.id, NewToken::new("tasked").task_id("t-9"))
        .await;
    let ended = env
        .store
        .complete_task(&"alice".into(), "t-9")
        .await
        .unwrap();
    assert_eq!(ended, 1);
    let once = env
        .token(
            &agent.id,
            NewToken::new("once")
                .max_operations(1)
                .expires_on_completion(),
        )
        .await;
    env.resolve(&once).await.unwrap();
    assert_eq!(env.refusal(&once).await, InvalidReason::Expired);
    let _ = (&tasked, &rotated);

    env.clock.advance(10 * day);
    assert_eq!(
        env.store.purge(30 * day).await.unwrap(),
        0,
        "none ended 30 days ago"
    );
    env.clock.advance(25 * day);
    assert_eq!(env.store.purge(30 * day).await.unwrap(), 4);
    let mut left: Vec<_> = (env.store.list_tokens(&agent.id).await.unwrap())
        .into_iter()
        .map(|t| t.id)
        .collect();
    left.sort();
    let mut kept = vec![live.info.id.clone(), successor.info.id.clone()];
    kept.sort();
    assert_eq!(left, kept);
    assert!(env.resolve(&live).await.is_ok());
    assert_eq!(env.store.purge(30 * day).await.unwrap(), 0, "purged once");
}

pub async fn case_rotation_with_grace<B: Backend>(env: Env<B>) {
    let agent = env.agent("writer").await;
    let old = env
        .token(
            &agent.id,
            NewToken::new("laptop")
                .with_capabilities(caps(&["posts:read"]))
                .task_id("t-1"),
        )
        .await;
    let new = env
        .store
        .rotate_token(
            &agent.id,
            &old.info.id,
            std::time::Duration::from_secs(10 * 60),
        )
        .await
        .unwrap();
    assert_ne!(new.info.id, old.info.id);
    assert_eq!(
        (new.info.label.as_str(), new.info.task_id.as_deref()),
        ("laptop", Some("t-1"))
    );
    assert_eq!(new.info.capabilities, old.info.capabilities);
    // During the grace period both work; after it, only the new one.
    assert!(env.resolve(&old).await.is_ok());
    assert!(env.resolve(&new).await.is_ok());
    env.clock.advance(std::time::Duration::from_secs(10 * 60));
    assert_eq!(env.refusal(&old).await, InvalidReason::Expired);
    assert!(env.resolve(&new).await.is_ok());
    // A retired token cannot be rotated again.
    let again = env
        .store
        .rotate_token(&agent.id, &old.info.id, std::time::Duration::from_secs(60))
        .await;
    assert!(
        matches!(again, Err(StoreError::Input(InputError::Invalid(_)))),
        "{again:?}"
    );
}

pub async fn case_rotation_grace_never_outlasts_expiry_and_zero_revokes<B: Backend>(env: Env<B>) {
    let agent = env.agent("writer").await;
    let short = env
        .token(
            &agent.id,
            NewToken::new("short").expires_in(std::time::Duration::from_secs(5 * 60)),
        )
        .await;
    let rotated = env
        .store
        .rotate_token(
            &agent.id,
            &short.info.id,
            std::time::Duration::from_secs(3600),
        )
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

    let other = env.token(&agent.id, NewToken::new("other")).await;
    env.store
        .rotate_token(&agent.id, &other.info.id, std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(env.refusal(&other).await, InvalidReason::Revoked);
    // A negative grace period cannot be asked for: the grace is a `std::time::Duration`.
    let foreign = env
        .store
        .create_agent(NewAgent::new("other", "bob"))
        .await
        .unwrap();
    let through_other = env
        .store
        .rotate_token(&foreign.id, &rotated.info.id, std::time::Duration::ZERO)
        .await;
    assert!(
        matches!(
            through_other,
            Err(StoreError::NotFound(NotFound::Token { .. }))
        ),
        "{through_other:?}"
    );
}

/// Rotation is recorded on the identity.
pub async fn case_rotation_is_recorded_on_the_identity<B: Backend>(env: Env<B>) {
    let agent = env.agent("writer").await;
    assert_eq!(agent.last_rotated_at, None);
    let t = env.token(&agent.id, NewToken::new("t")).await;
    env.clock.advance(std::time::Duration::from_secs(5));
    let rotated = env
        .store
        .rotate_token(
            &agent.id,
            &t.info.id,
            std::time::Duration::from_secs(5 * 60),
        )
        .await
        .unwrap();
    let after = env.store.agent(&agent.id).await.unwrap().unwrap();
    assert_eq!(after.last_rotated_at, Some(rotated.info.created_at));
}

/// A lifetime past what a clock can hold is refused, not a panic.
pub async fn case_absurd_lifetimes_are_refused<B: Backend>(env: Env<B>) {
    let agent = env.agent("writer").await;
    let forever = env
        .store
        .create_token(
            &agent.id,
            NewToken::new("t").expires_in(std::time::Duration::MAX),
        )
        .await;
    assert!(
        matches!(
            forever,
            Err(StoreError::Input(InputError::InvalidLifetime(_)))
        ),
        "{forever:?}"
    );
    let t = env.token(&agent.id, NewToken::new("t")).await;
    let rotated = env
        .store
        .rotate_token(&agent.id, &t.info.id, std::time::Duration::MAX)
        .await;
    assert!(
        matches!(
            rotated,
            Err(StoreError::Input(InputError::InvalidLifetime(_)))
        ),
        "{rotated:?}"
    );
    assert!(env.resolve(&t).await.is_ok(), "nothing changed");
    assert_eq!(env.store.list_tokens(&agent.id).await.unwrap().len(), 1);
}

/// One agent thread gets a scoped identity and a credential and acts; the credential is revoked
/// and refused while the identity stays, and a new credential works.
pub async fn case_thread_identity_lifecycle<B: Backend>(env: Env<B>) {
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
        .token(&thread.id, NewToken::new("thread").task_id("task-42"))
        .await;
    let principal = env.resolve(&first).await.unwrap();
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
    assert_eq!(env.refusal(&first).await, InvalidReason::Revoked);
    let still = env.store.agent(&thread.id).await.unwrap().unwrap();
    assert_eq!(still.status, AgentStatus::Active, "the identity stays");
    let second = env.token(&thread.id, NewToken::new("thread, again")).await;
    assert!(env.resolve(&second).await.is_ok());

    // Retiring the thread is deleting its identity; the parent is untouched.
    let parent_token = env.token(&parent.id, NewToken::new("parent")).await;
    env.store.delete_agent(&thread.id).await.unwrap();
    assert_eq!(env.refusal(&second).await, InvalidReason::Unknown);
    assert!(env.resolve(&parent_token).await.is_ok());
}

/// A child is never wider than its parent: wider requests are refused and change nothing, and
/// the parent's state bounds the child at every request.
pub async fn case_children_are_never_wider_than_the_parent<B: Backend>(env: Env<B>) {
    let expires = env.now_micros() + time::Duration::days(1);
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
                Err(StoreError::Input(InputError::Invalid(_))
                    | StoreError::Input(InputError::CapabilitiesOutsidePolicy(_))
                    | StoreError::Input(InputError::InvalidLifetime(_)))
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
        matches!(grandchild, Err(StoreError::Input(InputError::Invalid(_)))),
        "{grandchild:?}"
    );
    let orphan = env
        .store
        .create_agent(NewAgent::child("orphan", "agt_missing"))
        .await;
    assert!(
        matches!(orphan, Err(StoreError::NotFound(NotFound::Agent(_)))),
        "{orphan:?}"
    );

    let t = env.token(&child.id, NewToken::new("t")).await;
    let principal = env.resolve(&t).await.unwrap();
    assert!(principal.can("posts:read") && !principal.can("posts:publish"));
    let wider_token = env
        .store
        .create_token(
            &child.id,
            NewToken::new("wide").with_capabilities(caps(&["posts:publish"])),
        )
        .await;
    assert!(
        matches!(
            wider_token,
            Err(StoreError::Input(InputError::CapabilitiesOutsidePolicy(_)))
        ),
        "a child's token is checked against the parent's policy: {wider_token:?}"
    );

    env.store
        .set_agent_status(&parent.id, AgentStatus::Disabled)
        .await
        .unwrap();
    assert_eq!(
        env.refusal(&t).await,
        InvalidReason::AgentDisabled,
        "disabling the parent stops the child"
    );
    env.store
        .set_agent_status(&parent.id, AgentStatus::Active)
        .await
        .unwrap();
    assert!(env.resolve(&t).await.is_ok());

    env.store.delete_agent(&parent.id).await.unwrap();
    assert!(
        env.store.agent(&child.id).await.unwrap().is_none(),
        "children go with the parent"
    );
    assert_eq!(env.refusal(&t).await, InvalidReason::Unknown);
}

pub async fn case_token_capabilities_outside_the_owners_role_are_refused<B: Backend>(env: Env<B>) {
    // alice's role is `posts:*` and `comments:read`; her agent has no policy of its own.
    let agent = env.agent("writer").await;
    let wide = NewToken::new("t").with_capabilities(caps(&["posts:read", "users:manage"]));
    let result = env.store.create_token(&agent.id, wide).await;
    match &result {
        Err(StoreError::Input(InputError::CapabilitiesOutsideRole { user, capabilities })) => {
            assert_eq!(user, "alice");
            assert_eq!(capabilities, "users:manage", "only what exceeds is named");
        }
        other => panic!("expected CapabilitiesOutsideRole, got {other:?}"),
    }
    let empty = NewToken::new("t").with_capabilities(caps(&[]));
    let result = env.store.create_token(&agent.id, empty).await;
    assert!(
        matches!(&result, Err(StoreError::Input(InputError::Invalid(m))) if m.contains("empty")),
        "{result:?}"
    );
    assert!(env.store.list_tokens(&agent.id).await.unwrap().is_empty());
    let within = NewToken::new("t").with_capabilities(caps(&["posts:read"]));
    env.store.create_token(&agent.id, within).await.unwrap();
}

pub async fn case_lists_a_client_sets_are_bounded<B: Backend>(env: Env<B>) {
    use crate::store::{MAX_CAPABILITIES, MAX_NAMES};
    let names = |n: usize| (0..n).map(|i| format!("s{i}")).collect::<Vec<_>>();
    let patterns = |n: usize| (0..n).map(|i| format!("c{i}:read")).collect::<Vec<_>>();
    let too_many_scopes = NewAgent::new("a", "bob").with_scopes(names(MAX_NAMES + 1));
    let result = env.store.create_agent(too_many_scopes).await;
    assert!(
        matches!(&result, Err(StoreError::Input(InputError::Invalid(m))) if m.contains("at most")),
        "{result:?}"
    );
    let too_many_modes = NewAgent::new("a", "bob").with_modes(names(MAX_NAMES + 1));
    assert!(env.store.create_agent(too_many_modes).await.is_err());
    let wide_policy = NewAgent::new("a", "bob").with_policy(Policy::allow(
        crate::ceiling::CapabilitySet::parse(patterns(MAX_CAPABILITIES + 1)).unwrap(),
    ));
    assert!(env.store.create_agent(wide_policy).await.is_err());
    assert!(env.store.list_agents().await.unwrap().is_empty());

    let agent = env
        .store
        .create_agent(NewAgent::new("a", "bob").with_scopes(names(MAX_NAMES)))
        .await
        .unwrap();
    let many = crate::ceiling::CapabilitySet::parse(patterns(MAX_CAPABILITIES + 1)).unwrap();
    let result = env
        .store
        .create_token(&agent.id, NewToken::new("t").with_capabilities(many))
        .await;
    assert!(
        matches!(result, Err(StoreError::Input(InputError::Invalid(_)))),
        "{result:?}"
    );
    let enough = crate::ceiling::CapabilitySet::parse(patterns(MAX_CAPABILITIES)).unwrap();
    env.store
        .create_token(&agent.id, NewToken::new("t").with_capabilities(enough))
        .await
        .unwrap();
}

pub async fn case_hidden_characters_are_refused<B: Backend>(env: Env<B>) {
    let agent = env.agent("writer").await;
    // A right-to-left override, a zero-width space, a BOM, a control character.
    for label in [
        "ci\u{202e}gol",
        "ci\u{200b}",
        "\u{feff}ci",
        "ci\u{7}",
        "",
        "   ",
    ] {
        let result = env
            .store
            .create_token(&agent.id, NewToken::new(label))
            .await;
        assert!(
            matches!(result, Err(StoreError::Input(InputError::InvalidLabel))),
            "{label:?}: {result:?}"
        );
    }
    let intent = NewToken::new("ci").intent("pay \u{2066}50\u{2069} EUR");
    assert!(env.store.create_token(&agent.id, intent).await.is_err());
    let environment = NewToken::new("ci").environment("prod\u{200b}");
    assert!(
        env.store
            .create_token(&agent.id, environment)
            .await
            .is_err()
    );
    let long = NewToken::new("ci").environment("e".repeat(201));
    assert!(env.store.create_token(&agent.id, long).await.is_err());
    let scope = NewAgent::new("other", "alice").with_scopes(["repo\u{200d}a"]);
    assert!(env.store.create_agent(scope).await.is_err());
    assert!(env.store.list_tokens(&agent.id).await.unwrap().is_empty());
    // Letters of any script stay welcome in a label.
    env.store
        .create_token(&agent.id, NewToken::new("Übersetzer 東京"))
        .await
        .unwrap();
}

pub async fn case_a_policy_change_applies_at_the_next_request<B: Backend>(env: Env<B>) {
    let parent = env
        .store
        .create_agent(
            NewAgent::new("codex", "alice").with_policy(Policy::allow(caps(&["posts:*"]))),
        )
        .await
        .unwrap();
    let child = env
        .store
        .create_agent(NewAgent::child("codex-t1", parent.id.clone()))
        .await
        .unwrap();
    let token = env.token(&parent.id, NewToken::new("t")).await;
    let child_token = env.token(&child.id, NewToken::new("t")).await;
    assert!(env.resolve(&token).await.unwrap().can("posts:publish"));
    assert!(
        env.resolve(&child_token)
            .await
            .unwrap()
            .can("posts:publish")
    );

    let narrowed = env
        .store
        .set_agent_policy(&parent.id, Policy::allow(caps(&["posts:read"])))
        .await
        .unwrap();
    assert_eq!(narrowed.policy.allowed(), Some(&caps(&["posts:read"])));
    let principal = env.resolve(&token).await.unwrap();
    assert!(principal.can("posts:read") && !principal.can("posts:publish"));
    assert!(
        !env.resolve(&child_token)
            .await
            .unwrap()
            .can("posts:publish"),
        "the parent's policy narrows its child at once"
    );
    let stored = env.store.agent(&parent.id).await.unwrap().unwrap();
    assert_eq!(stored.policy.allowed(), Some(&caps(&["posts:read"])));

    // A child cannot be widened past its parent; nothing changes.
    let wider = env
        .store
        .set_agent_policy(&child.id, Policy::allow(caps(&["posts:*"])))
        .await;
    assert!(
        matches!(
            wider,
            Err(StoreError::Input(InputError::CapabilitiesOutsidePolicy(_)))
        ),
        "{wider:?}"
    );
    let too_long = (0..=crate::store::MAX_CAPABILITIES)
        .map(|n| format!("c{n}:read"))
        .collect::<Vec<_>>();
    let too_long = Policy::allow(crate::ceiling::CapabilitySet::parse(too_long).unwrap());
    assert!(
        env.store
            .set_agent_policy(&parent.id, too_long)
            .await
            .is_err()
    );
    let unknown = env
        .store
        .set_agent_policy(&"agt_nope".into(), Policy::unrestricted())
        .await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound(NotFound::Agent(_)))),
        "{unknown:?}"
    );
    let stored = env.store.agent(&child.id).await.unwrap().unwrap();
    assert_eq!(stored.policy.allowed(), None);
}
