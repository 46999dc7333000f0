//! The grants for agents, on memory, SQLite and PostgreSQL: client credentials (an agent with a
//! client secret) and token exchange (RFC 8693, a narrower child for a sub-agent); the "Agent
//! Tokens" endpoint is `oauth_agent_token`'s. Each case runs once per store
//! (`on_every_store!`); none lets a token or a client secret reach a URL or the audit trail.
#![cfg(all(feature = "oauth", feature = "testing"))]

use http::StatusCode;
use serde_json::json;
use tower_agent_auth::ceiling::{CapabilitySet, Policy};
use tower_agent_auth::oauth::NewClient;
use tower_agent_auth::principal::AgentId;
use tower_agent_auth::store::{AgentStatus, Backend, NewToken, UserRecord};

use crate::oauth_grants_env::{
    ACCESS, Answer, EXCHANGE, Env, OTHER_RESOURCE, RESOURCE, on_every_store,
};

on_every_store!(
    client_credentials_issue_the_agents_own_token,
    client_credentials_are_for_agents_with_a_secret,
    token_exchange_issues_a_narrower_child_for_the_actor,
    token_exchange_refuses_what_would_widen,
    token_exchange_of_a_cli_token_binds_and_bounds_the_child,
    a_delegated_token_keeps_its_parents_resource,
);

async fn credentials<B: Backend>(
    env: &Env<B>,
    client: &(String, String),
    extra: &[(&str, &str)],
) -> Answer {
    let mut pairs = vec![("grant_type", "client_credentials")];
    pairs.extend_from_slice(extra);
    env.token(&pairs, Some((&client.0, &client.1))).await
}

/// `alice`'s agent `planner` with a client secret, and a token of its own for
/// `posts:read posts:write`.
async fn planner<B: Backend>(env: &Env<B>) -> (AgentId, (String, String), String) {
    let planner = env.agent("planner", "alice").await;
    let client = env.agent_client(&planner).await;
    let token = credentials(env, &client, &[("scope", "posts:read posts:write")])
        .await
        .access_token();
    (planner, client, token)
}

async fn exchange<B: Backend>(
    env: &Env<B>,
    client: &(String, String),
    subject: &str,
    extra: &[(&str, &str)],
) -> Answer {
    let mut pairs = vec![
        ("grant_type", EXCHANGE),
        ("subject_token", subject),
        ("subject_token_type", ACCESS),
    ];
    pairs.extend_from_slice(extra);
    env.token(&pairs, Some((&client.0, &client.1))).await
}

fn patterns(scope: &serde_json::Value) -> Vec<String> {
    let mut patterns: Vec<String> = scope
        .as_str()
        .unwrap()
        .split(' ')
        .map(str::to_owned)
        .collect();
    patterns.sort();
    patterns
}

async fn client_credentials_issue_the_agents_own_token<B: Backend>(env: Env<B>) {
    let (planner, client, token) = planner(&env).await;
    assert_eq!(env.api("GET", &token).await, StatusCode::OK);
    assert_eq!(env.api("POST", &token).await, StatusCode::OK);
    let answer = credentials(&env, &client, &[("scope", "posts:read")]).await;
    let body = answer.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "posts:read");
    assert!(body.get("refresh_token").is_none(), "{body}");
    let narrow = answer.access_token();
    assert_eq!(env.api("POST", &narrow).await, StatusCode::FORBIDDEN);
    let seen = env.introspect(&token).await;
    assert_eq!(seen["client_id"], "planner");
    assert_eq!(seen["sub"], "alice");
    assert_eq!(seen["agent_id"], planner.as_str());
    assert_eq!(seen["aud"], RESOURCE);
    assert_eq!(seen["act"], json!({"sub": planner.as_str()}));

    // Without a scope: everything the agent may hold (alice's role: its policy is open).
    let all = credentials(&env, &client, &[]).await.json();
    assert_eq!(patterns(&all["scope"]), ["comments:read", "posts:*"]);
    // Wider than alice's role: refused, not narrowed.
    let wider = credentials(&env, &client, &[("scope", "comments:write")]).await;
    assert_eq!(wider.error(), "invalid_scope");
    // Another resource of this server binds the token there; an unknown one is refused.
    let other = credentials(&env, &client, &[("resource", OTHER_RESOURCE)]).await;
    assert_eq!(
        env.api("GET", &other.access_token()).await,
        StatusCode::UNAUTHORIZED
    );
    let unknown = credentials(&env, &client, &[("resource", "https://evil.example/")]).await;
    assert_eq!(unknown.error(), "invalid_target");
    // client_secret_post works as well as Basic.
    let posted = env
        .token(
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &client.0),
                ("client_secret", &client.1),
            ],
            None,
        )
        .await;
    assert_eq!(posted.status, StatusCode::OK, "{}", posted.body);
    assert!(
        env.trail()
            .await
            .contains("oauth client_credentials for client planner")
    );
    env.assert_no_secret_leaked().await;
}

async fn client_credentials_are_for_agents_with_a_secret<B: Backend>(env: Env<B>) {
    let (planner, client, token) = planner(&env).await;
    let wrong = (client.0.clone(), "cs_not-the-secret".to_owned());
    assert_eq!(
        credentials(&env, &wrong, &[]).await.error(),
        "invalid_client"
    );
    // An agent's client without a secret, and a registered client with one, may not.
    let reader = env.agent("reader", "alice").await;
    env.store.set_agent_redirects(&reader, &[]).await.unwrap();
    let public = env
        .token(
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "reader"),
            ],
            None,
        )
        .await;
    assert_eq!(public.error(), "unauthorized_client");
    let registered = env
        .store
        .register_client(NewClient::new("app").confidential())
        .await
        .unwrap();
    let registered = (
        registered.client.id,
        registered.secret.unwrap().expose_secret().to_owned(),
    );
    env.secret(&registered.1);
    assert_eq!(
        credentials(&env, &registered, &[]).await.error(),
        "unauthorized_client"
    );
    // A new secret: the old one fails at once.
    let renewed = env.agent_client(&planner).await;
    assert_ne!(renewed.1, client.1);
    assert_eq!(
        credentials(&env, &client, &[]).await.error(),
        "invalid_client"
    );
    assert_eq!(
        credentials(&env, &renewed, &[]).await.status,
        StatusCode::OK
    );
    // A disabled agent gets nothing more, and its token is refused.
    env.store
        .set_agent_status(&planner, AgentStatus::Disabled)
        .await
        .unwrap();
    assert_eq!(
        credentials(&env, &renewed, &[]).await.error(),
        "invalid_grant"
    );
    assert_eq!(env.api("GET", &token).await, StatusCode::UNAUTHORIZED);
    env.store
        .set_agent_status(&planner, AgentStatus::Active)
        .await
        .unwrap();
    // Nor does an agent whose owner is deactivated.
    let role = Policy::allow(CapabilitySet::parse(["posts:*", "comments:read"]).unwrap());
    env.users
        .insert(UserRecord::new("alice", role).with_active(false));
    assert_eq!(
        credentials(&env, &renewed, &[]).await.error(),
        "invalid_grant"
    );
    assert_eq!(env.api("GET", &token).await, StatusCode::UNAUTHORIZED);
    env.assert_no_secret_leaked().await;
}

async fn token_exchange_issues_a_narrower_child_for_the_actor<B: Backend>(env: Env<B>) {
    let (planner, client, subject) = planner(&env).await;
    let writer = env.agent("writer", "alice").await;
    let actor = env.cli_token(&writer).await;
    let actor = actor.token.expose_secret();
    let acting = [
        ("actor_token", actor),
        ("actor_token_type", ACCESS),
        ("scope", "posts:read"),
    ];
    let answer = exchange(&env, &client, &subject, &acting).await;
    let body = answer.json();
    assert_eq!(body["issued_token_type"], ACCESS);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "posts:read");
    assert_eq!(body["expires_in"], 3600, "the subject's expiry");
    assert!(body.get("refresh_token").is_none(), "{body}");
    let child = answer.access_token();
    assert!(child.starts_with("acme_writer_"), "the actor's token");
    assert_eq!(env.api("GET", &child).await, StatusCode::OK);
    assert_eq!(env.api("POST", &child).await, StatusCode::FORBIDDEN);
    let seen = env.introspect(&child).await;
    let (planner_id, writer_id) = (planner.as_str(), writer.as_str());
    assert_eq!(
        seen["act"],
        json!({"sub": writer_id, "act": {"sub": planner_id}})
    );
    assert_eq!(seen["delegation_chain"], json!([planner_id]));
    assert_eq!(seen["delegation_depth"], 1);
    assert_eq!(seen["client_id"], "planner");
    assert_eq!(seen["aud"], RESOURCE);
    assert_eq!(seen["sub"], "alice");

    // A child of the child: one more level in `act`.
    let grandchild = exchange(&env, &client, &child, &[]).await.access_token();
    let seen = env.introspect(&grandchild).await;
    let act = json!({"sub": writer_id, "act": {"sub": writer_id, "act": {"sub": planner_id}}});
    assert_eq!(seen["act"], act);
    // Without an actor, the subject's own agent, narrower.
    let own = exchange(&env, &client, &subject, &[("scope", "posts:read")]).await;
    assert_eq!(
        env.introspect(&own.access_token()).await["agent_id"],
        planner_id
    );

    // Revoking the subject ends every child at its next request.
    let subject_id = env.introspect(&subject).await["jti"]
        .as_str()
        .unwrap()
        .to_owned();
    env.store
        .revoke_token(&planner, &subject_id.into())
        .await
        .unwrap();
    for token in [&child, &grandchild] {
        assert_eq!(env.api("GET", token).await, StatusCode::UNAUTHORIZED);
    }
    let again = exchange(&env, &client, &subject, &[]).await;
    assert_eq!(again.error(), "invalid_request");
    assert!(env.trail().await.contains("oauth token exchange planner"));
    env.assert_no_secret_leaked().await;
}

async fn token_exchange_refuses_what_would_widen<B: Backend>(env: Env<B>) {
    let (_, client, subject) = planner(&env).await;
    let narrow = credentials(&env, &client, &[("scope", "posts:read")])
        .await
        .access_token();
    let typed = |kind: &'static str| [("actor_token", "x"), ("actor_token_type", kind)];
    let refused = [
        ("scope", "comments:read", "invalid_scope"),
        ("resource", OTHER_RESOURCE, "invalid_target"),
        ("audience", OTHER_RESOURCE, "invalid_target"),
        (
            "requested_token_type",
            "urn:ietf:params:oauth:token-type:id_token",
            "invalid_request",
        ),
    ];
    for (name, value, error) in refused {
        let answer = exchange(&env, &client, &subject, &[(name, value)]).await;
        assert_eq!(answer.error(), error, "{name}={value}");
    }
    let wider = exchange(&env, &client, &narrow, &[("scope", "posts:write")]).await;
    assert_eq!(wider.error(), "invalid_scope");
    // The subject's own resource may be named.
    let same = exchange(&env, &client, &subject, &[("resource", RESOURCE)]).await;
    assert_eq!(same.status, StatusCode::OK, "{}", same.body);
    // Malformed: no type, another type, an actor without its type, not a token.
    let untyped = env
        .token(
            &[("grant_type", EXCHANGE), ("subject_token", &subject)],
            Some((&client.0, &client.1)),
        )
        .await;
    assert_eq!(untyped.error(), "invalid_request");
    let refresh = typed("urn:ietf:params:oauth:token-type:refresh_token");
    assert_eq!(
        exchange(&env, &client, &subject, &refresh).await.error(),
        "invalid_request"
    );
    let unknown = exchange(&env, &client, &subject, &typed(ACCESS)).await;
    assert_eq!(unknown.error(), "invalid_request");
    let forged = exchange(&env, &client, "acme_planner_forged", &[]).await;
    assert_eq!(forged.error(), "invalid_request");
    // Another client may not exchange a token issued to this one.
    let other = env.agent("other", "alice").await;
    let other = env.agent_client(&other).await;
    assert_eq!(
        exchange(&env, &other, &subject, &[]).await.error(),
        "invalid_request"
    );
    assert!(env.trail().await.contains("presented by client other"));
    // An actor of another owner is refused, without naming it.
    let bobs = env.agent("bobs-bot", "bob").await;
    let bobs = env.cli_token(&bobs).await;
    let actor = [
        ("actor_token", bobs.token.expose_secret()),
        ("actor_token_type", ACCESS),
    ];
    let answer = exchange(&env, &client, &subject, &actor).await;
    assert_eq!(answer.error(), "invalid_request");
    assert!(!answer.body.contains("bobs-bot"), "{}", answer.body);
    env.assert_no_secret_leaked().await;
}

async fn token_exchange_of_a_cli_token_binds_and_bounds_the_child<B: Backend>(env: Env<B>) {
    let writer = env.agent("writer", "alice").await;
    let subject = env.cli_token(&writer).await;
    let subject = subject.token.expose_secret();
    // A token minted without a client may be exchanged by any client: a public one here.
    let public = NewClient::new("public app").redirect_uri("http://127.0.0.1/cb");
    let public = env.store.register_client(public).await.unwrap().client.id;
    let pairs = [
        ("grant_type", EXCHANGE),
        ("client_id", public.as_str()),
        ("subject_token", subject),
        ("subject_token_type", ACCESS),
    ];
    let answer = env.token(&pairs, None).await;
    let body = answer.json();
    assert_eq!(
        body["expires_in"], 3600,
        "the access-token lifetime, not forever"
    );
    // Everything alice's role allows, the subject asked for nothing narrower.
    assert_eq!(patterns(&body["scope"]), ["comments:read", "posts:*"]);
    let child = answer.access_token();
    let seen = env.introspect(&child).await;
    assert_eq!(
        seen.get("aud"),
        None,
        "bound to no resource, as its subject: binding it would admit it where an audience is required"
    );
    assert_eq!(seen["client_id"], public.as_str());
    // Naming a resource is refused: the subject works only where none is required.
    let mut named = pairs.to_vec();
    named.push(("resource", RESOURCE));
    let refused = env.token(&named, None).await;
    assert_eq!(refused.json()["error"], "invalid_target");
    // A subject ending sooner gives its expiry to the child.
    let short = NewToken::new("short").expires_in(std::time::Duration::from_secs(600));
    let short = env.store.create_token(&writer, short).await.unwrap();
    env.secret(short.token.expose_secret());
    let mut pairs = pairs.to_vec();
    pairs[2] = ("subject_token", short.token.expose_secret());
    assert_eq!(env.token(&pairs, None).await.json()["expires_in"], 600);
    env.assert_no_secret_leaked().await;
}

/// What token exchange rests on, in the store: a child records its parent's resource, may not
/// name another, and records the client it was issued to.
async fn a_delegated_token_keeps_its_parents_resource<B: Backend>(env: Env<B>) {
    use tower_agent_auth::delegation::{Delegation, DelegationError};
    use tower_agent_auth::error::StoreError;
    let planner = env.agent("planner", "alice").await;
    let worker = env.agent("worker", "alice").await;
    let bound = NewToken::new("bound").resource(RESOURCE).client("c_1");
    let bound = env.store.create_token(&planner, bound).await.unwrap();
    let parent = bound.token.expose_secret();
    let child = Delegation::to(worker.clone(), "child");
    let child = env.store.delegate(parent, child).await.unwrap();
    assert_eq!(child.info.resource.as_deref(), Some(RESOURCE));
    assert_eq!(child.info.client_id, None, "no client was issued the child");
    let elsewhere = Delegation::to(worker.clone(), "elsewhere").resource(OTHER_RESOURCE);
    let refused = env.store.delegate(parent, elsewhere).await.unwrap_err();
    assert!(
        matches!(
            &refused,
            StoreError::Delegation(DelegationError::OtherResource(r)) if r == RESOURCE
        ),
        "{refused}"
    );
    let exchanged = Delegation::to(worker, "exchanged")
        .resource(RESOURCE)
        .client("c_2");
    let exchanged = env.store.delegate(parent, exchanged).await.unwrap();
    let stored = env
        .store
        .token(&exchanged.info.agent_id, &exchanged.info.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.client_id.as_deref(), Some("c_2"));
    assert_eq!(stored.resource.as_deref(), Some(RESOURCE));
    // A child of an unbound parent is unbound: naming a resource is refused, since a resource
    // that requires an audience would admit the child where the parent is refused.
    let unbound = env.cli_token(&planner).await;
    let bound_child = Delegation::to(planner.clone(), "bound").resource(OTHER_RESOURCE);
    let refused = env
        .store
        .delegate(unbound.token.expose_secret(), bound_child)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &refused,
            StoreError::Delegation(DelegationError::ResourceWithoutAudience(r)) if r == OTHER_RESOURCE
        ),
        "{refused}"
    );
    let unbound_child = Delegation::to(planner, "unbound");
    let unbound_child = env
        .store
        .delegate(unbound.token.expose_secret(), unbound_child)
        .await
        .unwrap();
    assert_eq!(unbound_child.info.resource, None);
}

/// A grant turned off is not served, nor advertised.
#[tokio::test]
async fn a_grant_turned_off_is_unsupported() {
    use tower::ServiceExt;
    use tower_agent_auth::oauth::AuthorizationServer;
    let (users, clock) = (
        tower_agent_auth::testing::users(),
        tower_agent_auth::testing::clock(),
    );
    let store = tower_agent_auth::store::MemoryStore::with_config(
        tower_agent_auth::testing::config(&users, &clock),
    );
    let planner = store
        .create_agent(tower_agent_auth::store::NewAgent::new("planner", "alice"))
        .await
        .unwrap();
    let secret = store
        .register_agent_client(&planner.id)
        .await
        .unwrap()
        .secret
        .unwrap();
    let server = AuthorizationServer::new(store, "http://127.0.0.1:8080")
        .unwrap()
        .without_grant("client_credentials");
    assert!(
        !server.metadata()["grant_types_supported"]
            .to_string()
            .contains("client_credentials")
    );
    let body = format!(
        "grant_type=client_credentials&client_id=planner&client_secret={}",
        secret.expose_secret()
    );
    let request = http::Request::post("/oauth/token")
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(axum::body::Body::from(body))
        .unwrap();
    let response = server.router().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"], "unsupported_grant_type");
}
