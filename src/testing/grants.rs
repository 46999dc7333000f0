//! Grants, and the access rule `Managed` applies.

use super::Env;
use crate::ceiling::Policy;
use crate::error::{NotFound, StoreError};
use crate::store::{AccessRole, AgentStatus, Backend, Managed, NewAgent, NewToken, UserRecord};

pub async fn case_grants_are_kept_per_agent_and_user<B: Backend>(env: Env<B>) {
    let agent = env.agent("writer").await;
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
        matches!(stranger, Err(StoreError::NotFound(NotFound::User(_)))),
        "{stranger:?}"
    );
    let no_agent = env
        .store
        .grant(&"agt_missing".into(), &"bob".into(), AccessRole::Admin)
        .await;
    assert!(
        matches!(no_agent, Err(StoreError::NotFound(NotFound::Agent(_)))),
        "{no_agent:?}"
    );
    env.store
        .revoke_grant(&agent.id, &"bob".into())
        .await
        .unwrap();
    let again = env.store.revoke_grant(&agent.id, &"bob".into()).await;
    assert!(
        matches!(again, Err(StoreError::NotFound(NotFound::Grant { .. }))),
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
pub async fn case_access_role_matrix<B: Backend>(env: Env<B>) {
    for user in ["admin-user", "operator-user", "viewer-user", "stranger"] {
        env.users
            .insert(UserRecord::new(user, Policy::unrestricted()));
    }
    let agent = env.agent("writer").await;
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
    // (actor, may see, may list, may issue/rotate/revoke/manage); reading the audit trail goes
    // with listing (the `audit` section checks it).
    let matrix = [
        ("alice", true, true, true),
        ("admin-user", true, true, true),
        ("operator-user", true, true, false),
        ("viewer-user", true, false, false),
        ("stranger", false, false, false),
    ];
    for (n, (actor, may_view, may_list, may_manage)) in matrix.into_iter().enumerate() {
        let managed = Managed::new(&env.store, actor);
        let target = env.token(&agent.id, NewToken::new("target")).await;
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
                .rotate_token(
                    &agent.id,
                    &target.info.id,
                    std::time::Duration::from_secs(60),
                )
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

/// [`Store::agents_visible_to`](crate::store::Store::agents_visible_to): exactly
/// the agents a user owns, holds a grant on, and the children of those, by slug — the same set
/// [`Managed`]'s rule finds one agent at a time.
pub async fn case_agents_visible_to_are_owned_granted_and_their_children<B: Backend>(env: Env<B>) {
    for user in ["carol", "dave"] {
        env.users
            .insert(UserRecord::new(user, Policy::unrestricted()));
    }
    let agent = |slug: &'static str, owner: &'static str| {
        let store = &env.store;
        async move {
            store
                .create_agent(NewAgent::new(slug, owner))
                .await
                .unwrap()
        }
    };
    let child = |slug: &'static str, parent: crate::principal::AgentId| {
        let store = &env.store;
        async move {
            store
                .create_agent(NewAgent::child(slug, parent))
                .await
                .unwrap()
        }
    };
    let own = agent("a-own", "alice").await;
    child("a-own-kid", own.id.clone()).await;
    let granted = agent("b-granted", "bob").await;
    child("b-granted-kid", granted.id.clone()).await;
    let other = agent("b-other", "bob").await;
    let other_kid = child("b-other-kid", other.id.clone()).await;
    agent("b-hidden", "bob").await;
    let carols = agent("c-own", "carol").await;
    child("c-own-kid", carols.id.clone()).await;
    env.store
        .grant(&granted.id, &"carol".into(), AccessRole::Viewer)
        .await
        .unwrap();
    env.store
        .grant(&other_kid.id, &"carol".into(), AccessRole::Operator)
        .await
        .unwrap();

    let slugs = |user: &'static str| {
        let store = &env.store;
        async move {
            let visible = store.agents_visible_to(&user.into()).await.unwrap();
            let mut slugs = Vec::new();
            for id in &visible {
                slugs.push(store.agent(id).await.unwrap().unwrap().slug.to_string());
            }
            // The rule, one agent at a time.
            let mut expected = Vec::new();
            for agent in store.list_agents().await.unwrap() {
                let mut role = store.role_of(&agent.id, &user.into()).await.unwrap();
                if let Some(parent) = &agent.parent {
                    role = role.max(store.role_of(parent, &user.into()).await.unwrap());
                }
                if crate::store::authorize(
                    &user.into(),
                    &agent,
                    role,
                    crate::store::Operation::ViewAgent,
                )
                .is_ok()
                {
                    expected.push(agent.slug.to_string());
                }
            }
            assert_eq!(slugs, expected, "{user}: as the rule finds them, by slug");
            slugs
        }
    };
    assert_eq!(
        slugs("carol").await,
        [
            "b-granted",
            "b-granted-kid",
            "b-other-kid",
            "c-own",
            "c-own-kid"
        ]
    );
    assert_eq!(slugs("alice").await, ["a-own", "a-own-kid"]);
    assert_eq!(
        slugs("bob").await,
        [
            "b-granted",
            "b-granted-kid",
            "b-hidden",
            "b-other",
            "b-other-kid"
        ]
    );
    assert!(slugs("dave").await.is_empty(), "no grant, no agent");
    env.store
        .revoke_grant(&granted.id, &"carol".into())
        .await
        .unwrap();
    assert_eq!(
        slugs("carol").await,
        ["b-other-kid", "c-own", "c-own-kid"],
        "a withdrawn grant hides the agent and its children"
    );
    // Deleting an agent takes its grants and its children with it: the user's grants, the
    // owner's agents and the listing follow (stores that index them by user and owner too).
    env.store
        .grant(&other.id, &"dave".into(), AccessRole::Viewer)
        .await
        .unwrap();
    assert_eq!(slugs("dave").await, ["b-other", "b-other-kid"]);
    env.store.delete_agent(&other.id).await.unwrap();
    assert!(
        slugs("dave").await.is_empty(),
        "the grant went with the agent"
    );
    assert_eq!(slugs("carol").await, ["c-own", "c-own-kid"]);
    assert_eq!(
        slugs("bob").await,
        ["b-granted", "b-granted-kid", "b-hidden"]
    );
    let owned = env.store.agents_owned_by(&"bob".into()).await.unwrap();
    let owned: Vec<String> = owned.iter().map(|a| a.slug.to_string()).collect();
    assert_eq!(owned, ["b-granted", "b-granted-kid", "b-hidden"]);
    // A slug freed by the deletion is taken again, and owned once.
    agent("b-other", "bob").await;
    let owned = env.store.agents_owned_by(&"bob".into()).await.unwrap();
    assert_eq!(owned.len(), 4);
}
