//! OAuth records (feature `oauth`): clients under the registration cap, codes redeemed once,
//! refresh tokens rotated once in families revoked whole, one connection per person and client,
//! what a deletion takes with it, purging, and a token's audience and client.
//!
//! Long by design: one section of the conformance suite, a flat list of independent cases
//! that a store author reads top to bottom when one fails; splitting it would only scatter
//! them.
//!
//! Long by design: one section of the conformance suite, a flat list of independent cases
//! that a store author reads top to bottom when one fails.

use std::time::Duration;

use super::{Env, caps};
use crate::error::{Conflict, NotFound, StoreError};
use crate::oauth::{
    AuthorizationCode, Client, ClientAuth, ClientKind, Connection, FamilyId, Redemption,
    RefreshRotation, RefreshToken,
};
use crate::principal::{AgentId, TokenId};
use crate::store::{Agent, Backend, NewToken};
use crate::token::TokenHash;

const DAY: Duration = Duration::from_secs(86_400);

/// How many tasks race in the concurrent cases.
const RACERS: usize = 20;

/// A registered client `id` created now, with every field set and a day to live unused.
fn registered<B: Backend>(env: &Env<B>, id: &str) -> Client {
    let now = env.now_micros();
    let mut client = Client::new(id, ClientKind::Registered, format!("App {id}"), now);
    client.redirect_uris = vec![
        "https://app.example/callback".into(),
        "http://127.0.0.1/cb".into(),
    ];
    client.auth = ClientAuth::SecretBasic;
    client.secret_hash = Some(TokenHash::of(&format!("secret of {id}")));
    client.scope = Some("posts:read posts:write".into());
    client.may_introspect = true;
    client.expires_at = Some(now + DAY);
    client
}

/// Stores `client` with no cap; panics if refused.
async fn stored<B: Backend>(env: &Env<B>, client: Client) -> Client {
    let now = env.now_micros();
    assert!(
        env.store
            .backend()
            .insert_client(&client, None, now)
            .await
            .unwrap()
    );
    client
}

/// An agent of alice's with this slug, and a registered client `id` stored.
async fn agent_and_client<B: Backend>(env: &Env<B>, slug: &str, id: &str) -> (Agent, Client) {
    let agent = env.agent(slug).await;
    let client = stored(env, registered(env, id)).await;
    (agent, client)
}

/// A code of `client` for alice's `agent`, hashed from `secret`, living 60 s.
fn code<B: Backend>(
    env: &Env<B>,
    client: &Client,
    agent: &AgentId,
    secret: &str,
) -> AuthorizationCode {
    let now = env.now_micros();
    AuthorizationCode {
        hash: TokenHash::of(secret),
        client_id: client.id.clone(),
        redirect_uri: "https://app.example/callback".into(),
        challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        resource: Some("https://api.example.com/mcp".into()),
        user: "alice".into(),
        agent: agent.clone(),
        capabilities: caps(&["posts:read"]),
        created_at: now,
        expires_at: now + Duration::from_secs(60),
        redeemed_at: None,
        family: None,
        replayed_at: None,
    }
}

/// A refresh token of `family`, hashed from `secret`, issued beside the access token `access`,
/// living a day.
fn refresh<B: Backend>(
    env: &Env<B>,
    client: &Client,
    agent: &AgentId,
    family: &str,
    secret: &str,
    access: &str,
) -> RefreshToken {
    let now = env.now_micros();
    RefreshToken {
        hash: TokenHash::of(secret),
        family: FamilyId::new(family),
        client_id: client.id.clone(),
        agent: agent.clone(),
        user: "alice".into(),
        capabilities: caps(&["posts:read", "comments:read"]),
        resource: Some("https://api.example.com/mcp".into()),
        access_token: TokenId::new(access),
        created_at: now,
        expires_at: Some(now + DAY),
        rotated_at: None,
        revoked_at: None,
    }
}

fn is_not_found_client<T: std::fmt::Debug>(result: &Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::NotFound(NotFound::Client(_))))
}

fn is_not_found_agent<T: std::fmt::Debug>(result: &Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::NotFound(NotFound::Agent(_))))
}

pub async fn case_oauth_clients_round_trip<B: Backend>(env: Env<B>) {
    let backend = env.store.backend();
    let b = stored(&env, registered(&env, "c_b")).await;
    let a = stored(&env, registered(&env, "c_a")).await;
    assert_eq!(backend.client("c_b").await.unwrap(), Some(b.clone()));
    let agent = env.agent("writer").await;
    let now = env.now_micros();
    let mut slug = Client::new("writer", ClientKind::Agent(agent.id.clone()), "Writer", now);
    slug.redirect_uris = vec!["https://writer.example/cb/*".into()];
    let slug = stored(&env, slug).await;
    let mut document = Client::new(
        "https://app.example/client.json",
        ClientKind::MetadataDocument,
        "Documented",
        now,
    );
    document.last_used_at = Some(now);
    let document = stored(&env, document).await;
    assert_eq!(backend.client("writer").await.unwrap(), Some(slug.clone()));
    assert_eq!(
        backend.client("writer").await.unwrap().unwrap().agent(),
        Some(&agent.id)
    );
    assert_eq!(
        backend.clients().await.unwrap(),
        vec![a, b, document, slug],
        "every client, by id"
    );
    assert_eq!(backend.client("c_missing").await.unwrap(), None);
    let orphan = Client::new(
        "ghost",
        ClientKind::Agent("agt_missing".into()),
        "Ghost",
        now,
    );
    let refused = backend.insert_client(&orphan, None, now).await;
    assert!(is_not_found_agent(&refused), "{refused:?}");
    assert_eq!(backend.client("ghost").await.unwrap(), None);
}

pub async fn case_the_registration_cap_counts_live_registered_clients<B: Backend>(env: Env<B>) {
    let backend = env.store.backend();
    let cap = Some(2);
    let insert = |client: Client| {
        let now = env.now_micros();
        async move { backend.insert_client(&client, cap, now).await.unwrap() }
    };
    assert!(insert(registered(&env, "c_1")).await);
    let mut short = registered(&env, "c_2");
    short.expires_at = Some(env.now_micros() + Duration::from_secs(60));
    assert!(insert(short).await);
    assert!(
        !insert(registered(&env, "c_3")).await,
        "the third is over the cap"
    );
    assert_eq!(
        backend.client("c_3").await.unwrap(),
        None,
        "and is not stored"
    );

    // Neither counted nor capped: an agent's client and a metadata document.
    let agent = env.agent("writer").await;
    let now = env.now_micros();
    assert!(insert(Client::new("writer", ClientKind::Agent(agent.id), "W", now)).await);
    let document = Client::new(
        "https://a.example/c.json",
        ClientKind::MetadataDocument,
        "D",
        now,
    );
    assert!(insert(document).await);
    assert!(!insert(registered(&env, "c_3")).await);

    // A revoked one no longer counts.
    let mut revoked = backend.client("c_1").await.unwrap().unwrap();
    revoked.revoked_at = Some(env.now_micros());
    assert!(backend.update_client(&revoked).await.unwrap());
    assert!(insert(registered(&env, "c_3")).await);
    assert!(!insert(registered(&env, "c_4")).await);

    // Nor does a lapsed one, at the instant it lapses.
    env.clock.advance(Duration::from_secs(60));
    assert!(insert(registered(&env, "c_4")).await);
    assert!(!insert(registered(&env, "c_5")).await);
    let ids: Vec<String> = (backend.clients().await.unwrap().into_iter())
        .map(|c| c.id)
        .filter(|id| id.starts_with("c_"))
        .collect();
    assert_eq!(ids, ["c_1", "c_2", "c_3", "c_4"]);
}

pub async fn case_concurrent_registrations_stay_under_the_cap<B: Backend>(env: Env<B>) {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..RACERS {
        let store = env.store.clone();
        let client = registered(&env, &format!("c_{i:02}"));
        let now = env.now_micros();
        tasks.spawn(async move {
            store
                .backend()
                .insert_client(&client, Some(5), now)
                .await
                .unwrap()
        });
    }
    let mut admitted = 0;
    while let Some(inserted) = tasks.join_next().await {
        admitted += usize::from(inserted.unwrap());
    }
    assert_eq!(admitted, 5);
    assert_eq!(env.store.backend().clients().await.unwrap().len(), 5);
}

pub async fn case_a_client_id_taken_twice_is_a_conflict<B: Backend>(env: Env<B>) {
    let backend = env.store.backend();
    let first = stored(&env, registered(&env, "c_1")).await;
    let mut second = registered(&env, "c_1");
    second.name = "Impostor".into();
    for cap in [None, Some(10)] {
        let again = backend.insert_client(&second, cap, env.now_micros()).await;
        assert!(
            matches!(&again, Err(StoreError::Conflict(Conflict::Client(id))) if id == "c_1"),
            "{again:?}"
        );
    }
    assert_eq!(
        backend.client("c_1").await.unwrap(),
        Some(first),
        "unchanged"
    );
}

pub async fn case_clients_are_updated_and_deleted<B: Backend>(env: Env<B>) {
    let backend = env.store.backend();
    let client = stored(&env, registered(&env, "c_1")).await;
    env.clock.advance(Duration::from_secs(5));
    let now = env.now_micros();
    let mut changed = client.clone();
    changed.name = "Renamed".into();
    changed.redirect_uris = vec!["https://other.example/cb".into()];
    changed.auth = ClientAuth::SecretPost;
    changed.secret_hash = Some(TokenHash::of("another secret"));
    changed.scope = None;
    changed.may_introspect = false;
    changed.last_used_at = Some(now);
    changed.expires_at = Some(now + DAY);
    changed.revoked_at = Some(now);
    assert!(backend.update_client(&changed).await.unwrap());
    assert_eq!(backend.client("c_1").await.unwrap(), Some(changed.clone()));

    // Its id, kind and creation stay as registered.
    let mut rekinded = changed.clone();
    rekinded.kind = ClientKind::MetadataDocument;
    rekinded.created_at = now;
    assert!(backend.update_client(&rekinded).await.unwrap());
    assert_eq!(backend.client("c_1").await.unwrap(), Some(changed));

    let mut missing = registered(&env, "c_missing");
    missing.name = "Nobody".into();
    assert!(!backend.update_client(&missing).await.unwrap());
    assert_eq!(backend.client("c_missing").await.unwrap(), None);

    assert!(backend.delete_client("c_1").await.unwrap());
    assert_eq!(backend.client("c_1").await.unwrap(), None);
    assert!(!backend.delete_client("c_1").await.unwrap());
}

pub async fn case_a_code_is_redeemed_once<B: Backend>(env: Env<B>) {
    let backend = env.store.backend();
    let (agent, client) = agent_and_client(&env, "writer", "c_1").await;
    let issued = code(&env, &client, &agent.id, "code-1");
    backend.insert_code(&issued).await.unwrap();
    env.clock.advance(Duration::from_secs(2));
    let now = env.now_micros();
    let family = FamilyId::new("fam-1");
    assert_eq!(
        backend
            .redeem_code(&issued.hash, &family, now)
            .await
            .unwrap(),
        Redemption::Redeemed(issued.clone()),
        "the code as it was"
    );
    let mut spent = issued.clone();
    spent.redeemed_at = Some(now);
    spent.family = Some(family.clone());
    assert_eq!(
        backend.code(&issued.hash).await.unwrap(),
        Some(spent.clone()),
        "redeemed for its family, in the same step"
    );
    env.clock.advance(Duration::from_secs(1));
    let replayed_at = env.now_micros();
    let replay = backend
        .redeem_code(&issued.hash, &FamilyId::new("fam-2"), replayed_at)
        .await;
    spent.replayed_at = Some(replayed_at);
    assert_eq!(
        replay.unwrap(),
        Redemption::Replayed(spent.clone()),
        "redeemed at the first, for the first family; the replay marked"
    );
    env.clock.advance(Duration::from_secs(1));
    backend
        .redeem_code(&issued.hash, &family, env.now_micros())
        .await
        .unwrap();
    assert_eq!(
        backend.code(&issued.hash).await.unwrap(),
        Some(spent),
        "the first replay's time stays"
    );
    assert_eq!(
        backend
            .redeem_code(&TokenHash::of("code-unknown"), &family, now)
            .await
            .unwrap(),
        Redemption::Unknown
    );
    assert_eq!(
        backend.code(&TokenHash::of("code-unknown")).await.unwrap(),
        None
    );

    let mut orphan = code(&env, &client, &agent.id, "code-2");
    orphan.client_id = "c_missing".into();
    let refused = backend.insert_code(&orphan).await;
    assert!(is_not_found_client(&refused), "{refused:?}");
    let lost = code(&env, &client, &"agt_missing".into(), "code-3");
    let refused = backend.insert_code(&lost).await;
    assert!(is_not_found_agent(&refused), "{refused:?}");
    for hash in [&orphan.hash, &lost.hash] {
        assert_eq!(
            backend
                .redeem_code(hash, &FamilyId::new("fam"), now)
                .await
                .unwrap(),
            Redemption::Unknown
        );
    }
}

pub async fn case_concurrent_redemptions_redeem_a_code_once<B: Backend>(env: Env<B>) {
    let (agent, client) = agent_and_client(&env, "writer", "c_1").await;
    let issued = code(&env, &client, &agent.id, "code-1");
    env.store.backend().insert_code(&issued).await.unwrap();
    let now = env.now_micros();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..RACERS {
        let store = env.store.clone();
        let hash = issued.hash;
        tasks.spawn(async move {
            let family = FamilyId::new("fam");
            store
                .backend()
                .redeem_code(&hash, &family, now)
                .await
                .unwrap()
        });
    }
    let (mut redeemed, mut replayed) = (0, 0);
    while let Some(redemption) = tasks.join_next().await {
        match redemption.unwrap() {
            Redemption::Redeemed(_) => redeemed += 1,
            Redemption::Replayed(_) => replayed += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((redeemed, replayed), (1, RACERS - 1));
}

pub async fn case_a_replay_sees_the_family_its_redemption_started<B: Backend>(env: Env<B>) {
    let backend = env.store.backend();
    let (agent, client) = agent_and_client(&env, "writer", "c_1").await;
    let issued = code(&env, &client, &agent.id, "code-1");
    backend.insert_code(&issued).await.unwrap();
    let now = env.now_micros();
    let family = FamilyId::new("fam_1");
    assert!(matches!(
        backend.redeem_code(&issued.hash, &family, now).await.unwrap(),
        Redemption::Redeemed(found) if found.family.is_none()
    ));
    // However soon it comes, a replay finds the family: the redemption set it.
    match backend
        .redeem_code(&issued.hash, &FamilyId::new("fam_2"), now)
        .await
        .unwrap()
    {
        Redemption::Replayed(replayed) => {
            assert_eq!(replayed.family, Some(family));
            assert_eq!(replayed.replayed_at, Some(now));
        }
        other => panic!("{other:?}"),
    }
}

pub async fn case_a_refresh_token_rotates_once<B: Backend>(env: Env<B>) {
    let backend = env.store.backend();
    let (agent, client) = agent_and_client(&env, "writer", "c_1").await;
    let first = refresh(&env, &client, &agent.id, "fam_1", "rt-1", "tok_1");
    backend.insert_refresh(&first).await.unwrap();
    assert_eq!(
        backend.refresh_token(&first.hash).await.unwrap(),
        Some(first.clone())
    );

    env.clock.advance(Duration::from_secs(10));
    let now = env.now_micros();
    let second = refresh(&env, &client, &agent.id, "fam_1", "rt-2", "tok_2");
    assert_eq!(
        backend
            .rotate_refresh(&first.hash, &second, now)
            .await
            .unwrap(),
        RefreshRotation::Rotated(first.clone()),
        "the old token as it was"
    );
    let mut spent = first.clone();
    spent.rotated_at = Some(now);
    assert_eq!(
        backend.refresh_token(&first.hash).await.unwrap(),
        Some(spent.clone())
    );
    assert_eq!(
        backend.refresh_token(&second.hash).await.unwrap(),
        Some(second.clone()),
        "the family's new member is found by its hash"
    );

    env.clock.advance(Duration::from_secs(10));
    let third = refresh(&env, &client, &agent.id, "fam_1", "rt-3", "tok_3");
    let reuse = backend
        .rotate_refresh(&first.hash, &third, env.now_micros())
        .await;
    assert_eq!(reuse.unwrap(), RefreshRotation::Reused(spent));
    assert_eq!(
        backend.refresh_token(&third.hash).await.unwrap(),
        None,
        "nothing stored"
    );

    let unknown = backend
        .rotate_refresh(&TokenHash::of("rt-unknown"), &third, env.now_micros())
        .await;
    assert_eq!(unknown.unwrap(), RefreshRotation::Unknown);
    assert_eq!(backend.refresh_token(&third.hash).await.unwrap(), None);

    // A revoked member is not rotated either.
    backend
        .revoke_family(&second.family, env.now_micros())
        .await
        .unwrap();
    let revoked = backend
        .rotate_refresh(&second.hash, &third, env.now_micros())
        .await;
    assert!(
        matches!(&revoked, Ok(RefreshRotation::Reused(found)) if found.revoked_at.is_some()),
        "{revoked:?}"
    );
    assert_eq!(backend.refresh_token(&third.hash).await.unwrap(), None);
}

pub async fn case_concurrent_rotations_rotate_a_refresh_token_once<B: Backend>(env: Env<B>) {
    let (agent, client) = agent_and_client(&env, "writer", "c_1").await;
    let first = refresh(&env, &client, &agent.id, "fam_1", "rt-0", "tok_0");
    env.store.backend().insert_refresh(&first).await.unwrap();
    let now = env.now_micros();
    let successors: Vec<RefreshToken> = (1..=RACERS)
        .map(|i| {
            refresh(
                &env,
                &client,
                &agent.id,
                "fam_1",
                &format!("rt-{i}"),
                &format!("tok_{i}"),
            )
        })
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for successor in successors.clone() {
        let store = env.store.clone();
        let old = first.hash;
        tasks.spawn(async move {
            store
                .backend()
                .rotate_refresh(&old, &successor, now)
                .await
                .unwrap()
        });
    }
    let (mut rotated, mut reused) = (0, 0);
    while let Some(rotation) = tasks.join_next().await {
        match rotation.unwrap() {
            RefreshRotation::Rotated(_) => rotated += 1,
            RefreshRotation::Reused(_) => reused += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((rotated, reused), (1, RACERS - 1));
    let mut kept = 0;
    for successor in &successors {
        kept += usize::from(
            env.store
                .backend()
                .refresh_token(&successor.hash)
                .await
                .unwrap()
                .is_some(),
        );
    }
    assert_eq!(kept, 1, "one successor stored");
}

pub async fn case_revoking_a_family_revokes_every_member<B: Backend>(env: Env<B>) {
    let backend = env.store.backend();
    let (agent, client) = agent_and_client(&env, "writer", "c_1").await;
    let mut members = vec![refresh(&env, &client, &agent.id, "fam_1", "rt-1", "tok_1")];
    backend.insert_refresh(&members[0]).await.unwrap();
    for i in 2..=3 {
        env.clock.advance(Duration::from_secs(60));
        let next = refresh(
            &env,
            &client,
            &agent.id,
            "fam_1",
            &format!("rt-{i}"),
            &format!("tok_{i}"),
        );
        let old = members.last().unwrap().hash;
        let rotation = backend.rotate_refresh(&old, &next, env.now_micros()).await;
        assert!(
            matches!(rotation, Ok(RefreshRotation::Rotated(_))),
            "{rotation:?}"
        );
        members.push(next);
    }
    let other = refresh(&env, &client, &agent.id, "fam_2", "rt-9", "tok_9");
    backend.insert_refresh(&other).await.unwrap();

    env.clock.advance(Duration::from_secs(60));
    let at = env.now_micros();
    let issued = backend
        .revoke_family(&FamilyId::new("fam_1"), at)
        .await
        .unwrap();
    let expected: Vec<TokenId> = ["tok_1", "tok_2", "tok_3"].map(TokenId::new).to_vec();
    assert_eq!(
        issued, expected,
        "every access token of the family, oldest first"
    );
    for member in &members {
        let now = backend.refresh_token(&member.hash).await.unwrap().unwrap();
        assert_eq!(now.revoked_at, Some(at), "{:?}", member.access_token);
    }
    assert_eq!(
        backend.refresh_token(&other.hash).await.unwrap(),
        Some(other),
        "another family is untouched"
    );

    // Again later: the same tokens, each keeping its first instant.
    env.clock.advance(Duration::from_secs(60));
    let again = backend
        .revoke_family(&FamilyId::new("fam_1"), env.now_micros())
        .await;
    assert_eq!(again.unwrap(), expected);
    for member in &members {
        let now = backend.refresh_token(&member.hash).await.unwrap().unwrap();
        assert_eq!(now.revoked_at, Some(at));
    }
    let none = backend
        .revoke_family(&FamilyId::new("fam_missing"), at)
        .await;
    assert_eq!(none.unwrap(), Vec::<TokenId>::new());
}

pub async fn case_connect_finds_or_creates<B: Backend>(env: Env<B>) {
    let backend = env.store.backend();
    let (agent, client) = agent_and_client(&env, "app-alice", "c_1").await;
    let other = env.agent("app-alice-2").await;
    let now = env.now_micros();
    let first = Connection::new("alice", client.id.clone(), agent.id.clone(), now);
    assert_eq!(backend.connect(&first).await.unwrap(), first);
    env.clock.advance(Duration::from_secs(5));
    let second = Connection::new("alice", client.id.clone(), other.id, env.now_micros());
    assert_eq!(
        backend.connect(&second).await.unwrap(),
        first,
        "the connection that stands"
    );
    assert_eq!(
        backend.connection(&"alice".into(), "c_1").await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        backend.connection(&"bob".into(), "c_1").await.unwrap(),
        None
    );
    assert_eq!(backend.connections(None).await.unwrap(), vec![first]);

    let unknown = Connection::new("bob", "c_missing", agent.id.clone(), now);
    let refused = backend.connect(&unknown).await;
    assert!(is_not_found_client(&refused), "{refused:?}");
    let lost = Connection::new("bob", client.id, "agt_missing", now);
    let refused = backend.connect(&lost).await;
    assert!(is_not_found_agent(&refused), "{refused:?}");
    assert_eq!(
        backend.connections(Some(&"bob".into())).await.unwrap(),
        vec![]
    );
}

pub async fn case_concurrent_consents_make_one_connection<B: Backend>(env: Env<B>) {
    let client = stored(&env, registered(&env, "c_1")).await;
    let mut agents = Vec::new();
    for i in 0..RACERS {
        agents.push(env.agent(&format!("app-{i}")).await.id);
    }
    let now = env.now_micros();
    let mut tasks = tokio::task::JoinSet::new();
    for agent in agents {
        let store = env.store.clone();
        let connection = Connection::new("alice", client.id.clone(), agent, now);
        tasks.spawn(async move { store.backend().connect(&connection).await.unwrap() });
    }
    let mut standing = Vec::new();
    while let Some(connection) = tasks.join_next().await {
        standing.push(connection.unwrap());
    }
    standing.dedup();
    assert_eq!(
        standing.len(),
        1,
        "every consent answered the same connection"
    );
    assert_eq!(
        env.store.backend().connections(None).await.unwrap(),
        standing
    );
}

pub async fn case_connections_are_listed_by_user_and_deleted<B: Backend>(env: Env<B>) {
    let backend = env.store.backend();
    let a = stored(&env, registered(&env, "c_a")).await;
    let b = stored(&env, registered(&env, "c_b")).await;
    let now = env.now_micros();
    let mut made = Vec::new();
    for (user, client, slug) in [
        ("bob", &a, "bob-a"),
        ("alice", &b, "alice-b"),
        ("alice", &a, "alice-a"),
    ] {
        let agent = env.agent(slug).await;
        let connection = Connection::new(user, client.id.clone(), agent.id, now);
        made.push(backend.connect(&connection).await.unwrap());
    }
    let [bob_a, alice_b, alice_a] = <[Connection; 3]>::try_from(made).unwrap();
    assert_eq!(
        backend.connections(Some(&"alice".into())).await.unwrap(),
        vec![alice_a.clone(), alice_b.clone()],
        "by client"
    );
    assert_eq!(
        backend.connections(None).await.unwrap(),
        vec![alice_a.clone(), alice_b.clone(), bob_a.clone()],
        "by user, then client"
    );
    assert!(
        backend
            .delete_connection(&"alice".into(), "c_a")
            .await
            .unwrap()
    );
    assert!(
        !backend
            .delete_connection(&"alice".into(), "c_a")
            .await
            .unwrap()
    );
    assert_eq!(
        backend.connection(&"alice".into(), "c_a").await.unwrap(),
        None
    );
    assert_eq!(
        backend.connections(None).await.unwrap(),
        vec![alice_b, bob_a],
        "the others stay"
    );
}

/// A client of `agent` holding a code, a refresh token and alice's connection, each named
/// after `tag`.
async fn holding<B: Backend>(env: &Env<B>, agent: &AgentId, tag: &str) -> Client {
    let backend = env.store.backend();
    let client = stored(env, registered(env, &format!("c_{tag}"))).await;
    backend
        .insert_code(&code(env, &client, agent, &format!("code-{tag}")))
        .await
        .unwrap();
    let token = refresh(
        env,
        &client,
        agent,
        &format!("fam_{tag}"),
        &format!("rt-{tag}"),
        "tok_1",
    );
    backend.insert_refresh(&token).await.unwrap();
    let connection = Connection::new("alice", client.id.clone(), agent.clone(), env.now_micros());
    backend.connect(&connection).await.unwrap();
    client
}

/// Whether the records [`holding`] made for `tag` are there: code, refresh token, connection.
async fn held<B: Backend>(env: &Env<B>, tag: &str) -> [bool; 3] {
    let backend = env.store.backend();
    let code = backend
        .code(&TokenHash::of(&format!("code-{tag}")))
        .await
        .unwrap();
    let refresh = backend
        .refresh_token(&TokenHash::of(&format!("rt-{tag}")))
        .await
        .unwrap();
    let connection = backend
        .connection(&"alice".into(), &format!("c_{tag}"))
        .await
        .unwrap();
    [code.is_some(), refresh.is_some(), connection.is_some()]
}

pub async fn case_deleting_a_client_removes_its_codes_refresh_tokens_and_connections<B: Backend>(
    env: Env<B>,
) {
    let agent = env.agent("writer").await;
    let other = env.agent("reader").await;
    holding(&env, &agent.id, "gone").await;
    holding(&env, &other.id, "kept").await;
    assert!(env.store.backend().delete_client("c_gone").await.unwrap());
    assert_eq!(held(&env, "gone").await, [false; 3]);
    assert_eq!(held(&env, "kept").await, [true; 3]);
}

pub async fn case_deleting_an_agent_removes_its_connection_and_client<B: Backend>(env: Env<B>) {
    let backend = env.store.backend();
    let agent = env.agent("app-alice").await;
    let other = env.agent("app-bob").await;
    holding(&env, &agent.id, "gone").await;
    holding(&env, &other.id, "kept").await;
    let now = env.now_micros();
    let slug = Client::new("app-alice", ClientKind::Agent(agent.id.clone()), "A", now);
    stored(&env, slug).await;
    env.store.delete_agent(&agent.id).await.unwrap();
    assert_eq!(
        held(&env, "gone").await,
        [false; 3],
        "its code, refresh token and connection"
    );
    assert_eq!(
        backend.client("app-alice").await.unwrap(),
        None,
        "the agent's own client"
    );
    assert!(
        backend.client("c_gone").await.unwrap().is_some(),
        "a client it connected to stays"
    );
    assert_eq!(held(&env, "kept").await, [true; 3]);
}

pub async fn case_purge_removes_lapsed_oauth_records_and_keeps_live_ones<B: Backend>(env: Env<B>) {
    let backend = env.store.backend();
    let (agent, client) = agent_and_client(&env, "writer", "c_live").await;
    let start = env.now_micros();
    let mut lapsing = registered(&env, "c_lapsing");
    lapsing.expires_at = Some(start + Duration::from_secs(600));
    stored(&env, lapsing).await;
    let mut unlimited = registered(&env, "c_forever");
    unlimited.expires_at = None;
    stored(&env, unlimited).await;
    let slug = Client::new("writer", ClientKind::Agent(agent.id.clone()), "W", start);
    stored(&env, slug).await;

    let old_code = code(&env, &client, &agent.id, "code-old");
    backend.insert_code(&old_code).await.unwrap();
    let mut short = refresh(&env, &client, &agent.id, "fam_1", "rt-short", "tok_1");
    short.expires_at = Some(start + Duration::from_secs(300));
    backend.insert_refresh(&short).await.unwrap();
    let revoked = refresh(&env, &client, &agent.id, "fam_2", "rt-revoked", "tok_2");
    backend.insert_refresh(&revoked).await.unwrap();
    backend.revoke_family(&revoked.family, start).await.unwrap();
    let rotated = refresh(&env, &client, &agent.id, "fam_3", "rt-rotated", "tok_3");
    backend.insert_refresh(&rotated).await.unwrap();
    let successor = refresh(&env, &client, &agent.id, "fam_3", "rt-successor", "tok_4");
    let rotation = backend
        .rotate_refresh(&rotated.hash, &successor, start)
        .await;
    assert!(
        matches!(rotation, Ok(RefreshRotation::Rotated(_))),
        "{rotation:?}"
    );

    env.clock.advance(Duration::from_secs(3600));
    let fresh_code = code(&env, &client, &agent.id, "code-fresh");
    backend.insert_code(&fresh_code).await.unwrap();
    let purged = backend.purge_oauth(env.now_micros()).await.unwrap();
    assert_eq!(
        purged, 4,
        "the lapsed code, the expired and the revoked refresh tokens, the lapsed client"
    );
    let now = env.now_micros();
    assert_eq!(backend.code(&old_code.hash).await.unwrap(), None);
    assert!(backend.code(&fresh_code.hash).await.unwrap().is_some());
    for (gone, hash) in [
        (true, &short.hash),
        (true, &revoked.hash),
        (false, &rotated.hash),
        (false, &successor.hash),
    ] {
        let found = backend.refresh_token(hash).await.unwrap();
        assert_eq!(found.is_none(), gone, "{hash:?}");
    }
    let ids: Vec<String> = backend
        .clients()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, ["c_forever", "c_live", "writer"]);
    assert_eq!(backend.purge_oauth(now).await.unwrap(), 0, "nothing twice");
}

pub async fn case_a_tokens_resource_and_client_reach_the_principal<B: Backend>(env: Env<B>) {
    let resource = "https://api.example.com/mcp";
    let agent = env.agent("writer").await;
    let bound = env
        .token(
            &agent.id,
            NewToken::new("oauth").resource(resource).client("c_1"),
        )
        .await;
    assert_eq!(
        (
            bound.info.resource.as_deref(),
            bound.info.client_id.as_deref()
        ),
        (Some(resource), Some("c_1"))
    );
    let listed = env
        .store
        .token(&agent.id, &bound.info.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(listed, bound.info, "stored as issued");
    let principal = env.resolve(&bound).await.unwrap();
    assert_eq!(
        (principal.audience(), principal.client_id()),
        (Some(resource), Some("c_1"))
    );

    let plain = env.token(&agent.id, NewToken::new("cli")).await;
    let principal = env.resolve(&plain).await.unwrap();
    assert_eq!((principal.audience(), principal.client_id()), (None, None));

    let rotated = env
        .store
        .rotate_token(&agent.id, &bound.info.id, Duration::ZERO)
        .await
        .unwrap();
    let principal = env.resolve(&rotated).await.unwrap();
    assert_eq!(
        (principal.audience(), principal.client_id()),
        (Some(resource), Some("c_1")),
        "a rotation keeps both"
    );
}

pub async fn case_a_delegated_token_keeps_its_delegators_audience<B: Backend>(env: Env<B>) {
    use crate::delegation::Delegation;
    let resource = "https://api.example.com/mcp";
    let planner = env.agent("planner").await;
    let worker = env.agent("worker").await;
    let bound = env
        .token(
            &planner.id,
            NewToken::new("oauth").resource(resource).client("c_1"),
        )
        .await;
    let child = env
        .store
        .delegate(
            bound.token.expose_secret(),
            Delegation::to(worker.id, "child"),
        )
        .await
        .unwrap();
    let principal = env.resolve(&child).await.unwrap();
    assert_eq!(
        principal.audience(),
        Some(resource),
        "never wider than the delegator"
    );
    assert_eq!(
        principal.client_id(),
        None,
        "no client was issued the child"
    );
}
