//! Delegation, task scope and ephemeral agents: chains round-trip, every link is checked at
//! every request, uses are shared down the chain, subtrees and tasks end in one call.
//!
//! Long by design: one section of the conformance suite, a flat list of independent cases
//! that a store author reads top to bottom when one fails; splitting it would only scatter
//! them.

use crate::audit::AuditQuery;
use std::time::Duration;

use super::{Env, caps};
use crate::InvalidReason;
use crate::ceiling::Policy;
use crate::clock::Clock;
use crate::delegation::{Delegation, DelegationError};
use crate::error::StoreError;
use crate::error::{InputError, NotFound, ResolveError};
use crate::principal::{AgentType, AuthSource, UserId};
use crate::store::{AgentStatus, Backend, IssuedToken, NewAgent, NewToken, UserRecord};

async fn delegate<B: Backend>(
    env: &Env<B>,
    parent: &IssuedToken,
    request: Delegation,
) -> Result<IssuedToken, StoreError> {
    env.store
        .delegate(parent.token.expose_secret(), request)
        .await
}

async fn child<B: Backend>(
    env: &Env<B>,
    parent: &IssuedToken,
    target: &crate::principal::AgentId,
) -> IssuedToken {
    delegate(env, parent, Delegation::to(target.clone(), "child"))
        .await
        .expect("a delegation within the parent")
}

fn delegation_error(result: Result<IssuedToken, StoreError>) -> DelegationError {
    match result {
        Err(StoreError::Delegation(error)) => error,
        other => panic!("expected a delegation refusal, got {other:?}"),
    }
}

/// A chain of tokens root → child → grandchild, over the agents planner, writer, editor.
async fn chain<B: Backend>(env: &Env<B>, root: NewToken) -> [IssuedToken; 3] {
    let planner = env.agent("planner").await;
    let writer = env.agent("writer").await;
    let editor = env.agent("editor").await;
    let root = env.token(&planner.id, root).await;
    let child = child(env, &root, &writer.id).await;
    let grandchild = self::child(env, &child, &editor.id).await;
    [root, child, grandchild]
}

/// A child's lineage and task fields are stored, listed and seen by the principal, chain root
/// first.
pub async fn case_chain_and_task_fields_round_trip<B: Backend>(env: Env<B>) {
    let root = NewToken::new("plan")
        .task_id("launch-7")
        .intent("ship the launch post")
        .environment("staging");
    let [root, child, grandchild] = chain(&env, root).await;
    for (token, depth) in [(&root, 0), (&child, 1), (&grandchild, 2)] {
        let stored = env
            .store
            .token(&token.info.agent_id, &token.info.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored, token.info, "stored as issued");
        assert_eq!(stored.delegation_depth, depth);
        assert_eq!(stored.task_id.as_deref(), Some("launch-7"));
        assert_eq!(stored.intent.as_deref(), Some("ship the launch post"));
        assert_eq!(stored.environment.as_deref(), Some("staging"));
    }
    assert_eq!(child.info.delegation_parent.as_ref(), Some(&root.info.id));
    assert_eq!(
        grandchild.info.delegation_parent.as_ref(),
        Some(&child.info.id)
    );
    let listed = env
        .store
        .list_tokens(&grandchild.info.agent_id)
        .await
        .unwrap();
    assert_eq!(listed, std::slice::from_ref(&grandchild.info));

    let direct = env.resolve(&root).await.unwrap();
    assert_eq!(direct.auth_source(), AuthSource::AgentToken);
    assert_eq!(direct.delegation_depth(), 0);
    let principal = env.resolve(&grandchild).await.unwrap();
    assert_eq!(principal.auth_source(), AuthSource::Delegated);
    assert_eq!(principal.delegation_depth(), 2);
    let chain: Vec<(&str, &str)> = principal
        .delegation_chain()
        .iter()
        .map(|link| (link.agent().slug(), link.token_id().as_str()))
        .collect();
    assert_eq!(
        chain,
        [
            ("planner", root.info.id.as_str()),
            ("writer", child.info.id.as_str())
        ],
        "root first"
    );
    assert_eq!(principal.agent_ref().unwrap().slug(), "editor");
    let task = principal.task().expect("a task scope");
    assert_eq!(task.task_id.as_deref(), Some("launch-7"));
    assert_eq!(task.environment.as_deref(), Some("staging"));
    assert_eq!(principal.task_id(), Some("launch-7"));
}

/// Revoking, or expiring, the root refuses every descendant at its next request, naming the
/// link that failed.
pub async fn case_revoking_the_root_refuses_every_descendant<B: Backend>(env: Env<B>) {
    let [root, child, grandchild] = chain(&env, NewToken::new("plan")).await;
    assert!(env.resolve(&grandchild).await.is_ok());
    env.store
        .revoke_token(&root.info.agent_id, &root.info.id)
        .await
        .unwrap();
    assert_eq!(env.refusal(&root).await, InvalidReason::Revoked);
    for token in [&child, &grandchild] {
        match env.resolve(token).await {
            Err(ResolveError::Refused(refused)) => {
                assert_eq!(refused.reason, InvalidReason::DelegatorRefused);
                assert_eq!(refused.delegator.as_ref(), Some(&root.info.id));
                assert_eq!(refused.delegation_chain.first(), Some(&root.info.agent_id));
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}

/// An ancestor expiring refuses its descendants; a child without an expiry inherits its
/// parent's effective one.
pub async fn case_an_expiring_ancestor_refuses_its_descendants<B: Backend>(env: Env<B>) {
    let root = NewToken::new("plan").expires_in(Duration::from_secs(3600));
    let [root, child, grandchild] = chain(&env, root).await;
    assert_eq!(child.info.expires_at, root.info.expires_at, "inherited");
    assert_eq!(grandchild.info.expires_at, root.info.expires_at);
    env.clock.advance(Duration::from_secs(3600));
    assert_eq!(env.refusal(&root).await, InvalidReason::Expired);
    assert_eq!(env.refusal(&grandchild).await, InvalidReason::Expired);
}

/// Narrowing an ancestor agent's policy narrows every descendant at its next request; disabling
/// the ancestor agent refuses them until it is enabled again.
pub async fn case_ancestor_agent_changes_reach_descendants<B: Backend>(env: Env<B>) {
    let [root, _, grandchild] = chain(&env, NewToken::new("plan")).await;
    let planner = root.info.agent_id.clone();
    let before = env.resolve(&grandchild).await.unwrap();
    assert!(before.can("posts:publish"));
    env.store
        .set_agent_policy(&planner, Policy::allow(caps(&["posts:read"])))
        .await
        .unwrap();
    let after = env.resolve(&grandchild).await.unwrap();
    assert!(after.can("posts:read") && !after.can("posts:publish"));
    env.store
        .set_agent_status(&planner, AgentStatus::Disabled)
        .await
        .unwrap();
    assert_eq!(
        env.refusal(&grandchild).await,
        InvalidReason::DelegatorRefused
    );
    env.store
        .set_agent_status(&planner, AgentStatus::Active)
        .await
        .unwrap();
    assert!(env.resolve(&grandchild).await.is_ok());
}

/// Deleting an ancestor's agent ends its tokens and every token delegated from them.
pub async fn case_deleting_an_ancestor_refuses_its_descendants<B: Backend>(env: Env<B>) {
    let [root, child, grandchild] = chain(&env, NewToken::new("plan")).await;
    env.store.delete_agent(&root.info.agent_id).await.unwrap();
    for token in [&child, &grandchild] {
        assert_eq!(
            env.refusal(token).await,
            InvalidReason::Unknown,
            "deleted with its root"
        );
        assert!(
            env.store
                .list_tokens(&token.info.agent_id)
                .await
                .unwrap()
                .is_empty()
        );
    }
    // The descendants' agents stay: only the authority lent to them is gone.
    assert!(
        env.store
            .agent(&child.info.agent_id)
            .await
            .unwrap()
            .is_some()
    );
}

/// A chain may grow to the configured depth (default 4) and no deeper.
pub async fn case_depth_limit_is_refused_with_a_clear_error<B: Backend>(env: Env<B>) {
    let (agent, mut token) = env.agent_with_token("planner").await;
    for depth in 1..=4 {
        token = child(&env, &token, &agent.id).await;
        assert_eq!(token.info.delegation_depth, depth);
    }
    assert!(env.resolve(&token).await.is_ok());
    let error =
        delegation_error(delegate(&env, &token, Delegation::to(agent.id.clone(), "deep")).await);
    assert_eq!(error, DelegationError::DepthExceeded { depth: 5, max: 4 });
    assert_eq!(
        error.to_string(),
        "delegation depth 5 exceeds the maximum of 4"
    );
}

/// A child is never wider than its parent at issue: capabilities, expiry, target and task are
/// refused by name when they exceed.
pub async fn case_a_child_cannot_exceed_its_parent<B: Backend>(env: Env<B>) {
    let planner = env.agent("planner").await;
    let writer = env.agent("writer").await;
    let parent = env
        .token(
            &planner.id,
            NewToken::new("plan")
                .with_capabilities(caps(&["posts:read", "posts:drafts:*"]))
                .expires_in(Duration::from_secs(3600))
                .task_id("t-1"),
        )
        .await;
    let to = || Delegation::to(writer.id.clone(), "child");
    let wide = delegate(
        &env,
        &parent,
        to().with_capabilities(caps(&["posts:*", "posts:read"])),
    )
    .await;
    assert_eq!(
        delegation_error(wide),
        DelegationError::CapabilitiesExceedParent("posts:*".into())
    );
    let narrow = delegate(
        &env,
        &parent,
        to().with_capabilities(caps(&["posts:drafts:edit"])),
    )
    .await
    .unwrap();
    let principal = env.resolve(&narrow).await.unwrap();
    assert!(principal.can("posts:drafts:edit") && !principal.can("posts:read"));
    let late = delegate(&env, &parent, to().expires_in(Duration::from_secs(7200))).await;
    assert!(matches!(
        delegation_error(late),
        DelegationError::ExpiryExceedsParent { .. }
    ));
    let other_task = delegate(&env, &parent, to().task_id("t-2")).await;
    assert!(matches!(
        delegation_error(other_task),
        DelegationError::OtherTask { .. }
    ));
    let bobs = env
        .store
        .create_agent(NewAgent::new("bobs-bot", "bob"))
        .await
        .unwrap();
    let stranger = delegate(&env, &parent, Delegation::to(bobs.id.clone(), "x")).await;
    assert_eq!(
        delegation_error(stranger),
        DelegationError::TargetOfAnotherOwner("bobs-bot".into())
    );
    env.store
        .set_agent_status(&writer.id, AgentStatus::Disabled)
        .await
        .unwrap();
    assert_eq!(
        delegation_error(delegate(&env, &parent, to()).await),
        DelegationError::TargetInactive("writer".into())
    );
    env.store
        .revoke_token(&planner.id, &parent.info.id)
        .await
        .unwrap();
    assert_eq!(
        delegation_error(delegate(&env, &parent, Delegation::to(planner.id.clone(), "x")).await),
        DelegationError::ParentRefused(InvalidReason::Revoked)
    );
    // Refusals stored nothing.
    assert_eq!(env.store.list_tokens(&writer.id).await.unwrap().len(), 1);
}

/// A parent with 3 uses left cannot give a child more than 3; a child's every request spends a
/// use of the parent too, so the parent gets 3 operations done in all, through any children.
pub async fn case_uses_are_shared_down_the_chain<B: Backend>(env: Env<B>) {
    let planner = env.agent("planner").await;
    let writer = env.agent("writer").await;
    let parent = env
        .token(&planner.id, NewToken::new("plan").max_operations(3))
        .await;
    let to = || Delegation::to(writer.id.clone(), "child");
    assert_eq!(
        delegation_error(delegate(&env, &parent, to().max_operations(4)).await),
        DelegationError::UsesExceedParent {
            requested: 4,
            remaining: 3
        }
    );
    let limited = delegate(&env, &parent, to().max_operations(2))
        .await
        .unwrap();
    let unlimited = delegate(&env, &parent, to()).await.unwrap();
    // Inspecting the parent to delegate spent nothing.
    let principal = env.resolve(&unlimited).await.unwrap();
    assert_eq!(
        principal.max_operations(),
        Some(3),
        "the parent's limit bounds it"
    );
    env.resolve(&limited).await.unwrap();
    env.resolve(&parent).await.unwrap();
    let stored = env
        .store
        .token(&planner.id, &parent.info.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.operations_remaining, Some(0));
    assert_eq!(env.refusal(&parent).await, InvalidReason::Exhausted);
    assert_eq!(
        env.refusal(&unlimited).await,
        InvalidReason::DelegatorRefused
    );
    assert_eq!(env.refusal(&limited).await, InvalidReason::DelegatorRefused);
    let stored = env
        .store
        .token(&writer.id, &limited.info.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.operations_remaining,
        Some(1),
        "the child's own count"
    );
}

/// 200 concurrent requests through the layer, spread over a parent limited to 20 operations
/// and two children: exactly 20 are admitted.
pub async fn case_concurrent_uses_through_a_chain_are_exact<B: Backend>(env: Env<B>) {
    super::concurrent_delegated_use_limit(vec![env.store.clone()], 20).await;
}

/// Revoking a subtree is one call: the token and everything below it, nothing beside it.
pub async fn case_a_subtree_is_revoked_in_one_call<B: Backend>(env: Env<B>) {
    let [root, child, grandchild] = chain(&env, NewToken::new("plan")).await;
    let sibling = self::child(&env, &root, &child.info.agent_id).await;
    assert!(matches!(
        env.store
            .revoke_token_tree(&root.info.agent_id, &child.info.id)
            .await,
        Err(StoreError::NotFound(NotFound::Token { .. }))
    ));
    assert_eq!(
        env.store
            .revoke_token_tree(&child.info.agent_id, &child.info.id)
            .await
            .unwrap(),
        2
    );
    assert_eq!(env.refusal(&child).await, InvalidReason::Revoked);
    assert_eq!(env.refusal(&grandchild).await, InvalidReason::Revoked);
    assert!(env.resolve(&root).await.is_ok());
    assert!(env.resolve(&sibling).await.is_ok());
    assert_eq!(
        env.store
            .revoke_token_tree(&root.info.agent_id, &root.info.id)
            .await
            .unwrap(),
        2,
        "the root and the sibling: the rest was revoked already"
    );
}

/// Completing a task ends every token of that owner's agents minted for it, and the tokens
/// delegated from them; they are refused as expired.
pub async fn case_complete_task_ends_every_token_of_the_task<B: Backend>(env: Env<B>) {
    let (a, first) = env
        .agent_with_token_as("a", NewToken::new("1").task_id("t-1"))
        .await;
    let (b, second) = env
        .agent_with_token_as("b", NewToken::new("2").task_id("t-1"))
        .await;
    let other = env.token(&a.id, NewToken::new("3").task_id("t-2")).await;
    let delegated = child(&env, &second, &b.id).await;
    let bobs = env
        .store
        .create_agent(NewAgent::new("bobs-bot", "bob"))
        .await
        .unwrap();
    let bobs = env.token(&bobs.id, NewToken::new("4").task_id("t-1")).await;
    assert_eq!(
        env.store
            .complete_task(&UserId::from("alice"), "t-1")
            .await
            .unwrap(),
        3
    );
    for token in [&first, &second, &delegated] {
        assert_eq!(env.refusal(token).await, InvalidReason::Expired);
    }
    assert!(env.resolve(&other).await.is_ok(), "another task");
    assert!(env.resolve(&bobs).await.is_ok(), "another owner's");
    assert_eq!(
        env.store
            .complete_task(&UserId::from("alice"), "t-1")
            .await
            .unwrap(),
        0,
        "ended already"
    );
}

/// An ephemeral agent's token asking past the hour gets the hour, and the agent serves one
/// task at a time.
pub async fn case_ephemeral_agents_are_clamped_and_serve_one_task<B: Backend>(env: Env<B>) {
    let agent = env
        .store
        .create_agent(NewAgent::new("runner", "alice").with_type(AgentType::Ephemeral))
        .await
        .unwrap();
    let long = env
        .token(
            &agent.id,
            NewToken::new("t")
                .task_id("a")
                .expires_in(Duration::from_secs(5 * 3600)),
        )
        .await;
    assert_eq!(
        long.info.expires_at.unwrap() - long.info.created_at,
        time::Duration::hours(1)
    );
    env.token(&agent.id, NewToken::new("same").task_id("a"))
        .await;
    let other = env
        .store
        .create_token(&agent.id, NewToken::new("other").task_id("b"))
        .await;
    assert!(
        matches!(other, Err(StoreError::Input(InputError::Invalid(_)))),
        "{other:?}"
    );
    env.store.revoke_all_tokens(&agent.id).await.unwrap();
    env.token(&agent.id, NewToken::new("next").task_id("b"))
        .await;
}

/// The one-task rule holds under concurrency: of concurrent mints for different tasks on one
/// ephemeral agent, exactly one is issued (the check and the insert are one atomic step), and
/// concurrent mints for the same task all are.
pub async fn case_concurrent_mints_for_an_ephemeral_agent_serve_one_task<B: Backend>(env: Env<B>) {
    let agent = env
        .store
        .create_agent(NewAgent::new("sprinter", "alice").with_type(AgentType::Ephemeral))
        .await
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        let store = env.store.clone();
        let id = agent.id.clone();
        tasks.spawn(async move {
            store
                .create_token(
                    &id,
                    NewToken::new(format!("t{i}")).task_id(format!("task-{i}")),
                )
                .await
        });
    }
    let (mut issued, mut refused) = (Vec::new(), 0);
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            Ok(token) => issued.push(token),
            Err(StoreError::Input(InputError::Invalid(_))) => refused += 1,
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    assert_eq!((issued.len(), refused), (1, 7), "exactly one task wins");
    let winner = issued[0].info.task_id.clone().unwrap();
    let live = env.store.list_tokens(&agent.id).await.unwrap();
    assert_eq!(live.len(), 1, "nothing stored for the refused mints");
    let mut same = tokio::task::JoinSet::new();
    for i in 0..4 {
        let store = env.store.clone();
        let id = agent.id.clone();
        let task = winner.clone();
        same.spawn(async move {
            store
                .create_token(&id, NewToken::new(format!("same{i}")).task_id(task))
                .await
        });
    }
    while let Some(result) = same.join_next().await {
        result.unwrap().expect("the same task is served");
    }
}

/// An orchestrator mints task tokens for the other agents of its owner on behalf of a person;
/// the orchestrator and the person stay layers of the ceiling and are checked every request.
pub async fn case_orchestrator_task_tokens<B: Backend>(env: Env<B>) {
    env.users.insert(UserRecord::new(
        "carol",
        Policy::allow(caps(&["posts:read"])),
    ));
    let orchestrator = env
        .store
        .create_agent(
            NewAgent::new("conductor", "alice")
                .orchestrator()
                .with_policy(Policy::allow(caps(&["posts:*"]))),
        )
        .await
        .unwrap();
    assert!(orchestrator.is_orchestrator);
    let worker = env.agent("worker").await;
    let carol = UserId::from("carol");
    // carol answers for the worker: a task token is minted on behalf of its owner or a grantee.
    env.store
        .grant(&worker.id, &carol, crate::store::AccessRole::Viewer)
        .await
        .unwrap();
    let issued = env
        .store
        .issue_task_token(
            &orchestrator.id,
            &worker.id,
            &carol,
            NewToken::new("task").task_id("t-9"),
        )
        .await
        .unwrap();
    assert_eq!(issued.info.orchestrator.as_ref(), Some(&orchestrator.id));
    assert_eq!(issued.info.delegated_by.as_ref(), Some(&carol));
    let principal = env.resolve(&issued).await.unwrap();
    assert!(principal.can("posts:read"));
    assert!(!principal.can("posts:publish"), "carol's role is a layer");
    let task = principal.task().unwrap();
    assert_eq!(task.orchestrator.as_ref(), Some(&orchestrator.id));
    assert_eq!(task.delegated_by.as_ref(), Some(&carol));

    let plain = env.agent("plain").await;
    let refused = env
        .store
        .issue_task_token(&plain.id, &worker.id, &carol, NewToken::new("x"))
        .await;
    assert_eq!(
        delegation_error(refused),
        DelegationError::NotOrchestrator("plain".into())
    );
    let itself = env
        .store
        .issue_task_token(
            &orchestrator.id,
            &orchestrator.id,
            &carol,
            NewToken::new("x"),
        )
        .await;
    assert!(matches!(
        delegation_error(itself),
        DelegationError::NotAnotherAgent(_)
    ));
    let bobs = env
        .store
        .create_agent(NewAgent::new("bobs-bot", "bob"))
        .await
        .unwrap();
    let stranger = env
        .store
        .issue_task_token(&orchestrator.id, &bobs.id, &carol, NewToken::new("x"))
        .await;
    assert!(matches!(
        delegation_error(stranger),
        DelegationError::TargetOfAnotherOwner(_)
    ));
    let nobody = env
        .store
        .issue_task_token(
            &orchestrator.id,
            &worker.id,
            &UserId::from("nobody"),
            NewToken::new("x"),
        )
        .await;
    assert!(matches!(
        delegation_error(nobody),
        DelegationError::DelegatingUserInactive(_)
    ));

    // A token delegated from the task token inherits the task, the orchestrator and the person.
    let helper = env.agent("helper").await;
    let delegated = child(&env, &issued, &helper.id).await;
    assert_eq!(delegated.info.orchestrator.as_ref(), Some(&orchestrator.id));
    assert_eq!(delegated.info.delegated_by.as_ref(), Some(&carol));
    let principal = env.resolve(&delegated).await.unwrap();
    assert!(principal.can("posts:read") && !principal.can("posts:publish"));

    env.store
        .set_agent_status(&orchestrator.id, AgentStatus::Disabled)
        .await
        .unwrap();
    assert_eq!(env.refusal(&issued).await, InvalidReason::DelegatorRefused);
    assert_eq!(
        env.refusal(&delegated).await,
        InvalidReason::DelegatorRefused
    );
    env.store
        .set_agent_status(&orchestrator.id, AgentStatus::Active)
        .await
        .unwrap();
    assert!(env.resolve(&issued).await.is_ok());
    env.users.remove(&carol);
    assert_eq!(env.refusal(&issued).await, InvalidReason::DelegatorRefused);
}

/// A delegated token's requests and refusals are recorded with its chain, root first, and its
/// task, and read back so from the store's own audit trail.
pub async fn case_audit_records_the_chain<B: Backend>(env: Env<B>) {
    use crate::audit::{AuditAction, AuditFilter, AuditWriter, WriterOptions};
    let writer = AuditWriter::spawn(
        std::sync::Arc::new(env.store.clone()),
        WriterOptions::default(),
    );
    let [root, child, grandchild] = chain(&env, NewToken::new("plan").task_id("t-3")).await;
    let secret = grandchild.token.expose_secret();
    let get = http::Method::GET;
    let call = |path: &'static str| {
        super::audit::call(&env.store, &env.clock, &writer, secret, get.clone(), path)
    };
    assert_eq!(call("/posts").await, 200);
    env.store
        .revoke_token(&child.info.agent_id, &child.info.id)
        .await
        .unwrap();
    assert_eq!(call("/posts").await, 401);
    writer.shutdown().await;
    let events = env
        .store
        .events(&AuditFilter::token(grandchild.info.id.clone()))
        .await
        .unwrap();
    let seen: Vec<_> = events
        .iter()
        .map(|e| (e.action, e.delegation_chain.clone(), e.task_id.as_deref()))
        .collect();
    let chain = vec![root.info.agent_id.clone(), child.info.agent_id.clone()];
    assert_eq!(
        seen,
        [
            (AuditAction::Request, chain.clone(), Some("t-3")),
            (AuditAction::TokenRefused, chain, Some("t-3")),
        ]
    );
    let detail = events[1].detail.as_deref().unwrap_or_default();
    assert!(detail.contains(child.info.id.as_str()), "{detail}");
}

/// A delegated principal's scopes and modes are the intersection over its chain's agents, and
/// it is supervised when any agent up its chain is.
pub async fn case_the_chain_bounds_scopes_modes_and_supervision<B: Backend>(env: Env<B>) {
    let planner = env
        .store
        .create_agent(
            NewAgent::new("planner", "alice")
                .with_type(AgentType::Supervised)
                .with_scopes(["board:1", "board:2"])
                .with_modes(["chat", "pipeline"]),
        )
        .await
        .unwrap();
    let writer = env
        .store
        .create_agent(NewAgent::new("writer", "alice").with_scopes(["board:2", "board:3"]))
        .await
        .unwrap();
    let root = env.token(&planner.id, NewToken::new("plan")).await;
    let delegated = child(&env, &root, &writer.id).await;
    let principal = env.resolve(&delegated).await.unwrap();
    let agent = principal.agent_ref().unwrap();
    assert!(agent.allows_scope("board:2"));
    assert!(!agent.allows_scope("board:1") && !agent.allows_scope("board:3"));
    assert!(agent.allows_mode("chat") && !agent.allows_mode("admin"));
    assert_eq!(
        principal.delegation_chain()[0].agent().agent_type(),
        AgentType::Supervised
    );
    assert!(principal.is_supervised(), "its delegator is supervised");
    let direct = env.token(&writer.id, NewToken::new("own")).await;
    assert!(!env.resolve(&direct).await.unwrap().is_supervised());
}

/// An orchestrator of alice's (allowed `posts:*`) and a worker, for the task-token cases.
async fn conductor_and_worker<B: Backend>(
    env: &Env<B>,
    new: NewAgent,
) -> (crate::store::Agent, crate::store::Agent) {
    let conductor = env
        .store
        .create_agent(new.with_policy(Policy::allow(caps(&["posts:*"]))))
        .await
        .unwrap();
    let worker = env.agent("worker").await;
    (conductor, worker)
}

async fn task_token<B: Backend>(
    env: &Env<B>,
    conductor: &crate::store::Agent,
    target: &crate::principal::AgentId,
) -> Result<IssuedToken, StoreError> {
    env.store
        .issue_task_token(
            &conductor.id,
            target,
            &UserId::from("alice"),
            NewToken::new("task").task_id("t-1"),
        )
        .await
}

/// Deleting the orchestrator refuses its task tokens at their next request, also one that was
/// admitted before (a verdict reached while the orchestrator stood is not reused).
pub async fn case_deleting_the_orchestrator_refuses_its_task_tokens<B: Backend>(env: Env<B>) {
    let (conductor, worker) =
        conductor_and_worker(&env, NewAgent::new("conductor", "alice").orchestrator()).await;
    let issued = task_token(&env, &conductor, &worker.id).await.unwrap();
    let helper = env.agent("helper").await;
    let delegated = child(&env, &issued, &helper.id).await;
    assert!(env.resolve(&issued).await.is_ok());
    assert!(env.resolve(&delegated).await.is_ok());
    env.store.delete_agent(&conductor.id).await.unwrap();
    assert_eq!(env.refusal(&issued).await, InvalidReason::DelegatorRefused);
    assert_eq!(
        env.refusal(&delegated).await,
        InvalidReason::DelegatorRefused
    );
}

/// A task token, or a token delegated from one, is never delegated back to the orchestrator
/// that minted it: it mints for the other agents of its owner, never for itself.
pub async fn case_a_task_token_is_not_delegated_to_its_orchestrator<B: Backend>(env: Env<B>) {
    let (conductor, worker) =
        conductor_and_worker(&env, NewAgent::new("conductor", "alice").orchestrator()).await;
    let issued = task_token(&env, &conductor, &worker.id).await.unwrap();
    let back = delegate(&env, &issued, Delegation::to(conductor.id.clone(), "back")).await;
    assert_eq!(
        delegation_error(back),
        DelegationError::NotAnotherAgent("conductor".into())
    );
    let helper = env.agent("helper").await;
    let delegated = child(&env, &issued, &helper.id).await;
    let back = delegate(
        &env,
        &delegated,
        Delegation::to(conductor.id.clone(), "back"),
    )
    .await;
    assert_eq!(
        delegation_error(back),
        DelegationError::NotAnotherAgent("conductor".into())
    );
    assert!(
        env.store
            .list_tokens(&conductor.id)
            .await
            .unwrap()
            .is_empty(),
        "nothing stored"
    );
    // The worker may still delegate to itself and to other agents.
    child(&env, &issued, &worker.id).await;
}

/// A thread-scoped child cannot be an orchestrator: its task tokens would be bounded neither by
/// its parent's policy nor by its parent's status.
pub async fn case_a_thread_scoped_child_cannot_be_an_orchestrator<B: Backend>(env: Env<B>) {
    let boss = env
        .store
        .create_agent(
            NewAgent::new("boss", "alice").with_policy(Policy::allow(caps(&["posts:read"]))),
        )
        .await
        .unwrap();
    let refused = env
        .store
        .create_agent(NewAgent::child("boss-conductor", boss.id.clone()).orchestrator())
        .await;
    assert!(
        matches!(
            refused,
            Err(StoreError::Delegation(DelegationError::OrchestratorIsChild(ref slug)))
                if slug == "boss-conductor"
        ),
        "{refused:?}"
    );
    assert!(
        env.store
            .agent_by_slug("boss-conductor")
            .await
            .unwrap()
            .is_none(),
        "nothing stored"
    );
    // A child that is no orchestrator is still created, and cannot mint task tokens.
    let child = env
        .store
        .create_agent(NewAgent::child("boss-helper", boss.id.clone()))
        .await
        .unwrap();
    let worker = env.agent("worker").await;
    assert_eq!(
        delegation_error(task_token(&env, &child, &worker.id).await),
        DelegationError::NotOrchestrator("boss-helper".into())
    );
}

/// A supervised orchestrator's task tokens are supervised, and so are the tokens delegated from
/// them: their critical actions wait for an approval, whatever the type of the agent they are
/// for. An autonomous orchestrator's are not.
pub async fn case_a_supervised_orchestrators_task_tokens_are_supervised<B: Backend>(env: Env<B>) {
    use crate::approval::{ApprovalRejection, CriticalAction, Supervision};
    let (conductor, worker) = conductor_and_worker(
        &env,
        NewAgent::new("conductor", "alice")
            .orchestrator()
            .with_type(AgentType::Supervised),
    )
    .await;
    assert_eq!(worker.agent_type, AgentType::Autonomous);
    let issued = task_token(&env, &conductor, &worker.id).await.unwrap();
    let helper = env.agent("helper").await;
    let delegated = child(&env, &issued, &helper.id).await;
    let supervision = Supervision::new(env.store.clone(), caps(&["posts:publish"]));
    let action = CriticalAction::new("posts:publish", &http::Method::POST, "/posts");
    for token in [&issued, &delegated] {
        let principal = env.resolve(token).await.unwrap();
        let orchestrator = principal.orchestrator().expect("the orchestrator");
        assert_eq!(orchestrator.id(), &conductor.id);
        assert_eq!(orchestrator.agent_type(), AgentType::Supervised);
        assert!(principal.is_supervised(), "{}", token.info.label);
        let refused = supervision.check(&principal, &action).await;
        assert!(
            matches!(refused, Err(ApprovalRejection::Required(_))),
            "{}: {refused:?}",
            token.info.label
        );
    }
    let autonomous = env
        .store
        .create_agent(NewAgent::new("autonomous-conductor", "alice").orchestrator())
        .await
        .unwrap();
    let plain = task_token(&env, &autonomous, &helper.id).await.unwrap();
    let principal = env.resolve(&plain).await.unwrap();
    assert_eq!(
        principal.orchestrator().map(|o| o.agent_type()),
        Some(AgentType::Autonomous)
    );
    assert!(!principal.is_supervised());
}

/// A task token is minted on behalf of the target agent's owner or of someone holding a grant
/// on it (any role), not of any active user.
pub async fn case_a_task_token_is_minted_on_behalf_of_a_person_of_the_agent<B: Backend>(
    env: Env<B>,
) {
    let (conductor, worker) =
        conductor_and_worker(&env, NewAgent::new("conductor", "alice").orchestrator()).await;
    let bob = UserId::from("bob");
    let on_behalf_of = |person: UserId| {
        let (store, conductor, worker) = (&env.store, &conductor.id, &worker.id);
        async move {
            store
                .issue_task_token(conductor, worker, &person, NewToken::new("task"))
                .await
        }
    };
    assert_eq!(
        delegation_error(on_behalf_of(bob.clone()).await),
        DelegationError::DelegatingUserUnrelated {
            user: "bob".into(),
            agent: "worker".into(),
        }
    );
    assert!(
        env.store.list_tokens(&worker.id).await.unwrap().is_empty(),
        "nothing stored"
    );
    // A grant on another agent is not one on the target.
    env.store
        .grant(&conductor.id, &bob, crate::store::AccessRole::Admin)
        .await
        .unwrap();
    assert!(matches!(
        delegation_error(on_behalf_of(bob.clone()).await),
        DelegationError::DelegatingUserUnrelated { .. }
    ));
    env.store
        .grant(&worker.id, &bob, crate::store::AccessRole::Viewer)
        .await
        .unwrap();
    let issued = on_behalf_of(bob.clone()).await.unwrap();
    assert_eq!(issued.info.delegated_by.as_ref(), Some(&bob));
    let owners = on_behalf_of(UserId::from("alice")).await.unwrap();
    assert!(env.resolve(&owners).await.is_ok());
}

/// Completing a task is recorded as state, not as an expiry instant: a clock that then reads
/// earlier (skew between nodes, an NTP step back) does not admit its tokens again.
pub async fn case_a_completed_task_stays_ended_when_the_clock_steps_back<B: Backend>(env: Env<B>) {
    let (writer, root) = env
        .agent_with_token_as("writer", NewToken::new("1").task_id("t-1"))
        .await;
    let delegated = child(&env, &root, &writer.id).await;
    env.clock.advance(Duration::from_secs(10));
    let completed_at = env.now_micros();
    assert_eq!(
        env.store
            .complete_task(&UserId::from("alice"), "t-1")
            .await
            .unwrap(),
        2
    );
    for token in [&root, &delegated] {
        let stored = env
            .store
            .token(&token.info.agent_id, &token.info.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.task_completed_at, Some(completed_at));
        assert_eq!(
            stored.expires_at, token.info.expires_at,
            "its expiry is kept"
        );
    }
    env.clock.set(env.clock.now() - time::Duration::seconds(2));
    for token in [&root, &delegated] {
        assert_eq!(env.refusal(token).await, InvalidReason::Expired);
    }
    let refused = delegate(&env, &root, Delegation::to(writer.id.clone(), "again")).await;
    assert_eq!(
        delegation_error(refused),
        DelegationError::ParentRefused(InvalidReason::Expired)
    );
    assert!(
        env.store
            .rotate_token(&writer.id, &root.info.id, Duration::ZERO)
            .await
            .is_err(),
        "a completed token is not live"
    );
    assert_eq!(
        env.store
            .complete_task(&UserId::from("alice"), "t-1")
            .await
            .unwrap(),
        0,
        "ended already"
    );
}

/// Rotating a parent leaves its children under the old token: without a use limit they end
/// with it at the end of its grace; a use-limited parent's uses move to the new token, so its
/// children are refused at once.
pub async fn case_rotating_a_parent_ends_its_children_with_the_old_token<B: Backend>(env: Env<B>) {
    let grace = Duration::from_secs(60);
    let (planner, unlimited) = env.agent_with_token("planner").await;
    let writer = env.agent("writer").await;
    let child_of_unlimited = child(&env, &unlimited, &writer.id).await;
    let limited = env
        .token(&planner.id, NewToken::new("limited").max_operations(5))
        .await;
    let child_of_limited = child(&env, &limited, &writer.id).await;
    for token in [&unlimited, &limited] {
        env.store
            .rotate_token(&planner.id, &token.info.id, grace)
            .await
            .unwrap();
    }
    assert_eq!(
        env.refusal(&child_of_limited).await,
        InvalidReason::DelegatorRefused,
        "the old token's uses moved to the new one"
    );
    assert!(
        env.resolve(&child_of_unlimited).await.is_ok(),
        "within the grace"
    );
    env.clock.advance(grace);
    assert_eq!(
        env.refusal(&child_of_unlimited).await,
        InvalidReason::DelegatorRefused,
        "the grace is over"
    );
}

/// A task scope's `max_operations` is the token's own limit, the principal's the least up its
/// chain; a child of a task token may not name another task or environment, a child of a token
/// without them may name any.
pub async fn case_a_childs_task_and_limit_as_documented<B: Backend>(env: Env<B>) {
    let planner = env.agent("planner").await;
    let writer = env.agent("writer").await;
    let to = || Delegation::to(writer.id.clone(), "child");
    let plain = env
        .token(&planner.id, NewToken::new("plain").max_operations(3))
        .await;
    let tasked = delegate(&env, &plain, to().task_id("t-5").environment("staging"))
        .await
        .expect("a parent without a task lets its child name one");
    let principal = env.resolve(&tasked).await.unwrap();
    let task = principal.task().expect("a task scope");
    assert_eq!(task.task_id.as_deref(), Some("t-5"));
    assert_eq!(task.max_operations, None, "the token's own limit: none");
    assert_eq!(
        principal.max_operations(),
        Some(3),
        "the least up the chain"
    );
    assert!(matches!(
        delegation_error(delegate(&env, &tasked, to().task_id("t-6")).await),
        DelegationError::OtherTask { .. }
    ));
    assert_eq!(
        delegation_error(delegate(&env, &tasked, to().environment("prod")).await),
        DelegationError::OtherEnvironment("staging".into())
    );
    let own = delegate(&env, &tasked, to().max_operations(1))
        .await
        .unwrap();
    let principal = env.resolve(&own).await.unwrap();
    assert_eq!(principal.task().unwrap().max_operations, Some(1));
    assert_eq!(principal.max_operations(), Some(1));
}

/// Purging a dead token removes the tokens delegated from it too, and every store counts them
/// all: the same state gives the same number.
pub async fn case_purge_counts_the_delegated_tokens_it_removes<B: Backend>(env: Env<B>) {
    let [root, child, _] = chain(&env, NewToken::new("plan")).await;
    let other = env.token(&root.info.agent_id, NewToken::new("other")).await;
    env.store
        .revoke_token(&root.info.agent_id, &root.info.id)
        .await
        .unwrap();
    env.clock.advance(Duration::from_secs(31 * 86_400));
    assert_eq!(
        env.store
            .purge(Duration::from_secs(30 * 86_400))
            .await
            .unwrap(),
        3,
        "the revoked root, its child and its grandchild"
    );
    assert!(
        env.store
            .list_tokens(&child.info.agent_id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(env.resolve(&other).await.is_ok(), "a live token stays");
    assert_eq!(
        env.store
            .purge(Duration::from_secs(30 * 86_400))
            .await
            .unwrap(),
        0
    );
}
