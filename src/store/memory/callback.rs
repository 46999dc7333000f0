//! The callback receiver's records held in memory (feature `callback`): pending authorizations
//! by the hash of their `state`, provider tokens by id, behind one lock, so that taking a state
//! and replacing an agent's token for a provider are each one step.
//!
//! A step that names an agent runs with the agents' lock held for reading (the caller passes
//! the [`State`]), and deleting an agent clears its records here with that lock held for
//! writing, as the SQL stores' foreign keys do.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasherDefault;
use std::sync::Mutex;

use time::OffsetDateTime;

use super::entry::DigestHasher;
use super::state::State;
use crate::error::{Conflict, StoreError};
use crate::oauth::callback::{CallbackState, ProviderToken, StateTaken};
use crate::principal::AgentId;
use crate::token::TokenHash;

#[derive(Default)]
struct Records {
    states: HashMap<TokenHash, CallbackState, BuildHasherDefault<DigestHasher>>,
    tokens: BTreeMap<String, ProviderToken>,
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
        let count = records.states.len();
        records.states.retain(|_, s| s.expires_at >= before);
        count - records.states.len()
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
        records
            .tokens
            .retain(|_, t| !(t.agent == token.agent && t.provider == token.provider));
        records.tokens.insert(token.id.clone(), token.clone());
        Ok(())
    }

    pub(super) fn token(&self, id: &str) -> Option<ProviderToken> {
        self.lock().tokens.get(id).cloned()
    }

    pub(super) fn tokens(&self, agent: Option<&AgentId>) -> Vec<ProviderToken> {
        let mut tokens: Vec<ProviderToken> = (self.lock().tokens.values())
            .filter(|t| agent.is_none_or(|agent| t.agent == *agent))
            .cloned()
            .collect();
        tokens.sort_by(|a, b| (&a.agent, &a.provider).cmp(&(&b.agent, &b.provider)));
        tokens
    }

    pub(super) fn delete_token(&self, id: &str) -> bool {
        self.lock().tokens.remove(id).is_some()
    }

    /// What referred to the agents `gone`, which were just deleted.
    pub(super) fn forget_agents(&self, gone: &[AgentId]) {
        let mut records = self.lock();
        records.states.retain(|_, s| !gone.contains(&s.agent));
        records.tokens.retain(|_, t| !gone.contains(&t.agent));
    }
}
