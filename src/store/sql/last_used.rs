//! Last-used times, written behind the requests: a buffer with at most one entry per token,
//! flushed once per interval, so a token costs at most one write per interval however busy.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Weak};
use std::time::Duration;

use super::dialect::{Driver, sql};
use super::error::store_error;
use crate::error::StoreError;
use crate::principal::TokenId;

/// The last-used time of a token and of its agent, if later than the stored one: `$1` the
/// time, `$2` the token.
const TOUCH: [&str; 2] = [
    "UPDATE agent_auth_tokens SET last_used_at = $1 \
     WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)",
    "UPDATE agent_auth_agents SET last_used_at = $1 \
     WHERE id = (SELECT agent_id FROM agent_auth_tokens WHERE id = $2) \
     AND (last_used_at IS NULL OR last_used_at < $1)",
];

/// Last-used times waiting to be written: at most one entry per token, flushed by a background
/// task once per interval, so a token costs at most one write per interval however busy it is.
#[derive(Default)]
pub(crate) struct LastUsedBuffer {
    pending: Mutex<HashMap<TokenId, i64>>,
    writes: AtomicU64,
}

impl LastUsedBuffer {
    pub(super) fn record(&self, token: &TokenId, micros: i64) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let slot = pending.entry(token.clone()).or_insert(micros);
        *slot = (*slot).max(micros);
    }

    fn take(&self) -> HashMap<TokenId, i64> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl LastUsedBuffer {
    /// How many last-used writes were made from this buffer.
    pub(super) fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }
}

/// Writes the last-used times buffered in `buffer` now, in one transaction.
pub(super) async fn flush<B: Driver>(
    pool: &sqlx::Pool<B>,
    buffer: &LastUsedBuffer,
) -> Result<(), StoreError> {
    let pending = buffer.take();
    if pending.is_empty() {
        return Ok(());
    }
    let mut tx = pool.begin().await.map_err(store_error)?;
    for (token, at) in &pending {
        for touch in TOUCH {
            sql(touch)
                .bind(*at)
                .bind(token.as_str())
                .execute(&mut tx)
                .await
                .map_err(store_error)?;
        }
    }
    tx.commit().await.map_err(store_error)?;
    buffer
        .writes
        .fetch_add(pending.len() as u64, Ordering::Relaxed);
    Ok(())
}

/// Writes the times buffered in `buffer` once per `period` until the store drops the buffer.
pub(super) fn spawn_writer<B: Driver>(
    pool: sqlx::Pool<B>,
    buffer: Weak<LastUsedBuffer>,
    period: Duration,
) {
    let period = period.max(Duration::from_millis(10));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(buffer) = buffer.upgrade() else {
                break;
            };
            // A failed write keeps nothing back from requests; the next use records again.
            let _ = flush(&pool, &buffer).await;
        }
    });
}
