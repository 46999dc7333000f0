//! The request path: the token lookup, reserving and settling a use, and the last-used times
//! written behind the requests (the core's side of [`Backend`](crate::store::Backend); the checks are
//! [`store::resolve`](crate::store::resolve)'s).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use time::OffsetDateTime;

use super::dialect::{Driver, sql};
use super::{Core, queries, resolve_error, rows, store_error};
use crate::error::{ResolveError, StoreError};
use crate::principal::TokenId;
use crate::resolver::SettleFuture;
use crate::store::backend::{FoundToken, Reservation, Uses};
use crate::store::validate::micros;
use crate::token::TokenHash;

/// The record of a resolve row: the token, its agent, the agent's parent and the orchestrator.
fn found<B: Driver>(row: &B::Row) -> Result<FoundToken, String> {
    let info = rows::token::<B>(row, "token_")?;
    let agent = rows::agent::<B>(row, "agent_")?;
    let parent = rows::opt_agent::<B>(row, "parent_")?;
    let orchestrator = rows::opt_agent::<B>(row, "orchestrator_")?;
    let in_flight = B::int(row, "token_operations_in_flight").map_err(|e| e.to_string())?;
    let uses = info.operations_remaining.map(|remaining| Uses {
        remaining,
        in_flight: u64::try_from(in_flight).unwrap_or(0),
    });
    Ok(FoundToken::new(info, agent)
        .with_parent(parent.map(Arc::new))
        .with_orchestrator(orchestrator.map(Arc::new))
        .with_uses(uses))
}

/// Another node may hold the use: poll, backing off from 2 ms to 50 ms.
pub(super) async fn pause(attempt: u32) {
    let pause = Duration::from_millis(2).saturating_mul(1 << attempt.min(5));
    tokio::time::sleep(pause.min(Duration::from_millis(50))).await;
}

impl<B: Driver> Core<B> {
    pub(crate) async fn find(&self, hash: &TokenHash) -> Result<Option<FoundToken>, ResolveError> {
        let row = sql(queries::RESOLVE)
            .bind(hash.as_bytes().as_slice())
            .fetch_optional(&self.pool)
            .await
            .map_err(resolve_error)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut record = found::<B>(&row).map_err(ResolveError::corrupt)?;
        if record.info.delegation_parent.is_some() {
            let rows = sql(queries::DELEGATORS)
                .bind(record.info.id.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(resolve_error)?;
            let mut chain = rows
                .iter()
                .map(|row| found::<B>(row).map_err(ResolveError::corrupt))
                .collect::<Result<Vec<_>, _>>()?;
            // Nearest first as walked; the pipeline reads the chain root first.
            chain.reverse();
            record.chain = chain;
        }
        Ok(Some(record))
    }

    pub(crate) async fn reserve(&self, record: &FoundToken) -> Result<Reservation, ResolveError> {
        let limited: Vec<&str> = record
            .links()
            .filter(|link| link.uses.is_some())
            .map(|link| link.info.id.as_str())
            .collect();
        let token = match limited.as_slice() {
            [] => return Ok(Reservation::Reserved),
            [one] => {
                let reserved = sql(queries::RESERVE)
                    .bind(*one)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(resolve_error)?;
                if reserved.is_some() {
                    return Ok(Reservation::Reserved);
                }
                *one
            }
            // One use of every limited link, in one transaction: all of them or none. The
            // links are locked root first, as a spend or a release locks them.
            links => {
                let mut attempt = 0;
                loop {
                    match self.reserve_links(links).await {
                        Ok(None) => return Ok(Reservation::Reserved),
                        Ok(Some(link)) => break link,
                        Err(error) if retriable(&error) && attempt + 1 < SETTLE_ATTEMPTS => {
                            attempt += 1;
                            tokio::time::sleep(Duration::from_millis(5 << attempt)).await;
                        }
                        Err(error) => return Err(resolve_error(error)),
                    }
                }
            }
        };
        // None reserved: refused, unless a use may still come back — one in flight, or one
        // released since the statement ran. The pipeline then resolves again from the start,
        // so a token revoked meanwhile is refused as revoked (the statement skips revoked
        // rows), never retried here.
        let uses = sql(queries::USES)
            .bind(token)
            .fetch_optional(&self.pool)
            .await
            .map_err(resolve_error)?;
        let uses = uses
            .map(|row| {
                Ok::<_, sqlx::Error>((
                    B::opt_int(&row, "operations_remaining")?,
                    B::int(&row, "operations_in_flight")?,
                ))
            })
            .transpose()
            .map_err(resolve_error)?;
        Ok(match uses {
            Some((Some(remaining), in_flight)) if remaining > 0 || in_flight > 0 => {
                Reservation::InFlight
            }
            _ => Reservation::Exhausted,
        })
    }

    pub(crate) fn settle(
        &self,
        token: &TokenId,
        spent: bool,
        now: OffsetDateTime,
    ) -> Option<SettleFuture> {
        let pool = self.pool.clone();
        let token = token.to_string();
        let now = micros(now);
        let write = async move {
            for attempt in 0..SETTLE_ATTEMPTS {
                let statement = if spent {
                    sql(B::SPEND).bind(now)
                } else {
                    sql(B::RELEASE)
                };
                match statement.bind(token.as_str()).execute(&pool).await {
                    // A statement the database undid (a lock it could not take, a deadlock
                    // broken, a timeout) is tried again: given up, the use would stay
                    // reserved — spent, and counted in flight for good.
                    Err(error) if retriable(&error) && attempt + 1 < SETTLE_ATTEMPTS => {
                        tokio::time::sleep(Duration::from_millis(5 << attempt)).await;
                    }
                    // Otherwise the use stays reserved, i.e. spent: the limit is never
                    // exceeded.
                    _ => break,
                }
            }
        };
        Some(Box::pin(FinishOnDrop(Some(Box::pin(write)))))
    }

    pub(crate) fn touch(&self, token: &TokenId, now_nanos: i128) {
        self.last_used
            .record(token, i64::try_from(now_nanos / 1_000).unwrap_or(i64::MAX));
    }
}

/// A write that finishes in the background if it is dropped unfinished (the request's future
/// was dropped): a settled use is never left to chance.
struct FinishOnDrop(Option<SettleFuture>);

impl std::future::Future for FinishOnDrop {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if let Some(write) = self.0.as_mut() {
            std::task::ready!(write.as_mut().poll(cx));
            self.0 = None;
        }
        std::task::Poll::Ready(())
    }
}

impl Drop for FinishOnDrop {
    fn drop(&mut self) {
        if let (Some(write), Ok(runtime)) = (self.0.take(), tokio::runtime::Handle::try_current()) {
            runtime.spawn(write);
        }
    }
}

/// Last-used times waiting to be written: at most one entry per token, flushed by a background
/// task once per interval, so a token costs at most one write per interval however busy it is.
#[derive(Default)]
pub(crate) struct LastUsedBuffer {
    pending: Mutex<HashMap<TokenId, i64>>,
    writes: AtomicU64,
}

impl LastUsedBuffer {
    fn record(&self, token: &TokenId, micros: i64) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let slot = pending.entry(token.clone()).or_insert(micros);
        *slot = (*slot).max(micros);
    }

    fn take(&self) -> HashMap<TokenId, i64> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// How often a settle write (or a reservation over a chain) that the database undid is tried.
const SETTLE_ATTEMPTS: u32 = 5;

/// Whether the database undid the statement and it may simply run again: PostgreSQL's
/// deadlock, serialization failure, lock not available or a cancelled (timed-out) statement;
/// SQLite's busy or locked database.
fn retriable(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|error| error.code())
        .is_some_and(|code| matches!(&*code, "40P01" | "40001" | "55P03" | "57014" | "5" | "6"))
}

impl<B: Driver> Core<B> {
    /// Reserves one use of each of `links` (root first) in one transaction; the first link
    /// with none left, if any (then nothing is reserved).
    async fn reserve_links<'l>(&self, links: &[&'l str]) -> Result<Option<&'l str>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        for link in links {
            if sql(queries::RESERVE)
                .bind(*link)
                .fetch_optional(&mut tx)
                .await?
                .is_none()
            {
                tx.rollback().await?;
                return Ok(Some(*link));
            }
        }
        tx.commit().await?;
        Ok(None)
    }

    /// Writes the buffered last-used times now, in one transaction.
    pub(crate) async fn flush_last_used(&self) -> Result<(), StoreError> {
        let pending = self.last_used.take();
        if pending.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        for (token, at) in &pending {
            for touch in queries::TOUCH {
                sql(touch)
                    .bind(*at)
                    .bind(token.as_str())
                    .execute(&mut tx)
                    .await
                    .map_err(store_error)?;
            }
        }
        tx.commit().await.map_err(store_error)?;
        self.last_used
            .writes
            .fetch_add(pending.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// How many last-used writes this store has made since it was opened.
    pub(crate) fn last_used_writes(&self) -> u64 {
        self.last_used.writes.load(Ordering::Relaxed)
    }
}

/// Writes buffered last-used times once per interval until the store is dropped.
pub(super) fn spawn_last_used_writer<B: Driver>(core: Weak<Core<B>>) {
    let Some(period) = core.upgrade().map(|c| c.last_used_interval) else {
        return;
    };
    let period = period.max(Duration::from_millis(10));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(core) = core.upgrade() else { break };
            // A failed write keeps nothing back from requests; the next use records again.
            let _ = core.flush_last_used().await;
        }
    });
}
