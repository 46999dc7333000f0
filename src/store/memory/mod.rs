//! The in-memory backend: for tests, examples and single-process tools.
//!
//! Longer than most files: it holds the one `Backend` implementation of the memory store, a
//! method per method of the contract; the records' own logic lives in the files beside it.
//!
//! [`MemoryBackend`] keeps agents, tokens, grants, approvals, OAuth records and the audit trail
//! in maps behind locks; [`MemoryStore`] is a [`Store`] over it. Resolving a token takes a read lock and copies
//! nothing (records are shared), reserving a use takes the token's own lock, and a token's last
//! use is an atomic store, so requests never wait for each other. Each operation costs what it
//! touches: an agent's tokens are indexed by agent, a delegation subtree by parent.
//!
//! ```
//! use tower_agent_auth::ceiling::{CapabilitySet, Policy};
//! use tower_agent_auth::store::{MemoryStore, MemoryUserDirectory, NewAgent, NewToken, UserRecord};
//! use tower_agent_auth::token::TokenFormat;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let users = MemoryUserDirectory::new();
//! users.insert(UserRecord::new("alice", Policy::allow(CapabilitySet::parse(["posts:*"])?)));
//! let store = MemoryStore::new(TokenFormat::new("acme")?, users);
//!
//! let agent = store.create_agent(NewAgent::new("writer", "alice")).await?;
//! let issued = store.create_token(&agent.id, NewToken::new("ci")).await?;
//! println!("save it now: {}", issued.token.expose_secret());
//!
//! let listed = store.list_tokens(&agent.id).await?;
//! assert_eq!(listed[0].id, issued.info.id); // metadata only: no hash, no secret
//! # Ok(()) }
//! ```

#[cfg(feature = "approval")]
mod approvals;
#[cfg(feature = "callback")]
mod callback;
mod entry;
#[cfg(feature = "oauth")]
mod oauth;
mod state;
mod store;

pub use entry::MemoryRecord;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use time::OffsetDateTime;

use self::entry::{AgentSlot, TokenEntry};
use self::state::State;
use super::Store;
use super::access::AccessGrant;
use super::backend::{
    AgentChange, AgentFilter, Backend, GrantFilter, OneTask, Reservation, Rotated, Rotation,
};
use super::model::{Agent, TokenInfo};
use super::validate::{is_live, micros};
use crate::audit::{AuditEvent, AuditFilter, AuditQuery, AuditSink, MemoryAuditSink};
use crate::error::{AuditError, Conflict, ResolveError, StoreError};
use crate::principal::{AgentId, TokenId, UserId};
use crate::resolver::SettleFuture;
use crate::token::TokenHash;

#[cfg(feature = "approval")]
use crate::approval::{
    Approval, ApprovalBinding, ApprovalFilter, ApprovalId, ApprovalRequest, ApprovalStatus,
    Requested,
};
#[cfg(feature = "callback")]
use crate::oauth::callback::{CallbackState, ProviderToken, StateTaken};
#[cfg(feature = "oauth")]
use crate::oauth::{
    AuthorizationCode, Client, Connection, DeviceAuthorization, DevicePoll, FamilyId, Polled,
    Redemption, RefreshRotation, RefreshToken,
};

/// A [`Store`] held in memory. Cheap to clone (all clones share the same data).
pub type MemoryStore = Store<MemoryBackend>;

/// Agents, tokens, grants, approvals and the audit trail in memory: see the
/// [module docs](self).
pub struct MemoryBackend {
    state: RwLock<State>,
    /// Seconds between two recorded uses of one token.
    last_used_interval: i64,
    /// Bumped by every change to the records, never by a use.
    revision: Arc<AtomicU64>,
    audit: MemoryAuditSink,
    #[cfg(feature = "approval")]
    approvals: approvals::MemoryApprovals,
    #[cfg(feature = "oauth")]
    oauth: oauth::MemoryOAuth,
    #[cfg(feature = "callback")]
    callback: callback::MemoryCallback,
}

impl std::fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBackend")
            .field("revision", &self.revision())
            .finish_non_exhaustive()
    }
}

impl MemoryBackend {
    /// An empty backend recording a token's last use at most once per `last_used_interval`.
    pub fn new(last_used_interval: std::time::Duration) -> Self {
        Self {
            state: RwLock::default(),
            last_used_interval: i64::try_from(last_used_interval.as_secs()).unwrap_or(i64::MAX),
            revision: Arc::default(),
            audit: MemoryAuditSink::default(),
            #[cfg(feature = "approval")]
            approvals: approvals::MemoryApprovals::default(),
            #[cfg(feature = "oauth")]
            oauth: oauth::MemoryOAuth::default(),
            #[cfg(feature = "callback")]
            callback: callback::MemoryCallback::default(),
        }
    }

    /// How many changes its records have seen (every write; a use or a last-used time is not
    /// one): a `VerdictCache` (feature `cache`) kept by this revision reuses a
    /// verdict exactly while nothing changed.
    pub fn revision(&self) -> u64 {
        self.revision.load(Ordering::Acquire)
    }

    /// The revision as a shared counter, for a cache that reads it on every request.
    pub fn revision_counter(&self) -> Arc<AtomicU64> {
        self.revision.clone()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The state, to change it: the revision moves at once, so no verdict reached before the
    /// change stands after it (a verdict read meanwhile waits for the lock and sees the change).
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        let state = self.state.write().unwrap_or_else(|e| e.into_inner());
        self.revision.fetch_add(1, Ordering::AcqRel);
        state
    }
}

#[async_trait::async_trait]
impl Backend for MemoryBackend {
    type Record = MemoryRecord;

    async fn insert_agent(&self, agent: &Agent) -> Result<(), StoreError> {
        let mut state = self.write();
        if state.slugs.contains_key(&agent.slug) {
            return Err(Conflict::Slug(agent.slug.to_string()).into());
        }
        let parent = match &agent.parent {
            Some(parent) => Some(state.agent(parent)?.clone()),
            None => None,
        };
        state.insert_agent(AgentSlot::new(agent.clone(), parent));
        Ok(())
    }

    async fn agent(&self, id: &AgentId) -> Result<Option<Agent>, StoreError> {
        Ok(self.read().agents.get(id).map(|slot| slot.snapshot()))
    }

    async fn agent_by_slug(&self, slug: &str) -> Result<Option<Agent>, StoreError> {
        let state = self.read();
        let slot = state.slugs.get(slug).and_then(|id| state.agents.get(id));
        Ok(slot.map(|slot| slot.snapshot()))
    }

    async fn agents(&self, filter: &AgentFilter) -> Result<Vec<Agent>, StoreError> {
        let state = self.read();
        let mut agents: Vec<Agent> = (state.filtered(filter).into_iter())
            .filter(|slot| filter.matches(&slot.get()))
            .map(|slot| slot.snapshot())
            .collect();
        agents.sort_by(|a, b| a.slug.cmp(&b.slug));
        agents.dedup_by(|a, b| a.id == b.id);
        Ok(agents)
    }

    async fn update_agent(
        &self,
        id: &AgentId,
        change: &AgentChange,
    ) -> Result<Option<Agent>, StoreError> {
        let state = self.write();
        let Some(slot) = state.agents.get(id) else {
            return Ok(None);
        };
        let mut agent = Agent::clone(&slot.get());
        change.apply(&mut agent);
        slot.set(agent);
        Ok(Some(slot.snapshot()))
    }

    async fn delete_agent(&self, id: &AgentId) -> Result<bool, StoreError> {
        let mut state = self.write();
        if !state.agents.contains_key(id) {
            return Ok(false);
        }
        let gone = state.remove_agent(id);
        // While the agents' lock is held, so that no OAuth record names a deleted agent.
        #[cfg(feature = "oauth")]
        self.oauth.forget_agents(&gone);
        #[cfg(feature = "callback")]
        self.callback.forget_agents(&gone);
        #[cfg(not(feature = "oauth"))]
        let _ = gone;
        Ok(true)
    }

    async fn insert_token(
        &self,
        hash: &TokenHash,
        token: &TokenInfo,
        one_task: Option<&OneTask>,
    ) -> Result<(), StoreError> {
        let mut state = self.write();
        let slot = state.agent(&token.agent_id)?.clone();
        if state.tokens.contains_key(hash) {
            return Err(Conflict::Token.into());
        }
        if let Some(one_task) = one_task {
            let live = state.live_tasks(&token.agent_id, one_task.now());
            one_task.check(live.iter().map(String::as_str))?;
        }
        state.insert(*hash, TokenEntry::new(token.clone(), slot));
        Ok(())
    }

    async fn tokens(&self, agent: &AgentId) -> Result<Vec<TokenInfo>, StoreError> {
        let state = self.read();
        let mut tokens: Vec<TokenInfo> = state
            .agent_tokens(agent)
            .map(|(_, entry)| entry.snapshot())
            .collect();
        tokens.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(tokens)
    }

    async fn token(
        &self,
        agent: &AgentId,
        token: &TokenId,
    ) -> Result<Option<TokenInfo>, StoreError> {
        let state = self.read();
        Ok(state
            .token_of(agent, token)
            .and_then(|hash| state.tokens.get(&hash))
            .map(|entry| entry.snapshot()))
    }

    async fn revoke_token(
        &self,
        agent: &AgentId,
        token: &TokenId,
        at: OffsetDateTime,
    ) -> Result<Option<TokenInfo>, StoreError> {
        let mut state = self.write();
        Ok(state
            .token_of(agent, token)
            .and_then(|hash| state.revoke(&hash, at)))
    }

    async fn revoke_agent_tokens(
        &self,
        agent: &AgentId,
        at: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        let mut state = self.write();
        let live: Vec<TokenHash> = state
            .agent_tokens(agent)
            .filter(|(_, entry)| entry.info.revoked_at.is_none())
            .map(|(hash, _)| hash)
            .collect();
        for hash in &live {
            state.revoke(hash, at);
        }
        Ok(live.len())
    }

    async fn revoke_token_tree(
        &self,
        agent: &AgentId,
        token: &TokenId,
        at: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        let mut state = self.write();
        let Some(root) = state.token_of(agent, token) else {
            return Ok(0);
        };
        let mut revoked = 0;
        for hash in state.tree(vec![root]) {
            if state
                .tokens
                .get(&hash)
                .is_some_and(|e| e.info.revoked_at.is_none())
            {
                state.revoke(&hash, at);
                revoked += 1;
            }
        }
        Ok(revoked)
    }

    async fn complete_task(
        &self,
        owner: &UserId,
        task: &str,
        at: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        let mut state = self.write();
        let roots: Vec<TokenHash> = state
            .filtered(&AgentFilter::OwnedBy(owner.clone()))
            .into_iter()
            .flat_map(|slot| state.agent_tokens(&slot.get().id).collect::<Vec<_>>())
            .filter(|(_, entry)| entry.info.task_id.as_deref() == Some(task))
            .map(|(hash, _)| hash)
            .collect();
        let tree = state.tree(roots);
        Ok(tree.iter().filter(|hash| state.end(hash, at)).count())
    }

    async fn rotate_token(&self, rotation: &Rotation) -> Result<Rotated, StoreError> {
        let mut state = self.write();
        let Some(slot) = state.agents.get(&rotation.agent).cloned() else {
            return Ok(Rotated::Changed);
        };
        let Some(hash) = state.token_of(&rotation.agent, &rotation.old) else {
            return Ok(Rotated::Changed);
        };
        let entry = state.tokens[&hash].clone();
        // The uses left move to the new token, read and emptied under one lock: a reservation
        // racing the rotation is counted on one side only, never on both.
        let mut counts = entry.usage.counts();
        let old = entry.snapshot_with(counts.as_deref());
        if !is_live(&old, rotation.now) || old.operations_remaining != rotation.uses_read {
            return Ok(Rotated::Changed);
        }
        if let Some(counts) = counts.as_mut() {
            counts.remaining = 0;
        }
        drop(counts);
        let mut retired = entry.info.clone();
        retired.expires_at = rotation.old_expires_at;
        retired.revoked_at = rotation.old_revoked_at;
        state.replace(hash, Arc::new(entry.with_info(retired)));
        let mut agent = Agent::clone(&slot.get());
        agent.last_rotated_at = Some(rotation.new.created_at);
        slot.set(agent);
        state.insert(
            rotation.new_hash,
            TokenEntry::new(rotation.new.clone(), slot),
        );
        Ok(Rotated::Done)
    }

    async fn purge_tokens(&self, before: OffsetDateTime) -> Result<usize, StoreError> {
        let cutoff = micros(before);
        let mut state = self.write();
        // The index narrows to the tokens that may be stale; each is checked as before.
        let stale: Vec<TokenHash> = state
            .purge_candidates(cutoff)
            .into_iter()
            .filter_map(|hash| state.tokens.get(&hash).map(|entry| (hash, entry)))
            .filter(|(_, entry)| {
                let info = entry.snapshot();
                let before_cutoff =
                    |at: Option<OffsetDateTime>| at.is_some_and(|at| micros(at) < cutoff);
                before_cutoff(info.revoked_at)
                    || before_cutoff(info.task_completed_at)
                    || before_cutoff(info.expires_at)
            })
            .map(|(hash, _)| hash)
            .collect();
        // Tokens delegated from a purged one go with it, as the SQL stores' foreign key does.
        Ok(state.remove_trees(stale))
    }

    fn find_now(&self, hash: &TokenHash) -> Option<Result<Option<MemoryRecord>, ResolveError>> {
        let state = self.read();
        Some(Ok(state.tokens.get(hash).map(|entry| state.record(entry))))
    }

    async fn find(&self, hash: &TokenHash) -> Result<Option<MemoryRecord>, ResolveError> {
        self.find_now(hash).unwrap_or(Ok(None))
    }

    fn reserve_now(&self, record: &MemoryRecord) -> Option<Result<Reservation, ResolveError>> {
        Some(Ok(record.reserve()))
    }

    async fn reserve(&self, record: &MemoryRecord) -> Result<Reservation, ResolveError> {
        Ok(record.reserve())
    }

    async fn settled(&self, record: &MemoryRecord, _attempt: u32) {
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

    fn settle(&self, token: &TokenId, spent: bool, now: OffsetDateTime) -> Option<SettleFuture> {
        // The token and its chain only: settling needs no orchestrator.
        let links = {
            let state = self.read();
            let hash = state.token_ids.get(token).copied();
            hash.and_then(|hash| state.tokens.get(&hash))
                .map(|entry| (entry.clone(), state.chain(entry)))
        };
        if let Some((entry, chain)) = links {
            let now = micros(now);
            // Every limited link reserved a use for the request: each is settled alike.
            for link in chain.iter().chain(std::iter::once(&entry)) {
                link.settle(spent, now);
            }
        }
        None
    }

    fn record_use(&self, record: &MemoryRecord, now_nanos: i128) {
        record.entry.touch(now_nanos, self.last_used_interval);
    }

    fn touch(&self, token: &TokenId, now_nanos: i128) {
        let state = self.read();
        let entry = state
            .token_ids
            .get(token)
            .and_then(|hash| state.tokens.get(hash));
        if let Some(entry) = entry {
            entry.touch(now_nanos, self.last_used_interval);
        }
    }

    async fn put_grant(&self, grant: &AccessGrant) -> Result<(), StoreError> {
        let mut state = self.write();
        state.agent(&grant.agent_id)?;
        state.put_grant(grant);
        Ok(())
    }

    async fn delete_grant(&self, agent: &AgentId, user: &UserId) -> Result<bool, StoreError> {
        Ok(self.write().delete_grant(agent, user))
    }

    async fn grants(&self, filter: &GrantFilter) -> Result<Vec<AccessGrant>, StoreError> {
        Ok(self.read().grants(filter))
    }

    #[cfg(feature = "oauth")]
    async fn insert_client(
        &self,
        client: &Client,
        limit: Option<u64>,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.oauth.insert_client(&self.read(), client, limit, now)
    }

    #[cfg(feature = "oauth")]
    async fn client(&self, id: &str) -> Result<Option<Client>, StoreError> {
        Ok(self.oauth.client(id))
    }

    #[cfg(feature = "oauth")]
    async fn clients(&self) -> Result<Vec<Client>, StoreError> {
        Ok(self.oauth.clients())
    }

    #[cfg(feature = "oauth")]
    async fn update_client(&self, client: &Client) -> Result<bool, StoreError> {
        Ok(self.oauth.update_client(client))
    }

    #[cfg(feature = "oauth")]
    async fn delete_client(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.oauth.delete_client(id))
    }

    #[cfg(feature = "oauth")]
    async fn insert_code(&self, code: &AuthorizationCode) -> Result<(), StoreError> {
        self.oauth.insert_code(&self.read(), code)
    }

    #[cfg(feature = "oauth")]
    async fn redeem_code(
        &self,
        hash: &TokenHash,
        family: &FamilyId,
        now: OffsetDateTime,
    ) -> Result<Redemption, StoreError> {
        Ok(self.oauth.redeem_code(hash, family, now))
    }

    #[cfg(feature = "oauth")]
    async fn code(&self, hash: &TokenHash) -> Result<Option<AuthorizationCode>, StoreError> {
        Ok(self.oauth.code(hash))
    }

    #[cfg(feature = "oauth")]
    async fn insert_device(&self, device: &DeviceAuthorization) -> Result<(), StoreError> {
        self.oauth.insert_device(device)
    }

    #[cfg(feature = "oauth")]
    async fn device(&self, hash: &TokenHash) -> Result<Option<DeviceAuthorization>, StoreError> {
        Ok(self.oauth.device(hash))
    }

    #[cfg(feature = "oauth")]
    async fn device_by_user_code(
        &self,
        user_code: &TokenHash,
    ) -> Result<Option<DeviceAuthorization>, StoreError> {
        Ok(self.oauth.device_by_user_code(user_code))
    }

    #[cfg(feature = "oauth")]
    async fn decide_device(
        &self,
        decided: &DeviceAuthorization,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.oauth.decide_device(&self.read(), decided, now)
    }

    #[cfg(feature = "oauth")]
    async fn poll_device(&self, poll: &DevicePoll) -> Result<Polled, StoreError> {
        Ok(self.oauth.poll_device(poll))
    }

    #[cfg(feature = "oauth")]
    async fn insert_refresh(&self, token: &RefreshToken) -> Result<(), StoreError> {
        self.oauth.insert_refresh(&self.read(), token)
    }

    #[cfg(feature = "oauth")]
    async fn refresh_token(&self, hash: &TokenHash) -> Result<Option<RefreshToken>, StoreError> {
        Ok(self.oauth.refresh_token(hash))
    }

    #[cfg(feature = "oauth")]
    async fn rotate_refresh(
        &self,
        old: &TokenHash,
        new: &RefreshToken,
        now: OffsetDateTime,
    ) -> Result<RefreshRotation, StoreError> {
        self.oauth.rotate_refresh(&self.read(), old, new, now)
    }

    #[cfg(feature = "oauth")]
    async fn revoke_family(
        &self,
        family: &FamilyId,
        now: OffsetDateTime,
    ) -> Result<Vec<TokenId>, StoreError> {
        Ok(self.oauth.revoke_family(family, now))
    }

    #[cfg(feature = "oauth")]
    async fn connection(
        &self,
        user: &UserId,
        client: &str,
    ) -> Result<Option<Connection>, StoreError> {
        Ok(self.oauth.connection(user, client))
    }

    #[cfg(feature = "oauth")]
    async fn connect(&self, connection: &Connection) -> Result<Connection, StoreError> {
        self.oauth.connect(&self.read(), connection)
    }

    #[cfg(feature = "oauth")]
    async fn connections(&self, user: Option<&UserId>) -> Result<Vec<Connection>, StoreError> {
        Ok(self.oauth.connections(user))
    }

    #[cfg(feature = "oauth")]
    async fn delete_connection(&self, user: &UserId, client: &str) -> Result<bool, StoreError> {
        Ok(self.oauth.delete_connection(user, client))
    }

    #[cfg(feature = "oauth")]
    async fn purge_oauth(&self, before: OffsetDateTime) -> Result<usize, StoreError> {
        Ok(self.oauth.purge(before))
    }

    #[cfg(feature = "callback")]
    async fn insert_callback_state(&self, state: &CallbackState) -> Result<(), StoreError> {
        self.callback.insert_state(&self.read(), state)
    }

    #[cfg(feature = "callback")]
    async fn take_callback_state(
        &self,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<StateTaken, StoreError> {
        Ok(self.callback.take_state(hash, now))
    }

    #[cfg(feature = "callback")]
    async fn purge_callback_states(&self, before: OffsetDateTime) -> Result<usize, StoreError> {
        Ok(self.callback.purge_states(before))
    }

    #[cfg(feature = "callback")]
    async fn put_provider_token(&self, token: &ProviderToken) -> Result<(), StoreError> {
        self.callback.put_token(&self.read(), token)
    }

    #[cfg(feature = "callback")]
    async fn provider_token(&self, id: &str) -> Result<Option<ProviderToken>, StoreError> {
        Ok(self.callback.token(id))
    }

    #[cfg(feature = "callback")]
    async fn provider_tokens(
        &self,
        agent: Option<&AgentId>,
    ) -> Result<Vec<ProviderToken>, StoreError> {
        Ok(self.callback.tokens(agent))
    }

    #[cfg(feature = "callback")]
    async fn delete_provider_token(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.callback.delete_token(id))
    }

    #[cfg(feature = "approval")]
    async fn insert_approval(&self, approval: &Approval) -> Result<(), StoreError> {
        self.approvals.insert(approval);
        Ok(())
    }

    #[cfg(feature = "approval")]
    async fn approval(&self, id: &ApprovalId) -> Result<Option<Approval>, StoreError> {
        Ok(self.approvals.get(id))
    }

    #[cfg(feature = "approval")]
    async fn approvals(
        &self,
        filter: &ApprovalFilter,
        now: OffsetDateTime,
    ) -> Result<Vec<Approval>, StoreError> {
        Ok(self.approvals.list(filter, now))
    }

    #[cfg(feature = "approval")]
    async fn request_approval(&self, request: &ApprovalRequest) -> Result<Requested, StoreError> {
        self.approvals.request(request)
    }

    #[cfg(feature = "approval")]
    async fn decide_approval(
        &self,
        decided: &Approval,
        from: ApprovalStatus,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        Ok(self.approvals.decide(decided, from, now))
    }

    #[cfg(feature = "approval")]
    async fn consume_approval(
        &self,
        binding: &ApprovalBinding,
        now: OffsetDateTime,
    ) -> Result<Option<Approval>, StoreError> {
        Ok(self.approvals.consume(binding, now))
    }

    #[cfg(feature = "approval")]
    async fn purge_approvals(&self, before: OffsetDateTime) -> Result<usize, StoreError> {
        Ok(self.approvals.purge(before))
    }

    async fn append_audit(&self, events: &[AuditEvent]) -> Result<(), AuditError> {
        self.audit.write_batch(events).await
    }

    async fn audit_events(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>, AuditError> {
        self.audit.events(filter).await
    }
}

#[cfg(test)]
mod tests;
