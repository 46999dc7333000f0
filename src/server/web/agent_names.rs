//! Agents named as a person knows them: by slug, not by internal id.

use std::collections::HashMap;

use crate::error::StoreError;
use crate::principal::AgentId;
use crate::store::{Backend, Store};

/// The slugs of the agents a page names, each read from the store once.
pub(super) struct AgentNames<'a, B: Backend> {
    store: &'a Store<B>,
    known: HashMap<AgentId, String>,
}

impl<'a, B: Backend> AgentNames<'a, B> {
    /// Names read from `store`.
    pub(super) fn new(store: &'a Store<B>) -> Self {
        Self {
            store,
            known: HashMap::new(),
        }
    }

    /// Remembers `agent`'s slug (a page that listed the agents already).
    pub(super) fn insert(&mut self, agent: AgentId, slug: String) {
        self.known.insert(agent, slug);
    }

    /// `agent`'s slug, or its id when it is gone (deleted since).
    pub(super) async fn slug(&mut self, agent: &AgentId) -> Result<String, StoreError> {
        if let Some(slug) = self.known.get(agent) {
            return Ok(slug.clone());
        }
        let slug = match self.store.agent(agent).await? {
            Some(record) => record.slug.to_string(),
            None => agent.as_str().to_owned(),
        };
        self.known.insert(agent.clone(), slug.clone());
        Ok(slug)
    }

    /// The slugs of `agents`, in order.
    pub(super) async fn slugs(&mut self, agents: &[AgentId]) -> Result<Vec<String>, StoreError> {
        let mut slugs = Vec::with_capacity(agents.len());
        for agent in agents {
            slugs.push(self.slug(agent).await?);
        }
        Ok(slugs)
    }
}
