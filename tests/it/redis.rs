//! Redis-backed rate limits and second-level cache, on the server named by
//! `AGENT_AUTH_TEST_REDIS_URL`. Without it the tests print a notice and pass, unless
//! `AGENT_AUTH_REQUIRE_SERVICES` is set (CI), which makes a missing server a failure. Each test
//! keeps its keys under a prefix of its own.
#![cfg(feature = "redis")]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tower_agent_auth::cache::{RedisSecondLevel, SecondLevel};
use tower_agent_auth::ceiling::{CapabilityCeiling, CapabilitySet, LayerSource, Policy};
use tower_agent_auth::limit::{LimitKind, RateCounter, RedisCounter};
use tower_agent_auth::principal::{AgentRef, AgentType, TaskScope};
use tower_agent_auth::token::TokenHash;
use tower_agent_auth::{ExecutionPrincipal, Principal};

/// The secret the nodes share to tag second-level entries (32 bytes at least).
const SECRET: &[u8] = b"a test secret of at least 32 bytes, never a real one";

fn server_url() -> Option<String> {
    match std::env::var("AGENT_AUTH_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if crate::common::services_required() => {
            panic!("AGENT_AUTH_TEST_REDIS_URL is not set but AGENT_AUTH_REQUIRE_SERVICES is")
        }
        _ => {
            crate::common::skip_notice("Redis", "AGENT_AUTH_TEST_REDIS_URL");
            None
        }
    }
}

/// A key prefix no other test (nor another run) uses.
fn unique_prefix(test: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "agent_auth_test:{test}:{}:{nanos}:{}:",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

async fn raw_connection(url: &str) -> redis::aio::ConnectionManager {
    redis::aio::ConnectionManager::new(redis::Client::open(url).unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_admit_exactly_the_limit_under_concurrent_hits() {
    let Some(url) = server_url() else { return };
    let prefix = unique_prefix("two_nodes");
    // Two nodes: two counters, each with its own connection, the same server and prefix.
    let nodes = [
        Arc::new(
            RedisCounter::connect(&url)
                .await
                .unwrap()
                .with_prefix(prefix.clone()),
        ),
        Arc::new(
            RedisCounter::connect(&url)
                .await
                .unwrap()
                .with_prefix(prefix.clone()),
        ),
    ];
    // A long window, so that all 400 hits fall into one.
    let window = Duration::from_secs(3_600);
    let limit = 50;
    let mut hits = tokio::task::JoinSet::new();
    for n in 0..400 {
        let node = nodes[n % 2].clone();
        hits.spawn(async move { node.hit(LimitKind::Agent, "agt_1", window).await.unwrap() });
    }
    let mut admitted = 0;
    let mut counts = Vec::new();
    while let Some(hit) = hits.join_next().await {
        let hit = hit.unwrap();
        assert!(hit.remaining <= window && hit.remaining > Duration::ZERO);
        if hit.count <= limit {
            admitted += 1;
        }
        counts.push(hit.count);
    }
    assert_eq!(admitted, 50, "exactly the limit across both nodes");
    counts.sort_unstable();
    assert_eq!(
        counts,
        (1..=400).collect::<Vec<_>>(),
        "every hit counted once"
    );

    // The key names the kind, the id and the window, and expires.
    let mut connection = raw_connection(&url).await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].starts_with(&format!("{prefix}rl:agent:agt_1:")));
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&keys[0])
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(ttl > 0, "{ttl}");
}

fn principal() -> Principal {
    let policy =
        |patterns: &[&str]| Arc::new(Policy::allow(CapabilitySet::parse(patterns).unwrap()));
    let ceiling = CapabilityCeiling::new(policy(&["posts:*"]))
        .narrowed_by(LayerSource::Token, policy(&["posts:read"]));
    ExecutionPrincipal::agent(
        "alice".into(),
        AgentRef::new("agt_1", "writer").with_type(AgentType::Supervised),
        "tok_1".into(),
        ceiling,
    )
    .with_task(TaskScope::default())
    .with_max_operations(5)
    .with_expires_at(time::OffsetDateTime::now_utc() + Duration::from_secs(3_600))
    .into()
}

#[tokio::test]
async fn a_second_level_entry_round_trips() {
    let Some(url) = server_url() else { return };
    let l2 = RedisSecondLevel::connect(&url, SECRET)
        .await
        .unwrap()
        .with_prefix(unique_prefix("round_trip"));
    let hash = TokenHash::of("acme_writer_round_trip");
    assert!(l2.get(&hash, 3).await.unwrap().is_none(), "nothing yet");
    let stored = principal();
    l2.put(&hash, 3, &stored, Duration::from_secs(60))
        .await
        .unwrap();
    let found = l2.get(&hash, 3).await.unwrap().expect("a hit");
    assert_eq!(found.user_id(), stored.user_id());
    assert_eq!(found.agent_ref(), stored.agent_ref());
    assert_eq!(found.token_id(), stored.token_id());
    assert_eq!(found.max_operations(), Some(5));
    assert_eq!(found.expires_at(), stored.expires_at());
    assert_eq!(found.task(), stored.task());
    assert!(found.is_supervised());
    assert!(found.can("posts:read"));
    assert!(!found.can("posts:publish"));
}

/// Expiry is judged by the configured clock, not the wall clock: the entry of a principal
/// whose token expires in an hour is gone once that clock passes the hour.
#[tokio::test]
async fn a_second_level_entry_expires_by_the_configured_clock() {
    let Some(url) = server_url() else { return };
    let clock = Arc::new(tower_agent_auth::clock::ManualClock::new(
        time::OffsetDateTime::now_utc(),
    ));
    let l2 = RedisSecondLevel::connect(&url, SECRET)
        .await
        .unwrap()
        .with_prefix(unique_prefix("clock"))
        .with_clock(clock.clone());
    let hash = TokenHash::of("acme_writer_clock");
    l2.put(&hash, 1, &principal(), Duration::from_secs(7_200))
        .await
        .unwrap();
    assert!(l2.get(&hash, 1).await.unwrap().is_some(), "before expiry");
    clock.advance(Duration::from_secs(3_601));
    assert!(l2.get(&hash, 1).await.unwrap().is_none(), "after expiry");
    l2.put(&hash, 2, &principal(), Duration::from_secs(60))
        .await
        .unwrap();
    assert!(
        l2.get(&hash, 2).await.unwrap().is_none(),
        "an expired principal is not stored"
    );
}

#[tokio::test]
async fn an_entry_written_at_one_epoch_is_not_found_at_the_next() {
    let Some(url) = server_url() else { return };
    let l2 = RedisSecondLevel::connect(&url, SECRET)
        .await
        .unwrap()
        .with_prefix(unique_prefix("epochs"));
    let hash = TokenHash::of("acme_writer_epochs");
    l2.put(&hash, 3, &principal(), Duration::from_secs(60))
        .await
        .unwrap();
    assert!(l2.get(&hash, 3).await.unwrap().is_some());
    assert!(l2.get(&hash, 4).await.unwrap().is_none());
}

#[tokio::test]
async fn a_garbage_value_is_a_miss() {
    let Some(url) = server_url() else { return };
    let l2 = RedisSecondLevel::connect(&url, SECRET)
        .await
        .unwrap()
        .with_prefix(unique_prefix("garbage"));
    let hash = TokenHash::of("acme_writer_garbage");
    let mut connection = raw_connection(&url).await;
    for garbage in [
        &b"not json"[..],
        b"{\"v\":1}",
        b"{\"v\":99,\"u\":\"alice\"}",
        &[0xff, 0xfe],
    ] {
        redis::cmd("SET")
            .arg(l2.key(&hash, 1))
            .arg(garbage)
            .arg("PX")
            .arg(60_000)
            .query_async::<()>(&mut connection)
            .await
            .unwrap();
        assert!(l2.get(&hash, 1).await.unwrap().is_none(), "{garbage:?}");
    }
}

#[tokio::test]
async fn two_nodes_behind_the_auth_layer_share_one_token_limit() {
    use http::{Request, Response, StatusCode};
    use tower::{ServiceBuilder, ServiceExt};
    use tower_agent_auth::AgentAuthLayer;
    use tower_agent_auth::limit::{Rate, RateLimitLayer, RateLimits};
    use tower_agent_auth::store::{
        MemoryStore, MemoryUserDirectory, NewAgent, NewToken, UserRecord,
    };
    use tower_agent_auth::token::TokenFormat;

    let Some(url) = server_url() else { return };
    let prefix = unique_prefix("layer_nodes");
    let users = MemoryUserDirectory::new();
    users.insert(UserRecord::new("alice", Policy::unrestricted()));
    let store = MemoryStore::new(TokenFormat::new("acme").unwrap(), users);
    let agent = store
        .create_agent(NewAgent::new("writer", "alice"))
        .await
        .unwrap();
    let issued = store
        .create_token(&agent.id, NewToken::new("t"))
        .await
        .unwrap();
    let bearer = format!("Bearer {}", issued.token.expose_secret());
    let limits = RateLimits::new().per_token(Rate::per_hour(5));
    let mut nodes = Vec::new();
    for _ in 0..2 {
        let counter = RedisCounter::connect(&url)
            .await
            .unwrap()
            .with_prefix(prefix.clone());
        nodes.push(
            ServiceBuilder::new()
                .layer(AgentAuthLayer::new(store.clone()))
                .layer(RateLimitLayer::new(limits.clone(), counter))
                .service_fn(|_: Request<String>| async {
                    Ok::<_, std::convert::Infallible>(Response::new(String::new()))
                }),
        );
    }
    let mut admitted = 0;
    for n in 0..20 {
        let request = Request::builder()
            .header("authorization", &bearer)
            .body(String::new())
            .unwrap();
        let response = nodes[n % 2].clone().oneshot(request).await.unwrap();
        match response.status() {
            StatusCode::OK => admitted += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(response.headers().contains_key("retry-after"))
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(admitted, 5, "one count across both nodes");
}

/// Whoever can write to Redis without the nodes' secret cannot make a node admit a token: an
/// untagged entry, one tagged with another secret, and one moved from another token's key are
/// all misses.
#[tokio::test]
async fn a_forged_or_moved_entry_is_a_miss() {
    let Some(url) = server_url() else { return };
    let prefix = unique_prefix("forged");
    let l2 = RedisSecondLevel::connect(&url, SECRET)
        .await
        .unwrap()
        .with_prefix(prefix.clone());
    let other_secret = RedisSecondLevel::connect(&url, b"another secret, also at least 32 bytes")
        .await
        .unwrap()
        .with_prefix(prefix);
    let (victim, forged) = (
        TokenHash::of("acme_writer_victim"),
        TokenHash::of("acme_writer_forged"),
    );
    other_secret
        .put(&forged, 1, &principal(), Duration::from_secs(60))
        .await
        .unwrap();
    assert!(
        l2.get(&forged, 1).await.unwrap().is_none(),
        "tagged with another secret"
    );
    l2.put(&victim, 1, &principal(), Duration::from_secs(60))
        .await
        .unwrap();
    let mut connection = raw_connection(&url).await;
    let genuine: Vec<u8> = redis::cmd("GET")
        .arg(l2.key(&victim, 1))
        .query_async(&mut connection)
        .await
        .unwrap();
    for (value, what) in [
        (genuine.clone(), "moved to another token's key"),
        (genuine[32..].to_vec(), "the encoding without its tag"),
    ] {
        redis::cmd("SET")
            .arg(l2.key(&forged, 1))
            .arg(value)
            .arg("PX")
            .arg(60_000)
            .query_async::<()>(&mut connection)
            .await
            .unwrap();
        assert!(l2.get(&forged, 1).await.unwrap().is_none(), "{what}");
    }
    assert!(
        l2.get(&victim, 1).await.unwrap().is_some(),
        "the genuine entry stands"
    );
}

#[tokio::test]
async fn a_short_secret_is_refused() {
    let Some(url) = server_url() else { return };
    let refused = RedisSecondLevel::connect(&url, b"too short").await;
    assert!(
        refused
            .unwrap_err()
            .to_string()
            .contains("at least 32 bytes")
    );
}
