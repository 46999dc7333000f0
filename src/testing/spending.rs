//! When a token is refused for several reasons at once, and when a use is spent: the same
//! answer on every backend.

use http::{Request, Response, StatusCode};
use tower::{ServiceBuilder, ServiceExt};

use super::Env;
use crate::clock::Clock;
use crate::store::{AgentStatus, Backend, NewAgent, NewToken, Store};
use crate::{AgentAuthLayer, InvalidReason, RequireCapabilityLayer};

pub async fn case_exhausted_is_reported_before_an_inactive_owner<B: Backend>(env: Env<B>) {
    let (_, t) = env
        .agent_with_token_as("worker", NewToken::new("t").max_operations(1))
        .await;
    env.resolve(&t).await.unwrap();
    env.users.set_active(&"alice".into(), false);
    assert_eq!(env.refusal(&t).await, InvalidReason::Exhausted);
}

pub async fn case_revoked_is_reported_before_expired<B: Backend>(env: Env<B>) {
    let (agent, t) = env
        .agent_with_token_as(
            "worker",
            NewToken::new("t").expires_in(std::time::Duration::from_secs(60)),
        )
        .await;
    env.store.revoke_token(&agent.id, &t.info.id).await.unwrap();
    env.clock.advance(std::time::Duration::from_secs(2 * 60));
    assert_eq!(env.refusal(&t).await, InvalidReason::Revoked);
}

pub async fn case_expired_is_reported_before_a_disabled_agent<B: Backend>(env: Env<B>) {
    let (agent, t) = env
        .agent_with_token_as(
            "worker",
            NewToken::new("t").expires_in(std::time::Duration::from_secs(60)),
        )
        .await;
    env.store
        .set_agent_status(&agent.id, AgentStatus::Disabled)
        .await
        .unwrap();
    env.clock.advance(std::time::Duration::from_secs(2 * 60));
    assert_eq!(env.refusal(&t).await, InvalidReason::Expired);
}

pub async fn case_a_disabled_agent_is_reported_before_an_expired_parent<B: Backend>(env: Env<B>) {
    let parent = env
        .store
        .create_agent(
            NewAgent::new("codex", "alice")
                .with_expires_at(env.clock.now() + time::Duration::minutes(1)),
        )
        .await
        .unwrap();
    let child = env
        .store
        .create_agent(NewAgent::child("codex-thread-1", parent.id.clone()))
        .await
        .unwrap();
    let t = env.token(&child.id, NewToken::new("t")).await;
    env.store
        .set_agent_status(&child.id, AgentStatus::Disabled)
        .await
        .unwrap();
    env.clock.advance(std::time::Duration::from_secs(2 * 60));
    assert_eq!(env.refusal(&t).await, InvalidReason::AgentDisabled);
}

pub async fn case_a_disabled_agent_is_reported_before_an_inactive_owner<B: Backend>(env: Env<B>) {
    let (agent, t) = env.agent_with_token("worker").await;
    env.store
        .set_agent_status(&agent.id, AgentStatus::Disabled)
        .await
        .unwrap();
    env.users.set_active(&"alice".into(), false);
    assert_eq!(env.refusal(&t).await, InvalidReason::AgentDisabled);
}

/// A layer over `store` in front of three routes: `/ok` answers 200, `/admin` needs
/// `users:delete` (alice's role lacks it: 403 from the capability check), anything else 404.
fn routes<B: Backend>(
    store: &Store<B>,
) -> impl tower::Service<
    Request<String>,
    Response = Response<String>,
    Error = std::convert::Infallible,
    Future: Send,
> + Clone
+ Send
+ 'static {
    let admin = ServiceBuilder::new()
        .layer(RequireCapabilityLayer::try_new("users:delete").unwrap())
        .service_fn(|_: Request<String>| async {
            Ok::<_, std::convert::Infallible>(Response::new(String::new()))
        });
    ServiceBuilder::new()
        .layer(AgentAuthLayer::new(store.clone()))
        .service_fn(move |request: Request<String>| {
            let admin = admin.clone();
            async move {
                match request.uri().path() {
                    "/ok" => Ok(Response::new(String::new())),
                    "/admin" => admin.oneshot(request).await,
                    _ => {
                        let mut response = Response::new(String::new());
                        *response.status_mut() = StatusCode::NOT_FOUND;
                        Ok(response)
                    }
                }
            }
        })
}

async fn status<Svc>(routes: &Svc, bearer: &str, path: &str) -> StatusCode
where
    Svc: tower::Service<
            Request<String>,
            Response = Response<String>,
            Error = std::convert::Infallible,
        > + Clone,
{
    let request = Request::builder()
        .uri(path)
        .header("authorization", bearer)
        .body(String::new())
        .unwrap();
    routes.clone().oneshot(request).await.unwrap().status()
}

pub async fn case_only_admitted_requests_spend_a_use<B: Backend>(env: Env<B>) {
    let (agent, t) = env
        .agent_with_token_as("worker", NewToken::new("t").max_operations(3))
        .await;
    let bearer = format!("Bearer {}", t.token.expose_secret());
    let routes = routes(&env.store);
    for _ in 0..3 {
        assert_eq!(
            status(&routes, &bearer, "/admin").await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            status(&routes, &bearer, "/missing").await,
            StatusCode::NOT_FOUND
        );
    }
    let info = env
        .store
        .token(&agent.id, &t.info.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        info.operations_remaining,
        Some(3),
        "refused requests spent a use"
    );
    for _ in 0..3 {
        assert_eq!(status(&routes, &bearer, "/ok").await, StatusCode::OK);
    }
    assert_eq!(
        status(&routes, &bearer, "/ok").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(env.refusal(&t).await, InvalidReason::Exhausted);
}

pub async fn case_concurrent_refusals_leave_exactly_the_limit_to_successes<B: Backend>(
    env: Env<B>,
) {
    let (_, t) = env
        .agent_with_token_as("worker", NewToken::new("t").max_operations(100))
        .await;
    let bearer = format!("Bearer {}", t.token.expose_secret());
    let routes = routes(&env.store);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200 {
        let (routes, bearer) = (routes.clone(), bearer.clone());
        let path = if i % 2 == 0 { "/ok" } else { "/admin" };
        tasks.spawn(async move { (path, status(&routes, &bearer, path).await) });
    }
    let mut ok = 0;
    while let Some(answer) = tasks.join_next().await {
        match answer.unwrap() {
            ("/ok", StatusCode::OK) => ok += 1,
            // Refused by the capability check, or — once the successes have spent every use —
            // as exhausted; never a success, never a spent use.
            ("/admin", StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED) => {}
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!(
        ok, 100,
        "every request to /ok is admitted: 403s spent no use"
    );
    assert_eq!(
        status(&routes, &bearer, "/ok").await,
        StatusCode::UNAUTHORIZED
    );
}

pub async fn case_rotation_moves_the_uses_left_and_adds_none<B: Backend>(env: Env<B>) {
    let (agent, old) = env
        .agent_with_token_as("worker", NewToken::new("t").max_operations(3))
        .await;
    env.resolve(&old).await.unwrap();
    let new = env
        .store
        .rotate_token(&agent.id, &old.info.id, std::time::Duration::from_secs(600))
        .await
        .unwrap();
    assert_eq!(new.info.max_operations, Some(2));
    assert_eq!(env.refusal(&old).await, InvalidReason::Exhausted);
    env.resolve(&new).await.unwrap();
    env.resolve(&new).await.unwrap();
    assert_eq!(env.refusal(&new).await, InvalidReason::Exhausted);
    assert_eq!(env.refusal(&old).await, InvalidReason::Exhausted);
}

pub async fn case_a_request_waiting_for_a_use_sees_a_revocation<B: Backend>(env: Env<B>) {
    let (agent, t) = env
        .agent_with_token_as("worker", NewToken::new("t").max_operations(1))
        .await;
    let bearer = format!("Bearer {}", t.token.expose_secret());
    // The first request holds the only use until told to answer 404 (which releases it).
    let (answer, hold) = tokio::sync::oneshot::channel::<()>();
    let (entered, has_entered) = tokio::sync::oneshot::channel::<()>();
    let hold = std::sync::Arc::new(tokio::sync::Mutex::new(Some((hold, entered))));
    let service = ServiceBuilder::new()
        .layer(AgentAuthLayer::new(env.store.clone()))
        .service_fn(move |_: Request<String>| {
            let hold = hold.clone();
            async move {
                let held = hold.lock().await.take();
                if let Some((hold, entered)) = held {
                    let _ = entered.send(());
                    let _ = hold.await;
                }
                let mut response = Response::new(String::new());
                *response.status_mut() = StatusCode::NOT_FOUND;
                Ok::<_, std::convert::Infallible>(response)
            }
        });
    let first = tokio::spawn({
        let (service, bearer) = (service.clone(), bearer.clone());
        async move { status(&service, &bearer, "/held").await }
    });
    // Once it holds the use, a second request finds it in flight and waits.
    has_entered.await.unwrap();
    let second = tokio::spawn({
        let (service, bearer) = (service.clone(), bearer.clone());
        async move { status(&service, &bearer, "/next").await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    env.store.revoke_token(&agent.id, &t.info.id).await.unwrap();
    answer.send(()).unwrap();
    assert_eq!(first.await.unwrap(), StatusCode::NOT_FOUND);
    // The use came back, but the token is revoked now: the waiter is refused.
    assert_eq!(second.await.unwrap(), StatusCode::UNAUTHORIZED);
    assert_eq!(env.refusal(&t).await, InvalidReason::Revoked);
}
