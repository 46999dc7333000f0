//! The audit writer and queries.
#![cfg(feature = "audit")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use time::OffsetDateTime;
use tower_agent_auth::InvalidReason;
use tower_agent_auth::audit::{
    AuditAction, AuditError, AuditEvent, AuditFilter, AuditQuery, AuditSink, AuditWriter,
    MemoryAuditSink, Outcome, Overflow, WriterOptions,
};

fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_767_225_600 + seconds).unwrap()
}

fn request(identity: &str, n: usize) -> AuditEvent {
    AuditEvent::new(at(0), AuditAction::Request, Outcome::Success)
        .agent(identity)
        .detail(n.to_string())
}

/// A sink that takes its time over every batch.
struct Slow(MemoryAuditSink, Duration);

#[async_trait::async_trait]
impl AuditSink for Slow {
    async fn write_batch(&self, events: &[AuditEvent]) -> Result<(), AuditError> {
        tokio::time::sleep(self.1).await;
        self.0.write_batch(events).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_sink_loses_no_event_under_load() {
    let sink = Arc::new(Slow(MemoryAuditSink::default(), Duration::from_millis(2)));
    let options = WriterOptions {
        capacity: 64,
        batch_size: 32,
        ..WriterOptions::default()
    };
    let writer = AuditWriter::spawn(sink.clone(), options);
    let mut producers = tokio::task::JoinSet::new();
    for producer in 0..8 {
        let writer = writer.clone();
        producers.spawn(async move {
            for n in 0..1_000 {
                writer.record(request(&format!("agt_{producer}"), n)).await;
            }
        });
    }
    while let Some(done) = producers.join_next().await {
        done.unwrap();
    }
    let dropped = writer.dropped();
    writer.shutdown().await;
    assert_eq!(dropped, 0);
    assert_eq!(sink.0.len(), 8_000, "count in = count out");
    for producer in 0..8 {
        let events = sink
            .0
            .events(&AuditFilter::agent(format!("agt_{producer}")))
            .await
            .unwrap();
        let order: Vec<usize> = events
            .iter()
            .map(|e| e.detail.as_ref().unwrap().parse().unwrap())
            .collect();
        assert_eq!(
            order,
            (0..1_000).collect::<Vec<_>>(),
            "each producer's events in order"
        );
    }
}

/// A sink that waits until told to go on.
struct Gate(MemoryAuditSink, tokio::sync::Semaphore);

#[async_trait::async_trait]
impl AuditSink for Gate {
    async fn write_batch(&self, events: &[AuditEvent]) -> Result<(), AuditError> {
        let _open = self.1.acquire().await.unwrap();
        self.0.write_batch(events).await
    }
}

#[tokio::test]
async fn drop_mode_never_waits_and_counts_what_it_drops() {
    let sink = Arc::new(Gate(
        MemoryAuditSink::default(),
        tokio::sync::Semaphore::new(0),
    ));
    let options = WriterOptions {
        capacity: 10,
        batch_size: 4,
        overflow: Overflow::DropNewest,
        ..WriterOptions::default()
    };
    let writer = AuditWriter::spawn(sink.clone(), options);
    for n in 0..100 {
        writer.record(request("agt_1", n)).await;
    }
    let dropped = writer.dropped();
    assert!(
        dropped >= 80,
        "the queue holds 10 (+ one batch in flight): {dropped} dropped"
    );
    sink.1.add_permits(1_000);
    writer.shutdown().await;
    assert_eq!(
        sink.0.len() as u64 + dropped,
        100,
        "every event is written or counted"
    );
}

/// A sink that fails its first two writes.
struct Flaky(MemoryAuditSink, AtomicUsize);

#[async_trait::async_trait]
impl AuditSink for Flaky {
    async fn write_batch(&self, events: &[AuditEvent]) -> Result<(), AuditError> {
        if self.1.fetch_add(1, Ordering::SeqCst) < 2 {
            return Err(AuditError::Unavailable("database restarting".into()));
        }
        self.0.write_batch(events).await
    }
}

#[tokio::test]
async fn a_failing_sink_is_retried_and_nothing_is_written_twice() {
    let sink = Arc::new(Flaky(MemoryAuditSink::default(), AtomicUsize::new(0)));
    let writer = AuditWriter::spawn(sink.clone(), WriterOptions::default());
    for n in 0..10 {
        writer.record(request("agt_1", n)).await;
    }
    writer.shutdown().await;
    assert_eq!(sink.0.len(), 10);
}

#[tokio::test]
async fn recording_after_shutdown_is_counted_as_dropped() {
    let sink = Arc::new(MemoryAuditSink::default());
    let writer = AuditWriter::spawn(sink.clone(), WriterOptions::default());
    let clone = writer.clone();
    writer.shutdown().await;
    clone.record(request("agt_1", 0)).await;
    assert_eq!(clone.dropped(), 1);
    assert!(sink.is_empty());
}

#[tokio::test]
async fn queries_select_by_identity_credential_and_time_in_order() {
    let sink = Arc::new(MemoryAuditSink::default());
    let writer = AuditWriter::spawn(sink.clone(), WriterOptions::default());
    let events = [
        AuditEvent::new(at(0), AuditAction::TokenIssued, Outcome::Success)
            .agent("x")
            .token("tok_a")
            .actor("alice"),
        AuditEvent::new(at(1), AuditAction::Request, Outcome::Success)
            .agent("x")
            .token("tok_a")
            .request("GET", "/posts", 200),
        AuditEvent::new(at(2), AuditAction::Request, Outcome::Success)
            .agent("y")
            .token("tok_b")
            .request("GET", "/posts", 200),
        AuditEvent::new(
            at(3),
            AuditAction::TokenRefused,
            Outcome::Refused(InvalidReason::Revoked),
        )
        .agent("x")
        .token("tok_a"),
        AuditEvent::new(at(4), AuditAction::Request, Outcome::Success)
            .agent("x")
            .token("tok_c")
            .request("POST", "/posts", 201),
    ];
    for event in events.iter().cloned() {
        writer.record(event).await;
    }
    writer.shutdown().await;
    let of_x = sink.events(&AuditFilter::agent("x")).await.unwrap();
    assert_eq!(
        of_x,
        vec![
            events[0].clone(),
            events[1].clone(),
            events[3].clone(),
            events[4].clone()
        ]
    );
    let of_y = sink.events(&AuditFilter::agent("y")).await.unwrap();
    assert_eq!(of_y, vec![events[2].clone()]);
    let tok_a = AuditFilter {
        token: Some("tok_a".into()),
        ..AuditFilter::default()
    };
    assert_eq!(sink.events(&tok_a).await.unwrap().len(), 3);
    let window = AuditFilter {
        since: Some(at(1)),
        until: Some(at(4)),
        ..AuditFilter::agent("x")
    };
    assert_eq!(
        sink.events(&window).await.unwrap(),
        vec![events[1].clone(), events[3].clone()]
    );
}

mod through_the_layer {
    use std::convert::Infallible;

    use http::{Request, Response, StatusCode};
    use tower::{ServiceBuilder, ServiceExt};
    use tower_agent_auth::AgentAuthLayer;
    use tower_agent_auth::ceiling::Policy;
    use tower_agent_auth::store::{MemoryStore, NewAgent, NewToken};
    use tower_agent_auth::token::TokenFormat;

    use super::*;

    async fn store() -> (MemoryStore, String, tower_agent_auth::principal::AgentId) {
        let users = tower_agent_auth::store::MemoryUserDirectory::new();
        users.insert(tower_agent_auth::store::UserRecord::new(
            "alice",
            Policy::unrestricted(),
        ));
        let store = MemoryStore::new(TokenFormat::new("acme").unwrap(), users);
        let agent = store
            .create_agent(NewAgent::new("writer", "alice"))
            .await
            .unwrap();
        let issued = store
            .create_token(&agent.id, NewToken::new("t"))
            .await
            .unwrap();
        (store, issued.token.expose_secret().to_owned(), agent.id)
    }

    fn get(path: &str, authorization: Option<&str>) -> Request<String> {
        let mut request = Request::builder().uri(path);
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        request.body(String::new()).unwrap()
    }

    /// With a queue of one and a slow sink, responses wait for room: none is lost.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_full_queue_holds_responses_back_and_loses_nothing() {
        let (store, token, agent) = store().await;
        let sink = Arc::new(Slow(MemoryAuditSink::default(), Duration::from_millis(1)));
        let options = WriterOptions {
            capacity: 1,
            batch_size: 4,
            ..WriterOptions::default()
        };
        let writer = AuditWriter::spawn(sink.clone(), options);
        let service = ServiceBuilder::new()
            .layer(AgentAuthLayer::new(store).audit(writer.clone()))
            .service_fn(|_: Request<String>| async {
                Ok::<_, Infallible>(Response::new(String::new()))
            });
        let mut calls = tokio::task::JoinSet::new();
        for _ in 0..200 {
            let request = get("/posts", Some(&format!("Bearer {token}")));
            calls.spawn(service.clone().oneshot(request));
        }
        while let Some(response) = calls.join_next().await {
            assert_eq!(response.unwrap().unwrap().status(), StatusCode::OK);
        }
        writer.shutdown().await;
        let events = sink.0.events(&AuditFilter::agent(agent)).await.unwrap();
        assert_eq!(events.len(), 200);
    }

    /// A request whose response future is dropped (client gone, timeout) is still recorded, as
    /// 499, and so is one dropped while waiting for room in a full queue.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropped_requests_are_recorded_too() {
        let (store, token, agent) = store().await;
        let sink = Arc::new(Gate(
            MemoryAuditSink::default(),
            tokio::sync::Semaphore::new(0),
        ));
        let options = WriterOptions {
            capacity: 1,
            batch_size: 1,
            linger: Duration::ZERO,
            ..WriterOptions::default()
        };
        let writer = AuditWriter::spawn(sink.clone(), options);
        let hang = ServiceBuilder::new()
            .layer(AgentAuthLayer::new(store.clone()).audit(writer.clone()))
            .service_fn(|_: Request<String>| async {
                std::future::pending::<Result<Response<String>, Infallible>>().await
            });
        let bearer = format!("Bearer {token}");
        let gone = hang.clone().oneshot(get("/slow", Some(&bearer)));
        assert!(
            tokio::time::timeout(Duration::from_millis(20), gone)
                .await
                .is_err()
        );

        // The sink is shut, so: one event in the sink's hands, one in the queue, and the
        // third request waits for room — until it is dropped.
        let quick = ServiceBuilder::new()
            .layer(AgentAuthLayer::new(store).audit(writer.clone()))
            .service_fn(|_: Request<String>| async {
                Ok::<_, Infallible>(Response::new(String::new()))
            });
        quick
            .clone()
            .oneshot(get("/a", Some(&bearer)))
            .await
            .unwrap();
        let waiting = quick.clone().oneshot(get("/b", Some(&bearer)));
        assert!(
            tokio::time::timeout(Duration::from_millis(50), waiting)
                .await
                .is_err(),
            "a full queue holds the response back"
        );
        sink.1.add_permits(100);
        // The dropped waiter handed its event to a task of its own; it arrives.
        for _ in 0..500 {
            if sink.0.len() == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        writer.clone().shutdown().await;
        assert_eq!(writer.dropped(), 0);
        let events = sink.0.events(&AuditFilter::agent(agent)).await.unwrap();
        let mut seen: Vec<(String, u16)> = events
            .iter()
            .map(|e| {
                let r = e.request.as_ref().unwrap();
                (r.path.clone(), r.status)
            })
            .collect();
        seen.sort();
        assert_eq!(
            seen,
            [
                ("/a".into(), 200),
                ("/b".into(), 200),
                ("/slow".into(), 499)
            ]
        );
    }

    #[tokio::test]
    async fn the_query_string_is_not_recorded() {
        let (store, token, agent) = store().await;
        let sink = Arc::new(MemoryAuditSink::default());
        let writer = AuditWriter::spawn(sink.clone(), WriterOptions::default());
        let service = ServiceBuilder::new()
            .layer(AgentAuthLayer::new(store).audit(writer.clone()))
            .service_fn(|_: Request<String>| async {
                Ok::<_, Infallible>(Response::new(String::new()))
            });
        let request = get("/export?api_key=hunter2", Some(&format!("Bearer {token}")));
        service.oneshot(request).await.unwrap();
        writer.shutdown().await;
        let events = sink.events(&AuditFilter::agent(agent)).await.unwrap();
        let summary = events[0].request.as_ref().unwrap();
        assert_eq!((summary.path.as_str(), summary.status), ("/export", 200));
        assert!(!format!("{events:?}").contains("hunter2"));
    }

    #[tokio::test]
    async fn requests_without_an_identity_are_not_recorded() {
        let (store, _, _) = store().await;
        let sink = Arc::new(MemoryAuditSink::default());
        let writer = AuditWriter::spawn(sink.clone(), WriterOptions::default());
        let service = ServiceBuilder::new()
            .layer(AgentAuthLayer::new(store).optional().audit(writer.clone()))
            .service_fn(|_: Request<String>| async {
                Ok::<_, Infallible>(Response::new(String::new()))
            });
        for authorization in [None, Some("Bearer other_token"), Some("Basic YTpi")] {
            service
                .clone()
                .oneshot(get("/", authorization))
                .await
                .unwrap();
        }
        writer.shutdown().await;
        assert!(sink.is_empty());
    }

    /// A request the application refused (403: a missing capability, its own rule) is
    /// recorded as denied, not as a success.
    #[tokio::test]
    async fn a_request_the_application_refuses_is_recorded_as_denied() {
        let (store, token, agent) = store().await;
        let sink = Arc::new(MemoryAuditSink::default());
        let writer = AuditWriter::spawn(sink.clone(), WriterOptions::default());
        let service = ServiceBuilder::new()
            .layer(AgentAuthLayer::new(store).audit(writer.clone()))
            .service_fn(|request: Request<String>| async move {
                let status = match request.uri().path() {
                    "/forbidden" => StatusCode::FORBIDDEN,
                    "/missing" => StatusCode::NOT_FOUND,
                    _ => StatusCode::OK,
                };
                let mut response = Response::new(String::new());
                *response.status_mut() = status;
                Ok::<_, Infallible>(response)
            });
        let bearer = format!("Bearer {token}");
        for path in ["/forbidden", "/missing", "/ok"] {
            service
                .clone()
                .oneshot(get(path, Some(&bearer)))
                .await
                .unwrap();
        }
        writer.shutdown().await;
        let events = sink.events(&AuditFilter::agent(agent)).await.unwrap();
        let outcomes: Vec<(&str, &str)> = events
            .iter()
            .map(|e| {
                (
                    e.request.as_ref().unwrap().path.as_str(),
                    e.outcome.as_str(),
                )
            })
            .collect();
        assert_eq!(
            outcomes,
            [
                ("/forbidden", "denied"),
                ("/missing", "success"),
                ("/ok", "success")
            ]
        );
    }

    /// Sends `n` requests with a revoked token through a layer recording into a writer that
    /// coalesces refusals over `interval`; the writer is left running.
    async fn refuse_revoked(
        n: usize,
        interval: Option<Duration>,
    ) -> (
        Arc<MemoryAuditSink>,
        AuditWriter,
        tower_agent_auth::principal::AgentId,
    ) {
        let (store, token, agent) = store().await;
        let tokens = store.list_tokens(&agent).await.unwrap();
        store.revoke_token(&agent, &tokens[0].id).await.unwrap();
        let sink = Arc::new(MemoryAuditSink::default());
        let options = WriterOptions {
            coalesce_refusals: interval,
            ..WriterOptions::default()
        };
        let writer = AuditWriter::spawn(sink.clone(), options);
        let service = ServiceBuilder::new()
            .layer(AgentAuthLayer::new(store).audit(writer.clone()))
            .service_fn(|_: Request<String>| async {
                Ok::<_, Infallible>(Response::new(String::new()))
            });
        let bearer = format!("Bearer {token}");
        for _ in 0..n {
            let response = service
                .clone()
                .oneshot(get("/", Some(&bearer)))
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
        (sink, writer, agent)
    }

    /// 3,000 requests with one revoked token: two rows (the first refusal, and one counting
    /// the rest), not 3,000 — and every refusal counted.
    #[tokio::test]
    async fn repeated_refusals_of_one_token_are_coalesced_and_counted() {
        let default = WriterOptions::default().coalesce_refusals;
        let (sink, writer, agent) = refuse_revoked(3_000, default).await;
        writer.shutdown().await;
        let events = sink.events(&AuditFilter::agent(agent)).await.unwrap();
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events.iter().map(|e| e.occurrences).sum::<u64>(), 3_000);
        assert_eq!(events[1].occurrences, 2_999);
        assert!(
            events[1]
                .detail
                .as_deref()
                .unwrap()
                .contains("2999 repeated refusals")
        );
        assert!(
            events
                .iter()
                .all(|e| e.outcome == Outcome::Refused(InvalidReason::Revoked))
        );
    }

    /// Without coalescing, every refusal is its own row.
    #[tokio::test]
    async fn coalescing_can_be_turned_off() {
        let (sink, writer, agent) = refuse_revoked(10, None).await;
        writer.shutdown().await;
        let events = sink.events(&AuditFilter::agent(agent)).await.unwrap();
        assert_eq!(events.len(), 10);
    }

    /// The count of an interval is written when the interval ends, not only at shutdown.
    #[tokio::test]
    async fn an_ended_interval_is_written_without_waiting_for_shutdown() {
        let interval = Some(Duration::from_millis(200));
        let (sink, writer, agent) = refuse_revoked(5, interval).await;
        for _ in 0..100 {
            if sink.len() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let events = sink.events(&AuditFilter::agent(agent)).await.unwrap();
        let counts: Vec<u64> = events.iter().map(|e| e.occurrences).collect();
        assert_eq!(counts, [1, 4]);
        writer.shutdown().await;
    }
}

mod tracing_sink {
    use std::io::Write;
    use std::sync::Mutex;

    use tower_agent_auth::audit::TracingAuditSink;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn events_are_logged_as_fields() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let event = AuditEvent::new(
            at(0),
            AuditAction::TokenRefused,
            Outcome::Refused(InvalidReason::Revoked),
        )
        .agent("agt_1")
        .token("tok_1")
        .request("GET", "/posts", 401);
        TracingAuditSink.write_batch(&[event]).await.unwrap();
        let logged = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        for field in [
            "tower_agent_auth::audit",
            "action=\"token_refused\"",
            "reason=\"revoked\"",
            "agent=\"agt_1\"",
            "token=\"tok_1\"",
            "status=401",
        ] {
            assert!(logged.contains(field), "{field} missing from {logged}");
        }
    }
}
