use super::*;
use crate::TokenResolver;
use crate::ceiling::Policy;
use crate::store::backend::StoredToken;
use crate::store::{MemoryUserDirectory, NewAgent, NewToken, UserRecord};
use crate::token::TokenFormat;

/// A store with alice, and the entry of a token of hers minted as `new`.
async fn entry(new: NewToken) -> Arc<TokenEntry> {
    let users = MemoryUserDirectory::new();
    users.insert(UserRecord::new("alice", Policy::unrestricted()));
    let store = MemoryStore::new(TokenFormat::new("acme").unwrap(), users);
    let agent = store
        .create_agent(NewAgent::new("writer", "alice"))
        .await
        .unwrap();
    let issued = store.create_token(&agent.id, new).await.unwrap();
    let hash = store
        .token_format()
        .parse(issued.token.expose_secret())
        .unwrap()
        .hash();
    store.backend().read().tokens[&hash].clone()
}

#[tokio::test]
async fn with_no_use_left_and_none_in_flight_a_reservation_is_refused_not_awaited() {
    let entry = entry(NewToken::new("t").max_operations(1)).await;
    assert_eq!(entry.reserve(), Reservation::Reserved);
    entry.settle(true, 0);
    assert_eq!(entry.reserve(), Reservation::Exhausted);
}

#[tokio::test]
async fn a_completion_is_dated_at_the_instant_of_the_last_use() {
    let new = NewToken::new("t").max_operations(1).expires_on_completion();
    let entry = entry(new).await;
    assert_eq!(entry.completed_at(), None);
    assert_eq!(entry.reserve(), Reservation::Reserved);
    entry.settle(true, 1_767_225_600_123_456);
    assert_eq!(entry.completed_at(), Some(1_767_225_600_123_456_000));
}
