//! The management calls of delegation and task scope (`Managed`: who may, and what the trail
//! records) and their HTTP routes: revoke a subtree, complete a task, delegate with a bearer
//! token.
#![cfg(feature = "server")]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use tower_agent_auth::AgentAuthLayer;
use tower_agent_auth::audit::{
    AuditAction, AuditEvent, AuditFilter, AuditQuery, AuditWriter, MemoryAuditSink, Outcome,
    WriterOptions,
};
use tower_agent_auth::ceiling::Policy;
use tower_agent_auth::delegation::{Delegation, Delegator};
use tower_agent_auth::error::{InvalidReason, StoreError};
use tower_agent_auth::principal::UserId;
use tower_agent_auth::server::{
    ManageState, PasswordVerifier, Sessions, delegations_router, hash_password, login_router,
    tasks_router, verify_password,
};
use tower_agent_auth::store::{
    AccessRole, Agent, AgentStatus, IssuedToken, Managed, MemoryStore, MemoryUserDirectory,
    NewAgent, NewToken, TokenStatus, UserDirectory, UserRecord,
};
use tower_agent_auth::token::TokenFormat;
use tower_agent_auth::{TokenLookup, TokenResolver};

fn store() -> MemoryStore {
    let users = MemoryUserDirectory::new();
    for user in ["alice", "bob", "olga", "vera", "carol"] {
        users.insert(UserRecord::new(user, Policy::unrestricted()));
    }
    MemoryStore::new(TokenFormat::new("acme").unwrap(), users)
}

async fn agent(store: &MemoryStore, slug: &str, owner: &str) -> Agent {
    store
        .create_agent(NewAgent::new(slug, owner))
        .await
        .unwrap()
}

async fn refusal(store: &MemoryStore, token: &IssuedToken) -> Option<InvalidReason> {
    let parsed = store
        .token_format()
        .parse(token.token.expose_secret())
        .unwrap();
    let lookup = TokenLookup::new(parsed.hash(), parsed.slug(), parsed.is_legacy());
    store.resolve(&lookup).await.err().and_then(|e| e.reason())
}

async fn trail(sink: &MemoryAuditSink, writer: AuditWriter) -> Vec<AuditEvent> {
    writer.shutdown().await;
    sink.events(&AuditFilter::default()).await.unwrap()
}

#[tokio::test]
async fn a_subtree_is_revoked_by_owner_or_admin_and_recorded_with_its_count() {
    let store = store();
    let planner = agent(&store, "planner", "alice").await;
    let helper = agent(&store, "helper", "alice").await;
    store
        .grant(&planner.id, &"olga".into(), AccessRole::Admin)
        .await
        .unwrap();
    store
        .grant(&planner.id, &"vera".into(), AccessRole::Operator)
        .await
        .unwrap();
    let root = store
        .create_token(&planner.id, NewToken::new("root"))
        .await
        .unwrap();
    let secret = root.token.expose_secret();
    let child = store
        .delegate(secret, Delegation::to(helper.id.clone(), "c"))
        .await
        .unwrap();
    let grandchild = store
        .delegate(
            child.token.expose_secret(),
            Delegation::to(helper.id.clone(), "g"),
        )
        .await
        .unwrap();

    let sink = Arc::new(MemoryAuditSink::default());
    let writer = AuditWriter::spawn(sink.clone(), WriterOptions::default());
    let as_vera = Managed::new(&store, "vera").with_audit(&writer);
    assert!(matches!(
        as_vera.revoke_token_tree(&planner.id, &root.info.id).await,
        Err(StoreError::Forbidden { .. })
    ));
    assert_eq!(refusal(&store, &grandchild).await, None, "nothing changed");
    let as_olga = Managed::new(&store, "olga").with_audit(&writer);
    assert_eq!(
        as_olga
            .revoke_token_tree(&planner.id, &root.info.id)
            .await
            .unwrap(),
        3
    );
    for token in [&root, &child, &grandchild] {
        assert_eq!(refusal(&store, token).await, Some(InvalidReason::Revoked));
    }
    let events = trail(&sink, writer).await;
    let revoked: Vec<_> = events
        .iter()
        .filter(|e| e.action == AuditAction::TokenRevoked)
        .map(|e| {
            (
                e.outcome,
                e.actor.as_ref().map(|a| a.as_str().to_owned()),
                e.detail.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(revoked.len(), 2, "{revoked:?}");
    assert_eq!(revoked[0].0, Outcome::Denied);
    assert_eq!(revoked[0].1.as_deref(), Some("vera"));
    assert_eq!(revoked[1].0, Outcome::Success);
    assert!(
        revoked[1].2.contains("3 tokens") && revoked[1].2.contains("with 2 delegated tokens"),
        "{}",
        revoked[1].2
    );
}

#[tokio::test]
async fn a_task_is_completed_by_its_owner_only_and_recorded_per_agent() {
    let store = store();
    let a = agent(&store, "a", "alice").await;
    let b = agent(&store, "b", "alice").await;
    let theirs = agent(&store, "theirs", "bob").await;
    store
        .grant(&a.id, &"olga".into(), AccessRole::Admin)
        .await
        .unwrap();
    let first = store
        .create_token(&a.id, NewToken::new("1").task_id("t-1"))
        .await
        .unwrap();
    let second = store
        .create_token(&b.id, NewToken::new("2").task_id("t-1"))
        .await
        .unwrap();
    let bobs = store
        .create_token(&theirs.id, NewToken::new("3").task_id("t-1"))
        .await
        .unwrap();
    let child = store
        .delegate(
            first.token.expose_secret(),
            Delegation::to(b.id.clone(), "c"),
        )
        .await
        .unwrap();

    let sink = Arc::new(MemoryAuditSink::default());
    let writer = AuditWriter::spawn(sink.clone(), WriterOptions::default());
    // An admin of one agent does not own the task: nothing of alice's ends.
    let as_olga = Managed::new(&store, "olga").with_audit(&writer);
    assert_eq!(as_olga.complete_task("t-1").await.unwrap(), 0);
    assert_eq!(refusal(&store, &first).await, None);
    let as_alice = Managed::new(&store, "alice").with_audit(&writer);
    assert_eq!(as_alice.complete_task("t-1").await.unwrap(), 3);
    for token in [&first, &second, &child] {
        assert_eq!(refusal(&store, token).await, Some(InvalidReason::Expired));
    }
    assert_eq!(refusal(&store, &bobs).await, None, "bob's task is his");
    let events = trail(&sink, writer).await;
    let completed: Vec<_> = events
        .iter()
        .filter(|e| e.action == AuditAction::TaskCompleted)
        .map(|e| {
            (
                e.actor.as_ref().map(|u| u.as_str().to_owned()),
                e.agent.clone(),
                e.task_id.clone(),
                e.detail.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(completed.len(), 3, "{completed:?}");
    assert_eq!(completed[0].0.as_deref(), Some("olga"));
    assert_eq!(completed[0].1, None, "olga's served no agent");
    assert!(completed[0].3.contains("0 tokens ended"));
    let agents: Vec<_> = completed[1..].iter().map(|c| c.1.clone()).collect();
    assert!(agents.contains(&Some(a.id.clone())) && agents.contains(&Some(b.id.clone())));
    assert!(
        completed[1..]
            .iter()
            .all(|c| c.2.as_deref() == Some("t-1") && c.3.contains("3 tokens ended"))
    );
}

#[tokio::test]
async fn an_agent_holding_only_delegated_tokens_of_a_task_gets_its_task_completed() {
    let store = store();
    let a = agent(&store, "a", "alice").await;
    let helper = agent(&store, "helper", "alice").await;
    let root = store
        .create_token(&a.id, NewToken::new("1").task_id("t-1"))
        .await
        .unwrap();
    store
        .delegate(
            root.token.expose_secret(),
            Delegation::to(helper.id.clone(), "c"),
        )
        .await
        .unwrap();
    let sink = Arc::new(MemoryAuditSink::default());
    let writer = AuditWriter::spawn(sink.clone(), WriterOptions::default());
    let as_alice = Managed::new(&store, "alice").with_audit(&writer);
    assert_eq!(as_alice.complete_task("t-1").await.unwrap(), 2);
    let agents: Vec<_> = trail(&sink, writer)
        .await
        .into_iter()
        .filter(|e| e.action == AuditAction::TaskCompleted)
        .map(|e| e.agent)
        .collect();
    assert_eq!(agents.len(), 2, "{agents:?}");
    assert!(agents.contains(&Some(a.id.clone())));
    assert!(
        agents.contains(&Some(helper.id.clone())),
        "the helper held only a delegated token of the task"
    );
}

#[tokio::test]
async fn a_task_token_is_minted_on_behalf_with_issue_rights_on_both_agents() {
    let store = store();
    let conductor = store
        .create_agent(NewAgent::new("conductor", "alice").orchestrator())
        .await
        .unwrap();
    let worker = agent(&store, "worker", "alice").await;
    store
        .grant(&worker.id, &"olga".into(), AccessRole::Admin)
        .await
        .unwrap();
    let sink = Arc::new(MemoryAuditSink::default());
    let writer = AuditWriter::spawn(sink.clone(), WriterOptions::default());
    let carol = UserId::from("carol");
    store
        .grant(&worker.id, &carol, AccessRole::Viewer)
        .await
        .unwrap();
    let task = || NewToken::new("task").task_id("t-7");
    let as_olga = Managed::new(&store, "olga").with_audit(&writer);
    assert!(matches!(
        as_olga
            .issue_task_token(&conductor.id, &worker.id, &carol, task())
            .await,
        Err(StoreError::Forbidden { agent, .. }) if agent == "conductor"
    ));
    let as_alice = Managed::new(&store, "alice").with_audit(&writer);
    let issued = as_alice
        .issue_task_token(&conductor.id, &worker.id, &carol, task())
        .await
        .unwrap();
    assert_eq!(
        issued.info.created_by.as_ref().map(|u| u.as_str()),
        Some("alice")
    );
    assert_eq!(issued.info.delegated_by.as_ref(), Some(&carol));
    assert_eq!(issued.info.orchestrator.as_ref(), Some(&conductor.id));
    let refused = as_alice
        .issue_task_token(&worker.id, &conductor.id, &carol, task())
        .await;
    assert!(
        matches!(&refused, Err(StoreError::Delegation(_))),
        "{refused:?}"
    );
    let events = trail(&sink, writer).await;
    let issued_events: Vec<_> = events
        .iter()
        .filter(|e| e.action == AuditAction::TokenIssued)
        .map(|e| (e.outcome, e.detail.clone().unwrap_or_default()))
        .collect();
    assert_eq!(issued_events.len(), 3, "{issued_events:?}");
    assert_eq!(issued_events[0].0, Outcome::Denied);
    assert_eq!(issued_events[1].0, Outcome::Success);
    assert!(
        issued_events[1]
            .1
            .contains("as orchestrator conductor on behalf of carol"),
        "{}",
        issued_events[1].1
    );
    assert_eq!(issued_events[2].0, Outcome::Denied);
    assert!(issued_events[2].1.contains("not an active orchestrator"));
}

/// alice, with the password "pw".
struct Passwords(String);

#[async_trait::async_trait]
impl PasswordVerifier for Passwords {
    async fn verify(
        &self,
        user: &str,
        password: &str,
    ) -> Result<Option<UserId>, tower_agent_auth::error::BoxError> {
        Ok((user == "alice" && verify_password(&self.0, password)).then(|| UserId::from(user)))
    }
}

async fn app(store: &MemoryStore, users: MemoryUserDirectory) -> Router {
    let directory: Arc<dyn UserDirectory> = Arc::new(users);
    let sessions = Sessions::new(directory, Duration::from_secs(3600));
    let verifier = Arc::new(Passwords(hash_password("pw").unwrap()));
    let state = ManageState {
        store: store.clone(),
        audit: None,
    };
    Router::new()
        .merge(login_router(sessions.clone(), verifier, false))
        .merge(tasks_router(state.clone()))
        .merge(delegations_router(state))
        .layer(
            AgentAuthLayer::new(store.clone())
                .optional()
                .with_session_resolver(sessions),
        )
}

async fn call(app: &Router, request: Request<Body>) -> (StatusCode, http::HeaderMap, Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn sign_in(app: &Router) -> String {
    let fields = [("user", "alice"), ("password", "pw")];
    let request = crate::page_forms::sign_in_request(app, &fields).await;
    let (_, headers, _) = call(app, request).await;
    let cookie = headers[header::SET_COOKIE].to_str().unwrap();
    cookie.split(';').next().unwrap().to_owned()
}

fn post(path: &str, auth: (&'static str, String), body: Value) -> Request<Body> {
    Request::post(path)
        .header(auth.0, auth.1)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

#[tokio::test]
async fn the_routes_revoke_a_subtree_complete_a_task_and_delegate_with_a_bearer_token() {
    let users = MemoryUserDirectory::new();
    users.insert(UserRecord::new("alice", Policy::unrestricted()));
    let store = MemoryStore::new(TokenFormat::new("acme").unwrap(), users.clone());
    let planner = agent(&store, "planner", "alice").await;
    agent(&store, "helper", "alice").await;
    let app = app(&store, users).await;
    let cookie = sign_in(&app).await;
    let root = store
        .create_token(
            &planner.id,
            NewToken::new("root").task_id("t-1").max_operations(5),
        )
        .await
        .unwrap();
    let bearer = (
        "authorization",
        format!("Bearer {}", root.token.expose_secret()),
    );

    // A session cannot delegate: the parent token is the proof.
    let body = json!({"agent": "helper", "label": "c"});
    let (status, _, refused) = call(
        &app,
        post("/api/delegations", ("cookie", cookie.clone()), body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    let (status, headers, child) =
        call(&app, post("/api/delegations", bearer.clone(), body.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{child}");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(child["delegation_depth"], 1);
    assert_eq!(child["task_id"], "t-1");
    assert!(child["token"].as_str().unwrap().starts_with("acme_helper_"));
    // The delegation request spent one of the parent's 5 uses: 4 are left to lend.
    let (status, _, more) = call(
        &app,
        post(
            "/api/delegations",
            bearer.clone(),
            json!({"agent": "helper", "label": "m", "max_operations": 5}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{more}");
    assert_eq!(more["error"], "exceeds_parent");
    assert!(
        more["message"]
            .as_str()
            .unwrap()
            .contains("max_operations 5"),
        "{more}"
    );
    let (status, _, other) = call(
        &app,
        post(
            "/api/delegations",
            bearer.clone(),
            json!({"agent": "helper", "label": "o", "task_id": "t-2"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{other}");
    let (status, _, _) = call(
        &app,
        post(
            "/api/delegations",
            bearer.clone(),
            json!({"agent": "nobody", "label": "o"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Management: the tree of the root (the root and the child), then the task.
    let path = format!("/api/agents/planner/tokens/{}/revoke-tree", root.info.id);
    let (status, _, revoked) = call(&app, post(&path, ("cookie", cookie.clone()), json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert_eq!(revoked["revoked"], 2);
    let (status, _, _) = call(&app, post(&path, bearer.clone(), json!({}))).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the revoked token is refused"
    );
    store
        .create_token(&planner.id, NewToken::new("next").task_id("t-1"))
        .await
        .unwrap();
    let (status, _, completed) = call(
        &app,
        post(
            "/api/tasks/t-1/complete",
            ("cookie", cookie.clone()),
            json!({}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{completed}");
    assert_eq!(completed, json!({"task_id": "t-1", "ended": 1}));
}

#[tokio::test]
async fn another_owners_agent_answers_as_an_unknown_one_and_is_not_written_to() {
    let users = MemoryUserDirectory::new();
    users.insert(UserRecord::new("alice", Policy::unrestricted()));
    users.insert(UserRecord::new("bob", Policy::unrestricted()));
    let store = MemoryStore::new(TokenFormat::new("acme").unwrap(), users.clone());
    let planner = agent(&store, "planner", "alice").await;
    let helper = agent(&store, "helper", "alice").await;
    let bobs = agent(&store, "bobs-bot", "bob").await;
    let app = app(&store, users).await;
    let root = store
        .create_token(&planner.id, NewToken::new("root"))
        .await
        .unwrap();
    let bearer = (
        "authorization",
        format!("Bearer {}", root.token.expose_secret()),
    );
    let ask = |slug: &str| {
        post(
            "/api/delegations",
            bearer.clone(),
            json!({"agent": slug, "label": "x"}),
        )
    };
    let (status, _, theirs) = call(&app, ask("bobs-bot")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{theirs}");
    // Bob's agent out of the way, the same slug is unknown: the same answer.
    store.delete_agent(&bobs.id).await.unwrap();
    let (status, _, unknown) = call(&app, ask("bobs-bot")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(theirs, unknown);

    // The audited refusal is on alice's side: under the parent's agent, not naming bob's.
    let bobs = agent(&store, "bobs-bot", "bob").await;
    let sink = Arc::new(MemoryAuditSink::default());
    let writer = AuditWriter::spawn(sink.clone(), WriterOptions::default());
    let delegator = Delegator::new(&store).with_audit(&writer);
    let secret = root.token.expose_secret();
    assert!(
        delegator
            .delegate(secret, Delegation::to(bobs.id.clone(), "x"))
            .await
            .is_err()
    );
    assert!(
        delegator
            .delegate(
                secret,
                Delegation::to(helper.id.clone(), "y").task_id("t-9")
            )
            .await
            .is_ok()
    );
    store
        .set_agent_status(&helper.id, AgentStatus::Disabled)
        .await
        .unwrap();
    assert!(
        delegator
            .delegate(secret, Delegation::to(helper.id.clone(), "z"))
            .await
            .is_err()
    );
    let denied: Vec<_> = trail(&sink, writer)
        .await
        .into_iter()
        .filter(|e| e.outcome == Outcome::Denied)
        .collect();
    assert_eq!(denied.len(), 2, "{denied:?}");
    for event in &denied {
        assert_eq!(event.agent.as_ref(), Some(&planner.id), "{event:?}");
        assert_eq!(event.actor.as_ref().map(|a| a.as_str()), Some("alice"));
    }
    let detail = denied[0].detail.as_deref().unwrap();
    assert!(
        !detail.contains("bobs-bot") && detail.contains("unknown target agent"),
        "{detail}"
    );
    let detail = denied[1].detail.as_deref().unwrap();
    assert!(detail.contains("(target helper)"), "{detail}");
}

#[tokio::test]
async fn revoking_a_completed_token_records_its_real_status() {
    let store = store();
    let a = agent(&store, "a", "alice").await;
    let token = store
        .create_token(&a.id, NewToken::new("1").task_id("t-1"))
        .await
        .unwrap();
    let sink = Arc::new(MemoryAuditSink::default());
    let writer = AuditWriter::spawn(sink.clone(), WriterOptions::default());
    let as_alice = Managed::new(&store, "alice").with_audit(&writer);
    assert_eq!(as_alice.complete_task("t-1").await.unwrap(), 1);
    assert_eq!(
        store
            .token(&a.id, &token.info.id)
            .await
            .unwrap()
            .unwrap()
            .status_at(time::OffsetDateTime::now_utc()),
        TokenStatus::Completed
    );
    assert_eq!(
        as_alice
            .revoke_token_tree(&a.id, &token.info.id)
            .await
            .unwrap(),
        1
    );
    let details: Vec<_> = trail(&sink, writer)
        .await
        .into_iter()
        .filter(|e| e.action == AuditAction::TokenRevoked)
        .filter_map(|e| e.detail)
        .collect();
    assert_eq!(details.len(), 1);
    assert!(
        details[0].contains("status: completed -> revoked"),
        "{}",
        details[0]
    );
}

#[tokio::test]
async fn json_views_name_the_orchestrator_flag_and_the_task_completion_apart() {
    use tower_agent_auth::server::views;
    let store = store();
    let conductor = store
        .create_agent(NewAgent::new("conductor", "alice").orchestrator())
        .await
        .unwrap();
    let worker = agent(&store, "worker", "alice").await;
    let agent_view = views::agent(&conductor);
    assert_eq!(agent_view["is_orchestrator"], true, "{agent_view}");
    assert!(agent_view.get("orchestrator").is_none(), "{agent_view}");
    let task = store
        .issue_task_token(
            &conductor.id,
            &worker.id,
            &"alice".into(),
            NewToken::new("t").task_id("t-1"),
        )
        .await
        .unwrap();
    store.complete_task(&"alice".into(), "t-1").await.unwrap();
    let info = store
        .token(&worker.id, &task.info.id)
        .await
        .unwrap()
        .unwrap();
    assert!(info.task_completed_at.is_some());
    let token_view = views::token(&info);
    assert!(token_view["task_completed_at"].is_string(), "{token_view}");
    assert!(token_view.get("completed_at").is_none(), "{token_view}");
    assert_eq!(token_view["orchestrator"], conductor.id.as_str());
}

/// Hostile delegation bodies are refused without costing the parent a use, and without echoing
/// a megabyte back; a lifetime in seconds is held to the same hundred years as one in text.
#[tokio::test]
async fn a_refused_delegation_body_spends_no_use_and_echoes_little() {
    let users = MemoryUserDirectory::new();
    users.insert(UserRecord::new("alice", Policy::unrestricted()));
    let store = MemoryStore::new(TokenFormat::new("acme").unwrap(), users.clone());
    let planner = agent(&store, "planner", "alice").await;
    agent(&store, "helper", "alice").await;
    let app = app(&store, users).await;
    let root = store
        .create_token(&planner.id, NewToken::new("root").max_operations(10))
        .await
        .unwrap();
    let bearer = (
        "authorization",
        format!("Bearer {}", root.token.expose_secret()),
    );
    let huge = format!("posts:{}", "a".repeat(1 << 20));
    for body in [
        json!({"agent": "helper", "label": "x", "capabilites": ["posts:read"]}),
        json!({"agent": "helper", "label": "x", "capabilities": [huge]}),
        json!({"agent": "helper", "label": "x", "expires_in": 9_999_999_999u64}),
    ] {
        let response = app
            .clone()
            .oneshot(post("/api/delegations", bearer.clone(), body))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        assert!(bytes.len() < 1024, "{} bytes answered", bytes.len());
    }
    let left = store
        .token(&planner.id, &root.info.id)
        .await
        .unwrap()
        .unwrap()
        .operations_remaining;
    assert_eq!(left, Some(10), "refused before acting: no use spent");
}
