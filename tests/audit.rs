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
        .identity(identity)
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
            .events(&AuditFilter::identity(format!("agt_{producer}")))
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
        AuditEvent::new(at(0), AuditAction::CredentialIssued, Outcome::Success)
            .identity("x")
            .credential("tok_a")
            .actor("alice"),
        AuditEvent::new(at(1), AuditAction::Request, Outcome::Success)
            .identity("x")
            .credential("tok_a")
            .request("GET", "/posts", 200),
        AuditEvent::new(at(2), AuditAction::Request, Outcome::Success)
            .identity("y")
            .credential("tok_b")
            .request("GET", "/posts", 200),
        AuditEvent::new(
            at(3),
            AuditAction::TokenRefused,
            Outcome::Refused(InvalidReason::Revoked),
        )
        .identity("x")
        .credential("tok_a"),
        AuditEvent::new(at(4), AuditAction::Request, Outcome::Success)
            .identity("x")
            .credential("tok_c")
            .request("POST", "/posts", 201),
    ];
    for event in events.iter().cloned() {
        writer.record(event).await;
    }
    writer.shutdown().await;
    let of_x = sink.events(&AuditFilter::identity("x")).await.unwrap();
    assert_eq!(
        of_x,
        vec![
            events[0].clone(),
            events[1].clone(),
            events[3].clone(),
            events[4].clone()
        ]
    );
    let of_y = sink.events(&AuditFilter::identity("y")).await.unwrap();
    assert_eq!(of_y, vec![events[2].clone()]);
    let tok_a = AuditFilter {
        credential: Some("tok_a".into()),
        ..AuditFilter::default()
    };
    assert_eq!(sink.events(&tok_a).await.unwrap().len(), 3);
    let window = AuditFilter {
        since: Some(at(1)),
        until: Some(at(4)),
        ..AuditFilter::identity("x")
    };
    assert_eq!(
        sink.events(&window).await.unwrap(),
        vec![events[1].clone(), events[3].clone()]
    );
}
