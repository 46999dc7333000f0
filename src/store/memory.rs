use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use arc_swap::ArcSwap;

use super::config::StoreConfig;
use super::managed::{AccessGrant, AccessRole, GrantStore};
use super::model::{Agent, AgentStatus, ImportedToken, IssuedToken, NewAgent, NewToken, TokenInfo};
use super::prepare::{self, from_micros, micros, truncate};
use super::resolve::{self, Reservation, StoredToken, TokenRecords, Uses};
use super::{AgentStore, StoreError, TokenStore, UserDirectory};
use crate::approval::{
    Approval, ApprovalBinding, ApprovalFilter, ApprovalGate, ApprovalId, Decision, MemoryApprovals,
    NewApproval,
};
use crate::audit::{AuditError, AuditEvent, AuditFilter, AuditQuery, AuditSink, MemoryAuditSink};
use crate::cache::{self, CacheConfig, VerdictCache};
use crate::ceiling::Policy;
use crate::clock::Clock;
use crate::principal::{AgentId, Principal, TokenId, UserId};
use crate::reason::ResolveError;
use crate::resolver::{SettleFuture, TokenLookup, TokenResolver};
use crate::token::{TokenFormat, TokenHash};

/// Keys are SHA-256 digests: uniformly distributed and not chosen by an attacker (finding a
/// token whose digest collides with another's is a preimage problem), so their first 8 bytes
/// are a perfect hash and SipHash's flood protection buys nothing.
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8).take(1) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 ^= u64::from_le_bytes(word);
        }
    }
}

const NEVER: i64 = i64::MIN;

/// An agent's current record, shared by the agent table and the agent's tokens so that resolving
/// a token needs no second lookup, and a status change is seen by every token at once.
/// Lock-free reads: every resolution loads it.
struct AgentSlot {
    record: ArcSwap<Agent>,
    /// The parent's slot, for a thread-scoped child: its status and policy bound the child.
    parent: Option<Arc<AgentSlot>>,
    /// Unix seconds of the last recorded use of any of its tokens, or `NEVER`.
    last_used: AtomicI64,
}

impl AgentSlot {
    fn new(agent: Agent, parent: Option<Arc<AgentSlot>>) -> Arc<Self> {
        Arc::new(Self {
            record: ArcSwap::from_pointee(agent),
            parent,
            last_used: AtomicI64::new(NEVER),
        })
    }

    fn get(&self) -> Arc<Agent> {
        self.record.load_full()
    }

    /// The record as callers see it, with its last use.
    fn snapshot(&self) -> Agent {
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
struct Counts {
    remaining: u64,
    in_flight: u64,
}

/// What a token's uses changed; shared by the entries that replace one another on revocation
/// and rotation, so a request still holding the old entry counts against the new one too.
struct Usage {
    /// Unix seconds of the last recorded use, or `NEVER`.
    last_used: AtomicI64,
    /// For tokens with a use limit.
    counts: Option<Mutex<Counts>>,
    /// Notified whenever a use in flight settles, for requests waiting for one.
    settled: event_listener::Event,
    /// Microseconds at which the last operation was spent, for `expires_on_completion`.
    completed_at: AtomicI64,
}

impl Usage {
    fn counts(&self) -> Option<std::sync::MutexGuard<'_, Counts>> {
        let counts = self.counts.as_ref()?;
        Some(counts.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

struct TokenEntry {
    info: TokenInfo,
    agent: Arc<AgentSlot>,
    /// The hash of the token this one was delegated from, to walk up its chain by digest.
    delegator: Option<TokenHash>,
    policy: Option<Arc<Policy>>,
    usage: Arc<Usage>,
}

impl TokenEntry {
    fn new(info: TokenInfo, agent: Arc<AgentSlot>) -> Self {
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
    fn with_info(&self, info: TokenInfo) -> Self {
        Self {
            info,
            delegator: self.delegator,
            agent: self.agent.clone(),
            policy: self.policy.clone(),
            usage: self.usage.clone(),
        }
    }

    fn snapshot(&self) -> TokenInfo {
        self.snapshot_with(self.usage.counts().as_deref())
    }

    /// The record as callers see it, with `counts` already locked by the caller.
    fn snapshot_with(&self, counts: Option<&Counts>) -> TokenInfo {
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
    fn reserve(&self) -> Reservation {
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
    fn unreserve(&self) {
        if let Some(mut counts) = self.usage.counts() {
            if counts.in_flight > 0 {
                counts.in_flight -= 1;
                counts.remaining += 1;
            }
        }
        self.usage.settled.notify(usize::MAX);
    }

    /// Whether a reservation now would find every use left in flight.
    fn reserve_would_wait(&self) -> bool {
        self.usage
            .counts()
            .is_some_and(|counts| counts.remaining == 0 && counts.in_flight > 0)
    }

    fn settle(&self, spent: bool, now_micros: i64) {
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
    fn touch(&self, now_nanos: i128, interval: i64) {
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

/// A token as the pipeline reads it: its entry and, for a delegated token, the entries of its
/// chain, root first, looked up afresh for every request (a revoked ancestor is a new entry).
pub(crate) struct MemoryRecord {
    entry: Arc<TokenEntry>,
    chain: Vec<Arc<TokenEntry>>,
    /// The orchestrator the chain's root names, as the agent table holds it now.
    orchestrator: Option<Arc<Agent>>,
}

impl MemoryRecord {
    /// The entries a request reserves a use of: the chain's, then the token's.
    fn links(&self) -> impl Iterator<Item = &Arc<TokenEntry>> {
        self.chain.iter().chain(std::iter::once(&self.entry))
    }

    /// Reserves a use of every limited link, or of none.
    fn reserve(&self) -> Reservation {
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

#[derive(Default)]
struct State {
    agents: HashMap<AgentId, Arc<AgentSlot>>,
    slugs: HashMap<Arc<str>, AgentId>,
    tokens: HashMap<TokenHash, Arc<TokenEntry>, BuildHasherDefault<DigestHasher>>,
    token_ids: HashMap<TokenId, TokenHash>,
    grants: HashMap<(AgentId, UserId), AccessGrant>,
}

impl State {
    fn agent(&self, id: &AgentId) -> Result<&Arc<AgentSlot>, StoreError> {
        self.agents
            .get(id)
            .ok_or_else(|| StoreError::UnknownAgent(id.to_string()))
    }

    fn token_of(&self, agent: &AgentId, token: &TokenId) -> Result<TokenHash, StoreError> {
        self.token_ids
            .get(token)
            .copied()
            .filter(|hash| {
                self.tokens
                    .get(hash)
                    .is_some_and(|e| e.info.agent_id == *agent)
            })
            .ok_or_else(|| StoreError::UnknownToken {
                agent: agent.to_string(),
                token: token.to_string(),
            })
    }

    fn revoke(&mut self, hash: &TokenHash, now: time::OffsetDateTime) -> Option<TokenInfo> {
        let entry = self.tokens.get_mut(hash)?;
        if entry.info.revoked_at.is_none() {
            let mut info = entry.info.clone();
            info.revoked_at = Some(now);
            *entry = Arc::new(entry.with_info(info));
        }
        Some(entry.snapshot())
    }

    fn insert(&mut self, hash: TokenHash, mut entry: TokenEntry) {
        entry.delegator = entry
            .info
            .delegation_parent
            .as_ref()
            .and_then(|parent| self.token_ids.get(parent).copied());
        self.token_ids.insert(entry.info.id.clone(), hash);
        self.tokens.insert(hash, Arc::new(entry));
    }

    fn remove(&mut self, hash: &TokenHash) {
        if let Some(entry) = self.tokens.remove(hash) {
            self.token_ids.remove(&entry.info.id);
        }
    }

    /// The record of `entry`: with its chain and the orchestrator its root names.
    fn record(&self, entry: &Arc<TokenEntry>) -> MemoryRecord {
        let chain = self.chain(entry);
        let root = chain.first().unwrap_or(entry);
        let orchestrator = root
            .info
            .orchestrator
            .as_ref()
            .and_then(|id| self.agents.get(id))
            .map(|slot| slot.get());
        MemoryRecord {
            entry: entry.clone(),
            chain,
            orchestrator,
        }
    }

    /// The entries `entry` was delegated through, nearest first as walked, then turned root
    /// first. A link that is gone ends the walk; the pipeline refuses the shorter chain.
    fn chain(&self, entry: &TokenEntry) -> Vec<Arc<TokenEntry>> {
        let mut chain = Vec::new();
        let mut next = entry.delegator;
        while let Some(hash) = next {
            let Some(link) = self.tokens.get(&hash) else {
                break;
            };
            if chain.len() >= super::MAX_DELEGATION_DEPTH_LIMIT as usize {
                break;
            }
            next = link.delegator;
            chain.push(link.clone());
        }
        chain.reverse();
        chain
    }

    /// `roots` and every token delegated from one of them, below and below that.
    fn tree(&self, roots: Vec<TokenHash>) -> Vec<TokenHash> {
        let mut tree: std::collections::HashSet<TokenHash> = roots.iter().copied().collect();
        let mut frontier = roots;
        while !frontier.is_empty() {
            let below: Vec<TokenHash> = self
                .tokens
                .iter()
                .filter(|(hash, entry)| {
                    !tree.contains(*hash)
                        && entry
                            .delegator
                            .is_some_and(|parent| frontier.contains(&parent))
                })
                .map(|(hash, _)| *hash)
                .collect();
            tree.extend(below.iter().copied());
            frontier = below;
        }
        tree.into_iter().collect()
    }

    /// Ends a token now, unless it already ended: it is marked completed, a state no clock
    /// reading undoes (its expiry stays as it was).
    fn end(&mut self, hash: &TokenHash, now: time::OffsetDateTime) -> bool {
        let Some(entry) = self.tokens.get_mut(hash) else {
            return false;
        };
        let info = entry.snapshot();
        if !super::prepare::is_live(&info, now) {
            return false;
        }
        let mut ended = entry.info.clone();
        ended.task_completed_at = Some(now);
        *entry = Arc::new(entry.with_info(ended));
        true
    }
}

struct Inner {
    config: StoreConfig,
    last_used_interval: i64,
    state: RwLock<State>,
    /// Bumped by every change to the store's records (every write, every agent record
    /// replaced), never by a use: the revision the store's verdict cache keeps verdicts by.
    revision: Arc<AtomicU64>,
    /// The store's verdicts, reused while neither its records nor its user directory changed.
    verdicts: VerdictCache,
    audit: MemoryAuditSink,
    approvals: MemoryApprovals,
}

/// A store held in memory: for tests, examples and single-process tools. Cheap to clone (all
/// clones share the same data).
///
/// It implements [`TokenResolver`] (through the [resolution pipeline](super::resolve),
/// answering synchronously through [`TokenResolver::resolve_now`] when its user directory can),
/// [`AgentStore`], [`TokenStore`], [`GrantStore`], [`AuditSink`] and [`AuditQuery`].
///
/// It reuses verdicts through a [`VerdictCache`] kept by the store's revision and its user
/// directory's: every change to the store's records or to the directory is seen by the very
/// next request, while a use or a last-used update changes neither.
///
/// ```
/// use tower_agent_auth::ceiling::{CapabilitySet, Policy};
/// use tower_agent_auth::store::{AgentStore, MemoryStore, MemoryUserDirectory, NewAgent, NewToken, TokenStore, UserRecord};
/// use tower_agent_auth::token::TokenFormat;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let users = MemoryUserDirectory::new();
/// users.insert(UserRecord::new("alice", Policy::allow(CapabilitySet::parse(["posts:*"])?)));
/// let store = MemoryStore::new(TokenFormat::new("acme")?, users);
///
/// let agent = store.create_agent(NewAgent::new("writer", "alice")).await?;
/// let issued = store.create_token(&agent.id, NewToken::new("ci")).await?;
/// println!("save it now: {}", issued.token.expose_secret());
///
/// let listed = store.list_tokens(&agent.id).await?;
/// assert_eq!(listed[0].id, issued.info.id); // metadata only: no hash, no secret
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// An empty store minting tokens of `format`, with owners looked up in `directory`.
    pub fn new(format: TokenFormat, directory: impl UserDirectory) -> Self {
        Self::with_config(StoreConfig::new(format, directory))
    }

    /// An empty store with this configuration.
    pub fn with_config(config: StoreConfig) -> Self {
        let last_used_interval =
            i64::try_from(config.last_used_interval.as_secs()).unwrap_or(i64::MAX);
        let revision = Arc::default();
        Self {
            inner: Arc::new(Inner {
                verdicts: verdict_cache(&config, &revision),
                config,
                last_used_interval,
                state: RwLock::default(),
                revision,
                audit: MemoryAuditSink::default(),
                approvals: MemoryApprovals::default(),
            }),
        }
    }

    fn edit(self, change: impl FnOnce(StoreConfig) -> StoreConfig) -> Self {
        let inner = Arc::try_unwrap(self.inner)
            .unwrap_or_else(|_| panic!("configure MemoryStore before cloning it"));
        let config = change(inner.config);
        let last_used_interval =
            i64::try_from(config.last_used_interval.as_secs()).unwrap_or(i64::MAX);
        // Keep what was stored already; the verdicts follow the new clock and directory.
        Self {
            inner: Arc::new(Inner {
                verdicts: verdict_cache(&config, &inner.revision),
                config,
                last_used_interval,
                state: inner.state,
                revision: inner.revision,
                audit: inner.audit,
                approvals: inner.approvals,
            }),
        }
    }

    /// Reads time from `clock` (for tests of expiry).
    ///
    /// # Panics
    /// If the store was already cloned.
    pub fn with_clock(self, clock: impl Clock) -> Self {
        self.edit(|config| config.clock(clock))
    }

    /// Records last-used at most once per `interval` per token (default 60 s).
    ///
    /// # Panics
    /// If the store was already cloned.
    pub fn with_last_used_interval(self, interval: std::time::Duration) -> Self {
        self.edit(|config| config.last_used_interval(interval))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.inner.state.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The state, to change it: the revision moves at once, so no verdict reached before the
    /// change stands after it (a verdict read meanwhile waits for the lock and sees the change).
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        let state = self.inner.state.write().unwrap_or_else(|e| e.into_inner());
        self.inner.revision.fetch_add(1, Ordering::AcqRel);
        state
    }

    fn now(&self) -> time::OffsetDateTime {
        truncate(self.inner.config.clock.now())
    }

    /// The one way to replace an agent record: verdicts reached before are not reused after.
    fn set_agent(&self, slot: &AgentSlot, agent: Agent) {
        slot.record.store(Arc::new(agent));
        self.inner.revision.fetch_add(1, Ordering::AcqRel);
    }
}

/// The store's verdict cache: kept by the store's revision and its directory's, so every
/// change is seen by the very next request.
fn verdict_cache(config: &StoreConfig, revision: &Arc<AtomicU64>) -> VerdictCache {
    let records = revision.clone();
    let directory = config.directory.clone();
    let revision = move || {
        let directory = directory.revision()?;
        // One number for two counters that only grow: they would have to move by 2^32 between
        // a verdict and its next request to meet again.
        let records = records.load(Ordering::Acquire);
        Some((records << 32) ^ directory)
    };
    VerdictCache::new(
        CacheConfig::new()
            .clock(config.clock.clone())
            .revision(revision),
    )
}

#[async_trait::async_trait]
impl TokenRecords for Inner {
    type Record = MemoryRecord;

    fn config(&self) -> &StoreConfig {
        &self.config
    }

    fn find_now(&self, hash: &TokenHash) -> Option<Result<Option<Self::Record>, ResolveError>> {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        Some(Ok(state.tokens.get(hash).map(|entry| state.record(entry))))
    }

    async fn find(&self, hash: &TokenHash) -> Result<Option<Self::Record>, ResolveError> {
        self.find_now(hash).unwrap_or(Ok(None))
    }

    fn reserve_now(&self, record: &Self::Record) -> Option<Result<Reservation, ResolveError>> {
        Some(Ok(record.reserve()))
    }

    async fn reserve(&self, record: &Self::Record) -> Result<Reservation, ResolveError> {
        Ok(record.reserve())
    }

    async fn settled(&self, record: &Self::Record, _attempt: u32) {
        // The first link whose uses are all in flight is the one to wait for.
        for link in record.links() {
            // Listening before looking, so a settle between the two is not missed.
            let settled = link.usage.settled.listen();
            if link.reserve_would_wait() {
                settled.await;
                return;
            }
        }
    }

    fn settle(&self, token: &TokenId, spent: bool) -> Option<SettleFuture> {
        // The token and its chain only: settling needs no orchestrator.
        let links = {
            let state = self.state.read().unwrap_or_else(|e| e.into_inner());
            let hash = state.token_ids.get(token).copied();
            hash.and_then(|hash| state.tokens.get(&hash))
                .map(|entry| (entry.clone(), state.chain(entry)))
        };
        if let Some((entry, chain)) = links {
            let now = i64::try_from(self.config.clock.unix_nanos() / 1_000).unwrap_or(i64::MAX);
            // Every limited link reserved a use for the request: each is settled alike.
            for link in chain.iter().chain(std::iter::once(&entry)) {
                link.settle(spent, now);
            }
        }
        None
    }

    fn record_use(&self, record: &Self::Record, now_nanos: i128) {
        record.entry.touch(now_nanos, self.last_used_interval);
    }

    fn touch(&self, token: &TokenId, now_nanos: i128) {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        let entry = state
            .token_ids
            .get(token)
            .and_then(|hash| state.tokens.get(hash));
        if let Some(entry) = entry {
            entry.touch(now_nanos, self.last_used_interval);
        }
    }
}

/// The pipeline over the store's records: what the store's verdict cache asks on a miss.
#[async_trait::async_trait]
impl TokenResolver for Inner {
    fn token_format(&self) -> &TokenFormat {
        &self.config.format
    }

    fn resolve_now(&self, token: &TokenLookup<'_>) -> Option<Result<Principal, ResolveError>> {
        resolve::resolve_now(self, token)
    }

    async fn resolve(&self, token: &TokenLookup<'_>) -> Result<Principal, ResolveError> {
        resolve::resolve(self, token).await
    }

    fn settle_use(&self, token: &TokenId, spent: bool) -> Option<SettleFuture> {
        self.settle(token, spent)
    }

    fn touch(&self, principal: &Principal) {
        if let Some(token) = principal.token_id() {
            TokenRecords::touch(self, token, self.config.clock.unix_nanos());
        }
    }
}

#[async_trait::async_trait]
impl TokenResolver for MemoryStore {
    fn token_format(&self) -> &TokenFormat {
        &self.inner.config.format
    }

    fn resolve_now(&self, token: &TokenLookup<'_>) -> Option<Result<Principal, ResolveError>> {
        cache::resolve_now(&self.inner.verdicts, &*self.inner, token)
    }

    async fn resolve(&self, token: &TokenLookup<'_>) -> Result<Principal, ResolveError> {
        cache::resolve(&self.inner.verdicts, &*self.inner, token).await
    }

    fn settle_use(&self, token: &TokenId, spent: bool) -> Option<SettleFuture> {
        self.inner.settle(token, spent)
    }

    fn touch(&self, principal: &Principal) {
        TokenResolver::touch(&*self.inner, principal)
    }
}

#[async_trait::async_trait]
impl AgentStore for MemoryStore {
    fn clock(&self) -> &dyn Clock {
        &*self.inner.config.clock
    }

    async fn create_agent(&self, new: NewAgent) -> Result<Agent, StoreError> {
        let parent = match &new.parent {
            Some(id) => Some(self.read().agent(id)?.clone()),
            None => None,
        };
        let agent = prepare::prepare_agent(
            &self.inner.config,
            new,
            parent.as_ref().map(|slot| slot.get()).as_deref(),
        )?;
        prepare::existing_user(&self.inner.config, &agent.owner).await?;
        let mut state = self.write();
        if state.slugs.contains_key(&agent.slug) {
            return Err(StoreError::DuplicateSlug(agent.slug.to_string()));
        }
        // The parent may have been deleted meanwhile.
        if let Some(parent) = &agent.parent {
            state.agent(parent)?;
        }
        state.slugs.insert(agent.slug.clone(), agent.id.clone());
        state
            .agents
            .insert(agent.id.clone(), AgentSlot::new(agent.clone(), parent));
        Ok(agent)
    }

    async fn agent(&self, id: &AgentId) -> Result<Option<Agent>, StoreError> {
        Ok(self.read().agents.get(id).map(|slot| slot.snapshot()))
    }

    async fn agent_by_slug(&self, slug: &str) -> Result<Option<Agent>, StoreError> {
        let state = self.read();
        let slot = state.slugs.get(slug).and_then(|id| state.agents.get(id));
        Ok(slot.map(|slot| slot.snapshot()))
    }

    async fn list_agents(&self) -> Result<Vec<Agent>, StoreError> {
        let mut agents: Vec<Agent> = self
            .read()
            .agents
            .values()
            .map(|slot| slot.snapshot())
            .collect();
        agents.sort_by(|a, b| a.slug.cmp(&b.slug));
        Ok(agents)
    }

    async fn agents_owned_by(&self, owner: &UserId) -> Result<Vec<Agent>, StoreError> {
        let mut agents: Vec<Agent> = self
            .read()
            .agents
            .values()
            .filter(|slot| slot.get().owner == *owner)
            .map(|slot| slot.snapshot())
            .collect();
        agents.sort_by(|a, b| a.slug.cmp(&b.slug));
        Ok(agents)
    }

    async fn set_agent_status(
        &self,
        id: &AgentId,
        status: AgentStatus,
    ) -> Result<Agent, StoreError> {
        let state = self.write();
        let slot = state.agent(id)?;
        let mut agent = Agent::clone(&slot.get());
        agent.status = status;
        self.set_agent(slot, agent);
        Ok(slot.snapshot())
    }

    async fn set_agent_policy(&self, id: &AgentId, policy: Policy) -> Result<Agent, StoreError> {
        let parent = {
            let state = self.read();
            state.agent(id)?.parent.as_ref().map(|p| p.get())
        };
        prepare::check_new_policy(&policy, parent.as_deref())?;
        let state = self.write();
        let slot = state.agent(id)?;
        let mut agent = Agent::clone(&slot.get());
        agent.policy = Arc::new(policy);
        self.set_agent(slot, agent);
        Ok(slot.snapshot())
    }

    async fn delete_agent(&self, id: &AgentId) -> Result<(), StoreError> {
        let mut state = self.write();
        state.agent(id)?;
        // Its children go with it: none may outlive the parent that bounds it.
        let mut doomed: Vec<AgentId> = state
            .agents
            .iter()
            .filter(|(_, slot)| slot.get().parent.as_ref() == Some(id))
            .map(|(child, _)| child.clone())
            .collect();
        doomed.push(id.clone());
        for agent_id in &doomed {
            if let Some(slot) = state.agents.remove(agent_id) {
                state.slugs.remove(&slot.get().slug);
            }
            let hashes: Vec<TokenHash> = state
                .tokens
                .iter()
                .filter(|(_, entry)| entry.info.agent_id == *agent_id)
                .map(|(hash, _)| *hash)
                .collect();
            // Tokens delegated from them go too, as the SQL stores' foreign key does.
            let hashes = state.tree(hashes);
            for hash in &hashes {
                state.remove(hash);
            }
            state.grants.retain(|(agent, _), _| agent != agent_id);
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl TokenStore for MemoryStore {
    async fn create_token(
        &self,
        agent_id: &AgentId,
        new: NewToken,
    ) -> Result<IssuedToken, StoreError> {
        let slot = self.read().agent(agent_id)?.clone();
        let parent = slot.parent.as_ref().map(|p| p.get());
        let prepared =
            prepare::prepare_token(&self.inner.config, &slot.get(), parent.as_deref(), new)?;
        prepare::within_owner_role(
            &self.inner.config,
            &slot.get(),
            prepared.info.capabilities.as_ref(),
        )
        .await?;
        let mut state = self.write();
        // The agent may have been deleted while we minted.
        state.agent(agent_id)?;
        let now = self.now();
        let live_tasks: Vec<String> = state
            .tokens
            .values()
            .filter(|entry| entry.info.agent_id == *agent_id)
            .map(|entry| entry.snapshot())
            .filter(|info| prepare::is_live(info, now))
            .filter_map(|info| info.task_id)
            .collect();
        prepare::check_single_task(
            &self.inner.config,
            &slot.get(),
            prepared.info.task_id.as_deref(),
            live_tasks.iter().map(String::as_str),
        )?;
        let info = prepared.info.clone();
        state.insert(prepared.hash, TokenEntry::new(prepared.info, slot));
        Ok(IssuedToken {
            token: prepared.raw,
            info,
        })
    }

    async fn list_tokens(&self, agent: &AgentId) -> Result<Vec<TokenInfo>, StoreError> {
        let state = self.read();
        state.agent(agent)?;
        let mut tokens: Vec<TokenInfo> = state
            .tokens
            .values()
            .filter(|entry| entry.info.agent_id == *agent)
            .map(|entry| entry.snapshot())
            .collect();
        tokens.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(tokens)
    }

    async fn revoke_token(
        &self,
        agent: &AgentId,
        token: &TokenId,
    ) -> Result<TokenInfo, StoreError> {
        let now = self.now();
        let mut state = self.write();
        state.agent(agent)?;
        let hash = state.token_of(agent, token)?;
        state
            .revoke(&hash, now)
            .ok_or_else(|| StoreError::UnknownToken {
                agent: agent.to_string(),
                token: token.to_string(),
            })
    }

    async fn revoke_all_tokens(&self, agent: &AgentId) -> Result<usize, StoreError> {
        let now = self.now();
        let mut state = self.write();
        state.agent(agent)?;
        let live: Vec<TokenHash> = state
            .tokens
            .iter()
            .filter(|(_, e)| e.info.agent_id == *agent && e.info.revoked_at.is_none())
            .map(|(hash, _)| *hash)
            .collect();
        for hash in &live {
            state.revoke(hash, now);
        }
        Ok(live.len())
    }

    async fn token(
        &self,
        agent: &AgentId,
        token: &TokenId,
    ) -> Result<Option<TokenInfo>, StoreError> {
        let state = self.read();
        state.agent(agent)?;
        Ok(state
            .token_of(agent, token)
            .ok()
            .and_then(|hash| state.tokens.get(&hash))
            .map(|entry| entry.snapshot()))
    }

    async fn import_token(
        &self,
        agent_id: &AgentId,
        token: ImportedToken,
    ) -> Result<TokenInfo, StoreError> {
        let slot = self.read().agent(agent_id)?.clone();
        let parent = slot.parent.as_ref().map(|p| p.get());
        let (hash, info) =
            prepare::prepare_import(&self.inner.config, &slot.get(), parent.as_deref(), token)?;
        prepare::within_owner_role(&self.inner.config, &slot.get(), info.capabilities.as_ref())
            .await?;
        let mut state = self.write();
        state.agent(agent_id)?;
        if state.tokens.contains_key(&hash) {
            return Err(StoreError::DuplicateToken);
        }
        state.insert(hash, TokenEntry::new(info.clone(), slot));
        Ok(info)
    }

    async fn rotate_token(
        &self,
        agent_id: &AgentId,
        token: &TokenId,
        grace: std::time::Duration,
    ) -> Result<IssuedToken, StoreError> {
        let mut state = self.write();
        let slot = state.agent(agent_id)?.clone();
        let hash = state.token_of(agent_id, token)?;
        let entry = state.tokens[&hash].clone();
        // The uses left move to the new token, read and emptied under one lock: a reservation
        // racing the rotation is counted on one side only, never on both.
        let mut counts = entry.usage.counts();
        let old = entry.snapshot_with(counts.as_deref());
        let rotation = prepare::prepare_rotation(&self.inner.config, &slot.get(), &old, grace)?;
        if let Some(counts) = counts.as_mut() {
            counts.remaining = 0;
        }
        drop(counts);
        let mut updated = entry.info.clone();
        updated.expires_at = rotation.old_expires_at;
        updated.revoked_at = rotation.old_revoked_at;
        let replaced = entry.with_info(updated);
        state.tokens.insert(hash, Arc::new(replaced));
        let new = rotation.new;
        let mut agent = Agent::clone(&slot.get());
        agent.last_rotated_at = Some(new.info.created_at);
        self.set_agent(&slot, agent);
        state.insert(new.hash, TokenEntry::new(new.info.clone(), slot));
        Ok(IssuedToken {
            token: new.raw,
            info: new.info,
        })
    }

    async fn purge(&self, older_than: std::time::Duration) -> Result<usize, StoreError> {
        let cutoff = prepare::purge_cutoff(self.now(), older_than);
        let mut state = self.write();
        let stale: Vec<TokenHash> = state
            .tokens
            .iter()
            .filter(|(_, entry)| {
                let info = entry.snapshot();
                let before_cutoff =
                    |at: Option<time::OffsetDateTime>| at.is_some_and(|at| micros(at) < cutoff);
                before_cutoff(info.revoked_at)
                    || before_cutoff(info.task_completed_at)
                    || before_cutoff(info.expires_at)
            })
            .map(|(hash, _)| *hash)
            .collect();
        // Tokens delegated from a purged one go with it, as the SQL stores' foreign key does.
        let stale = state.tree(stale);
        for hash in &stale {
            state.remove(hash);
        }
        Ok(stale.len())
    }
}

#[async_trait::async_trait]
impl crate::delegation::DelegationStore for MemoryStore {
    fn store_config(&self) -> &StoreConfig {
        &self.inner.config
    }

    async fn inspect_token(
        &self,
        token: &TokenLookup<'_>,
    ) -> Result<resolve::Inspection, ResolveError> {
        resolve::inspect(&*self.inner, token).await
    }

    async fn revoke_token_tree(
        &self,
        agent: &AgentId,
        token: &TokenId,
    ) -> Result<usize, StoreError> {
        let now = self.now();
        let mut state = self.write();
        state.agent(agent)?;
        let root = state.token_of(agent, token)?;
        let tree = state.tree(vec![root]);
        let mut revoked = 0;
        for hash in &tree {
            if state
                .tokens
                .get(hash)
                .is_some_and(|e| e.info.revoked_at.is_none())
            {
                state.revoke(hash, now);
                revoked += 1;
            }
        }
        Ok(revoked)
    }

    async fn complete_task(&self, owner: &UserId, task_id: &str) -> Result<usize, StoreError> {
        let now = self.now();
        let mut state = self.write();
        let roots: Vec<TokenHash> = state
            .tokens
            .iter()
            .filter(|(_, entry)| {
                entry.info.task_id.as_deref() == Some(task_id) && entry.agent.get().owner == *owner
            })
            .map(|(hash, _)| *hash)
            .collect();
        let tree = state.tree(roots);
        Ok(tree.iter().filter(|hash| state.end(hash, now)).count())
    }
}

#[async_trait::async_trait]
impl GrantStore for MemoryStore {
    async fn grant(
        &self,
        agent: &AgentId,
        user: &UserId,
        role: AccessRole,
    ) -> Result<AccessGrant, StoreError> {
        self.read().agent(agent)?;
        prepare::existing_user(&self.inner.config, user).await?;
        let grant = AccessGrant {
            agent_id: agent.clone(),
            user_id: user.clone(),
            role,
            granted_at: self.now(),
        };
        let mut state = self.write();
        state.agent(agent)?;
        state
            .grants
            .insert((agent.clone(), user.clone()), grant.clone());
        Ok(grant)
    }

    async fn revoke_grant(&self, agent: &AgentId, user: &UserId) -> Result<(), StoreError> {
        let mut state = self.write();
        state.agent(agent)?;
        match state.grants.remove(&(agent.clone(), user.clone())) {
            Some(_) => Ok(()),
            None => Err(StoreError::UnknownGrant {
                agent: agent.to_string(),
                user: user.to_string(),
            }),
        }
    }

    async fn grants(&self, agent: &AgentId) -> Result<Vec<AccessGrant>, StoreError> {
        let state = self.read();
        state.agent(agent)?;
        let mut grants: Vec<AccessGrant> = state
            .grants
            .values()
            .filter(|g| g.agent_id == *agent)
            .cloned()
            .collect();
        grants.sort_by(|a, b| a.user_id.cmp(&b.user_id));
        Ok(grants)
    }

    async fn role_of(
        &self,
        agent: &AgentId,
        user: &UserId,
    ) -> Result<Option<AccessRole>, StoreError> {
        Ok(self
            .read()
            .grants
            .get(&(agent.clone(), user.clone()))
            .map(|g| g.role))
    }

    async fn agents_visible_to(&self, user: &UserId) -> Result<Vec<AgentId>, StoreError> {
        let state = self.read();
        let granted: std::collections::HashSet<&AgentId> = state
            .grants
            .values()
            .filter(|g| g.user_id == *user)
            .map(|g| &g.agent_id)
            .collect();
        let mut visible: Vec<Arc<Agent>> = state
            .agents
            .values()
            .map(|slot| slot.get())
            .filter(|agent| {
                agent.owner == *user
                    || granted.contains(&agent.id)
                    || agent.parent.as_ref().is_some_and(|p| granted.contains(p))
            })
            .collect();
        visible.sort_by(|a, b| a.slug.cmp(&b.slug));
        Ok(visible.iter().map(|agent| agent.id.clone()).collect())
    }
}

/// The store keeps its own audit trail in memory, so it can stand for a SQL store in tests.
#[async_trait::async_trait]
impl AuditSink for MemoryStore {
    async fn write_batch(&self, events: &[AuditEvent]) -> Result<(), AuditError> {
        self.inner.audit.write_batch(events).await
    }
}

#[async_trait::async_trait]
impl AuditQuery for MemoryStore {
    async fn events(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>, AuditError> {
        self.inner.audit.events(filter).await
    }
}

#[async_trait::async_trait]
impl ApprovalGate for MemoryStore {
    async fn create_approval(&self, new: NewApproval) -> Result<Approval, StoreError> {
        self.inner.approvals.create(new, self.now())
    }

    async fn request_approval(
        &self,
        new: NewApproval,
    ) -> Result<crate::approval::Requested, StoreError> {
        self.inner.approvals.request(new, self.now())
    }

    async fn purge_approvals(&self, older_than: std::time::Duration) -> Result<usize, StoreError> {
        let cutoff = prepare::purge_cutoff(self.now(), older_than);
        Ok(self.inner.approvals.purge(cutoff))
    }

    async fn approval(&self, id: &ApprovalId) -> Result<Option<Approval>, StoreError> {
        Ok(self.inner.approvals.get(id))
    }

    async fn list_approvals(&self, filter: &ApprovalFilter) -> Result<Vec<Approval>, StoreError> {
        Ok(self.inner.approvals.list(filter, self.now()))
    }

    async fn decide_approval(
        &self,
        id: &ApprovalId,
        by: &UserId,
        decision: Decision,
    ) -> Result<Approval, StoreError> {
        self.inner.approvals.decide(id, by, decision, self.now())
    }

    async fn consume_approval(
        &self,
        binding: &ApprovalBinding,
    ) -> Result<Option<Approval>, StoreError> {
        Ok(self.inner.approvals.consume(binding, self.now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MemoryUserDirectory, UserRecord};

    /// A store with alice, and the entry of a token of hers minted as `new`.
    async fn entry(new: NewToken) -> Arc<TokenEntry> {
        let users = MemoryUserDirectory::new();
        users.insert(UserRecord::new("alice", Policy::unrestricted()));
        let store = MemoryStore::new(TokenFormat::new("acme").unwrap(), users);
        let agent = store
            .create_agent(NewAgent::new("writer", "alice"))
            .await
            .unwrap();
        let issued = store.create_token(&agent.id, new).await.unwrap();
        let hash = store
            .token_format()
            .parse(issued.token.expose_secret())
            .unwrap()
            .hash();
        store.read().tokens[&hash].clone()
    }

    #[tokio::test]
    async fn with_no_use_left_and_none_in_flight_a_reservation_is_refused_not_awaited() {
        let entry = entry(NewToken::new("t").max_operations(1)).await;
        assert_eq!(entry.reserve(), Reservation::Reserved);
        entry.settle(true, 0);
        assert_eq!(entry.reserve(), Reservation::Exhausted);
    }

    #[tokio::test]
    async fn a_completion_is_dated_at_the_instant_of_the_last_use() {
        let new = NewToken::new("t").max_operations(1).expires_on_completion();
        let entry = entry(new).await;
        assert_eq!(entry.completed_at(), None);
        assert_eq!(entry.reserve(), Reservation::Reserved);
        entry.settle(true, 1_767_225_600_123_456);
        assert_eq!(entry.completed_at(), Some(1_767_225_600_123_456_000));
    }
}
