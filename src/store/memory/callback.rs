//! The callback receiver's records held in memory (feature `callback`): pending authorizations
//! by the hash of their `state`, provider tokens by id, behind one lock, so that taking a state
//! and replacing an agent's token for a provider are each one step.
//!
//! A step that names an agent runs with the agents' lock held for reading (the caller passes
//! the [`State`]), and deleting an agent clears its records here with that lock held for
//! writing, as the SQL stores' foreign keys do. Both are indexed by agent, so that replacing,
//! listing and forgetting an agent's records touch that agent's only.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::BuildHasherDefault;
use std::sync::Mutex;

use time::OffsetDateTime;

use super::entry::DigestHasher;
use super::state::State;
use crate::error::{Conflict, StoreError};
use crate::oauth::callback::{CallbackState, ProviderToken, StateTaken};
use crate::principal::AgentId;
use crate::token::TokenHash;

type Hashes = HashSet<TokenHash, BuildHasherDefault<DigestHasher>>;

#[derive(Default)]
struct Records {
    states: HashMap<TokenHash, CallbackState, BuildHasherDefault<DigestHasher>>,
    /// Each agent's pending authorizations.
    states_of: HashMap<AgentId, Hashes>,
    tokens: BTreeMap<String, ProviderToken>,
    /// The id of each agent's token for each provider: one at most, in listing order.
    token_of: BTreeMap<(AgentId, String), String>,
}

impl Records {
    fn remove_state(&mut self, hash: &TokenHash) {
        let Some(state) = self.states.remove(hash) else {
            return;
        };
        if let Some(hashes) = self.states_of.get_mut(&state.agent) {
            hashes.remove(hash);
            if hashes.is_empty() {
                self.states_of.remove(&state.agent);
            }
        }
    }

    /// The ids of `agent`'s provider tokens, by provider.
    fn ids_of<'a>(&'a self, agent: &'a AgentId) -> impl Iterator<Item = &'a String> {
        // The empty provider sorts first: the range starts at the agent's first key.
        (self.token_of.range((agent.clone(), String::new())..))
            .take_while(move |((of, _), _)| of == agent)
            .map(|(_, id)| id)
    }

    fn remove_token(&mut self, id: &str) -> bool {
        let Some(token) = self.tokens.remove(id) else {
            return false;
        };
        self.token_of.remove(&(token.agent, token.provider));
        true
    }
}

/// Every record of the callback receiver in a memory store.
#[derive(Default)]
pub(super) struct MemoryCallback {
    records: Mutex<Records>,
}

impl MemoryCallback {
    fn lock(&self) -> std::sync::MutexGuard<'_, Records> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn insert_state(
        &self,
        state: &State,
        pending: &CallbackState,
    ) -> Result<(), StoreError> {
        state.agent(&pending.agent)?;
        let mut records = self.lock();
        if records.states.contains_key(&pending.hash) {
            return Err(Conflict::Token.into());
        }
        (records.states_of.entry(pending.agent.clone()).or_default()).insert(pending.hash);
        records.states.insert(pending.hash, pending.clone());
        Ok(())
    }

    /// Marks the state used unless it was, under the lock: one taking wins.
    pub(super) fn take_state(&self, hash: &TokenHash, now: OffsetDateTime) -> StateTaken {
        let mut records = self.lock();
        let Some(pending) = records.states.get_mut(hash) else {
            return StateTaken::Unknown;
        };
        if pending.used_at.is_some() {
            return StateTaken::Replayed(pending.clone());
        }
        let found = pending.clone();
        pending.used_at = Some(now);
        StateTaken::Taken(found)
    }

    pub(super) fn purge_states(&self, before: OffsetDateTime) -> usize {
        let mut records = self.lock();
        let lapsed: Vec<TokenHash> = (records.states.values())
            .filter(|s| s.expires_at < before)
            .map(|s| s.hash)
            .collect();
        for hash in &lapsed {
            records.remove_state(hash);
        }
        lapsed.len()
    }

    /// Replaces the agent's token for the provider, under the lock.
    pub(super) fn put_token(&self, state: &State, token: &ProviderToken) -> Result<(), StoreError> {
        state.agent(&token.agent)?;
        let mut records = self.lock();
        if let Some(stored) = records.tokens.get(&token.id) {
            if stored.agent != token.agent || stored.provider != token.provider {
                return Err(Conflict::Token.into());
            }
        }
        let key = (token.agent.clone(), token.provider.clone());
        if let Some(replaced) = records.token_of.get(&key).cloned() {
            records.remove_token(&replaced);
        }
        records.token_of.insert(key, token.id.clone());
        records.tokens.insert(token.id.clone(), token.clone());
        Ok(())
    }

    pub(super) fn token(&self, id: &str) -> Option<ProviderToken> {
        self.lock().tokens.get(id).cloned()
    }

    /// By agent, then provider: the index's order.
    pub(super) fn tokens(&self, agent: Option<&AgentId>) -> Vec<ProviderToken> {
        let records = self.lock();
        let ids: Vec<&String> = match agent {
            Some(agent) => records.ids_of(agent).collect(),
            None => records.token_of.values().collect(),
        };
        (ids.into_iter())
            .filter_map(|id| records.tokens.get(id))
            .cloned()
            .collect()
    }

    pub(super) fn delete_token(&self, id: &str) -> bool {
        self.lock().remove_token(id)
    }

    /// What referred to the agents `gone`, which were just deleted.
    pub(super) fn forget_agents(&self, gone: &[AgentId]) {
        let mut records = self.lock();
        for agent in gone {
            for hash in records.states_of.get(agent).cloned().unwrap_or_default() {
                records.remove_state(&hash);
            }
            let ids: Vec<String> = records.ids_of(agent).cloned().collect();
            for id in &ids {
                records.remove_token(id);
            }
        }
    }
}
