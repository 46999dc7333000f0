//! The in-memory backend's maps, and the indexes that keep each operation's cost to what it
//! touches: an agent's own tokens, a token's own delegation subtree.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use time::OffsetDateTime;

use super::entry::{AgentSlot, DigestHasher, MemoryRecord, TokenEntry};
use crate::error::StoreError;
use crate::principal::{AgentId, TokenId, UserId};
use crate::store::access::AccessGrant;
use crate::store::backend::{AgentFilter, GrantFilter};
use crate::store::model::TokenInfo;
use crate::store::validate::{is_live, micros};
use crate::token::TokenHash;

type Hashes = HashSet<TokenHash, BuildHasherDefault<DigestHasher>>;

#[derive(Default)]
pub(super) struct State {
    pub(super) agents: HashMap<AgentId, Arc<AgentSlot>>,
    pub(super) slugs: HashMap<Arc<str>, AgentId>,
    pub(super) tokens: HashMap<TokenHash, Arc<TokenEntry>, BuildHasherDefault<DigestHasher>>,
    pub(super) token_ids: HashMap<TokenId, TokenHash>,
    /// Each agent's tokens.
    by_agent: HashMap<AgentId, Hashes>,
    /// The tokens delegated from each token, one level down.
    delegated: HashMap<TokenHash, Hashes, BuildHasherDefault<DigestHasher>>,
    /// Each agent's thread-scoped children.
    children: HashMap<AgentId, HashSet<AgentId>>,
    /// The agents each user owns (a child's owner is its parent's; owners never change).
    owned: HashMap<UserId, HashSet<AgentId>>,
    grants: HashMap<(AgentId, UserId), AccessGrant>,
    /// The users holding a grant on each agent, and the agents each user holds one on: an
    /// agent's deletion and a user's listing touch their own grants only.
    granted_on: HashMap<AgentId, HashSet<UserId>>,
    granted_to: HashMap<UserId, HashSet<AgentId>>,
    /// Each token that has an end in its record (revoked, expiring, completed) by the earliest,
    /// in Unix microseconds: a purge walks those ended before its cutoff, not every token.
    ends: BTreeSet<(i64, TokenId)>,
    /// Tokens that end with their last use: that end is recorded by the request that spends
    /// it, outside the lock, so a purge looks at each of these.
    end_on_last_use: Hashes,
}

impl State {
    pub(super) fn agent(&self, id: &AgentId) -> Result<&Arc<AgentSlot>, StoreError> {
        self.agents
            .get(id)
            .ok_or_else(|| StoreError::unknown_agent(id))
    }

    pub(super) fn insert_agent(&mut self, slot: Arc<AgentSlot>) {
        let agent = slot.get();
        if let Some(parent) = &agent.parent {
            self.children
                .entry(parent.clone())
                .or_default()
                .insert(agent.id.clone());
        }
        self.slugs.insert(agent.slug.clone(), agent.id.clone());
        (self.owned.entry(agent.owner.clone()).or_default()).insert(agent.id.clone());
        self.agents.insert(agent.id.clone(), slot);
    }

    /// The agents `filter` names, unsorted: through the index it names (every agent only for
    /// [`AgentFilter::All`]).
    pub(super) fn filtered(&self, filter: &AgentFilter) -> Vec<&Arc<AgentSlot>> {
        let ids: Box<dyn Iterator<Item = &AgentId>> = match filter {
            AgentFilter::Ids(ids) => Box::new(ids.iter()),
            AgentFilter::OwnedBy(owner) => Box::new(self.owned.get(owner).into_iter().flatten()),
            AgentFilter::ChildrenOf(parents) => Box::new(
                parents
                    .iter()
                    .flat_map(|parent| self.children.get(parent).into_iter().flatten()),
            ),
            _ => return self.agents.values().collect(),
        };
        ids.filter_map(|id| self.agents.get(id)).collect()
    }

    /// Grants `grant`, replacing the role its user had on its agent.
    pub(super) fn put_grant(&mut self, grant: &AccessGrant) {
        let (agent, user) = (&grant.agent_id, &grant.user_id);
        (self.granted_on.entry(agent.clone()).or_default()).insert(user.clone());
        (self.granted_to.entry(user.clone()).or_default()).insert(agent.clone());
        self.grants
            .insert((agent.clone(), user.clone()), grant.clone());
    }

    /// Takes back the grant of `user` on `agent`: whether there was one.
    pub(super) fn delete_grant(&mut self, agent: &AgentId, user: &UserId) -> bool {
        if self.grants.remove(&(agent.clone(), user.clone())).is_none() {
            return false;
        }
        if let Some(users) = self.granted_on.get_mut(agent) {
            users.remove(user);
            if users.is_empty() {
                self.granted_on.remove(agent);
            }
        }
        if let Some(agents) = self.granted_to.get_mut(user) {
            agents.remove(agent);
            if agents.is_empty() {
                self.granted_to.remove(user);
            }
        }
        true
    }

    /// The grants `filter` names, through the index it names.
    pub(super) fn grants(&self, filter: &GrantFilter) -> Vec<AccessGrant> {
        let keys: Vec<(AgentId, UserId)> = match filter {
            GrantFilter::One(agent, user) => vec![(agent.clone(), user.clone())],
            GrantFilter::Agent(agent) => (self.granted_on.get(agent).into_iter().flatten())
                .map(|user| (agent.clone(), user.clone()))
                .collect(),
            GrantFilter::User(user) => (self.granted_to.get(user).into_iter().flatten())
                .map(|agent| (agent.clone(), user.clone()))
                .collect(),
        };
        filter.select(keys.iter().filter_map(|key| self.grants.get(key)))
    }

    /// The agent and its children go, with their tokens (and those delegated from them) and
    /// grants: the agents that went.
    pub(super) fn remove_agent(&mut self, id: &AgentId) -> Vec<AgentId> {
        let mut doomed: Vec<AgentId> = self
            .children
            .remove(id)
            .map(|children| children.into_iter().collect())
            .unwrap_or_default();
        doomed.push(id.clone());
        for agent_id in &doomed {
            if let Some(slot) = self.agents.remove(agent_id) {
                let agent = slot.get();
                self.slugs.remove(&agent.slug);
                if let Some(owned) = self.owned.get_mut(&agent.owner) {
                    owned.remove(agent_id);
                    if owned.is_empty() {
                        self.owned.remove(&agent.owner);
                    }
                }
                if let Some(parent) = &agent.parent {
                    if let Some(children) = self.children.get_mut(parent) {
                        children.remove(agent_id);
                    }
                }
            }
            let roots: Vec<TokenHash> = self
                .by_agent
                .get(agent_id)
                .map(|hashes| hashes.iter().copied().collect())
                .unwrap_or_default();
            for hash in self.tree(roots) {
                self.remove(&hash);
            }
            self.by_agent.remove(agent_id);
            let users = self.granted_on.get(agent_id).cloned().unwrap_or_default();
            for user in &users {
                self.delete_grant(agent_id, user);
            }
        }
        doomed
    }

    /// The hash of `token` if it is a token of `agent`.
    pub(super) fn token_of(&self, agent: &AgentId, token: &TokenId) -> Option<TokenHash> {
        self.token_ids.get(token).copied().filter(|hash| {
            self.tokens
                .get(hash)
                .is_some_and(|e| e.info.agent_id == *agent)
        })
    }

    /// The tokens of `agent`, with their hashes.
    pub(super) fn agent_tokens(
        &self,
        agent: &AgentId,
    ) -> impl Iterator<Item = (TokenHash, &Arc<TokenEntry>)> {
        self.by_agent
            .get(agent)
            .into_iter()
            .flatten()
            .filter_map(|hash| self.tokens.get(hash).map(|entry| (*hash, entry)))
    }

    /// The task ids of `agent`'s tokens live at `now`.
    pub(super) fn live_tasks(&self, agent: &AgentId, now: OffsetDateTime) -> Vec<String> {
        self.agent_tokens(agent)
            .map(|(_, entry)| entry.snapshot())
            .filter(|info| is_live(info, now))
            .filter_map(|info| info.task_id)
            .collect()
    }

    pub(super) fn revoke(&mut self, hash: &TokenHash, now: OffsetDateTime) -> Option<TokenInfo> {
        let entry = self.tokens.get(hash)?.clone();
        if entry.info.revoked_at.is_some() {
            return Some(entry.snapshot());
        }
        let mut info = entry.info.clone();
        info.revoked_at = Some(now);
        let revoked = Arc::new(entry.with_info(info));
        let snapshot = revoked.snapshot();
        self.replace(*hash, revoked);
        Some(snapshot)
    }

    /// Puts `entry` in the place of the token `hash`'s entry (a changed record of the same
    /// token), keeping the purge's index in step.
    pub(super) fn replace(&mut self, hash: TokenHash, entry: Arc<TokenEntry>) {
        if let Some(old) = self.tokens.get(&hash) {
            if let Some(end) = recorded_end(&old.info) {
                self.ends.remove(&(end, old.info.id.clone()));
            }
        }
        if let Some(end) = recorded_end(&entry.info) {
            self.ends.insert((end, entry.info.id.clone()));
        }
        self.tokens.insert(hash, entry);
    }

    /// The tokens a purge at `cutoff` (Unix microseconds) may delete: those whose record ends
    /// before it, and those that end with their last use. The caller checks each.
    pub(super) fn purge_candidates(&self, cutoff: i64) -> Vec<TokenHash> {
        let ended = (self.ends.iter())
            .take_while(|(end, _)| *end < cutoff)
            .filter_map(|(_, id)| self.token_ids.get(id).copied());
        let mut candidates: Vec<TokenHash> = ended.collect();
        candidates.extend(self.end_on_last_use.iter().copied());
        candidates
    }

    pub(super) fn insert(&mut self, hash: TokenHash, mut entry: TokenEntry) {
        entry.delegator = entry
            .info
            .delegation_parent
            .as_ref()
            .and_then(|parent| self.token_ids.get(parent).copied());
        if let Some(parent) = entry.delegator {
            self.delegated.entry(parent).or_default().insert(hash);
        }
        self.by_agent
            .entry(entry.info.agent_id.clone())
            .or_default()
            .insert(hash);
        if let Some(end) = recorded_end(&entry.info) {
            self.ends.insert((end, entry.info.id.clone()));
        }
        if entry.info.expires_on_completion {
            self.end_on_last_use.insert(hash);
        }
        self.token_ids.insert(entry.info.id.clone(), hash);
        self.tokens.insert(hash, Arc::new(entry));
    }

    fn remove(&mut self, hash: &TokenHash) {
        if let Some(entry) = self.tokens.remove(hash) {
            if let Some(end) = recorded_end(&entry.info) {
                self.ends.remove(&(end, entry.info.id.clone()));
            }
            self.end_on_last_use.remove(hash);
            self.token_ids.remove(&entry.info.id);
            if let Some(hashes) = self.by_agent.get_mut(&entry.info.agent_id) {
                hashes.remove(hash);
            }
            if let Some(parent) = entry.delegator {
                if let Some(below) = self.delegated.get_mut(&parent) {
                    below.remove(hash);
                }
            }
            self.delegated.remove(hash);
        }
    }

    /// Removes `roots` and every token delegated from them: how many.
    pub(super) fn remove_trees(&mut self, roots: Vec<TokenHash>) -> usize {
        let tree = self.tree(roots);
        for hash in &tree {
            self.remove(hash);
        }
        tree.len()
    }

    /// The record of `entry`: with its chain and the orchestrator its root names.
    pub(super) fn record(&self, entry: &Arc<TokenEntry>) -> MemoryRecord {
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
    pub(super) fn chain(&self, entry: &TokenEntry) -> Vec<Arc<TokenEntry>> {
        let mut chain = Vec::new();
        let mut next = entry.delegator;
        while let Some(hash) = next {
            let Some(link) = self.tokens.get(&hash) else {
                break;
            };
            if chain.len() >= crate::store::MAX_DELEGATION_DEPTH_LIMIT as usize {
                break;
            }
            next = link.delegator;
            chain.push(link.clone());
        }
        chain.reverse();
        chain
    }

    /// `roots` and every token delegated from one of them, below and below that.
    pub(super) fn tree(&self, roots: Vec<TokenHash>) -> Vec<TokenHash> {
        let mut tree: HashSet<TokenHash> = roots.iter().copied().collect();
        let mut frontier = roots;
        while let Some(hash) = frontier.pop() {
            for below in self.delegated.get(&hash).into_iter().flatten() {
                if tree.insert(*below) {
                    frontier.push(*below);
                }
            }
        }
        tree.into_iter().collect()
    }

    /// Ends a token now, unless it already ended: it is marked completed, a state no clock
    /// reading undoes (its expiry stays as it was).
    pub(super) fn end(&mut self, hash: &TokenHash, now: OffsetDateTime) -> bool {
        let Some(entry) = self.tokens.get(hash).cloned() else {
            return false;
        };
        let info = entry.snapshot();
        if !is_live(&info, now) {
            return false;
        }
        let mut ended = entry.info.clone();
        ended.task_completed_at = Some(now);
        self.replace(*hash, Arc::new(entry.with_info(ended)));
        true
    }
}

/// The earliest end a token's record holds — revocation, expiry, completion — in Unix
/// microseconds: where the purge's index keeps it.
fn recorded_end(info: &TokenInfo) -> Option<i64> {
    [info.revoked_at, info.expires_at, info.task_completed_at]
        .into_iter()
        .flatten()
        .map(micros)
        .min()
}
