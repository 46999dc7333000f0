use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use arc_swap::{ArcSwap, ArcSwapOption};
use time::OffsetDateTime;

use super::model::{Agent, AgentStatus, IssuedToken, NewAgent, NewToken, TokenInfo};
use super::{AgentStore, StoreError, TokenStore, UserDirectory, UserRecord, verdict};
use crate::ceiling::{CapabilitySet, Policy};
use crate::clock::{Clock, SystemClock};
use crate::principal::{AgentId, Principal, TokenId};
use crate::resolver::{InvalidReason, ResolveError, TokenLookup, TokenResolver};
use crate::token::{TokenFormat, TokenHash, valid_slug};

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
struct AgentSlot(ArcSwap<Agent>);

impl AgentSlot {
    fn new(agent: Agent) -> Arc<Self> {
        Arc::new(Self(ArcSwap::from_pointee(agent)))
    }

    fn get(&self) -> Arc<Agent> {
        self.0.load_full()
    }

    fn set(&self, agent: Agent) {
        self.0.store(Arc::new(agent));
    }
}

/// The principal last built for a token, with what it was built from.
struct CachedPrincipal {
    agent: Arc<Agent>,
    owner_role: Arc<Policy>,
    principal: Principal,
}

struct TokenEntry {
    info: TokenInfo,
    agent: Arc<AgentSlot>,
    /// Reused while the agent record and the owner's role are unchanged, so a request costs an
    /// `Arc` clone instead of building a principal.
    cache: ArcSwapOption<CachedPrincipal>,
    policy: Option<Arc<Policy>>,
    /// Unix seconds of the last recorded use, or `NEVER`.
    last_used: AtomicI64,
}

impl TokenEntry {
    fn snapshot(&self) -> TokenInfo {
        let mut info = self.info.clone();
        let last_used = self.last_used.load(Ordering::Relaxed);
        info.last_used_at = (last_used != NEVER)
            .then(|| OffsetDateTime::from_unix_timestamp(last_used).ok())
            .flatten();
        info
    }

    /// The principal for this token acting through `agent` for `owner`.
    fn principal(&self, agent: &Arc<Agent>, owner: &UserRecord) -> Principal {
        if let Some(cached) = &*self.cache.load() {
            let same_role =
                Arc::ptr_eq(&cached.owner_role, owner.role()) || cached.owner_role == *owner.role();
            if Arc::ptr_eq(&cached.agent, agent) && same_role {
                return cached.principal.clone();
            }
        }
        let principal: Principal =
            verdict::agent_principal(owner, agent, &self.info, self.policy.as_ref()).into();
        self.cache.store(Some(Arc::new(CachedPrincipal {
            agent: agent.clone(),
            owner_role: owner.role().clone(),
            principal: principal.clone(),
        })));
        principal
    }

    /// Records a use, at most once per `interval` seconds: one relaxed load on the hot path.
    fn touch(&self, now_nanos: i128, interval: i64) {
        let now = i64::try_from(now_nanos / 1_000_000_000).unwrap_or(i64::MAX);
        let last = self.last_used.load(Ordering::Relaxed);
        if last == NEVER || now.saturating_sub(last) >= interval {
            // Losing this race to another request of the same token is fine: it wrote `now` too.
            let _ =
                self.last_used
                    .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed);
        }
    }
}

#[derive(Default)]
struct State {
    agents: HashMap<AgentId, Arc<AgentSlot>>,
    slugs: HashMap<Arc<str>, AgentId>,
    tokens: HashMap<TokenHash, Arc<TokenEntry>, BuildHasherDefault<DigestHasher>>,
    token_ids: HashMap<TokenId, TokenHash>,
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

    fn revoke(&mut self, hash: &TokenHash, now: OffsetDateTime) -> Option<TokenInfo> {
        let entry = self.tokens.get_mut(hash)?;
        if entry.info.revoked_at.is_none() {
            let mut info = entry.info.clone();
            info.revoked_at = Some(now);
            *entry = Arc::new(TokenEntry {
                info,
                agent: entry.agent.clone(),
                cache: ArcSwapOption::empty(),
                policy: entry.policy.clone(),
                last_used: AtomicI64::new(entry.last_used.load(Ordering::Relaxed)),
            });
        }
        Some(entry.snapshot())
    }
}

struct Inner {
    format: TokenFormat,
    directory: Arc<dyn UserDirectory>,
    clock: Arc<dyn Clock>,
    last_used_interval: i64,
    state: RwLock<State>,
}

/// A store held in memory: for tests, examples and single-process tools. Cheap to clone (all
/// clones share the same data).
///
/// It implements [`TokenResolver`], [`AgentStore`] and [`TokenStore`].
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
            .field("format", &self.inner.format)
            .finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// An empty store minting tokens of `format`, with owners looked up in `directory`.
    pub fn new(format: TokenFormat, directory: impl UserDirectory) -> Self {
        Self {
            inner: Arc::new(Inner {
                format,
                directory: Arc::new(directory),
                clock: Arc::new(SystemClock),
                last_used_interval: 60,
                state: RwLock::default(),
            }),
        }
    }

    fn edit(self, change: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = Arc::try_unwrap(self.inner)
            .unwrap_or_else(|_| panic!("configure MemoryStore before cloning it"));
        change(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Reads time from `clock` (for tests of expiry).
    ///
    /// # Panics
    /// If the store was already cloned.
    pub fn with_clock(self, clock: impl Clock) -> Self {
        self.edit(|inner| inner.clock = Arc::new(clock))
    }

    /// Records last-used at most once per `interval` per token (default 60 s).
    ///
    /// # Panics
    /// If the store was already cloned.
    pub fn with_last_used_interval(self, interval: std::time::Duration) -> Self {
        let seconds = i64::try_from(interval.as_secs()).unwrap_or(i64::MAX);
        self.edit(|inner| inner.last_used_interval = seconds)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.inner.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.inner.state.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// A token and its agent that passed every check but the owner's.
struct Candidate {
    entry: Arc<TokenEntry>,
    agent: Arc<Agent>,
    now_nanos: i128,
}

impl MemoryStore {
    fn candidate(&self, token: &TokenLookup<'_>) -> Result<Candidate, ResolveError> {
        let now_nanos = self.inner.clock.unix_nanos();
        let entry = self.read().tokens.get(token.hash()).cloned();
        let entry = entry.ok_or(InvalidReason::Unknown)?;
        let agent = entry.agent.get();
        verdict::check_token(&entry.info, &agent, token.slug(), now_nanos)?;
        Ok(Candidate {
            entry,
            agent,
            now_nanos,
        })
    }

    fn admit(
        &self,
        candidate: Candidate,
        owner: Result<Option<UserRecord>, ResolveError>,
    ) -> Result<Principal, ResolveError> {
        let Candidate {
            entry,
            agent,
            now_nanos,
        } = candidate;
        let owner = verdict::active_owner(owner?)?;
        let principal = entry.principal(&agent, &owner);
        entry.touch(now_nanos, self.inner.last_used_interval);
        Ok(principal)
    }
}

#[async_trait::async_trait]
impl TokenResolver for MemoryStore {
    fn token_format(&self) -> &TokenFormat {
        &self.inner.format
    }

    fn resolve_now(&self, token: &TokenLookup<'_>) -> Option<Result<Principal, ResolveError>> {
        let candidate = match self.candidate(token) {
            Ok(candidate) => candidate,
            Err(refused) => return Some(Err(refused)),
        };
        let owner = self.inner.directory.user_now(&candidate.agent.owner)?;
        Some(self.admit(candidate, owner))
    }

    async fn resolve(&self, token: &TokenLookup<'_>) -> Result<Principal, ResolveError> {
        let candidate = self.candidate(token)?;
        let owner = self
            .inner
            .directory
            .as_ref()
            .user(&candidate.agent.owner)
            .await;
        self.admit(candidate, owner)
    }
}

#[async_trait::async_trait]
impl AgentStore for MemoryStore {
    async fn create_agent(&self, new: NewAgent) -> Result<Agent, StoreError> {
        if !valid_slug(&new.slug) {
            return Err(StoreError::InvalidSlug(new.slug));
        }
        if self
            .inner
            .directory
            .as_ref()
            .user(&new.owner)
            .await?
            .is_none()
        {
            return Err(StoreError::UnknownUser(new.owner.to_string()));
        }
        let agent = Agent {
            id: AgentId::new(super::random_id("agt")?),
            slug: new.slug.into(),
            owner: new.owner,
            status: AgentStatus::Active,
            policy: Arc::new(new.policy),
            created_at: self.inner.clock.now(),
            expires_at: new.expires_at,
        };
        let mut state = self.write();
        if state.slugs.contains_key(&agent.slug) {
            return Err(StoreError::DuplicateSlug(agent.slug.to_string()));
        }
        state.slugs.insert(agent.slug.clone(), agent.id.clone());
        state
            .agents
            .insert(agent.id.clone(), AgentSlot::new(agent.clone()));
        Ok(agent)
    }

    async fn agent(&self, id: &AgentId) -> Result<Option<Agent>, StoreError> {
        Ok(self
            .read()
            .agents
            .get(id)
            .map(|slot| Agent::clone(&slot.get())))
    }

    async fn agent_by_slug(&self, slug: &str) -> Result<Option<Agent>, StoreError> {
        let state = self.read();
        Ok(state
            .slugs
            .get(slug)
            .and_then(|id| state.agents.get(id))
            .map(|slot| Agent::clone(&slot.get())))
    }

    async fn list_agents(&self) -> Result<Vec<Agent>, StoreError> {
        let mut agents: Vec<Agent> = self
            .read()
            .agents
            .values()
            .map(|slot| Agent::clone(&slot.get()))
            .collect();
        agents.sort_by(|a, b| a.slug.cmp(&b.slug));
        Ok(agents)
    }

    async fn set_agent_status(
        &self,
        id: &AgentId,
        status: AgentStatus,
    ) -> Result<Agent, StoreError> {
        let state = self.read();
        let slot = state.agent(id)?;
        let mut agent = Agent::clone(&slot.get());
        agent.status = status;
        slot.set(agent.clone());
        Ok(agent)
    }

    async fn delete_agent(&self, id: &AgentId) -> Result<(), StoreError> {
        let mut state = self.write();
        let agent = state.agent(id)?.get();
        state.agents.remove(id);
        state.slugs.remove(&agent.slug);
        let hashes: Vec<TokenHash> = state
            .tokens
            .iter()
            .filter(|(_, entry)| entry.info.agent_id == *id)
            .map(|(hash, _)| *hash)
            .collect();
        for hash in hashes {
            if let Some(entry) = state.tokens.remove(&hash) {
                state.token_ids.remove(&entry.info.id);
            }
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
        super::validate_label(&new.label)?;
        if let Some(ttl) = new.expires_in {
            if !ttl.is_positive() {
                return Err(StoreError::InvalidLifetime(format!(
                    "{ttl} is not positive"
                )));
            }
        }
        let slot = self.read().agent(agent_id)?.clone();
        let agent = slot.get();
        if let Some(requested) = &new.capabilities {
            check_within_policy(&agent.policy, requested)?;
        }
        let now = self.inner.clock.now();
        let raw = self.inner.format.mint(&agent.slug)?;
        let info = TokenInfo {
            id: TokenId::new(super::random_id("tok")?),
            agent_id: agent.id.clone(),
            display_prefix: super::display_prefix(
                raw.expose_secret(),
                self.inner.format.prefix().len(),
                agent.slug.len(),
            ),
            label: new.label,
            capabilities: new.capabilities.clone(),
            created_at: now,
            expires_at: new.expires_in.map(|ttl| now + ttl),
            last_used_at: None,
            revoked_at: None,
        };
        let entry = TokenEntry {
            info: info.clone(),
            agent: slot,
            cache: ArcSwapOption::empty(),
            policy: new.capabilities.map(|caps| Arc::new(Policy::allow(caps))),
            last_used: AtomicI64::new(NEVER),
        };
        let mut state = self.write();
        // The agent may have been deleted while we minted.
        state.agent(agent_id)?;
        state.token_ids.insert(info.id.clone(), raw.hash());
        state.tokens.insert(raw.hash(), Arc::new(entry));
        Ok(IssuedToken { token: raw, info })
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
        let now = self.inner.clock.now();
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
        let now = self.inner.clock.now();
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
}

/// Refuses token capabilities that the agent's policy does not cover.
pub(crate) fn check_within_policy(
    policy: &Policy,
    requested: &CapabilitySet,
) -> Result<(), StoreError> {
    let outside: Vec<String> = requested
        .iter()
        .filter(|pattern| {
            policy.allowed().is_some_and(|allow| !allow.covers(pattern))
                || policy.denied().covers(pattern)
        })
        .map(|pattern| pattern.to_string())
        .collect();
    if outside.is_empty() {
        Ok(())
    } else {
        Err(StoreError::CapabilitiesOutsidePolicy(outside.join(", ")))
    }
}
