//! The callback receiver's records (feature `callback`): pending authorizations taken once
//! (also by 20 racing tasks), provider tokens kept one per agent and provider (also when 20
//! connect at once), listed and deleted, what deleting an agent takes with it, and purging.

use std::time::Duration;

use super::Env;
use crate::error::{Conflict, NotFound, StoreError};
use crate::oauth::callback::{CallbackState, ProviderToken, Sealed, StateTaken};
use crate::principal::AgentId;
use crate::store::Backend;
use crate::token::TokenHash;

/// How many tasks race in the concurrent cases.
const RACERS: usize = 20;

/// A pending authorization for alice's `agent`, its state hashed from `state`, for 10 minutes.
fn pending<B: Backend>(env: &Env<B>, agent: &AgentId, state: &str) -> CallbackState {
    let now = env.now_micros();
    CallbackState::new(
        TokenHash::of(state),
        TokenHash::of("the session cookie"),
        "alice".into(),
        agent.clone(),
        "github",
        Sealed::from_bytes(vec![1, 2, 3, 4]),
        now,
        now + time::Duration::minutes(10),
    )
}

/// A provider token `id` of `agent` for `provider`, every field set.
fn token<B: Backend>(env: &Env<B>, id: &str, agent: &AgentId, provider: &str) -> ProviderToken {
    let now = env.now_micros();
    let mut token = ProviderToken::new(
        id,
        provider,
        agent.clone(),
        "alice".into(),
        now,
        "bearer",
        Sealed::from_bytes(format!("sealed access of {id}").into_bytes()),
    );
    token.scopes = vec!["repo".into(), "read:user".into()];
    token.expires_at = Some(now + time::Duration::hours(8));
    token.refresh = Some(Sealed::from_bytes(
        format!("sealed refresh of {id}").into_bytes(),
    ));
    token
}

fn is_unknown_agent<T: std::fmt::Debug>(result: &Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::NotFound(NotFound::Agent(_))))
}

pub async fn case_a_callback_state_is_taken_once<B: Backend>(env: Env<B>) {
    let backend = env.store.backend();
    let agent = env.agent("connector").await;
    let state = pending(&env, &agent.id, "state-1");
    backend.insert_callback_state(&state).await.unwrap();
    let again = backend.insert_callback_state(&state).await;
    assert!(
        matches!(again, Err(StoreError::Conflict(Conflict::Token))),
        "{again:?}"
    );
    env.clock.advance(Duration::from_secs(3));
    let now = env.now_micros();
    assert_eq!(
        backend.take_callback_state(&state.hash, now).await.unwrap(),
        StateTaken::Taken(state.clone()),
        "answered as it was, every field kept"
    );
    let mut used = state.clone();
    used.used_at = Some(now);
    env.clock.advance(Duration::from_secs(3));
    assert_eq!(
        (backend.take_callback_state(&state.hash, env.now_micros()))
            .await
            .unwrap(),
        StateTaken::Replayed(used),
        "a replay sees the first use, kept"
    );
    assert_eq!(
        (backend.take_callback_state(&TokenHash::of("never issued"), now))
            .await
            .unwrap(),
        StateTaken::Unknown
    );
    let lost = pending(&env, &"agt_missing".into(), "state-2");
    let refused = backend.insert_callback_state(&lost).await;
    assert!(is_unknown_agent(&refused), "{refused:?}");
}

pub async fn case_concurrent_callbacks_take_a_state_once<B: Backend>(env: Env<B>) {
    let agent = env.agent("connector").await;
    let state = pending(&env, &agent.id, "raced");
    env.store
        .backend()
        .insert_callback_state(&state)
        .await
        .unwrap();
    let now = env.now_micros();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..RACERS {
        let store = env.store.clone();
        let hash = state.hash;
        tasks.spawn(async move { store.backend().take_callback_state(&hash, now).await });
    }
    let (mut taken, mut replayed) = (0, 0);
    while let Some(answer) = tasks.join_next().await {
        match answer.unwrap().unwrap() {
            StateTaken::Taken(_) => taken += 1,
            StateTaken::Replayed(_) => replayed += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((taken, replayed), (1, RACERS - 1));
}

pub async fn case_provider_tokens_are_one_per_agent_and_provider<B: Backend>(env: Env<B>) {
    let backend = env.store.backend();
    let writer = env.agent("writer").await;
    let reader = env.agent("reader").await;
    let first = token(&env, "ptk_1", &writer.id, "github");
    backend.put_provider_token(&first).await.unwrap();
    assert_eq!(
        backend.provider_token("ptk_1").await.unwrap(),
        Some(first.clone())
    );
    let other = token(&env, "ptk_2", &writer.id, "gitlab");
    let theirs = token(&env, "ptk_3", &reader.id, "github");
    backend.put_provider_token(&other).await.unwrap();
    backend.put_provider_token(&theirs).await.unwrap();

    // Connecting the writer to github again replaces its token, whoever connects.
    env.clock.advance(Duration::from_secs(60));
    let mut again = token(&env, "ptk_4", &writer.id, "github");
    again.connected_by = "bob".into();
    again.refresh = None;
    again.expires_at = None;
    again.scopes = Vec::new();
    backend.put_provider_token(&again).await.unwrap();
    assert_eq!(backend.provider_token("ptk_1").await.unwrap(), None);
    assert_eq!(
        backend.provider_token("ptk_4").await.unwrap(),
        Some(again.clone())
    );
    let of_writer = backend.provider_tokens(Some(&writer.id)).await.unwrap();
    assert_eq!(of_writer, vec![again.clone(), other.clone()], "by provider");
    let every = backend.provider_tokens(None).await.unwrap();
    assert_eq!(every.len(), 3);
    let mut sorted = every.clone();
    sorted.sort_by(|a, b| (&a.agent, &a.provider).cmp(&(&b.agent, &b.provider)));
    assert_eq!(every, sorted, "by agent then provider");

    // An id that is another's record is a conflict, and changes nothing.
    let clash = token(&env, "ptk_2", &reader.id, "gitlab");
    let refused = backend.put_provider_token(&clash).await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(Conflict::Token))),
        "{refused:?}"
    );
    assert_eq!(backend.provider_token("ptk_2").await.unwrap(), Some(other));
    let lost = token(&env, "ptk_9", &"agt_missing".into(), "github");
    let refused = backend.put_provider_token(&lost).await;
    assert!(is_unknown_agent(&refused), "{refused:?}");

    assert!(backend.delete_provider_token("ptk_4").await.unwrap());
    assert!(!backend.delete_provider_token("ptk_4").await.unwrap());
    assert_eq!(
        backend
            .provider_tokens(Some(&writer.id))
            .await
            .unwrap()
            .len(),
        1
    );
}

pub async fn case_concurrent_connections_keep_one_token<B: Backend>(env: Env<B>) {
    let agent = env.agent("connector").await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..RACERS {
        let store = env.store.clone();
        let token = token(&env, &format!("ptk_{i}"), &agent.id, "github");
        tasks.spawn(async move { store.backend().put_provider_token(&token).await });
    }
    while let Some(stored) = tasks.join_next().await {
        stored.unwrap().unwrap();
    }
    let kept = env
        .store
        .backend()
        .provider_tokens(Some(&agent.id))
        .await
        .unwrap();
    assert_eq!(kept.len(), 1, "{kept:?}");
}

pub async fn case_deleting_an_agent_removes_its_states_and_tokens<B: Backend>(env: Env<B>) {
    let backend = env.store.backend();
    let doomed = env.agent("doomed").await;
    let kept = env.agent("kept").await;
    backend
        .insert_callback_state(&pending(&env, &doomed.id, "s-doomed"))
        .await
        .unwrap();
    backend
        .insert_callback_state(&pending(&env, &kept.id, "s-kept"))
        .await
        .unwrap();
    backend
        .put_provider_token(&token(&env, "ptk_d", &doomed.id, "github"))
        .await
        .unwrap();
    backend
        .put_provider_token(&token(&env, "ptk_k", &kept.id, "github"))
        .await
        .unwrap();
    env.store.delete_agent(&doomed.id).await.unwrap();
    let now = env.now_micros();
    assert_eq!(
        (backend.take_callback_state(&TokenHash::of("s-doomed"), now))
            .await
            .unwrap(),
        StateTaken::Unknown
    );
    assert!(matches!(
        backend
            .take_callback_state(&TokenHash::of("s-kept"), now)
            .await
            .unwrap(),
        StateTaken::Taken(_)
    ));
    assert_eq!(backend.provider_token("ptk_d").await.unwrap(), None);
    let left: Vec<String> = (backend.provider_tokens(None).await.unwrap())
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(left, ["ptk_k"]);
}

pub async fn case_purge_removes_lapsed_callback_states<B: Backend>(env: Env<B>) {
    let backend = env.store.backend();
    let agent = env.agent("connector").await;
    let old = pending(&env, &agent.id, "old");
    backend.insert_callback_state(&old).await.unwrap();
    env.clock.advance(Duration::from_secs(300));
    let young = pending(&env, &agent.id, "young");
    backend.insert_callback_state(&young).await.unwrap();
    // Past the old one's expiry, before the young one's.
    let at = old.expires_at + time::Duration::seconds(1);
    assert_eq!(backend.purge_callback_states(at).await.unwrap(), 1);
    assert_eq!(
        backend.purge_callback_states(at).await.unwrap(),
        0,
        "nothing twice"
    );
    let now = env.now_micros();
    assert_eq!(
        backend.take_callback_state(&old.hash, now).await.unwrap(),
        StateTaken::Unknown
    );
    assert_eq!(
        backend.take_callback_state(&young.hash, now).await.unwrap(),
        StateTaken::Taken(young)
    );
}
