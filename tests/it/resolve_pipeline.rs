//! The resolution pipeline on the in-memory store, beyond the conformance suite: what it
//! answers without waiting, and what it records.
#![cfg(feature = "testing")]

use tower_agent_auth::clock::Clock;
use tower_agent_auth::store::{MemoryStore, NewAgent, NewToken};
use tower_agent_auth::{TokenLookup, TokenResolver, testing};

fn store() -> (
    MemoryStore,
    std::sync::Arc<tower_agent_auth::clock::ManualClock>,
) {
    let users = testing::users();
    let clock = testing::clock();
    (
        MemoryStore::with_config(testing::config(&users, &clock)),
        clock,
    )
}

#[tokio::test]
async fn the_memory_store_answers_at_once_when_its_directory_does() {
    let (store, _) = store();
    let agent = store
        .create_agent(NewAgent::new("writer", "alice"))
        .await
        .unwrap();
    // With and without a use limit: a use left is reserved at once too.
    for new in [NewToken::new("t"), NewToken::new("t").max_operations(5)] {
        let t = store.create_token(&agent.id, new).await.unwrap();
        let parsed = store.token_format().parse(t.token.expose_secret()).unwrap();
        let lookup = TokenLookup::new(parsed.hash(), parsed.slug(), parsed.is_legacy());
        for _ in 0..2 {
            let principal = store
                .resolve_now(&lookup)
                .expect("answered without waiting")
                .expect("admitted");
            assert_eq!(principal.agent_id(), Some(&agent.id));
            if let Some(write) = store.settle_use(&t.info.id, true) {
                write.await;
            }
        }
    }
}

#[tokio::test]
async fn last_used_is_recorded_after_the_year_2262() {
    // 2300-01-01: Unix nanoseconds no longer fit an i64 from 2262 on.
    let (store, clock) = store();
    clock.set(time::OffsetDateTime::from_unix_timestamp(10_413_792_000).unwrap());
    let agent = store
        .create_agent(NewAgent::new("writer", "alice"))
        .await
        .unwrap();
    let t = store
        .create_token(&agent.id, NewToken::new("t"))
        .await
        .unwrap();
    testing::resolve(&store, t.token.expose_secret())
        .await
        .unwrap();
    let listed = store.list_tokens(&agent.id).await.unwrap();
    assert_eq!(listed[0].last_used_at, Some(clock.now()));
    let agent = store.agent(&agent.id).await.unwrap().unwrap();
    assert_eq!(agent.last_used_at, Some(clock.now()));
}

/// A layer over `store` whose handler answers each request with the status it is sent.
fn held_routes(
    store: &MemoryStore,
) -> (
    impl tower::Service<
        http::Request<String>,
        Response = http::Response<String>,
        Error = std::convert::Infallible,
        Future = impl Send,
    > + Clone
    + Send
    + 'static,
    tokio::sync::mpsc::UnboundedReceiver<tokio::sync::oneshot::Sender<http::StatusCode>>,
) {
    let (handlers, held) = tokio::sync::mpsc::unbounded_channel();
    let routes = tower::ServiceBuilder::new()
        .layer(tower_agent_auth::AgentAuthLayer::new(store.clone()))
        .service_fn(move |_: http::Request<String>| {
            let (answer, status) = tokio::sync::oneshot::channel();
            handlers.send(answer).unwrap();
            async move {
                let mut response = http::Response::new(String::new());
                *response.status_mut() = status.await.unwrap();
                Ok(response)
            }
        });
    (routes, held)
}

fn request(bearer: &str) -> http::Request<String> {
    http::Request::builder()
        .header("authorization", bearer)
        .body(String::new())
        .unwrap()
}

#[tokio::test]
async fn a_request_for_the_last_use_in_flight_waits_and_gets_it_when_released() {
    use tower::ServiceExt;
    let (store, _) = store();
    let agent = store
        .create_agent(NewAgent::new("writer", "alice"))
        .await
        .unwrap();
    let t = store
        .create_token(&agent.id, NewToken::new("t").max_operations(1))
        .await
        .unwrap();
    let bearer = format!("Bearer {}", t.token.expose_secret());
    let (routes, mut held) = held_routes(&store);

    let first = tokio::spawn(routes.clone().oneshot(request(&bearer)));
    let first_handler = held.recv().await.expect("the first request is admitted");
    let second = tokio::spawn(routes.clone().oneshot(request(&bearer)));
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(!second.is_finished(), "the only use is in flight: it waits");

    // The first request is refused by the application (404): its use goes to the second.
    first_handler.send(http::StatusCode::NOT_FOUND).unwrap();
    let first = first.await.unwrap().unwrap();
    assert_eq!(first.status(), http::StatusCode::NOT_FOUND);
    let second_handler = tokio::time::timeout(std::time::Duration::from_secs(5), held.recv())
        .await
        .expect("the released use goes to the waiting request")
        .unwrap();
    second_handler.send(http::StatusCode::OK).unwrap();
    assert_eq!(
        second.await.unwrap().unwrap().status(),
        http::StatusCode::OK
    );

    // Spent now: the next request is refused at once.
    let third = routes.oneshot(request(&bearer)).await.unwrap();
    assert_eq!(third.status(), http::StatusCode::UNAUTHORIZED);
    assert_eq!(
        third.extensions().get::<tower_agent_auth::InvalidReason>(),
        Some(&tower_agent_auth::InvalidReason::Exhausted)
    );
}

#[tokio::test]
async fn a_token_completed_by_its_last_use_is_refused_as_expired() {
    let (store, _) = store();
    let agent = store
        .create_agent(NewAgent::new("writer", "alice"))
        .await
        .unwrap();
    let t = store
        .create_token(
            &agent.id,
            NewToken::new("t").max_operations(1).expires_on_completion(),
        )
        .await
        .unwrap();
    testing::resolve(&store, t.token.expose_secret())
        .await
        .unwrap();
    let refused = testing::resolve(&store, t.token.expose_secret()).await;
    assert_eq!(
        refused.err().and_then(|error| error.reason()),
        Some(tower_agent_auth::InvalidReason::Expired),
        "expiry is checked before the use limit"
    );
}
