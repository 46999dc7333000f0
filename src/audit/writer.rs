use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use std::future::Future;
use std::pin::Pin;

use tokio::sync::mpsc::error::TrySendError;

use super::coalesce::Coalescer;
use super::{AuditEvent, AuditRecorder, AuditSink};

/// What a full queue does to the recorder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// Wait for room: no event is ever lost (the default).
    #[default]
    Backpressure,
    /// Never wait: drop the event and count it ([`AuditWriter::dropped`]).
    DropNewest,
}

/// How the writer queues and batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterOptions {
    /// Events the queue holds before the overflow rule applies (default 10 000).
    pub capacity: usize,
    /// Events written per batch at most (default 512).
    pub batch_size: usize,
    /// What a full queue does (default: backpressure).
    pub overflow: Overflow,
    /// How long the writer waits for a batch to fill before writing a partial one (default
    /// 20 ms). Fewer commits cost the database less (each SQLite commit also empties every
    /// reader's page cache); events wait at most this long, and shutdown does not wait.
    pub linger: Duration,
    /// Repeated refusals of one token for one reason within this interval are written as one
    /// row that counts them ([`AuditEvent::occurrences`]); `None` writes every refusal
    /// (default 60 s). A retry loop with a revoked token then costs two rows a minute, not one
    /// per request.
    pub coalesce_refusals: Option<Duration>,
    /// Repeated identical successful requests of one token (same method, path and status)
    /// within this interval are written as one row that counts them; `None` (the default)
    /// writes a row per request. A server under load then writes a row or two per token and
    /// route each interval instead of one per request; the trail still counts every request.
    pub coalesce_requests: Option<Duration>,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            capacity: 10_000,
            batch_size: 512,
            overflow: Overflow::Backpressure,
            linger: Duration::from_millis(20),
            coalesce_refusals: Some(Duration::from_secs(60)),
            coalesce_requests: None,
        }
    }
}

/// Records events off the request path: a bounded queue drained in batches into a sink by a
/// background task. Cheap to clone.
///
/// ```
/// use std::sync::Arc;
/// use tower_agent_auth::audit::{AuditAction, AuditEvent, AuditFilter, AuditQuery, AuditWriter, MemoryAuditSink, Outcome, WriterOptions};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let sink = Arc::new(MemoryAuditSink::default());
/// let writer = AuditWriter::spawn(sink.clone(), WriterOptions::default());
/// let at = time::OffsetDateTime::now_utc();
/// writer.record(AuditEvent::new(at, AuditAction::Request, Outcome::Success).agent("agt_1")).await;
/// writer.record(AuditEvent::new(at, AuditAction::Request, Outcome::Success).agent("agt_2")).await;
/// writer.shutdown().await;
///
/// let mine = sink.events(&AuditFilter::agent("agt_1")).await?;
/// assert_eq!(mine.len(), 1);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct AuditWriter {
    sender: mpsc::Sender<AuditEvent>,
    overflow: Overflow,
    dropped: Arc<AtomicU64>,
    closing: Arc<Notify>,
    task: Arc<std::sync::Mutex<Option<JoinHandle<()>>>>,
}

impl AuditWriter {
    /// Starts the background task (needs a Tokio runtime).
    pub fn spawn(sink: Arc<dyn AuditSink>, options: WriterOptions) -> Self {
        let (sender, receiver) = mpsc::channel(options.capacity.max(1));
        let closing = Arc::new(Notify::new());
        let task = tokio::spawn(drain(receiver, sink, options, closing.clone()));
        Self {
            sender,
            overflow: options.overflow,
            dropped: Arc::default(),
            closing,
            task: Arc::new(std::sync::Mutex::new(Some(task))),
        }
    }

    /// Queues an event. With [`Overflow::Backpressure`] this waits while the queue is full; with
    /// [`Overflow::DropNewest`] it never waits and counts the event as dropped instead. After
    /// [`AuditWriter::shutdown`] events are counted as dropped.
    pub async fn record(&self, event: AuditEvent) {
        let sent = match self.overflow {
            Overflow::Backpressure => self.sender.send(event).await.is_ok(),
            Overflow::DropNewest => self.sender.try_send(event).is_ok(),
        };
        if !sent {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Events dropped because the queue was full (drop mode) or the writer was shut down.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Like [`AuditWriter::shutdown`], but gives up after `limit` (a sink that stays down would
    /// otherwise hold shutdown forever). Returns whether every queued event was written.
    pub async fn shutdown_within(self, limit: Duration) -> bool {
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        self.closing.notify_one();
        let Some(mut task) = task else {
            return true;
        };
        match tokio::time::timeout(limit, &mut task).await {
            Ok(_) => true,
            Err(_) => {
                task.abort();
                false
            }
        }
    }

    /// Stops accepting events and waits until every queued event is written. Other clones
    /// stop being able to record too.
    pub async fn shutdown(self) {
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        // The task closes the channel (so every clone's sends fail from now on) and finishes
        // once it has written what is queued.
        self.closing.notify_one();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

impl AuditRecorder for AuditWriter {
    #[allow(clippy::result_large_err)]
    fn try_record(&self, event: AuditEvent) -> Result<(), AuditEvent> {
        match self.sender.try_send(event) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(event)) if self.overflow == Overflow::Backpressure => Err(event),
            Err(_) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
        }
    }

    fn wait_to_record(&self, event: AuditEvent) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let mut pending = Detached {
            event: Some(event),
            sender: self.sender.clone(),
            dropped: self.dropped.clone(),
        };
        Box::pin(async move {
            match pending.sender.reserve().await {
                Ok(permit) => {
                    if let Some(event) = pending.event.take() {
                        permit.send(event);
                    }
                }
                Err(_) => {
                    pending.event = None;
                    pending.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    }

    fn record_detached(&self, event: AuditEvent) {
        drop(Detached {
            event: Some(event),
            sender: self.sender.clone(),
            dropped: self.dropped.clone(),
        });
    }
}

/// An event not yet queued. If it is dropped still holding the event (its waiter was
/// cancelled), it queues the event from a task of its own, so backpressure never loses one.
struct Detached {
    event: Option<AuditEvent>,
    sender: mpsc::Sender<AuditEvent>,
    dropped: Arc<AtomicU64>,
}

impl Drop for Detached {
    fn drop(&mut self) {
        let Some(event) = self.event.take() else {
            return;
        };
        let event = match self.sender.try_send(event) {
            Ok(()) => return,
            Err(TrySendError::Closed(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(TrySendError::Full(event)) => event,
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let sender = self.sender.clone();
                let dropped = self.dropped.clone();
                runtime.spawn(async move {
                    if sender.send(event).await.is_err() {
                        dropped.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
            Err(_) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Writes batches until the channel is closed and empty, coalescing repeated refusals on the
/// way (their counts are written when their interval ends, or at shutdown).
async fn drain(
    mut receiver: mpsc::Receiver<AuditEvent>,
    sink: Arc<dyn AuditSink>,
    options: WriterOptions,
    closing: Arc<Notify>,
) {
    let batch_size = options.batch_size.max(1);
    let mut coalescer = Coalescer::new(options.coalesce_refusals, options.coalesce_requests);
    let mut batch = Vec::with_capacity(batch_size);
    let mut closed = false;
    loop {
        let due = coalescer.as_ref().and_then(Coalescer::next_due);
        let received = if closed {
            receiver.recv_many(&mut batch, batch_size).await
        } else {
            // `recv_many` is cancel safe: losing the race to `closing` loses no event.
            tokio::select! {
                received = receiver.recv_many(&mut batch, batch_size) => received,
                () = closing.notified() => {
                    receiver.close();
                    closed = true;
                    continue;
                }
                () = sleep_until(due) => {
                    let mut ended = Vec::new();
                    if let Some(coalescer) = &mut coalescer {
                        coalescer.close_due(tokio::time::Instant::now(), &mut ended);
                    }
                    write(&*sink, &ended).await;
                    continue;
                }
            }
        };
        if received == 0 {
            let mut ended = Vec::new();
            if let Some(coalescer) = &mut coalescer {
                coalescer.close_all(&mut ended);
            }
            write(&*sink, &ended).await;
            return;
        }
        // Fill the batch for up to `linger`: fewer, larger writes. The task sleeps through it
        // and then takes what came, rather than waking for every event: under load the
        // writer wakes once a linger, not once a request. Only a batch found short lingers, so
        // a backlog is written at the pace the sink takes it.
        if !closed && !options.linger.is_zero() && batch.len() < batch_size {
            let deadline = tokio::time::Instant::now() + options.linger;
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {}
                () = closing.notified() => {
                    receiver.close();
                    closed = true;
                }
            }
            while batch.len() < batch_size {
                match receiver.try_recv() {
                    Ok(event) => batch.push(event),
                    Err(_) => break,
                }
            }
        }
        match &mut coalescer {
            Some(coalescer) => {
                let now = tokio::time::Instant::now();
                let mut kept = Vec::with_capacity(batch.len());
                coalescer.close_due(now, &mut kept);
                for event in batch.drain(..) {
                    coalescer.admit(event, now, &mut kept);
                }
                write(&*sink, &kept).await;
            }
            None => write(&*sink, &batch).await,
        }
        batch.clear();
    }
}

/// Sleeps until `at`, or forever.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Writes `events`, retrying a failing sink with the same events (backing off up to 5 s), so an
/// event is never lost to a passing outage.
async fn write(sink: &dyn AuditSink, events: &[AuditEvent]) {
    if events.is_empty() {
        return;
    }
    let mut backoff = Duration::from_millis(50);
    while sink.write_batch(events).await.is_err() {
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
