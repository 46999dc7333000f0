//! A store written outside the crate, as a third party would: a `Backend` over `HashMap`s
//! behind one mutex, nothing but the crate's public API, and every section of the public
//! conformance suite run against it (feature `testing`). Every rule — validation, minting,
//! lifetimes, the access rule, delegation, approval standing, the resolution pipeline — is the
//! crate's `Store`; this file only keeps records and takes each atomic step under its lock.

#![cfg(feature = "testing")]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use time::OffsetDateTime;
use tower_agent_auth::approval::{
    Approval, ApprovalBinding, ApprovalFilter, ApprovalId, ApprovalRequest, ApprovalStatus,
    Requested,
};
use tower_agent_auth::audit::{AuditEvent, AuditFilter};
use tower_agent_auth::clock::ManualClock;
use tower_agent_auth::error::{AuditError, Conflict, ResolveError, StoreError};
use tower_agent_auth::principal::{AgentId, TokenId, UserId};
use tower_agent_auth::resolver::SettleFuture;
use tower_agent_auth::store::backend::{
    AgentChange, AgentFilter, Backend, FoundToken, GrantFilter, OneTask, Reservation, Rotated,
    Rotation, Uses,
};
use tower_agent_auth::store::{AccessGrant, Agent, MemoryUserDirectory, Store, TokenInfo};
use tower_agent_auth::testing;
use tower_agent_auth::token::TokenHash;

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A token, its hash and the uses reserved by requests in flight.
struct Entry {
    hash: TokenHash,
    info: TokenInfo,
    in_flight: u64,
}

#[derive(Default)]
struct State {
    agents: HashMap<AgentId, Agent>,
    tokens: HashMap<TokenId, Entry>,
    hashes: HashMap<TokenHash, TokenId>,
    grants: HashMap<(AgentId, UserId), AccessGrant>,
    approvals: Vec<Approval>,
    events: Vec<AuditEvent>,
}

impl State {
    fn token_mut(&mut self, id: &TokenId) -> Option<&mut TokenInfo> {
        self.tokens.get_mut(id).map(|entry| &mut entry.info)
    }

    fn insert(&mut self, hash: TokenHash, info: TokenInfo) {
        self.hashes.insert(hash, info.id.clone());
        let entry = Entry {
            hash,
            info,
            in_flight: 0,
        };
        self.tokens.insert(entry.info.id.clone(), entry);
    }

    fn tokens_where(&self, keep: impl Fn(&TokenInfo) -> bool) -> Vec<TokenInfo> {
        let mut tokens: Vec<TokenInfo> = self.tokens.values().map(|e| e.info.clone()).collect();
        tokens.retain(keep);
        tokens.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        tokens
    }

    /// `roots` and every token delegated from them, below and below that.
    fn tree(&self, roots: Vec<TokenInfo>) -> Vec<TokenId> {
        let mut tree: Vec<TokenId> = roots.into_iter().map(|t| t.id).collect();
        let mut i = 0;
        while let Some(id) = tree.get(i).cloned() {
            let below = self.tokens_where(|t| t.delegation_parent.as_ref() == Some(&id));
            tree.extend(below.into_iter().map(|t| t.id));
            i += 1;
        }
        tree
    }

    /// Applies `change` to each of `ids` it accepts: how many.
    fn mark(&mut self, ids: Vec<TokenId>, change: impl Fn(&mut TokenInfo) -> bool) -> usize {
        ids.iter()
            .filter(|id| self.token_mut(id).is_some_and(&change))
            .count()
    }

    fn remove(&mut self, ids: &[TokenId]) {
        for entry in ids.iter().filter_map(|id| self.tokens.remove(id)) {
            self.hashes.remove(&entry.hash);
        }
    }

    /// The tokens up `info`'s chain, root first (a link that is gone ends the walk).
    fn chain(&self, info: &TokenInfo) -> Vec<TokenInfo> {
        let mut chain = Vec::new();
        let mut next = info.delegation_parent.clone();
        while let Some(link) = next.and_then(|id| self.tokens.get(&id)) {
            next = link.info.delegation_parent.clone();
            chain.insert(0, link.info.clone());
        }
        chain
    }

    fn found(&self, info: &TokenInfo) -> Option<FoundToken> {
        let agent = self.agents.get(&info.agent_id)?.clone();
        let parent = agent.parent.as_ref().and_then(|p| self.agents.get(p));
        let in_flight = self.tokens.get(&info.id).map_or(0, |e| e.in_flight);
        let uses = info.operations_remaining.map(|remaining| Uses {
            remaining,
            in_flight,
        });
        let found = FoundToken::new(info.clone(), agent).with_uses(uses);
        Some(found.with_parent(parent.cloned().map(Arc::new)))
    }

    /// The limited links a request under `id` reserves a use of: the chain's, then its own.
    fn limited_links(&self, id: &TokenId) -> Vec<TokenId> {
        let Some(entry) = self.tokens.get(id) else {
            return Vec::new();
        };
        let mut links = self.chain(&entry.info);
        links.push(entry.info.clone());
        links.retain(|t| t.operations_remaining.is_some());
        links.into_iter().map(|t| t.id).collect()
    }

    /// Gives a use back (or takes one, with `-1`) and moves the in-flight count the other way.
    fn shift(&mut self, id: &TokenId, by: i64) {
        let entry = self.tokens.get_mut(id).expect("a link just read");
        let remaining = &mut entry.info.operations_remaining;
        *remaining = remaining.map(|n| n.saturating_add_signed(by));
        entry.in_flight = entry.in_flight.saturating_add_signed(-by);
    }

    /// Spends one use of the oldest usable approval of `binding`.
    fn consume(&mut self, binding: &ApprovalBinding, now: OffsetDateTime) -> Option<Approval> {
        let usable = |a: &&mut Approval| a.binding == *binding && a.is_usable_at(now);
        let approval = (self.approvals.iter_mut().filter(usable))
            .min_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)))?;
        approval.spend_use();
        Some(approval.clone())
    }
}

#[derive(Default)]
struct Outside(Mutex<State>);

impl Outside {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap()
    }
}

#[async_trait::async_trait]
impl Backend for Outside {
    type Record = FoundToken;

    async fn insert_agent(&self, agent: &Agent) -> Result<()> {
        let mut state = self.lock();
        if state.agents.values().any(|a| a.slug == agent.slug) {
            return Err(Conflict::Slug(agent.slug.to_string()).into());
        }
        if let Some(parent) = agent
            .parent
            .as_ref()
            .filter(|p| !state.agents.contains_key(*p))
        {
            return Err(StoreError::unknown_agent(parent));
        }
        state.agents.insert(agent.id.clone(), agent.clone());
        Ok(())
    }

    async fn agent(&self, id: &AgentId) -> Result<Option<Agent>> {
        Ok(self.lock().agents.get(id).cloned())
    }

    async fn agents(&self, filter: &AgentFilter) -> Result<Vec<Agent>> {
        Ok(filter.select(self.lock().agents.values()))
    }

    async fn update_agent(&self, id: &AgentId, change: &AgentChange) -> Result<Option<Agent>> {
        let mut state = self.lock();
        let agent = state.agents.get_mut(id);
        Ok(agent.map(|agent| {
            change.apply(agent);
            agent.clone()
        }))
    }

    async fn delete_agent(&self, id: &AgentId) -> Result<bool> {
        let mut state = self.lock();
        let doomed = |a: &AgentId, parent: Option<&AgentId>| a == id || parent == Some(id);
        let doomed: Vec<AgentId> = (state.agents.values())
            .filter(|a| doomed(&a.id, a.parent.as_ref()))
            .map(|a| a.id.clone())
            .collect();
        let tree = state.tree(state.tokens_where(|t| doomed.contains(&t.agent_id)));
        state.remove(&tree);
        state.grants.retain(|(agent, _), _| !doomed.contains(agent));
        state.agents.retain(|agent, _| !doomed.contains(agent));
        Ok(!doomed.is_empty())
    }

    async fn insert_token(
        &self,
        hash: &TokenHash,
        token: &TokenInfo,
        one_task: Option<&OneTask>,
    ) -> Result<()> {
        let mut state = self.lock();
        if !state.agents.contains_key(&token.agent_id) {
            return Err(StoreError::unknown_agent(&token.agent_id));
        }
        if state.hashes.contains_key(hash) {
            return Err(Conflict::Token.into());
        }
        if let Some(one_task) = one_task {
            one_task.check_tokens(&state.tokens_where(|t| t.agent_id == token.agent_id))?;
        }
        state.insert(*hash, token.clone());
        Ok(())
    }

    async fn tokens(&self, agent: &AgentId) -> Result<Vec<TokenInfo>> {
        Ok(self.lock().tokens_where(|t| t.agent_id == *agent))
    }

    async fn revoke_token(
        &self,
        agent: &AgentId,
        id: &TokenId,
        at: OffsetDateTime,
    ) -> Result<Option<TokenInfo>> {
        let mut state = self.lock();
        let info = state.token_mut(id).filter(|t| t.agent_id == *agent);
        Ok(info.map(|info| {
            info.revoked_at = info.revoked_at.or(Some(at));
            info.clone()
        }))
    }

    async fn revoke_token_tree(
        &self,
        agent: &AgentId,
        id: &TokenId,
        at: OffsetDateTime,
    ) -> Result<usize> {
        let mut state = self.lock();
        let root = state.tokens_where(|t| t.id == *id && t.agent_id == *agent);
        let tree = state.tree(root);
        let unrevoked =
            |t: &mut TokenInfo| t.revoked_at.is_none() && t.revoked_at.replace(at).is_none();
        Ok(state.mark(tree, unrevoked))
    }

    async fn complete_task(&self, owner: &UserId, task: &str, at: OffsetDateTime) -> Result<usize> {
        let mut state = self.lock();
        let owns = |t: &TokenInfo| {
            state
                .agents
                .get(&t.agent_id)
                .is_some_and(|a| a.owner == *owner)
        };
        let roots = state.tokens_where(|t| t.task_id.as_deref() == Some(task) && owns(t));
        let tree = state.tree(roots);
        Ok(state.mark(tree, |t| {
            t.is_live_at(at) && t.task_completed_at.replace(at).is_none()
        }))
    }

    async fn rotate_token(&self, rotation: &Rotation) -> Result<Rotated> {
        let mut state = self.lock();
        let old = state
            .token_mut(&rotation.old)
            .filter(|t| t.agent_id == rotation.agent);
        let Some(old) = old.filter(|t| t.is_live_at(rotation.now)) else {
            return Ok(Rotated::Changed);
        };
        if old.operations_remaining != rotation.uses_read {
            return Ok(Rotated::Changed);
        }
        old.expires_at = rotation.old_expires_at;
        old.revoked_at = rotation.old_revoked_at;
        old.operations_remaining = old.operations_remaining.map(|_| 0);
        state.insert(rotation.new_hash, rotation.new.clone());
        if let Some(agent) = state.agents.get_mut(&rotation.agent) {
            agent.last_rotated_at = Some(rotation.new.created_at);
        }
        Ok(Rotated::Done)
    }

    async fn purge_tokens(&self, before: OffsetDateTime) -> Result<usize> {
        let mut state = self.lock();
        let old = |at: Option<OffsetDateTime>| at.is_some_and(|at| at < before);
        let dead =
            |t: &TokenInfo| old(t.revoked_at) || old(t.task_completed_at) || old(t.expires_at);
        let tree = state.tree(state.tokens_where(dead));
        state.remove(&tree);
        Ok(tree.len())
    }

    async fn find(&self, hash: &TokenHash) -> Result<Option<FoundToken>, ResolveError> {
        let state = self.lock();
        let Some(info) = state.hashes.get(hash).map(|id| &state.tokens[id].info) else {
            return Ok(None);
        };
        let chain = state.chain(info);
        let root = chain.first().unwrap_or(info);
        let orchestrator = root
            .orchestrator
            .as_ref()
            .and_then(|id| state.agents.get(id));
        let orchestrator = orchestrator.cloned().map(Arc::new);
        let chain = chain.iter().filter_map(|link| state.found(link)).collect();
        Ok(state
            .found(info)
            .map(|found| found.with_chain(chain).with_orchestrator(orchestrator)))
    }

    async fn reserve(&self, record: &FoundToken) -> Result<Reservation, ResolveError> {
        let mut state = self.lock();
        let links = state.limited_links(&record.info.id);
        for (n, link) in links.iter().enumerate() {
            let Entry {
                info, in_flight, ..
            } = &state.tokens[link];
            if info.operations_remaining == Some(0) || info.revoked_at.is_some() {
                // A use may still come back: the pipeline resolves again, and sees a revocation.
                let back = *in_flight > 0 || info.operations_remaining != Some(0);
                // Give back what this request reserved up the chain.
                links[..n].iter().for_each(|back| state.shift(back, 1));
                return Ok(if back {
                    Reservation::InFlight
                } else {
                    Reservation::Exhausted
                });
            }
            state.shift(link, -1);
        }
        Ok(Reservation::Reserved)
    }

    async fn settled(&self, _: &FoundToken, _: u32) {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }

    fn settle(&self, token: &TokenId, spent: bool, now: OffsetDateTime) -> Option<SettleFuture> {
        let mut state = self.lock();
        for link in state.limited_links(token) {
            match state.tokens.get_mut(&link) {
                Some(entry) if entry.in_flight > 0 && spent => entry.in_flight -= 1,
                Some(entry) if entry.in_flight > 0 => state.shift(&link, 1),
                _ => continue,
            }
            let Entry {
                info, in_flight, ..
            } = state.tokens.get_mut(&link).expect("just read");
            let last = *in_flight == 0 && info.operations_remaining == Some(0);
            if spent && last && info.expires_on_completion {
                info.expires_at = Some(now);
            }
        }
        None
    }

    async fn put_grant(&self, grant: &AccessGrant) -> Result<()> {
        let key = (grant.agent_id.clone(), grant.user_id.clone());
        self.lock().grants.insert(key, grant.clone());
        Ok(())
    }

    async fn delete_grant(&self, agent: &AgentId, user: &UserId) -> Result<bool> {
        Ok(self
            .lock()
            .grants
            .remove(&(agent.clone(), user.clone()))
            .is_some())
    }

    async fn grants(&self, filter: &GrantFilter) -> Result<Vec<AccessGrant>> {
        Ok(filter.select(self.lock().grants.values()))
    }

    async fn insert_approval(&self, approval: &Approval) -> Result<()> {
        self.lock().approvals.push(approval.clone());
        Ok(())
    }

    async fn approval(&self, id: &ApprovalId) -> Result<Option<Approval>> {
        Ok(self.lock().approvals.iter().find(|a| a.id == *id).cloned())
    }

    async fn approvals(
        &self,
        filter: &ApprovalFilter,
        now: OffsetDateTime,
    ) -> Result<Vec<Approval>> {
        Ok(filter.select(&self.lock().approvals, now))
    }

    async fn request_approval(&self, request: &ApprovalRequest) -> Result<Requested> {
        let mut state = self.lock();
        let now = request.now();
        if let Some(used) = state.consume(request.binding(), now) {
            return Ok(Requested::Approved(used));
        }
        let mut of_binding = state.approvals.clone();
        of_binding.retain(|a| a.binding == *request.binding());
        let pending = (state.approvals.iter()).filter(|a| {
            a.agent_id == *request.agent() && a.status_at(now) == ApprovalStatus::Pending
        });
        let pending: Vec<OffsetDateTime> = pending.map(|a| a.expires_at).collect();
        let requested = request.decide(&of_binding, &pending, now)?;
        if let Requested::Created(approval) = &requested {
            state.approvals.push(approval.clone());
        }
        Ok(requested)
    }

    async fn decide_approval(
        &self,
        decided: &Approval,
        from: ApprovalStatus,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let mut state = self.lock();
        let stored = state.approvals.iter_mut().find(|a| a.id == decided.id);
        let stored = stored.filter(|a| a.status == from && a.expires_at > now);
        Ok(stored.map(|stored| *stored = decided.clone()).is_some())
    }

    async fn consume_approval(
        &self,
        binding: &ApprovalBinding,
        now: OffsetDateTime,
    ) -> Result<Option<Approval>> {
        Ok(self.lock().consume(binding, now))
    }

    async fn purge_approvals(&self, before: OffsetDateTime) -> Result<usize> {
        let mut state = self.lock();
        let count = state.approvals.len();
        state.approvals.retain(|a| a.expires_at >= before);
        Ok(count - state.approvals.len())
    }

    async fn append_audit(&self, events: &[AuditEvent]) -> Result<(), AuditError> {
        self.lock().events.extend_from_slice(events);
        Ok(())
    }

    async fn audit_events(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>, AuditError> {
        Ok(filter.select(&self.lock().events))
    }
}

async fn open(
    users: MemoryUserDirectory,
    clock: Arc<ManualClock>,
) -> Option<(Store<Outside>, std::future::Ready<()>)> {
    let store = Store::from_backend(Outside::default(), testing::config(&users, &clock));
    Some((store, std::future::ready(())))
}

tower_agent_auth::conformance_suite!(
    open,
    [
        resolution, spending, lifecycle, grants, audit, approval, delegation
    ]
);
