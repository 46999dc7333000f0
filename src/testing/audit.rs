//! The store's own audit trail: the layer and `Managed` record through an `AuditWriter` into
//! the store's sink, and the store answers "what did this identity do".

use crate::TokenResolver;
use crate::audit::{AuditQuery, AuditSink};
use std::convert::Infallible;
use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use tower::{ServiceBuilder, ServiceExt};

use super::Env;
use crate::audit::{AuditAction, AuditEvent, AuditFilter, AuditWriter, Outcome, WriterOptions};
use crate::ceiling::Policy;
use crate::clock::{Clock, ManualClock};
use crate::error::StoreError;
use crate::principal::{AgentId, TokenId};
use crate::store::{
    AccessRole, AgentStatus, Backend, Managed, NewAgent, NewToken, Store, UserRecord,
};
use crate::{AgentAuthLayer, InvalidReason};

/// What a test compares of an event.
#[derive(Debug, PartialEq)]
struct Seen {
    action: AuditAction,
    identity: Option<String>,
    credential: Option<String>,
    outcome: Outcome,
    request: Option<(String, String, u16)>,
}

fn seen(events: &[AuditEvent]) -> Vec<Seen> {
    events
        .iter()
        .map(|e| Seen {
            action: e.action,
            identity: e.agent.as_ref().map(|i| i.to_string()),
            credential: e.token.as_ref().map(|c| c.to_string()),
            outcome: e.outcome,
            request: e
                .request
                .as_ref()
                .map(|r| (r.method.clone(), r.path.clone(), r.status)),
        })
        .collect()
}

fn expect(
    action: AuditAction,
    identity: &AgentId,
    credential: Option<&TokenId>,
    outcome: Outcome,
    request: Option<(&str, &str, u16)>,
) -> Seen {
    Seen {
        action,
        identity: Some(identity.to_string()),
        credential: credential.map(|c| c.to_string()),
        outcome,
        request: request.map(|(m, p, s)| (m.to_owned(), p.to_owned(), s)),
    }
}

/// Calls the audited app with `token`; `/forbidden` answers 403, everything else 200.
pub(super) async fn call<B: Backend>(
    store: &Store<B>,
    clock: &Arc<ManualClock>,
    writer: &AuditWriter,
    token: &str,
    method: Method,
    path: &str,
) -> StatusCode {
    let service = ServiceBuilder::new()
        .layer(
            AgentAuthLayer::new(store.clone())
                .audit(writer.clone())
                .clock(clock.clone()),
        )
        .service_fn(|request: Request<String>| async move {
            let status = if request.uri().path() == "/forbidden" {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::OK
            };
            let mut response = Response::new(String::new());
            *response.status_mut() = status;
            Ok::<_, Infallible>(response)
        });
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .body(String::new())
        .unwrap();
    service.oneshot(request).await.unwrap().status()
}

/// Distinct instants on every backend (they keep microseconds).
/// An instant strictly between what happened before and what happens after.
fn tick(clock: &ManualClock) -> time::OffsetDateTime {
    clock.advance(std::time::Duration::from_secs(1));
    let now = clock.now();
    clock.advance(std::time::Duration::from_secs(1));
    now
}

/// A batch larger than any statement a sink uses is written whole, in order.
pub async fn case_a_large_audit_batch_is_written_whole_and_in_order<B: Backend>(env: Env<B>) {
    let at = env.now_micros();
    let batch: Vec<AuditEvent> = (0..300)
        .map(|n| {
            AuditEvent::new(at, AuditAction::Request, Outcome::Success)
                .agent("agt_x")
                .request("GET", &format!("/{n}"), 200)
        })
        .collect();
    env.store.write_batch(&batch).await.unwrap();
    env.store.write_batch(&batch[..3]).await.unwrap();
    let read = env
        .store
        .events(&AuditFilter::agent("agt_x"))
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

/// Reading an identity's trail through `Managed`: owner, admin and operator may, viewers and
/// strangers may not (the `grants` section checks the rest of the access rule).
pub async fn case_the_trail_is_read_by_owner_admin_and_operator<B: Backend>(env: Env<B>) {
    for user in ["admin-user", "operator-user", "viewer-user", "stranger"] {
        env.users
            .insert(UserRecord::new(user, Policy::unrestricted()));
    }
    let agent = env.agent("writer").await;
    for (user, role) in [
        ("admin-user", AccessRole::Admin),
        ("operator-user", AccessRole::Operator),
        ("viewer-user", AccessRole::Viewer),
    ] {
        env.store
            .grant(&agent.id, &user.into(), role)
            .await
            .unwrap();
    }
    let matrix = [
        ("alice", true),
        ("admin-user", true),
        ("operator-user", true),
        ("viewer-user", false),
        ("stranger", false),
    ];
    for (actor, may_list) in matrix {
        let managed = Managed::new(&env.store, actor);
        let allowed = |r: Result<(), StoreError>, expected: bool, op: &str| match r {
            Ok(()) => assert!(expected, "{actor} may not {op}"),
            Err(StoreError::Forbidden { .. }) => assert!(!expected, "{actor} may {op}"),
            Err(other) => panic!("{actor} {op}: {other:?}"),
        };
        allowed(
            managed
                .audit_events(&agent.id, AuditFilter::default())
                .await
                .map(drop),
            may_list,
            "read the trail",
        );
    }
}

/// The trail of identity X is exactly its requests and changes (and its thread's), in order,
/// and nothing of identity Y.
pub async fn case_audit_answers_what_an_identity_did<B: Backend>(env: Env<B>) {
    let writer = AuditWriter::spawn(Arc::new(env.store.clone()), WriterOptions::default());
    let alice = Managed::new(&env.store, "alice").with_audit(&writer);
    let x = alice
        .create_agent(NewAgent::new("x-bot", "alice"))
        .await
        .unwrap();
    let y = alice
        .create_agent(NewAgent::new("y-bot", "alice"))
        .await
        .unwrap();
    let tx = alice.create_token(&x.id, NewToken::new("x")).await.unwrap();
    let ty = alice.create_token(&y.id, NewToken::new("y")).await.unwrap();
    let (sx, sy) = (tx.token.expose_secret(), ty.token.expose_secret());
    let store = &env.store;
    let get = Method::GET;
    assert_eq!(
        call(
            store,
            &env.clock,
            &writer,
            sx,
            get.clone(),
            "/posts?secret=abc"
        )
        .await,
        200
    );
    assert_eq!(
        call(store, &env.clock, &writer, sy, get.clone(), "/posts").await,
        200
    );
    assert_eq!(
        call(store, &env.clock, &writer, sx, Method::POST, "/forbidden").await,
        403
    );
    let thread = alice
        .create_agent(NewAgent::child("x-bot-thread-1", x.id.clone()))
        .await
        .unwrap();
    let tt = alice
        .create_token(&thread.id, NewToken::new("thread"))
        .await
        .unwrap();
    let st = tt.token.expose_secret();
    assert_eq!(
        call(store, &env.clock, &writer, st, get.clone(), "/thread").await,
        200
    );
    let middle = tick(&env.clock);
    alice.revoke_token(&x.id, &tx.info.id).await.unwrap();
    assert_eq!(
        call(store, &env.clock, &writer, sx, get.clone(), "/posts").await,
        401
    );
    assert_eq!(
        call(store, &env.clock, &writer, sy, Method::DELETE, "/posts/1").await,
        200
    );
    // An unknown token names no identity: refused, not recorded.
    let unknown = store
        .token_format()
        .mint("x-bot")
        .unwrap()
        .expose_secret()
        .to_owned();
    assert_eq!(
        call(store, &env.clock, &writer, &unknown, get.clone(), "/").await,
        401
    );
    writer.shutdown().await;

    use AuditAction::*;
    let ok = Outcome::Success;
    let events = store
        .events(&AuditFilter::agent(x.id.clone()))
        .await
        .unwrap();
    assert_eq!(
        seen(&events),
        vec![
            expect(AgentCreated, &x.id, None, ok, None),
            expect(TokenIssued, &x.id, Some(&tx.info.id), ok, None),
            expect(
                Request,
                &x.id,
                Some(&tx.info.id),
                ok,
                Some(("GET", "/posts", 200))
            ),
            expect(
                Request,
                &x.id,
                Some(&tx.info.id),
                Outcome::Denied,
                Some(("POST", "/forbidden", 403))
            ),
            expect(AgentCreated, &thread.id, None, ok, None),
            expect(TokenIssued, &thread.id, Some(&tt.info.id), ok, None),
            expect(
                Request,
                &thread.id,
                Some(&tt.info.id),
                ok,
                Some(("GET", "/thread", 200))
            ),
            expect(TokenRevoked, &x.id, Some(&tx.info.id), ok, None),
            expect(
                TokenRefused,
                &x.id,
                Some(&tx.info.id),
                Outcome::Refused(InvalidReason::Revoked),
                Some(("GET", "/posts", 401))
            ),
        ]
    );
    assert!(
        events
            .iter()
            .all(|e| e.actor.as_ref().is_some_and(|a| a.as_str() == "alice"))
    );
    assert!(
        events
            .iter()
            .filter(|e| e.agent.as_ref() == Some(&thread.id))
            .all(|e| e.parent.as_ref() == Some(&x.id))
    );
    let trail = format!("{events:?}");
    for secret in [sx, sy, st] {
        assert!(!trail.contains(secret), "a token leaked into the trail");
    }

    let everything = store.events(&AuditFilter::default()).await.unwrap();
    assert!(
        everything.iter().all(|e| e.agent.is_some()),
        "the unknown token left no event"
    );
    assert_eq!(
        everything.len(),
        events.len() + of_y_count(store, &y.id).await
    );

    let own = store
        .events(&AuditFilter::agent(x.id.clone()).without_children())
        .await
        .unwrap();
    assert_eq!(own.len(), 6, "{:#?}", seen(&own));
    assert!(own.iter().all(|e| e.agent.as_ref() == Some(&x.id)));

    let of_y = store
        .events(&AuditFilter::agent(y.id.clone()))
        .await
        .unwrap();
    assert_eq!(
        seen(&of_y),
        vec![
            expect(AgentCreated, &y.id, None, ok, None),
            expect(TokenIssued, &y.id, Some(&ty.info.id), ok, None),
            expect(
                Request,
                &y.id,
                Some(&ty.info.id),
                ok,
                Some(("GET", "/posts", 200))
            ),
            expect(
                Request,
                &y.id,
                Some(&ty.info.id),
                ok,
                Some(("DELETE", "/posts/1", 200))
            ),
        ]
    );

    let of_credential = store
        .events(&AuditFilter::token(tx.info.id.clone()))
        .await
        .unwrap();
    assert_eq!(of_credential.len(), 5);

    let late = store
        .events(&AuditFilter::agent(x.id.clone()).since(middle))
        .await
        .unwrap();
    assert_eq!(
        late.iter().map(|e| e.action).collect::<Vec<_>>(),
        [TokenRevoked, TokenRefused]
    );
    let early = store
        .events(&AuditFilter::agent(x.id.clone()).until(middle))
        .await
        .unwrap();
    assert_eq!(early.len(), 7);
}

/// Management is recorded with before and after, and refused attempts as denied.
pub async fn case_audit_records_management_and_denials<B: Backend>(env: Env<B>) {
    env.users
        .insert(UserRecord::new("stranger", Policy::unrestricted()));
    let writer = AuditWriter::spawn(Arc::new(env.store.clone()), WriterOptions::default());
    let alice = Managed::new(&env.store, "alice").with_audit(&writer);
    let stranger = Managed::new(&env.store, "stranger").with_audit(&writer);
    let agent = alice
        .create_agent(NewAgent::new("writer", "alice"))
        .await
        .unwrap();
    let t = alice
        .create_token(&agent.id, NewToken::new("t"))
        .await
        .unwrap();
    alice
        .grant(&agent.id, &"bob".into(), AccessRole::Operator)
        .await
        .unwrap();
    alice
        .grant(&agent.id, &"bob".into(), AccessRole::Admin)
        .await
        .unwrap();
    alice.revoke_grant(&agent.id, &"bob".into()).await.unwrap();
    alice
        .set_agent_status(&agent.id, AgentStatus::Disabled)
        .await
        .unwrap();
    alice
        .set_agent_status(&agent.id, AgentStatus::Active)
        .await
        .unwrap();
    let rotated = alice
        .rotate_token(
            &agent.id,
            &t.info.id,
            std::time::Duration::from_secs(5 * 60),
        )
        .await
        .unwrap();
    assert!(
        stranger
            .revoke_token(&agent.id, &rotated.info.id)
            .await
            .is_err()
    );
    alice.delete_agent(&agent.id).await.unwrap();
    writer.shutdown().await;

    let events = env
        .store
        .events(&AuditFilter::agent(agent.id.clone()))
        .await
        .unwrap();
    let summary: Vec<(AuditAction, Outcome, &str, Option<&str>)> = events
        .iter()
        .map(|e| {
            (
                e.action,
                e.outcome,
                e.actor.as_ref().map_or("", |a| a.as_str()),
                e.detail.as_deref(),
            )
        })
        .collect();
    use AuditAction::*;
    let ok = Outcome::Success;
    assert_eq!(summary[0].0, AgentCreated);
    assert_eq!(summary[1].0, TokenIssued);
    assert_eq!(
        &summary[2..],
        &[
            (GrantChanged, ok, "alice", Some("bob: none -> operator")),
            (GrantChanged, ok, "alice", Some("bob: operator -> admin")),
            (GrantChanged, ok, "alice", Some("bob: admin -> none")),
            (
                AgentDisabled,
                ok,
                "alice",
                Some("status: active -> disabled")
            ),
            (
                AgentEnabled,
                ok,
                "alice",
                Some("status: disabled -> active")
            ),
            (
                TokenRotated,
                ok,
                "alice",
                Some(
                    format!(
                        "replaced by {}; the old one stays valid for 300s",
                        rotated.info.id
                    )
                    .as_str()
                )
            ),
            (
                TokenRevoked,
                Outcome::Denied,
                "stranger",
                Some("denied: may not revoke tokens")
            ),
            (AgentDeleted, ok, "alice", Some("deleted writer")),
        ]
    );
    // The trail outlives the identity it names.
    assert!(
        env.store
            .events(&AuditFilter::token(t.info.id.clone()))
            .await
            .unwrap()
            .len()
            >= 2
    );
}

async fn of_y_count<B: Backend>(store: &Store<B>, y: &AgentId) -> usize {
    store
        .events(&AuditFilter::agent(y.clone()))
        .await
        .unwrap()
        .len()
}

/// The trail is listed by time, whatever order the events were recorded in (a batching writer
/// may record a late event after an earlier one), and a coalesced row keeps its count.
pub async fn case_audit_events_are_listed_by_time<B: Backend>(env: Env<B>) {
    let at = env.now_micros();
    let event = |seconds: i64, path: &str| {
        AuditEvent::new(
            at + time::Duration::seconds(seconds),
            AuditAction::Request,
            Outcome::Success,
        )
        .agent("agt_t")
        .request("GET", path, 200)
    };
    let mut counted = event(1, "/counted");
    counted.occurrences = 41;
    env.store
        .write_batch(&[event(3, "/third"), event(1, "/first")])
        .await
        .unwrap();
    env.store
        .write_batch(&[event(2, "/second"), counted])
        .await
        .unwrap();
    let read = env
        .store
        .events(&AuditFilter::agent("agt_t"))
        .await
        .unwrap();
    let paths: Vec<&str> = read
        .iter()
        .map(|e| e.request.as_ref().unwrap().path.as_str())
        .collect();
    assert_eq!(paths, ["/first", "/counted", "/second", "/third"]);
    assert_eq!(read[1].occurrences, 41);
    assert_eq!(read[0].occurrences, 1);
    // The newest two, still oldest first.
    let newest = env
        .store
        .events(&AuditFilter::agent("agt_t").last(2))
        .await
        .unwrap();
    let paths: Vec<&str> = newest
        .iter()
        .map(|e| e.request.as_ref().unwrap().path.as_str())
        .collect();
    assert_eq!(paths, ["/second", "/third"]);
    let none = env
        .store
        .events(&AuditFilter::agent("agt_t").last(0))
        .await
        .unwrap();
    assert!(none.is_empty());
}
