//! Connections: a person's consent to a client, as the agent that acts for the client.

use time::OffsetDateTime;

use crate::principal::{AgentId, UserId};

/// A client connected by a person: one agent per (person, client), owned by the person, whose
/// policy is what was granted. Disabling or deleting that agent disconnects the client.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Connection {
    /// The person.
    pub user: UserId,
    /// The client.
    pub client_id: String,
    /// The agent that acts for the client on the person's behalf.
    pub agent: AgentId,
    /// When the person first consented.
    pub created_at: OffsetDateTime,
}

impl Connection {
    /// A connection of `user` to `client_id` through `agent`, made `at`.
    pub fn new(
        user: impl Into<UserId>,
        client_id: impl Into<String>,
        agent: impl Into<AgentId>,
        at: OffsetDateTime,
    ) -> Self {
        Self {
            user: user.into(),
            client_id: client_id.into(),
            agent: agent.into(),
            created_at: at,
        }
    }
}
