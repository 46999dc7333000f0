//! The resolution pipeline on the in-memory store, beyond the conformance suite: what it
//! answers without waiting, and what it records.
#![cfg(feature = "testing")]

use tower_agent_auth::clock::Clock;
use tower_agent_auth::store::{AgentStore, MemoryStore, NewAgent, NewToken, TokenStore};
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
    let t = store
        .create_token(&agent.id, NewToken::new("t"))
        .await
        .unwrap();
    let parsed = store.token_format().parse(t.token.expose_secret()).unwrap();
    let lookup = TokenLookup::new(parsed.hash(), parsed.slug(), parsed.is_legacy());
    for _ in 0..2 {
        let principal = store
            .resolve_now(&lookup)
            .expect("answered without waiting")
            .expect("admitted");
        assert_eq!(principal.agent_id(), Some(&agent.id));
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
