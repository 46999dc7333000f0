//! The verdicts themselves: held by token hash, dropped by the changes they depend on, served
//! only while fresh.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::change::Change;
use super::config::CacheConfig;
use super::status::CacheStatus;
use crate::error::{InvalidReason, RefusedCredential, ResolveError};
use crate::principal::{AgentId, AgentRef, ExecutionPrincipal, Principal, TokenId, UserId};
use crate::resolver::TokenLookup;
use crate::token::TokenHash;

/// `fresh_until` when nothing but the revision (if any) decides: always fresh.
const ALWAYS: u64 = u64::MAX;

/// A verdict cache: principals (and refusals of unknown tokens, and of stored tokens refused for
/// good) by token hash, shared by every
/// [`CachingResolver`](super::CachingResolver) built over it. Cheap to clone: clones share
/// one cache.
///
/// A verdict is served only while
/// - it stands: the clock is before its [`expires_at`](ExecutionPrincipal::expires_at), and no
///   [`Change`] it depends on was [applied](VerdictCache::apply) since it was reached;
/// - the cache is fresh: with a [revision](CacheConfig::revision), the revision is the one read
///   before the verdict was reached; when it [follows a feed](CacheConfig::follows_feed), a
///   poll of the feed succeeded within the bound and the feed's channel is not known to be
///   down (see `VerdictCache::follow`, feature `feed`).
///
/// Use-limited principals are never held: every use is reserved from the store's counter.
///
/// Refusals are held too, so that a client looping on a dead token, or a flood of made-up
/// ones, costs the store at most one lookup per token per
/// [negative lifetime](CacheConfig::negative_ttl): an unknown hash, and a stored token refused
/// for good — revoked, expired (or its task completed), every use spent. Those are held at most
/// [`negative_max_entries`](CacheConfig::negative_max_entries) together, are dropped by the
/// changes of their token, agent and owner like verdicts, and are served only while the cache
/// is fresh. A refusal that can be undone (a disabled agent, a deactivated owner) is never held.
#[derive(Clone)]
pub struct VerdictCache {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for VerdictCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerdictCache")
            .field("config", &self.shared.config)
            .field("status", &self.status())
            .finish()
    }
}

pub(crate) struct Shared {
    pub(crate) config: CacheConfig,
    verdicts: moka::sync::Cache<TokenHash, Verdict>,
    refusals: moka::sync::Cache<TokenHash, Refusal>,
    /// Bumped by every [`VerdictCache::apply`]; a verdict is inserted only under the
    /// generation read before it was reached (the read lock makes check-and-insert one step
    /// against a bump).
    generation: RwLock<u64>,
    /// What `fresh_until` counts from.
    base: Instant,
    /// Nanoseconds after `base` until which the cache may answer; [`ALWAYS`] when it follows
    /// no feed.
    fresh_until: AtomicU64,
    /// The last change epoch applied from a feed.
    pub(crate) applied: AtomicU64,
    pub(crate) channel_up: AtomicBool,
    hits: AtomicU64,
    misses: AtomicU64,
    /// This cache among every cache of the process, for the per-thread fronts.
    id: u64,
    /// Bumped by every [`VerdictCache::apply`] once its verdicts are gone from `verdicts`: a
    /// verdict a front copied before is not served after.
    changes: AtomicU64,
}

/// Where the ids of caches come from.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

#[derive(Clone)]
struct Verdict {
    principal: Principal,
    revision: Option<u64>,
    /// Unix nanoseconds from which the principal no longer stands.
    until: i128,
    /// How long moka keeps it: never past `until`, never longer than `max_age`.
    ttl: Duration,
    /// When moka lets it go (`None`: a lifetime past what `Instant` can say): a front copy is
    /// not served past it.
    kept_until: Option<Instant>,
    /// The Unix second whose use was recorded last: a hit records its use once a second at
    /// most, so that hits share no lock and no write (the store keeps last-used times to the
    /// second or coarser).
    recorded: Arc<AtomicI64>,
}

/// What the cache answered a lookup with.
pub(crate) struct Hit {
    pub(crate) answer: Result<Principal, ResolveError>,
    /// Whether the use is to be recorded ([`TokenResolver::touch`](crate::TokenResolver::touch)):
    /// the first hit of a token in a second.
    pub(crate) record_use: bool,
}

/// A refusal held: of an unknown hash, or of a stored token refused for good.
#[derive(Clone)]
struct Refusal {
    revision: Option<u64>,
    /// `None` for an unknown hash.
    refused: Option<Arc<RefusedCredential>>,
}

impl Refusal {
    fn answer(&self) -> ResolveError {
        match &self.refused {
            Some(refused) => ResolveError::Refused(Box::new(RefusedCredential::clone(refused))),
            None => InvalidReason::Unknown.into(),
        }
    }
}

/// Keeps each verdict no longer than its own expiry.
struct VerdictExpiry;

impl moka::Expiry<TokenHash, Verdict> for VerdictExpiry {
    fn expire_after_create(&self, _: &TokenHash, value: &Verdict, _: Instant) -> Option<Duration> {
        Some(value.ttl)
    }

    fn expire_after_update(
        &self,
        _: &TokenHash,
        value: &Verdict,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// What a miss read before asking the resolver, so that what it learns is stored only if
/// nothing changed meanwhile.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket {
    generation: u64,
    /// The revision read, when a revision decides; `Some(None)` when it could not tell.
    revision: Option<Option<u64>>,
    /// The feed's epoch applied when the miss began.
    #[cfg(feature = "feed")]
    pub(crate) epoch: u64,
}

impl VerdictCache {
    /// An empty cache configured by `config`.
    pub fn new(config: CacheConfig) -> Self {
        let verdicts = moka::sync::Cache::builder()
            .max_capacity(config.max_entries)
            .expire_after(VerdictExpiry)
            .build();
        let refusals = moka::sync::Cache::builder()
            .max_capacity(config.negative_max_entries)
            .time_to_live(config.negative_ttl_or_bound())
            .build();
        let fresh_until = if config.follows_feed { 0 } else { ALWAYS };
        Self {
            shared: Arc::new(Shared {
                config,
                verdicts,
                refusals,
                generation: RwLock::new(0),
                base: Instant::now(),
                fresh_until: AtomicU64::new(fresh_until),
                applied: AtomicU64::new(0),
                channel_up: AtomicBool::new(false),
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                changes: AtomicU64::new(0),
            }),
        }
    }

    /// The configuration the cache was built with.
    pub fn config(&self) -> &CacheConfig {
        &self.shared.config
    }

    /// Drops every verdict that depends on `change`; a dropped verdict is never served again,
    /// and a verdict reached before this call is not stored after it.
    ///
    /// Dropping by token, agent or user scans the held verdicts (a few milliseconds for
    /// 100 000): changes are rare next to requests, and a scan keeps no index to go stale.
    pub fn apply(&self, change: &Change) {
        self.apply_all(std::iter::once(change));
    }

    /// [`apply`](VerdictCache::apply) for several changes at once, in one scan: what a poll of
    /// a feed brings.
    pub fn apply_all<'c>(&self, changes: impl IntoIterator<Item = &'c Change>) {
        let dropped = Dropped::of(changes);
        if !dropped.all && dropped.is_empty() {
            return;
        }
        {
            let mut generation = self
                .shared
                .generation
                .write()
                .unwrap_or_else(|e| e.into_inner());
            *generation = generation.wrapping_add(1);
        }
        if dropped.all {
            self.shared.verdicts.invalidate_all();
            self.shared.refusals.invalidate_all();
            self.shared.changes.fetch_add(1, Ordering::AcqRel);
            return;
        }
        for (hash, verdict) in self.shared.verdicts.iter() {
            if dropped.ends(&verdict.principal) {
                self.shared.verdicts.invalidate(&*hash);
            }
        }
        // An unknown hash stays unknown whatever changes; a token refused for good is dropped
        // by its changes all the same, so that nothing held outlives a change (a restore says
        // `All`).
        for (hash, refusal) in self.shared.refusals.iter() {
            if refusal
                .refused
                .as_deref()
                .is_some_and(|r| dropped.ends_refusal(r))
            {
                self.shared.refusals.invalidate(&*hash);
            }
        }
        // After the verdicts are gone: a front that copied one read the count before this.
        self.shared.changes.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether the cache may answer, whether its feed's channel is up, the epoch applied,
    /// and how often it answered: for a readiness check and logs.
    pub fn status(&self) -> CacheStatus {
        CacheStatus {
            fresh: self.is_fresh(),
            channel_up: self.shared.channel_up.load(Ordering::Acquire),
            applied_epoch: self.shared.applied.load(Ordering::Acquire),
            hits: self.shared.hits.load(Ordering::Relaxed),
            misses: self.shared.misses.load(Ordering::Relaxed),
        }
    }

    /// How many verdicts are held (approximately: moka counts lazily).
    pub fn entry_count(&self) -> u64 {
        self.shared.verdicts.entry_count()
    }

    pub(crate) fn is_fresh(&self) -> bool {
        let until = self.shared.fresh_until.load(Ordering::Acquire);
        until == ALWAYS || self.since_base(Instant::now()) < until
    }

    fn since_base(&self, at: Instant) -> u64 {
        let nanos = at.saturating_duration_since(self.shared.base).as_nanos();
        u64::try_from(nanos).unwrap_or(ALWAYS - 1)
    }

    #[cfg(feature = "feed")]
    /// May answer until `until` (a poll confirmed the changes committed before it started).
    pub(crate) fn fresh_until(&self, until: Instant) {
        let until = self.since_base(until);
        self.shared.fresh_until.store(until, Ordering::Release);
    }

    #[cfg(feature = "feed")]
    /// Answers nothing until a poll says otherwise.
    pub(crate) fn mark_stale(&self) {
        self.shared.fresh_until.store(0, Ordering::Release);
    }

    /// The revision now, when a revision decides.
    fn revision(&self) -> Option<Option<u64>> {
        self.shared
            .config
            .revision
            .as_ref()
            .map(|revision| revision())
    }

    /// The verdict held for `token`, if it may be served now.
    #[cfg(any(test, feature = "oauth"))]
    pub(crate) fn get(&self, token: &TokenLookup<'_>) -> Option<Result<Principal, ResolveError>> {
        self.find(token).map(|hit| hit.answer)
    }

    /// The verdict held for `token`, if it may be served now, and whether its use is to be
    /// recorded.
    pub(crate) fn find(&self, token: &TokenLookup<'_>) -> Option<Hit> {
        if !self.is_fresh() {
            return None;
        }
        let revision = self.revision();
        if revision == Some(None) {
            return None;
        }
        let revision = revision.flatten();
        let judge = |verdict: &Verdict| {
            let now = self.shared.config.clock.unix_nanos();
            let stands = verdict.revision == revision
                && now < verdict.until
                // The slug is part of the hashed token, but a lookup built by hand may name
                // another agent: the resolver refuses it.
                && verdict
                    .principal
                    .agent_ref()
                    .is_some_and(|agent| agent.slug() == token.slug());
            if !stands {
                return None;
            }
            self.shared.hits.fetch_add(1, Ordering::Relaxed);
            let second = unix_second(now);
            // Read first: most hits of a busy token find the second recorded and write nothing.
            let record_use = verdict.recorded.load(Ordering::Relaxed) < second
                && verdict.recorded.fetch_max(second, Ordering::Relaxed) < second;
            Some(Hit {
                answer: Ok(verdict.principal.clone()),
                record_use,
            })
        };
        // Read before the shared map: a change applied after this read makes what is found
        // there stale in the front too.
        let changes = self.shared.changes.load(Ordering::Acquire);
        let front = front::find(self.shared.id, token.hash(), changes, |verdict| {
            // Not past the shared entry's own lifetime.
            let kept = verdict
                .kept_until
                .is_none_or(|until| Instant::now() < until);
            kept.then(|| judge(verdict)).flatten()
        });
        // A copy that does not stand may be older than the shared entry (a revision moved on
        // and a miss stored a newer verdict): the shared map decides.
        if front.is_some() {
            return front;
        }
        if let Some(verdict) = self.shared.verdicts.get(token.hash()) {
            let hit = judge(&verdict);
            if hit.is_some() {
                front::keep(self.shared.id, *token.hash(), changes, verdict);
            }
            return hit;
        }
        let refusal = self.shared.refusals.get(token.hash())?;
        if refusal.revision != revision {
            return None;
        }
        self.shared.hits.fetch_add(1, Ordering::Relaxed);
        Some(Hit {
            answer: Err(refusal.answer()),
            record_use: false,
        })
    }

    /// Read by a miss before it asks the resolver.
    pub(crate) fn ticket(&self) -> Ticket {
        let generation = *self
            .shared
            .generation
            .read()
            .unwrap_or_else(|e| e.into_inner());
        Ticket {
            generation,
            revision: self.revision(),
            #[cfg(feature = "feed")]
            epoch: self.shared.applied.load(Ordering::Acquire),
        }
    }

    /// Counts a miss and keeps what the resolver answered, if it may be kept: an admitted
    /// principal that is not use-limited and not expired, an unknown token, or a refusal for
    /// good.
    pub(crate) fn admit(
        &self,
        hash: &TokenHash,
        answer: &Result<Principal, ResolveError>,
        ticket: Ticket,
    ) {
        self.shared.misses.fetch_add(1, Ordering::Relaxed);
        match answer {
            Ok(principal) => self.insert(hash, principal, ticket),
            Err(ResolveError::Invalid(InvalidReason::Unknown)) => {
                self.insert_refusal(hash, None, ticket)
            }
            Err(ResolveError::Refused(refused)) if for_good(refused.reason) => self.insert_refusal(
                hash,
                Some(Arc::new(RefusedCredential::clone(refused))),
                ticket,
            ),
            Err(_) => {}
        }
    }

    /// How long `principal` may be kept from now: `None` when it may not be kept at all.
    pub(crate) fn keep_for(&self, principal: &ExecutionPrincipal) -> Option<Duration> {
        if !cacheable(principal) {
            return None;
        }
        let max_age = self.shared.config.max_age;
        let Some(until) = principal.expires_at() else {
            return Some(max_age);
        };
        let left = until.unix_timestamp_nanos() - self.shared.config.clock.unix_nanos();
        if left <= 0 {
            return None;
        }
        let left = Duration::from_nanos(u64::try_from(left).unwrap_or(u64::MAX));
        Some(left.min(max_age))
    }

    /// Keeps `principal` for `hash`, if nothing changed since `ticket` was read.
    pub(crate) fn insert(&self, hash: &TokenHash, principal: &Principal, ticket: Ticket) {
        let Some(ttl) = self.keep_for(principal) else {
            return;
        };
        if ticket.revision == Some(None) {
            return;
        }
        let until = principal
            .expires_at()
            .map_or(i128::MAX, |at| at.unix_timestamp_nanos());
        let generation = self
            .shared
            .generation
            .read()
            .unwrap_or_else(|e| e.into_inner());
        if *generation != ticket.generation {
            return;
        }
        // The miss that reached it recorded its use.
        let recorded = unix_second(self.shared.config.clock.unix_nanos());
        let verdict = Verdict {
            principal: principal.clone(),
            revision: ticket.revision.flatten(),
            until,
            ttl,
            kept_until: Instant::now().checked_add(ttl),
            recorded: Arc::new(AtomicI64::new(recorded)),
        };
        self.shared.verdicts.insert(*hash, verdict);
    }

    fn insert_refusal(
        &self,
        hash: &TokenHash,
        refused: Option<Arc<RefusedCredential>>,
        ticket: Ticket,
    ) {
        if ticket.revision == Some(None) {
            return;
        }
        let generation = self
            .shared
            .generation
            .read()
            .unwrap_or_else(|e| e.into_inner());
        if *generation != ticket.generation {
            return;
        }
        let refusal = Refusal {
            revision: ticket.revision.flatten(),
            refused,
        };
        self.shared.refusals.insert(*hash, refusal);
    }

    /// Runs moka's pending maintenance (evictions, expiries) now; for tests of the bounds.
    pub fn run_pending_tasks(&self) {
        self.shared.verdicts.run_pending_tasks();
        self.shared.refusals.run_pending_tasks();
    }

    /// How many refusals are held — unknown hashes and tokens refused for good
    /// (approximately: moka counts lazily).
    pub fn negative_entry_count(&self) -> u64 {
        self.shared.refusals.entry_count()
    }
}

/// Per-thread copies of the verdicts this thread served, so that a hit reads a plain map: no
/// shared write, no lock, no bookkeeping of the shared cache's eviction order. A copy is served
/// only while its cache applied no change since it was copied, and never past the shared
/// entry's own lifetime; each thread keeps at most [`front::CAPACITY`] copies.
mod front {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::hash::BuildHasherDefault;

    use super::Verdict;
    use crate::token::{DigestHasher, TokenHash};

    pub(super) const CAPACITY: usize = 1024;

    struct Copy {
        cache: u64,
        changes: u64,
        verdict: Verdict,
    }

    thread_local! {
        static FRONT: RefCell<HashMap<TokenHash, Copy, BuildHasherDefault<DigestHasher>>> =
            RefCell::default();
    }

    /// What `judge` says of the copy of `hash`'s verdict in `cache`, if this thread holds one
    /// copied under `changes`.
    pub(super) fn find<T>(
        cache: u64,
        hash: &TokenHash,
        changes: u64,
        judge: impl FnOnce(&Verdict) -> Option<T>,
    ) -> Option<T> {
        // `try_with`: a thread tearing down its locals gets a miss, not a panic.
        FRONT
            .try_with(|front| {
                let front = front.try_borrow().ok()?;
                let copy = front.get(hash)?;
                if copy.cache != cache || copy.changes != changes {
                    return None;
                }
                judge(&copy.verdict)
            })
            .ok()
            .flatten()
    }

    pub(super) fn keep(cache: u64, hash: TokenHash, changes: u64, verdict: Verdict) {
        let _ = FRONT.try_with(|front| {
            let Ok(mut front) = front.try_borrow_mut() else {
                return;
            };
            if front.len() >= CAPACITY && !front.contains_key(&hash) {
                front.clear();
            }
            front.insert(
                hash,
                Copy {
                    cache,
                    changes,
                    verdict,
                },
            );
        });
    }
}

fn unix_second(nanos: i128) -> i64 {
    i64::try_from(nanos.div_euclid(1_000_000_000)).unwrap_or(i64::MAX)
}

/// Whether a stored token's refusal stands for good: nothing but a restore from a backup (which
/// the feed reports as [`Change::All`]) gives back a revoked token, an expired one (or one whose
/// task completed), or a spent use. A disabled agent or a deactivated owner may come back.
fn for_good(reason: InvalidReason) -> bool {
    matches!(
        reason,
        InvalidReason::Revoked | InvalidReason::Expired | InvalidReason::Exhausted
    )
}

/// Whether a principal may be held: one that is use-limited (its own token, or a link up its
/// chain) must reserve every use from the store's counter, never from a cached one.
pub(crate) fn cacheable(principal: &ExecutionPrincipal) -> bool {
    principal.max_operations().is_none() && principal.token_id().is_some()
}

/// What a set of changes ends, looked up in sets so that one scan serves any number of them.
#[derive(Default)]
struct Dropped {
    all: bool,
    tokens: HashSet<TokenId>,
    agents: HashSet<AgentId>,
    users: HashSet<UserId>,
}

impl Dropped {
    fn of<'c>(changes: impl IntoIterator<Item = &'c Change>) -> Self {
        let mut dropped = Self::default();
        for change in changes {
            match change {
                Change::All => dropped.all = true,
                Change::Token(id) => {
                    dropped.tokens.insert(id.clone());
                }
                Change::Agent(id) => {
                    dropped.agents.insert(id.clone());
                }
                Change::User(id) => {
                    dropped.users.insert(id.clone());
                }
            }
        }
        dropped
    }

    /// Whether a refusal held for `refused` may no longer stand: its token or the token up the
    /// chain that failed, its agent, its parent or an agent up its chain, or its owner.
    fn ends_refusal(&self, refused: &RefusedCredential) -> bool {
        self.tokens.contains(&refused.token_id)
            || refused
                .delegator
                .as_ref()
                .is_some_and(|token| self.tokens.contains(token))
            || self.agents.contains(&refused.agent_id)
            || refused
                .parent
                .as_ref()
                .is_some_and(|parent| self.agents.contains(parent))
            || refused
                .delegation_chain
                .iter()
                .any(|agent| self.agents.contains(agent))
            || self.users.contains(&refused.user_id)
    }

    fn is_empty(&self) -> bool {
        self.tokens.is_empty() && self.agents.is_empty() && self.users.is_empty()
    }

    /// Whether `principal`'s verdict may no longer stand: its token or any up its chain; its
    /// agent, that agent's parent, any chain link's agent or its parent, or its orchestrator;
    /// its owner or the person a task token was minted for.
    fn ends(&self, principal: &ExecutionPrincipal) -> bool {
        let chain = principal.delegation_chain();
        let agent_named = |agent: &AgentRef| {
            self.agents.contains(agent.id())
                || agent
                    .parent()
                    .is_some_and(|parent| self.agents.contains(parent))
        };
        principal
            .token_id()
            .is_some_and(|token| self.tokens.contains(token))
            || chain
                .iter()
                .any(|link| self.tokens.contains(link.token_id()))
            || principal.agent_ref().is_some_and(agent_named)
            || chain.iter().any(|link| agent_named(link.agent()))
            || principal
                .orchestrator()
                .is_some_and(|orchestrator| self.agents.contains(orchestrator.id()))
            || self.users.contains(principal.user_id())
            || principal
                .task()
                .and_then(|task| task.delegated_by.as_ref())
                .is_some_and(|person| self.users.contains(person))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::ceiling::{CapabilityCeiling, Policy};
    use crate::clock::{Clock, ManualClock};

    fn principal() -> ExecutionPrincipal {
        ExecutionPrincipal::agent(
            UserId::from("alice"),
            AgentRef::new(AgentId::from("writer"), "writer"),
            TokenId::from("tok_1"),
            CapabilityCeiling::new(Arc::new(Policy::unrestricted())),
        )
    }

    fn cache(clock: &Arc<ManualClock>) -> VerdictCache {
        let config = CacheConfig::new()
            .clock(clock.clone())
            .max_age(Duration::from_secs(60));
        VerdictCache::new(config)
    }

    fn clock() -> Arc<ManualClock> {
        Arc::new(ManualClock::new(time::OffsetDateTime::UNIX_EPOCH))
    }

    #[test]
    fn a_verdict_without_an_expiry_is_kept_for_the_max_age() {
        let clock = clock();
        assert_eq!(
            cache(&clock).keep_for(&principal()),
            Some(Duration::from_secs(60))
        );
    }

    #[test]
    fn a_verdict_is_kept_no_longer_than_its_expiry() {
        let clock = clock();
        let soon = clock.now() + time::Duration::seconds(5);
        let principal = principal().with_expires_at(soon);
        assert_eq!(
            cache(&clock).keep_for(&principal),
            Some(Duration::from_secs(5))
        );
    }

    #[test]
    fn an_expired_verdict_is_not_kept() {
        let clock = clock();
        let principal = principal().with_expires_at(clock.now());
        assert_eq!(cache(&clock).keep_for(&principal), None);
    }

    #[test]
    fn a_use_limited_verdict_is_not_kept() {
        let clock = clock();
        assert_eq!(
            cache(&clock).keep_for(&principal().with_max_operations(3)),
            None
        );
    }

    #[test]
    fn a_session_is_not_kept() {
        let session = ExecutionPrincipal::session(
            UserId::from("alice"),
            CapabilityCeiling::new(Arc::new(Policy::unrestricted())),
        );
        assert!(!cacheable(&session));
    }

    #[test]
    fn a_change_of_another_token_drops_nothing() {
        let clock = clock();
        let cache = cache(&clock);
        let hash = TokenHash::of("t1");
        cache.insert(&hash, &principal().into(), cache.ticket());
        cache.apply(&Change::Token(TokenId::from("tok_2")));
        let lookup = TokenLookup::new(hash, "writer", false);
        assert!(cache.get(&lookup).is_some());
        cache.apply(&Change::Token(TokenId::from("tok_1")));
        assert!(cache.get(&lookup).is_none());
    }

    #[test]
    fn a_ticket_from_before_a_change_inserts_nothing() {
        let clock = clock();
        let cache = cache(&clock);
        let hash = TokenHash::of("t1");
        let ticket = cache.ticket();
        cache.apply(&Change::User(UserId::from("nobody")));
        cache.insert(&hash, &principal().into(), ticket);
        assert!(
            cache
                .get(&TokenLookup::new(hash, "writer", false))
                .is_none()
        );
    }
}
