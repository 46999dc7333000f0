//! What the in-memory backend keeps per agent and per token, shared by the maps and the
//! records a request reads, so that resolving a token copies nothing.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::ceiling::Policy;
use crate::store::backend::{Reservation, StoredToken, Uses};
use crate::store::model::{Agent, TokenInfo};
use crate::store::validate::from_micros;
use crate::token::TokenHash;

pub(super) use crate::token::DigestHasher;

pub(super) const NEVER: i64 = i64::MIN;

/// An agent's current record, shared by the agent table and the agent's tokens so that resolving
/// a token needs no second lookup, and a status change is seen by every token at once.
/// Lock-free reads: every resolution loads it.
pub(super) struct AgentSlot {
    record: RwLock<Arc<Agent>>,
    /// The parent's slot, for a thread-scoped child: its status and policy bound the child.
    pub(super) parent: Option<Arc<AgentSlot>>,
    /// Unix seconds of the last recorded use of any of its tokens, or `NEVER`.
    last_used: AtomicI64,
}

impl AgentSlot {
    pub(super) fn new(agent: Agent, parent: Option<Arc<AgentSlot>>) -> Arc<Self> {
        Arc::new(Self {
            record: RwLock::new(Arc::new(agent)),
            parent,
            last_used: AtomicI64::new(NEVER),
        })
    }

    pub(super) fn get(&self) -> Arc<Agent> {
        self.record
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the record: every token of the agent sees it at its next request.
    pub(super) fn set(&self, agent: Agent) {
        *self.record.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(agent);
    }

    /// The record as callers see it, with its last use.
    pub(super) fn snapshot(&self) -> Agent {
        let mut agent = Agent::clone(&self.get());
        agent.last_used_at = seconds_to_time(self.last_used.load(Ordering::Relaxed));
        agent
    }
}

fn saturate_i64(value: i128) -> i64 {
    i64::try_from(value).unwrap_or(if value < 0 { i64::MIN } else { i64::MAX })
}

fn seconds_to_time(seconds: i64) -> Option<time::OffsetDateTime> {
    (seconds != NEVER)
        .then(|| time::OffsetDateTime::from_unix_timestamp(seconds).ok())
        .flatten()
}

/// Stores `now` in `slot` if the last write is at least `interval` seconds old: one relaxed
/// load on the hot path. Losing the race to another request is fine: it wrote `now` too.
fn touch_seconds(slot: &AtomicI64, now: i64, interval: i64) {
    let last = slot.load(Ordering::Relaxed);
    if last == NEVER || now.saturating_sub(last) >= interval {
        let _ = slot.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed);
    }
}

/// A use-limited token's counts; a lock (not two atomics) so that no reader ever sees a use
/// that is neither left, in flight nor spent.
#[derive(Debug, Clone, Copy)]
pub(super) struct Counts {
    pub(super) remaining: u64,
    in_flight: u64,
}

/// What a token's uses changed; shared by the entries that replace one another on revocation
/// and rotation, so a request still holding the old entry counts against the new one too.
pub(super) struct Usage {
    /// Unix seconds of the last recorded use, or `NEVER`.
    last_used: AtomicI64,
    /// For tokens with a use limit.
    pub(super) counts: Option<Mutex<Counts>>,
    /// Notified whenever a use in flight settles, for requests waiting for one.
    pub(super) settled: event_listener::Event,
    /// Microseconds at which the last operation was spent, for `expires_on_completion`.
    completed_at: AtomicI64,
}

impl Usage {
    pub(super) fn counts(&self) -> Option<std::sync::MutexGuard<'_, Counts>> {
        let counts = self.counts.as_ref()?;
        Some(counts.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

pub(super) struct TokenEntry {
    pub(super) info: TokenInfo,
    pub(super) agent: Arc<AgentSlot>,
    /// The hash of the token this one was delegated from, to walk up its chain by digest.
    pub(super) delegator: Option<TokenHash>,
    policy: Option<Arc<Policy>>,
    pub(super) usage: Arc<Usage>,
}

impl TokenEntry {
    pub(super) fn new(info: TokenInfo, agent: Arc<AgentSlot>) -> Self {
        Self {
            delegator: None,
            policy: info
                .capabilities
                .clone()
                .map(|caps| Arc::new(Policy::allow(caps))),
            usage: Arc::new(Usage {
                last_used: AtomicI64::new(NEVER),
                counts: info.operations_remaining.map(|remaining| {
                    Mutex::new(Counts {
                        remaining,
                        in_flight: 0,
                    })
                }),
                settled: event_listener::Event::new(),
                completed_at: AtomicI64::new(NEVER),
            }),
            agent,
            info,
        }
    }

    /// The same token with a new record (revoked, or its expiry moved by a rotation).
    pub(super) fn with_info(&self, info: TokenInfo) -> Self {
        Self {
            info,
            delegator: self.delegator,
            agent: self.agent.clone(),
            policy: self.policy.clone(),
            usage: self.usage.clone(),
        }
    }

    pub(super) fn snapshot(&self) -> TokenInfo {
        self.snapshot_with(self.usage.counts().as_deref())
    }

    /// The record as callers see it, with `counts` already locked by the caller.
    pub(super) fn snapshot_with(&self, counts: Option<&Counts>) -> TokenInfo {
        let mut info = self.info.clone();
        info.last_used_at = seconds_to_time(self.usage.last_used.load(Ordering::Relaxed));
        info.operations_remaining = counts.map(|counts| counts.remaining);
        let completed = self.usage.completed_at.load(Ordering::Acquire);
        if completed != NEVER {
            info.expires_at = Some(from_micros(completed));
        }
        info
    }

    /// Reserves a use: [`Reservation::InFlight`] while every remaining use is in flight.
    pub(super) fn reserve(&self) -> Reservation {
        let Some(mut counts) = self.usage.counts() else {
            return Reservation::Reserved;
        };
        if counts.remaining > 0 {
            counts.remaining -= 1;
            counts.in_flight += 1;
            Reservation::Reserved
        } else if counts.in_flight > 0 {
            Reservation::InFlight
        } else {
            Reservation::Exhausted
        }
    }

    /// Gives back a use reserved by [`TokenEntry::reserve`] for a request that was not admitted
    /// after all (another link of its chain had none).
    pub(super) fn unreserve(&self) {
        if let Some(mut counts) = self.usage.counts() {
            if counts.in_flight > 0 {
                counts.in_flight -= 1;
                counts.remaining += 1;
            }
        }
        self.usage.settled.notify(usize::MAX);
    }

    /// Whether a reservation now would find every use left in flight.
    pub(super) fn reserve_would_wait(&self) -> bool {
        self.usage
            .counts()
            .is_some_and(|counts| counts.remaining == 0 && counts.in_flight > 0)
    }

    pub(super) fn settle(&self, spent: bool, now_micros: i64) {
        let Some(mut counts) = self.usage.counts() else {
            return;
        };
        // Settling more than was reserved (a caller's mistake) must never mint uses.
        if counts.in_flight == 0 {
            return;
        }
        counts.in_flight -= 1;
        if !spent {
            counts.remaining += 1;
        } else if counts.remaining == 0 && counts.in_flight == 0 && self.info.expires_on_completion
        {
            self.usage.completed_at.store(now_micros, Ordering::Release);
        }
        drop(counts);
        self.usage.settled.notify(usize::MAX);
    }

    /// Records a use of the token and its agent, at most once per `interval` seconds.
    pub(super) fn touch(&self, now_nanos: i128, interval: i64) {
        // Narrowed first when it fits (until 2262): dividing an i128 is a library call.
        let now = match i64::try_from(now_nanos) {
            Ok(nanos) => nanos / 1_000_000_000,
            Err(_) => saturate_i64(now_nanos / 1_000_000_000),
        };
        touch_seconds(&self.usage.last_used, now, interval);
        touch_seconds(&self.agent.last_used, now, interval);
    }
}

impl StoredToken for TokenEntry {
    fn info(&self) -> &TokenInfo {
        &self.info
    }

    fn agent(&self) -> Arc<Agent> {
        self.agent.get()
    }

    fn parent(&self) -> Option<Arc<Agent>> {
        self.agent.parent.as_ref().map(|slot| slot.get())
    }

    fn capabilities(&self) -> Option<Arc<Policy>> {
        self.policy.clone()
    }

    fn uses(&self) -> Option<Uses> {
        self.usage.counts().map(|counts| Uses {
            remaining: counts.remaining,
            in_flight: counts.in_flight,
        })
    }

    fn completed_at(&self) -> Option<i128> {
        let completed = self.usage.completed_at.load(Ordering::Acquire);
        (completed != NEVER).then(|| i128::from(completed) * 1_000)
    }
}

/// A token as the pipeline reads it from a [`MemoryBackend`](super::MemoryBackend): its entry
/// and, for a delegated token, the entries of its chain, root first, looked up afresh for every
/// request (a revoked ancestor is a new entry).
pub struct MemoryRecord {
    pub(super) entry: Arc<TokenEntry>,
    pub(super) chain: Vec<Arc<TokenEntry>>,
    /// The orchestrator the chain's root names, as the agent table holds it now.
    pub(super) orchestrator: Option<Arc<Agent>>,
}

impl MemoryRecord {
    /// The entries a request reserves a use of: the chain's, then the token's.
    pub(super) fn links(&self) -> impl Iterator<Item = &Arc<TokenEntry>> {
        self.chain.iter().chain(std::iter::once(&self.entry))
    }

    /// Reserves a use of every limited link, or of none.
    pub(super) fn reserve(&self) -> Reservation {
        if self.chain.is_empty() {
            return self.entry.reserve();
        }
        let mut reserved: Vec<&Arc<TokenEntry>> = Vec::new();
        let mut outcome = Reservation::Reserved;
        for link in self.links().filter(|link| link.usage.counts.is_some()) {
            match link.reserve() {
                Reservation::Reserved => reserved.push(link),
                other => {
                    outcome = other;
                    break;
                }
            }
        }
        if outcome != Reservation::Reserved {
            for link in reserved {
                link.unreserve();
            }
        }
        outcome
    }
}

impl StoredToken for MemoryRecord {
    fn info(&self) -> &TokenInfo {
        &self.entry.info
    }
    fn agent(&self) -> Arc<Agent> {
        self.entry.agent()
    }
    fn parent(&self) -> Option<Arc<Agent>> {
        self.entry.parent()
    }
    fn capabilities(&self) -> Option<Arc<Policy>> {
        self.entry.capabilities()
    }
    fn uses(&self) -> Option<Uses> {
        self.entry.uses()
    }
    fn completed_at(&self) -> Option<i128> {
        self.entry.completed_at()
    }
    fn delegator(&self, step: usize) -> Option<&dyn StoredToken> {
        self.chain
            .get(step)
            .map(|entry| &**entry as &dyn StoredToken)
    }
    fn orchestrator(&self) -> Option<Arc<Agent>> {
        self.orchestrator.clone()
    }
}
