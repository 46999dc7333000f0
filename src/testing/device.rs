//! Device authorizations (RFC 8628, feature `oauth`): kept with both codes' hashes, answered
//! once, polled with the slow-down bookkeeping kept, redeemed once (a replay sees the family),
//! each race run by 20 tasks; what deleting a client or an agent takes with it, purging.
//!
//! Part of the `oauth` section (and runnable alone as `device`).

use std::time::Duration;

use super::{Env, caps};
use crate::error::{Conflict, NotFound, StoreError};
use crate::oauth::{
    Client, ClientKind, DeviceAuthorization, DevicePoll, DeviceStatus, FamilyId, Polled,
};
use crate::principal::AgentId;
use crate::store::{Agent, Backend};
use crate::token::TokenHash;

/// How many tasks race in the concurrent cases.
const RACERS: usize = 20;

const LIFETIME: Duration = Duration::from_secs(600);
const INTERVAL: Duration = Duration::from_secs(5);

/// A public client `id`, stored.
async fn client<B: Backend>(env: &Env<B>, id: &str) -> Client {
    let now = env.now_micros();
    let client = Client::new(id, ClientKind::Registered, format!("Device {id}"), now);
    let stored = env.store.backend().insert_client(&client, None, now);
    assert!(stored.await.unwrap());
    client
}

/// A pending request of `client` named `name` (its codes hash from it), made now.
fn request<B: Backend>(env: &Env<B>, client: &Client, name: &str) -> DeviceAuthorization {
    let mut request = DeviceAuthorization::new(
        TokenHash::of(&format!("device code {name}")),
        TokenHash::of(&format!("user code {name}")),
        client.id.clone(),
        caps(&["posts:read", "posts:write"]),
        env.now_micros(),
        LIFETIME,
        INTERVAL,
    );
    request.resource = Some("https://api.example.com/mcp".into());
    request
}

/// `request`, stored.
async fn stored<B: Backend>(env: &Env<B>, client: &Client, name: &str) -> DeviceAuthorization {
    let request = request(env, client, name);
    env.store.backend().insert_device(&request).await.unwrap();
    request
}

/// `request` approved by alice now, for `agent`, with `posts:read`.
fn approved<B: Backend>(
    env: &Env<B>,
    request: &DeviceAuthorization,
    agent: &Agent,
) -> DeviceAuthorization {
    request.approved(
        "alice".into(),
        agent.id.clone(),
        caps(&["posts:read"]),
        env.now_micros(),
    )
}

/// A poll of `request` by its client now, starting `family` if it redeems.
fn poll<B: Backend>(env: &Env<B>, request: &DeviceAuthorization, family: &str) -> DevicePoll {
    DevicePoll::new(
        request.hash,
        request.client_id.clone(),
        FamilyId::new(family),
        env.now_micros(),
    )
}

async fn stands<B: Backend>(env: &Env<B>, request: &DeviceAuthorization) -> DeviceAuthorization {
    env.store
        .backend()
        .device(&request.hash)
        .await
        .unwrap()
        .expect("stored")
}

pub async fn case_device_authorizations_round_trip<B: Backend>(env: Env<B>) {
    let backend = env.store.backend();
    let c = client(&env, "c_1").await;
    let first = stored(&env, &c, "one").await;
    assert_eq!(
        backend.device(&first.hash).await.unwrap(),
        Some(first.clone())
    );
    let by_user_code = backend.device_by_user_code(&first.user_code).await.unwrap();
    assert_eq!(by_user_code, Some(first.clone()));
    assert_eq!(
        backend.device(&TokenHash::of("nothing")).await.unwrap(),
        None
    );
    assert_eq!(
        backend.device_by_user_code(&first.hash).await.unwrap(),
        None,
        "not by the device code"
    );

    // Either code taken is a conflict, and nothing is stored.
    let mut same_device = request(&env, &c, "two");
    same_device.hash = first.hash;
    let refused = backend.insert_device(&same_device).await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(Conflict::Token))),
        "{refused:?}"
    );
    assert_eq!(
        backend
            .device_by_user_code(&same_device.user_code)
            .await
            .unwrap(),
        None
    );
    let mut same_user_code = request(&env, &c, "three");
    same_user_code.user_code = first.user_code;
    let refused = backend.insert_device(&same_user_code).await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(Conflict::Token))),
        "{refused:?}"
    );
    assert_eq!(backend.device(&same_user_code.hash).await.unwrap(), None);

    let mut orphan = request(&env, &c, "four");
    orphan.client_id = "c_missing".into();
    let refused = backend.insert_device(&orphan).await;
    assert!(
        matches!(refused, Err(StoreError::NotFound(NotFound::Client(_)))),
        "{refused:?}"
    );
}

pub async fn case_a_device_is_answered_once<B: Backend>(env: Env<B>) {
    let backend = env.store.backend();
    let agent = env.agent("device").await;
    let c = client(&env, "c_1").await;
    let first = stored(&env, &c, "one").await;
    let yes = approved(&env, &first, &agent);
    assert!(backend.decide_device(&yes, env.now_micros()).await.unwrap());
    assert_eq!(
        stands(&env, &first).await,
        yes,
        "every field of the answer kept"
    );
    let no = first.denied("bob".into(), env.now_micros());
    assert!(
        !backend.decide_device(&no, env.now_micros()).await.unwrap(),
        "answered already"
    );
    assert_eq!(stands(&env, &first).await.status, DeviceStatus::Approved);

    let second = stored(&env, &c, "two").await;
    let no = second.denied("alice".into(), env.now_micros());
    assert!(backend.decide_device(&no, env.now_micros()).await.unwrap());
    let yes = approved(&env, &second, &agent);
    assert!(!backend.decide_device(&yes, env.now_micros()).await.unwrap());
    let kept = stands(&env, &second).await;
    assert_eq!((kept.status, kept.agent), (DeviceStatus::Denied, None));

    // Unknown, or lapsed, it takes no answer.
    let unknown = approved(&env, &request(&env, &c, "never stored"), &agent);
    assert!(
        !backend
            .decide_device(&unknown, env.now_micros())
            .await
            .unwrap()
    );
    let third = stored(&env, &c, "three").await;
    env.clock.advance(LIFETIME);
    let late = approved(&env, &third, &agent);
    assert!(
        !backend
            .decide_device(&late, env.now_micros())
            .await
            .unwrap()
    );
    assert_eq!(stands(&env, &third).await.status, DeviceStatus::Pending);

    // An approval naming an agent that is gone.
    let fourth = stored(&env, &c, "four").await;
    let mut ghost = approved(&env, &fourth, &agent);
    ghost.agent = Some(AgentId::new("agt_missing"));
    let refused = backend.decide_device(&ghost, env.now_micros()).await;
    assert!(
        matches!(refused, Err(StoreError::NotFound(NotFound::Agent(_)))),
        "{refused:?}"
    );
    assert_eq!(stands(&env, &fourth).await.status, DeviceStatus::Pending);
}

pub async fn case_concurrent_answers_answer_a_device_once<B: Backend>(env: Env<B>) {
    let agent = env.agent("device").await;
    let c = client(&env, "c_1").await;
    let pending = stored(&env, &c, "one").await;
    let now = env.now_micros();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..RACERS {
        let store = env.store.clone();
        let answer = match i % 2 {
            0 => approved(&env, &pending, &agent),
            _ => pending.denied("alice".into(), now),
        };
        tasks.spawn(async move {
            let stored = store.backend().decide_device(&answer, now).await.unwrap();
            stored.then_some(answer.status)
        });
    }
    let mut winners = Vec::new();
    while let Some(answer) = tasks.join_next().await {
        winners.extend(answer.unwrap());
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(stands(&env, &pending).await.status, winners[0]);
}

pub async fn case_polls_slow_a_device_down_and_the_interval_is_kept<B: Backend>(env: Env<B>) {
    let backend = env.store.backend();
    let c = client(&env, "c_1").await;
    let pending = stored(&env, &c, "one").await;
    // The first poll counts from the request: 1 s is too soon.
    env.clock.advance(Duration::from_secs(1));
    let first = poll(&env, &pending, "f");
    assert_eq!(
        backend.poll_device(&first).await.unwrap(),
        Polled::SlowDown(Duration::from_secs(10))
    );
    let kept = stands(&env, &pending).await;
    assert_eq!(
        (kept.interval, kept.polled_at),
        (Duration::from_secs(10), Some(first.now))
    );
    env.clock.advance(Duration::from_secs(10));
    assert_eq!(
        backend
            .poll_device(&poll(&env, &pending, "f"))
            .await
            .unwrap(),
        Polled::Pending
    );
    env.clock.advance(Duration::from_secs(5));
    let answer = backend
        .poll_device(&poll(&env, &pending, "f"))
        .await
        .unwrap();
    assert_eq!(answer, Polled::SlowDown(Duration::from_secs(15)));
    env.clock.advance(Duration::from_secs(15));
    assert_eq!(
        backend
            .poll_device(&poll(&env, &pending, "f"))
            .await
            .unwrap(),
        Polled::Pending
    );
    assert_eq!(
        stands(&env, &pending).await.interval,
        Duration::from_secs(15)
    );

    // Another client's poll finds nothing, and changes nothing; nor does an unknown code.
    let before = stands(&env, &pending).await;
    let mut other = poll(&env, &pending, "f");
    other.client_id = "c_2".into();
    assert_eq!(backend.poll_device(&other).await.unwrap(), Polled::Unknown);
    assert_eq!(stands(&env, &pending).await, before);
    let mut unknown = poll(&env, &pending, "f");
    unknown.hash = TokenHash::of("no such code");
    assert_eq!(
        backend.poll_device(&unknown).await.unwrap(),
        Polled::Unknown
    );

    // Once it lapses, it is expired.
    env.clock.advance(LIFETIME);
    assert_eq!(
        backend
            .poll_device(&poll(&env, &pending, "f"))
            .await
            .unwrap(),
        Polled::Expired
    );
}

pub async fn case_a_device_code_is_redeemed_once<B: Backend>(env: Env<B>) {
    let backend = env.store.backend();
    let agent = env.agent("device").await;
    let c = client(&env, "c_1").await;
    let pending = stored(&env, &c, "one").await;
    let yes = approved(&env, &pending, &agent);
    assert!(backend.decide_device(&yes, env.now_micros()).await.unwrap());
    // Approved: even a poll sooner than the interval redeems.
    env.clock.advance(Duration::from_secs(1));
    let Polled::Redeemed(was) = backend
        .poll_device(&poll(&env, &pending, "f1"))
        .await
        .unwrap()
    else {
        panic!("not redeemed");
    };
    assert_eq!(was, yes, "answered as it was");
    let redeemed = stands(&env, &pending).await;
    assert_eq!(redeemed.redeemed_at, Some(env.now_micros()));
    assert_eq!(redeemed.family, Some(FamilyId::new("f1")));
    env.clock.advance(Duration::from_secs(1));
    let replay = backend
        .poll_device(&poll(&env, &pending, "f2"))
        .await
        .unwrap();
    let Polled::Replayed(found) = replay else {
        panic!("not a replay: {replay:?}");
    };
    assert_eq!(
        found.family,
        Some(FamilyId::new("f1")),
        "the redemption's family"
    );
    assert_eq!(found.replayed_at, Some(env.now_micros()));
    assert_eq!(stands(&env, &pending).await, found);

    let denied = stored(&env, &c, "two").await;
    let no = denied.denied("alice".into(), env.now_micros());
    assert!(backend.decide_device(&no, env.now_micros()).await.unwrap());
    env.clock.advance(INTERVAL);
    assert_eq!(
        backend
            .poll_device(&poll(&env, &denied, "f3"))
            .await
            .unwrap(),
        Polled::Denied
    );

    let late = stored(&env, &c, "three").await;
    let yes = approved(&env, &late, &agent);
    assert!(backend.decide_device(&yes, env.now_micros()).await.unwrap());
    env.clock.advance(LIFETIME);
    assert_eq!(
        backend.poll_device(&poll(&env, &late, "f4")).await.unwrap(),
        Polled::Expired
    );
    assert_eq!(stands(&env, &late).await.redeemed_at, None);
}

pub async fn case_concurrent_polls_redeem_a_device_code_once<B: Backend>(env: Env<B>) {
    let agent = env.agent("device").await;
    let c = client(&env, "c_1").await;
    let pending = stored(&env, &c, "one").await;
    let yes = approved(&env, &pending, &agent);
    assert!(
        env.store
            .backend()
            .decide_device(&yes, env.now_micros())
            .await
            .unwrap()
    );
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..RACERS {
        let store = env.store.clone();
        let poll = poll(&env, &pending, &format!("family-{i}"));
        tasks.spawn(async move {
            let answer = store.backend().poll_device(&poll).await.unwrap();
            (poll.family, answer)
        });
    }
    let (mut winner, mut replays) = (None, Vec::new());
    while let Some(outcome) = tasks.join_next().await {
        match outcome.unwrap() {
            (family, Polled::Redeemed(_)) => {
                assert!(winner.replace(family).is_none(), "redeemed twice")
            }
            (_, Polled::Replayed(found)) => replays.push(found.family),
            (_, other) => panic!("{other:?}"),
        }
    }
    let winner = winner.expect("never redeemed");
    assert_eq!(replays.len(), RACERS - 1);
    assert!(
        replays.iter().all(|family| *family == Some(winner.clone())),
        "{replays:?}"
    );
}

pub async fn case_deleting_a_client_or_an_agent_removes_its_devices<B: Backend>(env: Env<B>) {
    let backend = env.store.backend();
    let agent = env.agent("device").await;
    let gone = client(&env, "c_gone").await;
    let kept = client(&env, "c_kept").await;
    let of_gone = stored(&env, &gone, "one").await;
    let approved_one = stored(&env, &kept, "two").await;
    let pending = stored(&env, &kept, "three").await;
    let yes = approved(&env, &approved_one, &agent);
    assert!(backend.decide_device(&yes, env.now_micros()).await.unwrap());

    assert!(backend.delete_client("c_gone").await.unwrap());
    assert_eq!(backend.device(&of_gone.hash).await.unwrap(), None);
    assert_eq!(
        backend
            .device_by_user_code(&of_gone.user_code)
            .await
            .unwrap(),
        None
    );
    env.store.delete_agent(&agent.id).await.unwrap();
    assert_eq!(
        backend.device(&approved_one.hash).await.unwrap(),
        None,
        "the agent's"
    );
    assert_eq!(
        backend.device(&pending.hash).await.unwrap(),
        Some(pending.clone())
    );
    let answer = backend
        .poll_device(&poll(&env, &approved_one, "f"))
        .await
        .unwrap();
    assert_eq!(answer, Polled::Unknown);
}

pub async fn case_purge_removes_lapsed_devices_and_keeps_live_ones<B: Backend>(env: Env<B>) {
    let backend = env.store.backend();
    let c = client(&env, "c_1").await;
    let mut short = request(&env, &c, "short");
    short.expires_at = env.now_micros() + Duration::from_secs(60);
    backend.insert_device(&short).await.unwrap();
    let long = stored(&env, &c, "long").await;
    env.clock.advance(Duration::from_secs(120));
    assert_eq!(backend.purge_oauth(env.now_micros()).await.unwrap(), 1);
    assert_eq!(backend.device(&short.hash).await.unwrap(), None);
    assert_eq!(
        backend.device_by_user_code(&short.user_code).await.unwrap(),
        None
    );
    assert_eq!(
        backend.device_by_user_code(&long.user_code).await.unwrap(),
        Some(long.clone())
    );
    // Its user code is free again.
    let mut again = request(&env, &c, "again");
    again.user_code = short.user_code;
    backend.insert_device(&again).await.unwrap();
}
