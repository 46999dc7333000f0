//! A store written outside the crate, as a third party would: its state in one
//! `Mutex<HashMap>`s, nothing but the crate's public API, and the public conformance suite run
//! against it (feature `testing`).
//!
//! What the public API does not give a store author, and what this store does instead:
//!
//! - `NewAgent`, `NewToken` and `ImportedToken` have no accessors: a store cannot read the slug,
//!   owner, parent, policy, lifetime or hash it is asked to store. And `Agent`, `TokenInfo` and
//!   `AccessGrant` are `#[non_exhaustive]`: a store cannot build the records it returns, only
//!   clone and edit one it was given. The checks every built-in store shares (slug and name
//!   rules, children within their parent, capabilities within the policy, lifetimes per agent
//!   type, labels) are crate-private too. So this store hands each request to a private
//!   [`MemoryStore`] — its *record factory* — which validates it and builds the record, and
//!   keeps the record in its own maps from then on. The factory sees every agent change
//!   (status, deletion) so that it validates against the same agents.
//! - An imported token's hash cannot be read (`TokenHash`'s `Debug` shows 8 hex digits), so the
//!   store learns it at the token's first use: a lookup it does not know is asked of the
//!   factory, whose answer names the token.
//! - Resolution is the crate's pipeline: the store implements only its I/O
//!   ([`TokenRecords`]: find a token with its agent and parent, reserve and settle a use) and
//!   [`RecordResolver`] applies the checks in their order and builds the principal.
//! - Everything else is its own: use limits (under its lock), revocation, rotation, purging,
//!   grants and the audit trail.

#![cfg(feature = "testing")]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use time::OffsetDateTime;
use tower_agent_auth::audit::{AuditError, AuditEvent, AuditFilter, AuditQuery, AuditSink};
use tower_agent_auth::ceiling::Policy;
use tower_agent_auth::clock::{Clock, ManualClock};
use tower_agent_auth::principal::{AgentId, TokenId, UserId};
use tower_agent_auth::resolver::SettleFuture;
use tower_agent_auth::store::resolve::{
    RecordResolver, Reservation, StoredToken, TokenRecords, Uses,
};
use tower_agent_auth::store::{
    AccessGrant, AccessRole, Agent, AgentStatus, AgentStore, GrantStore, ImportedToken,
    IssuedToken, MemoryStore, MemoryUserDirectory, NewAgent, NewToken, StoreConfig, StoreError,
    TokenInfo, TokenStore, UserDirectory,
};
use tower_agent_auth::token::{TokenFormat, TokenHash};
use tower_agent_auth::{Principal, ResolveError, TokenLookup, TokenResolver, testing};

#[derive(Default)]
struct State {
    agents: HashMap<AgentId, Agent>,
    /// Each token with the order it was stored in (lists are oldest first).
    tokens: HashMap<TokenHash, (u64, TokenInfo)>,
    ids: HashMap<TokenId, TokenHash>,
    /// Imported tokens whose hash is not known yet.
    unseen_imports: HashSet<TokenId>,
    grants: HashMap<(AgentId, UserId), AccessGrant>,
    /// Uses reserved by requests in flight, per use-limited token.
    in_flight: HashMap<TokenId, u64>,
    events: Vec<AuditEvent>,
    next: u64,
}

impl State {
    fn agent(&self, id: &AgentId) -> Result<&Agent, StoreError> {
        self.agents
            .get(id)
            .ok_or_else(|| StoreError::UnknownAgent(id.to_string()))
    }

    /// The hash of `token` if it is a token of `agent`.
    fn token_of(&self, agent: &AgentId, token: &TokenId) -> Result<TokenHash, StoreError> {
        self.ids
            .get(token)
            .copied()
            .filter(|hash| self.tokens[hash].1.agent_id == *agent)
            .ok_or_else(|| StoreError::UnknownToken {
                agent: agent.to_string(),
                token: token.to_string(),
            })
    }

    fn insert(&mut self, hash: TokenHash, info: TokenInfo) {
        self.next += 1;
        self.ids.insert(info.id.clone(), hash);
        self.tokens.insert(hash, (self.next, info));
    }

    fn remove_token(&mut self, hash: &TokenHash) {
        if let Some((_, info)) = self.tokens.remove(hash) {
            self.ids.remove(&info.id);
        }
    }
}

/// The store: shared state behind one mutex; cheap to clone.
#[derive(Clone)]
struct OutsideStore {
    state: Arc<Mutex<State>>,
    format: TokenFormat,
    clock: Arc<dyn Clock>,
    /// Validates requests and builds records (see the module docs).
    records: MemoryStore,
    /// The crate's resolution pipeline over this store's I/O.
    resolver: Arc<RecordResolver<Records>>,
}

impl OutsideStore {
    fn new(
        format: TokenFormat,
        users: impl UserDirectory + Clone,
        clock: impl Clock + Clone,
    ) -> Self {
        let records = MemoryStore::with_config(
            StoreConfig::new(format.clone(), users.clone()).clock(clock.clone()),
        );
        let state: Arc<Mutex<State>> = Arc::default();
        let clock: Arc<dyn Clock> = Arc::new(clock);
        let resolver = Arc::new(RecordResolver(Records {
            state: state.clone(),
            config: StoreConfig::new(format.clone(), users.clone()).clock(clock.clone()),
            clock: clock.clone(),
        }));
        Self {
            state,
            format,
            clock,
            records,
            resolver,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    /// Now, to the microsecond (what the built-in stores keep).
    fn now(&self) -> OffsetDateTime {
        truncated(self.clock.now())
    }

    /// Learns the hash of an imported token from the factory's answer to `lookup`.
    async fn learn_import(&self, lookup: &TokenLookup<'_>) {
        let named = match self.records.resolve(lookup).await {
            Ok(principal) => principal.token_id().cloned(),
            Err(ResolveError::Refused(refused)) => Some(refused.token_id),
            Err(_) => None,
        };
        let Some(id) = named else { return };
        let mut state = self.state();
        if state.unseen_imports.remove(&id) {
            if let Some(old) = state.ids.get(&id).copied() {
                let entry = state.tokens.remove(&old).unwrap();
                state.tokens.insert(*lookup.hash(), entry);
                state.ids.insert(id, *lookup.hash());
            }
        }
    }
}

/// One token as the resolution pipeline reads it.
struct Found {
    info: TokenInfo,
    agent: Arc<Agent>,
    parent: Option<Arc<Agent>>,
    uses: Option<Uses>,
}

impl StoredToken for Found {
    fn info(&self) -> &TokenInfo {
        &self.info
    }
    fn agent(&self) -> Arc<Agent> {
        self.agent.clone()
    }
    fn parent(&self) -> Option<Arc<Agent>> {
        self.parent.clone()
    }
    fn uses(&self) -> Option<Uses> {
        self.uses
    }
}

/// The store's I/O for resolving tokens; the crate's pipeline (`RecordResolver`) does the
/// checks, in its order, and builds the principal.
struct Records {
    state: Arc<Mutex<State>>,
    config: StoreConfig,
    clock: Arc<dyn Clock>,
}

/// To the microsecond, what the built-in stores keep.
fn truncated(now: OffsetDateTime) -> OffsetDateTime {
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap()
}

impl Records {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    fn try_reserve(&self, token: &TokenId) -> Option<Reservation> {
        let mut state = self.state();
        let in_flight = state.in_flight.get(token).copied().unwrap_or(0);
        let hash = *state.ids.get(token)?;
        let (_, stored) = state.tokens.get_mut(&hash)?;
        match stored.operations_remaining {
            None => Some(Reservation::Reserved),
            Some(left) if left > 0 && stored.revoked_at.is_none() => {
                stored.operations_remaining = Some(left - 1);
                *state.in_flight.entry(token.clone()).or_default() += 1;
                Some(Reservation::Reserved)
            }
            // Every use left is in flight: one may still be released.
            Some(_) if in_flight > 0 => None,
            Some(_) => Some(Reservation::Exhausted),
        }
    }
}

#[async_trait::async_trait]
impl TokenRecords for Records {
    type Record = Found;

    fn config(&self) -> &StoreConfig {
        &self.config
    }

    async fn find(&self, hash: &TokenHash) -> Result<Option<Found>, ResolveError> {
        let state = self.state();
        let Some((_, info)) = state.tokens.get(hash) else {
            return Ok(None);
        };
        let Some(agent) = state.agents.get(&info.agent_id) else {
            return Ok(None);
        };
        let parent = agent.parent.as_ref().and_then(|p| state.agents.get(p));
        let uses = info.operations_remaining.map(|remaining| Uses {
            remaining,
            in_flight: state.in_flight.get(&info.id).copied().unwrap_or(0),
        });
        Ok(Some(Found {
            info: info.clone(),
            agent: Arc::new(agent.clone()),
            parent: parent.cloned().map(Arc::new),
            uses,
        }))
    }

    async fn reserve(&self, record: &Found) -> Result<Reservation, ResolveError> {
        Ok(self
            .try_reserve(&record.info.id)
            .unwrap_or(Reservation::InFlight))
    }

    async fn settled(&self, _: &Found, _: u32) {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }

    fn settle(&self, token: &TokenId, spent: bool) -> Option<SettleFuture> {
        let mut state = self.state();
        let in_flight = state.in_flight.get_mut(token).filter(|n| **n > 0)?;
        *in_flight -= 1;
        let in_flight = *in_flight;
        let hash = state.ids.get(token).copied()?;
        let (_, stored) = state.tokens.get_mut(&hash).unwrap();
        let left = stored.operations_remaining.unwrap_or(0);
        if !spent {
            stored.operations_remaining = Some(left + 1);
        } else if left == 0 && in_flight == 0 && stored.expires_on_completion {
            stored.expires_at = Some(truncated(self.clock.now()));
        }
        None
    }

    fn record_use(&self, _: &Found, _: i128) {}
}

#[async_trait::async_trait]
impl TokenResolver for OutsideStore {
    fn token_format(&self) -> &TokenFormat {
        &self.format
    }

    async fn resolve(&self, lookup: &TokenLookup<'_>) -> Result<Principal, ResolveError> {
        let known = self.state().tokens.contains_key(lookup.hash());
        if !known && !self.state().unseen_imports.is_empty() {
            self.learn_import(lookup).await;
        }
        self.resolver.resolve(lookup).await
    }

    fn settle_use(&self, token: &TokenId, spent: bool) -> Option<SettleFuture> {
        self.resolver.settle_use(token, spent)
    }
}

#[async_trait::async_trait]
impl AgentStore for OutsideStore {
    fn clock(&self) -> &dyn Clock {
        &*self.clock
    }

    async fn create_agent(&self, new: NewAgent) -> Result<Agent, StoreError> {
        let agent = self.records.create_agent(new).await?;
        self.state().agents.insert(agent.id.clone(), agent.clone());
        Ok(agent)
    }

    async fn agent(&self, id: &AgentId) -> Result<Option<Agent>, StoreError> {
        Ok(self.state().agents.get(id).cloned())
    }

    async fn agent_by_slug(&self, slug: &str) -> Result<Option<Agent>, StoreError> {
        Ok(self
            .state()
            .agents
            .values()
            .find(|a| &*a.slug == slug)
            .cloned())
    }

    async fn list_agents(&self) -> Result<Vec<Agent>, StoreError> {
        let mut agents: Vec<Agent> = self.state().agents.values().cloned().collect();
        agents.sort_by(|a, b| a.slug.cmp(&b.slug));
        Ok(agents)
    }

    async fn set_agent_status(
        &self,
        id: &AgentId,
        status: AgentStatus,
    ) -> Result<Agent, StoreError> {
        let agent = {
            let mut state = self.state();
            let agent = state
                .agents
                .get_mut(id)
                .ok_or_else(|| StoreError::UnknownAgent(id.to_string()))?;
            agent.status = status;
            agent.clone()
        };
        self.records.set_agent_status(id, status).await?;
        Ok(agent)
    }

    async fn set_agent_policy(&self, id: &AgentId, policy: Policy) -> Result<Agent, StoreError> {
        // The records check it (bounds, within the parent's) before anything changes here.
        self.records.set_agent_policy(id, policy.clone()).await?;
        let mut state = self.state();
        let agent = state
            .agents
            .get_mut(id)
            .ok_or_else(|| StoreError::UnknownAgent(id.to_string()))?;
        agent.policy = Arc::new(policy);
        Ok(agent.clone())
    }

    async fn delete_agent(&self, id: &AgentId) -> Result<(), StoreError> {
        {
            let mut state = self.state();
            state.agent(id)?;
            let gone: HashSet<AgentId> = state
                .agents
                .values()
                .filter(|a| a.id == *id || a.parent.as_ref() == Some(id))
                .map(|a| a.id.clone())
                .collect();
            state.agents.retain(|id, _| !gone.contains(id));
            let tokens: Vec<TokenHash> = state
                .tokens
                .iter()
                .filter(|(_, (_, info))| gone.contains(&info.agent_id))
                .map(|(hash, _)| *hash)
                .collect();
            for hash in &tokens {
                state.remove_token(hash);
            }
            state.grants.retain(|(agent, _), _| !gone.contains(agent));
        }
        self.records.delete_agent(id).await
    }
}

#[async_trait::async_trait]
impl TokenStore for OutsideStore {
    async fn create_token(
        &self,
        agent: &AgentId,
        token: NewToken,
    ) -> Result<IssuedToken, StoreError> {
        self.state().agent(agent)?;
        let issued = self.records.create_token(agent, token).await?;
        self.state()
            .insert(issued.token.hash(), issued.info.clone());
        Ok(issued)
    }

    async fn list_tokens(&self, agent: &AgentId) -> Result<Vec<TokenInfo>, StoreError> {
        let state = self.state();
        state.agent(agent)?;
        let mut tokens: Vec<&(u64, TokenInfo)> = state
            .tokens
            .values()
            .filter(|(_, info)| info.agent_id == *agent)
            .collect();
        tokens.sort_by_key(|(order, _)| *order);
        Ok(tokens.into_iter().map(|(_, info)| info.clone()).collect())
    }

    async fn revoke_token(
        &self,
        agent: &AgentId,
        token: &TokenId,
    ) -> Result<TokenInfo, StoreError> {
        let now = self.now();
        let revoked = {
            let mut state = self.state();
            let hash = state.token_of(agent, token)?;
            let (_, info) = state.tokens.get_mut(&hash).unwrap();
            info.revoked_at.get_or_insert(now);
            info.clone()
        };
        // The factory sees revocations too: it judges whether a single-task agent is free.
        let _ = self.records.revoke_token(agent, token).await;
        Ok(revoked)
    }

    async fn revoke_all_tokens(&self, agent: &AgentId) -> Result<usize, StoreError> {
        let now = self.now();
        let revoked = {
            let mut state = self.state();
            state.agent(agent)?;
            let mut revoked = 0;
            for (_, info) in state.tokens.values_mut() {
                let live = info.revoked_at.is_none() && info.expires_at.is_none_or(|at| at > now);
                if info.agent_id == *agent && live {
                    info.revoked_at = Some(now);
                    revoked += 1;
                }
            }
            revoked
        };
        let _ = self.records.revoke_all_tokens(agent).await;
        Ok(revoked)
    }

    async fn token(
        &self,
        agent: &AgentId,
        token: &TokenId,
    ) -> Result<Option<TokenInfo>, StoreError> {
        let state = self.state();
        Ok(state
            .token_of(agent, token)
            .ok()
            .map(|hash| state.tokens[&hash].1.clone()))
    }

    async fn import_token(
        &self,
        agent: &AgentId,
        token: ImportedToken,
    ) -> Result<TokenInfo, StoreError> {
        self.state().agent(agent)?;
        let info = self.records.import_token(agent, token).await?;
        let mut state = self.state();
        // Stored under a placeholder until its first use tells the real hash.
        let placeholder = TokenHash::of(info.id.as_str());
        state.insert(placeholder, info.clone());
        state.unseen_imports.insert(info.id.clone());
        Ok(info)
    }

    async fn purge(&self, older_than: std::time::Duration) -> Result<usize, StoreError> {
        let cutoff = time::Duration::try_from(older_than)
            .ok()
            .and_then(|by| self.now().checked_sub(by))
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let mut state = self.state();
        let before = |at: Option<OffsetDateTime>| at.is_some_and(|at| at < cutoff);
        let stale: Vec<TokenHash> = state
            .tokens
            .iter()
            .filter(|(_, (_, info))| before(info.revoked_at) || before(info.expires_at))
            .map(|(hash, _)| *hash)
            .collect();
        for hash in &stale {
            state.remove_token(hash);
        }
        Ok(stale.len())
    }

    async fn rotate_token(
        &self,
        agent: &AgentId,
        token: &TokenId,
        grace: std::time::Duration,
    ) -> Result<IssuedToken, StoreError> {
        let now = self.now();
        let mut state = self.state();
        let hash = state.token_of(agent, token)?;
        let slug = state.agent(agent)?.slug.clone();
        let old = state.tokens[&hash].1.clone();
        if old.revoked_at.is_some() || old.expires_at.is_some_and(|at| at <= now) {
            return Err(StoreError::InvalidInput(
                "only a live token can be rotated".into(),
            ));
        }
        if old.operations_remaining == Some(0) {
            return Err(StoreError::InvalidInput(
                "a spent token cannot be rotated".into(),
            ));
        }
        let (old_expires_at, old_revoked_at) = if grace.is_zero() {
            (old.expires_at, Some(now))
        } else {
            let end = time::Duration::try_from(grace)
                .ok()
                .and_then(|grace| now.checked_add(grace))
                .ok_or_else(|| StoreError::InvalidLifetime("too far in the future".into()))?;
            (Some(old.expires_at.map_or(end, |at| at.min(end))), None)
        };
        let raw = self.format.mint(&slug)?;
        let shown =
            (self.format.prefix().len() + slug.len() + 2 + 8).min(raw.expose_secret().len());
        let mut info = old.clone();
        // An id says nothing of the hash (it is listed and audited).
        info.id = TokenId::new(format!("tok_outside_{}", state.next + 1));
        info.display_prefix = format!("{}…", &raw.expose_secret()[..shown]);
        info.created_at = now;
        info.last_used_at = None;
        info.revoked_at = None;
        info.max_operations = old.operations_remaining;
        let (_, stored) = state.tokens.get_mut(&hash).unwrap();
        stored.expires_at = old_expires_at;
        stored.revoked_at = old_revoked_at;
        // The uses left move to the new token (under the one lock: no race).
        stored.operations_remaining = stored.operations_remaining.map(|_| 0);
        state.insert(raw.hash(), info.clone());
        state.agents.get_mut(agent).unwrap().last_rotated_at = Some(now);
        Ok(IssuedToken { token: raw, info })
    }
}

#[async_trait::async_trait]
impl GrantStore for OutsideStore {
    async fn grant(
        &self,
        agent: &AgentId,
        user: &UserId,
        role: AccessRole,
    ) -> Result<AccessGrant, StoreError> {
        self.state().agent(agent)?;
        let grant = self.records.grant(agent, user, role).await?;
        self.state()
            .grants
            .insert((agent.clone(), user.clone()), grant.clone());
        Ok(grant)
    }

    async fn revoke_grant(&self, agent: &AgentId, user: &UserId) -> Result<(), StoreError> {
        let removed = self.state().grants.remove(&(agent.clone(), user.clone()));
        if removed.is_none() {
            return Err(StoreError::UnknownGrant {
                agent: agent.to_string(),
                user: user.to_string(),
            });
        }
        self.records.revoke_grant(agent, user).await
    }

    async fn grants(&self, agent: &AgentId) -> Result<Vec<AccessGrant>, StoreError> {
        let state = self.state();
        state.agent(agent)?;
        let mut grants: Vec<AccessGrant> = state
            .grants
            .values()
            .filter(|g| g.agent_id == *agent)
            .cloned()
            .collect();
        grants.sort_by(|a, b| a.user_id.as_str().cmp(b.user_id.as_str()));
        Ok(grants)
    }

    async fn role_of(
        &self,
        agent: &AgentId,
        user: &UserId,
    ) -> Result<Option<AccessRole>, StoreError> {
        Ok(self
            .state()
            .grants
            .get(&(agent.clone(), user.clone()))
            .map(|g| g.role))
    }
}

#[async_trait::async_trait]
impl AuditSink for OutsideStore {
    async fn write_batch(&self, events: &[AuditEvent]) -> Result<(), AuditError> {
        self.state().events.extend_from_slice(events);
        Ok(())
    }
}

#[async_trait::async_trait]
impl AuditQuery for OutsideStore {
    async fn events(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>, AuditError> {
        let mut events: Vec<AuditEvent> = self
            .state()
            .events
            .iter()
            .filter(|e| filter.matches(e))
            .cloned()
            .collect();
        // By time, as the trait asks; the stable sort keeps recording order within an instant.
        events.sort_by_key(|e| e.at);
        filter.keep_last(&mut events);
        Ok(events)
    }
}

async fn open(
    users: MemoryUserDirectory,
    clock: Arc<ManualClock>,
) -> Option<(OutsideStore, std::future::Ready<()>)> {
    Some((
        OutsideStore::new(testing::format(), users, clock),
        std::future::ready(()),
    ))
}

tower_agent_auth::conformance_suite!(open);
