//! Requests per second through the layer with the SQL audit sink on and off, in the same run
//! (issue: identities and audit).
//!
//! `cargo bench --bench audit --features sqlite,postgres,audit`
//! (the PostgreSQL pair runs when `AGENT_AUTH_TEST_POSTGRES_URL` is set, e.g.
//! `postgres://postgres@127.0.0.1:5432/test`.)
//!
//! The store is both the resolver and the audit sink, as in a deployment: every request resolves
//! its token in the database (no cache), and with audit on every request also becomes a row of
//! `agent_auth_audit_events`, written in batches by the `AuditWriter` (default options:
//! backpressure, so nothing is dropped and a sink slower than the requests would slow them).
//! Each iteration sends 64 concurrent requests on a multi-threaded runtime. After each "on"
//! run the writer is shut down, and the bench checks that every recorded request reached the
//! table — the figure is not bought by losing or deferring events.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

mod common;

use common::config;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http::{Request, Response, StatusCode};
use tower::{ServiceBuilder, ServiceExt};
use tower_agent_auth::AgentAuthLayer;
use tower_agent_auth::audit::{
    AuditAction, AuditEvent, AuditFilter, AuditQuery, AuditSink, AuditWriter, Outcome,
    WriterOptions,
};
use tower_agent_auth::store::{Backend, NewAgent, NewToken, SqliteStore, Store};

const CONCURRENT: usize = 64;

/// Sends `CONCURRENT` requests through `layer` at once; all must be admitted.
async fn burst(layer: &AgentAuthLayer, bearer: &str) {
    let service =
        ServiceBuilder::new()
            .layer(layer.clone())
            .service_fn(|_: Request<String>| async {
                Ok::<_, Infallible>(Response::new(String::new()))
            });
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENT {
        let request = Request::builder()
            .uri("/posts")
            .header("authorization", bearer)
            .body(String::new())
            .unwrap();
        calls.spawn(service.clone().oneshot(request));
    }
    while let Some(response) = calls.join_next().await {
        assert_eq!(response.unwrap().unwrap().status(), StatusCode::OK);
    }
}

fn pair<B>(c: &mut Criterion, rt: &tokio::runtime::Runtime, name: &str, store: Store<B>)
where
    B: Backend,
    Store<B>: AuditSink + AuditQuery,
{
    let (agent, bearer, credential) = rt.block_on(async {
        let agent = store
            .create_agent(NewAgent::new(format!("audit-bench-{name}"), "alice"))
            .await
            .unwrap();
        let issued = store
            .create_token(&agent.id, NewToken::new("bench"))
            .await
            .unwrap();
        let bearer = format!("Bearer {}", issued.token.expose_secret());
        (agent, bearer, issued.info.id)
    });
    let mut group = c.benchmark_group(format!("audit/{name}"));
    // The sink alone: one batch of 512 request events per iteration.
    let batch: Vec<AuditEvent> = (0..512)
        .map(|_| {
            AuditEvent::new(
                time::OffsetDateTime::now_utc(),
                AuditAction::Request,
                Outcome::Success,
            )
            .agent(agent.id.clone())
            .token("tok_bench")
            .actor("alice")
            .request("GET", "/posts", 200)
        })
        .collect();
    group.throughput(Throughput::Elements(batch.len() as u64));
    group.bench_function("sink_batch_512", |b| {
        b.to_async(rt)
            .iter(|| async { store.write_batch(&batch).await.unwrap() })
    });

    group.throughput(Throughput::Elements(CONCURRENT as u64));
    group.measurement_time(Duration::from_secs(8));

    let off = AgentAuthLayer::new(store.clone());
    group.bench_function("off", |b| b.to_async(rt).iter(|| burst(&off, &bearer)));

    let writer = rt
        .block_on(async { AuditWriter::spawn(Arc::new(store.clone()), WriterOptions::default()) });
    let on = AgentAuthLayer::new(store.clone()).audit(writer.clone());
    let sent = std::sync::atomic::AtomicUsize::new(0);
    group.bench_function("sql_sink", |b| {
        b.to_async(rt).iter(|| async {
            burst(&on, &bearer).await;
            sent.fetch_add(CONCURRENT, std::sync::atomic::Ordering::Relaxed);
        })
    });
    group.finish();

    drop(on);
    let dropped = writer.dropped();
    let (drain, written) = rt.block_on(async {
        let started = std::time::Instant::now();
        writer.shutdown().await;
        let drain = started.elapsed();
        let written = store
            .events(&AuditFilter::token(credential.clone()))
            .await
            .unwrap()
            .len();
        (drain, written)
    });
    assert_eq!(dropped, 0, "backpressure drops nothing");
    assert_eq!(
        written,
        sent.into_inner(),
        "every request's event is in the table"
    );
    println!(
        "audit/{name}: {written} request events in the table, none dropped; \
         the queue drained in {drain:?} at shutdown"
    );
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit-bench.db").display().to_string();
    let sqlite = rt.block_on(SqliteStore::open(&path, config())).unwrap();
    pair(c, &rt, "sqlite", sqlite);

    if let Ok(url) = std::env::var("AGENT_AUTH_TEST_POSTGRES_URL") {
        let schema = format!("audit_bench_{}", std::process::id());
        let (store, admin) = rt.block_on(common::pg_store_in_schema(&url, &schema));
        pair(c, &rt, "postgres", store.clone());
        rt.block_on(common::drop_schema(store, &admin, &schema));
    } else {
        println!("notice: PostgreSQL pair skipped; set AGENT_AUTH_TEST_POSTGRES_URL to run it");
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
