//! The "Agent Tokens" endpoint (`POST /oauth/agent-token`) on memory, SQLite and PostgreSQL:
//! an orchestrator's client mints task tokens on behalf of a person who authorized it, with
//! exact use limits and lifetimes, every refusal its RFC 6749 error, the orchestrator, its
//! policy and the person checked again at every request; no token or client secret in a URL
//! or the audit trail.
#![cfg(all(feature = "oauth", feature = "testing"))]

use http::StatusCode;
use serde_json::json;
use tower_agent_auth::ceiling::{CapabilitySet, Policy};
use tower_agent_auth::principal::{AgentId, UserId};
use tower_agent_auth::store::{AccessRole, AgentStatus, Backend, NewAgent, UserRecord};

use crate::oauth_grants_env::{Answer, Env, on_every_store};

on_every_store!(
    agent_token_admits_exactly_its_operations,
    agent_token_names_only_people_who_authorized_the_orchestrator,
    agent_token_is_checked_again_at_every_request,
);

/// `alice`'s orchestrator `conductor` (policy `posts:*`) with a client secret, and her agent
/// `worker`.
async fn conductor<B: Backend>(env: &Env<B>) -> (AgentId, AgentId, (String, String)) {
    let policy = Policy::allow(CapabilitySet::parse(["posts:*"]).unwrap());
    let conductor = NewAgent::new("conductor", "alice")
        .orchestrator()
        .with_policy(policy);
    let conductor = env.agent_from(conductor).await;
    let worker = env.agent("worker", "alice").await;
    let client = env.agent_client(&conductor).await;
    (conductor, worker, client)
}

async fn agent_token<B: Backend>(
    env: &Env<B>,
    client: &(String, String),
    person: &str,
    extra: &[(&str, &str)],
) -> Answer {
    let mut pairs = vec![
        ("client_id", client.0.as_str()),
        ("client_secret", client.1.as_str()),
        ("delegated_by_user_id", person),
        ("agent", "worker"),
        ("scope", "posts:read"),
        ("task_id", "t-1"),
    ];
    for (name, value) in extra {
        pairs.retain(|(n, _)| n != name);
        pairs.push((name, value));
    }
    env.post("/oauth/agent-token", &pairs, None).await
}

async fn agent_token_admits_exactly_its_operations<B: Backend>(env: Env<B>) {
    let (conductor, worker, client) = conductor(&env).await;
    let limited = [
        ("agent_type", "autonomous"),
        ("max_operations", "3"),
        ("expires_on_completion", "true"),
        ("intent_description", "read the drafts"),
    ];
    let answer = agent_token(&env, &client, "alice", &limited).await;
    let body = answer.json();
    let fields = json!({
        "token_type": "Bearer", "expires_in": 900, "scope": "posts:read",
        "agent_type": "autonomous", "task_id": "t-1", "max_operations": 3,
        "expires_on_completion": true,
    });
    for (name, value) in fields.as_object().unwrap() {
        assert_eq!(&body[name], value, "{name}: {body}");
    }
    let token = answer.access_token();
    let seen = env.introspect(&token).await;
    assert_eq!(seen["operations_remaining"], 3);
    assert_eq!(seen["orchestrator_id"], conductor.as_str());
    assert_eq!(seen["agent_id"], worker.as_str());
    assert_eq!(seen["delegated_by"], "alice");
    assert_eq!(seen["intent_description"], "read the drafts");
    assert_eq!(seen["client_id"], "conductor");
    assert_eq!(env.api("GET", &token).await, StatusCode::OK);
    assert_eq!(env.introspect(&token).await["operations_remaining"], 2);
    for _ in 0..2 {
        assert_eq!(env.api("GET", &token).await, StatusCode::OK);
    }
    assert_eq!(env.api("GET", &token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(env.introspect(&token).await, json!({"active": false}));

    // One hour at most; Basic authentication too; no limit is said as null.
    let pairs = [
        ("delegated_by_user_id", "alice"),
        ("agent", "worker"),
        ("scope", "posts:read"),
        ("task_id", "t-1"),
        ("expires_in", "86400"),
    ];
    let basic = Some((client.0.as_str(), client.1.as_str()));
    let answer = env.post("/oauth/agent-token", &pairs, basic).await;
    assert_eq!(answer.json()["expires_in"], 3600, "{}", answer.body);
    assert_eq!(answer.json()["max_operations"], serde_json::Value::Null);
    env.assert_no_secret_leaked().await;
}

async fn agent_token_names_only_people_who_authorized_the_orchestrator<B: Backend>(env: Env<B>) {
    let (conductor, worker, client) = conductor(&env).await;
    let bob = UserId::from("bob");
    // bob answers for the worker, but has no say over the orchestrator.
    env.store
        .grant(&worker, &bob, AccessRole::Viewer)
        .await
        .unwrap();
    assert_eq!(
        agent_token(&env, &client, "bob", &[]).await.error(),
        "invalid_grant"
    );
    env.store
        .grant(&conductor, &bob, AccessRole::Operator)
        .await
        .unwrap();
    assert_eq!(
        agent_token(&env, &client, "bob", &[]).await.error(),
        "invalid_grant"
    );
    // An admin of the orchestrator who answers for the worker: the token is on his behalf.
    env.store
        .grant(&conductor, &bob, AccessRole::Admin)
        .await
        .unwrap();
    let answer = agent_token(&env, &client, "bob", &[]).await;
    assert_eq!(
        env.introspect(&answer.access_token()).await["delegated_by"],
        "bob"
    );
    // An admin of the orchestrator with no standing on the target is not enough.
    env.store.revoke_grant(&worker, &bob).await.unwrap();
    assert_eq!(
        agent_token(&env, &client, "bob", &[]).await.error(),
        "invalid_grant"
    );
    assert_eq!(
        agent_token(&env, &client, "nobody", &[]).await.error(),
        "invalid_grant"
    );

    // Scope within the orchestrator's policy (alice may read comments, the conductor not).
    let comments = [("scope", "comments:read")];
    assert_eq!(
        agent_token(&env, &client, "alice", &comments).await.error(),
        "invalid_scope"
    );
    for (extra, error) in [
        (("agent_type", "ephemeral"), "invalid_request"),
        (("agent", "nobody"), "invalid_request"),
        (("agent", "conductor"), "invalid_request"),
        (("resource", "https://evil.example/"), "invalid_target"),
    ] {
        let answer = agent_token(&env, &client, "alice", &[extra]).await;
        assert_eq!(answer.error(), error, "{extra:?}");
    }
    // Another owner's agent reads as none.
    env.agent("bobs-bot", "bob").await;
    let answer = agent_token(&env, &client, "alice", &[("agent", "bobs-bot")]).await;
    assert_eq!(answer.json()["error_description"], "unknown agent");

    // Only an orchestrator's client, with its secret.
    let planner = env.agent("planner", "alice").await;
    let planner = env.agent_client(&planner).await;
    assert_eq!(
        agent_token(&env, &planner, "alice", &[]).await.error(),
        "unauthorized_client"
    );
    let wrong = (client.0.clone(), "cs_wrong".to_owned());
    assert_eq!(
        agent_token(&env, &wrong, "alice", &[]).await.error(),
        "invalid_client"
    );
    let public = env
        .post(
            "/oauth/agent-token",
            &[
                ("client_id", "conductor"),
                ("delegated_by_user_id", "alice"),
            ],
            None,
        )
        .await;
    assert_eq!(public.error(), "invalid_client");
    let trail = env.trail().await;
    assert!(trail.contains("oauth agent-token refused: orchestrator conductor"));
    env.assert_no_secret_leaked().await;
}

async fn agent_token_is_checked_again_at_every_request<B: Backend>(env: Env<B>) {
    let (conductor, worker, client) = conductor(&env).await;
    // On bob's behalf: an admin of the orchestrator, a viewer of the worker.
    let bob = UserId::from("bob");
    env.store
        .grant(&conductor, &bob, AccessRole::Admin)
        .await
        .unwrap();
    env.store
        .grant(&worker, &bob, AccessRole::Viewer)
        .await
        .unwrap();
    let token = agent_token(&env, &client, "bob", &[]).await.access_token();
    assert_eq!(env.api("GET", &token).await, StatusCode::OK);
    // The orchestrator disabled: its task tokens stop, and it mints no more.
    env.store
        .set_agent_status(&conductor, AgentStatus::Disabled)
        .await
        .unwrap();
    assert_eq!(env.api("GET", &token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        agent_token(&env, &client, "bob", &[]).await.error(),
        "unauthorized_client"
    );
    env.store
        .set_agent_status(&conductor, AgentStatus::Active)
        .await
        .unwrap();
    assert_eq!(env.api("GET", &token).await, StatusCode::OK);
    // Its policy narrowed: the token narrows with it.
    let comments = Policy::allow(CapabilitySet::parse(["comments:*"]).unwrap());
    env.store
        .set_agent_policy(&conductor, comments)
        .await
        .unwrap();
    assert_eq!(env.api("GET", &token).await, StatusCode::FORBIDDEN);
    let posts = Policy::allow(CapabilitySet::parse(["posts:*"]).unwrap());
    env.store.set_agent_policy(&conductor, posts).await.unwrap();
    assert_eq!(env.api("GET", &token).await, StatusCode::OK);
    // The person's role narrowed, then the person deactivated.
    let comments_only = Policy::allow(CapabilitySet::parse(["comments:read"]).unwrap());
    env.users
        .insert(UserRecord::new("bob", comments_only.clone()));
    assert_eq!(env.api("GET", &token).await, StatusCode::FORBIDDEN);
    env.users
        .insert(UserRecord::new("bob", comments_only).with_active(false));
    assert_eq!(env.api("GET", &token).await, StatusCode::UNAUTHORIZED);
    env.assert_no_secret_leaked().await;
}
