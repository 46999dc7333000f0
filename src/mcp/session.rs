//! MCP sessions bound to their caller: a session id (`Mcp-Session-Id`) is anyone's who knows
//! it, unless the layer remembers whose it is. MCP's security guidance asks a server to bind
//! each session to its user; this does it for any server behind the layer.
//!
//! The session's owner is the person and the agent (not the token): a client that steps up
//! goes on in its session with its new token. A session id the layer does not know — never
//! seen, idle past [`IDLE`], or pushed out past [`CAPACITY`] — is answered `404`, which a
//! client answers by starting a new session (Streamable HTTP): so a binding forgotten fails
//! closed.

use std::time::Duration;

use http::HeaderValue;

use crate::ExecutionPrincipal;
use crate::principal::{AgentId, UserId};

/// How long a session may go unused before the layer forgets whose it is.
pub(crate) const IDLE: Duration = Duration::from_secs(24 * 3600);
/// The most sessions the layer remembers at once.
pub(crate) const CAPACITY: u64 = 100_000;

/// Whose a session is.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Owner {
    user: UserId,
    agent: Option<AgentId>,
}

impl Owner {
    fn of(principal: &ExecutionPrincipal) -> Self {
        Self {
            user: principal.user_id().clone(),
            agent: principal.agent_id().cloned(),
        }
    }
}

/// The sessions the layer has seen started, and whose each is.
pub(crate) struct Sessions {
    owners: moka::sync::Cache<Box<[u8]>, Owner>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("entries", &self.owners.entry_count())
            .finish()
    }
}

/// What the layer knows of a request's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Standing {
    /// The request names no session, or one of this caller.
    Own,
    /// The session is another caller's, or unknown.
    NotFound,
}

impl Sessions {
    pub(crate) fn new() -> Self {
        Self {
            owners: moka::sync::Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_idle(IDLE)
                .build(),
        }
    }

    /// Whether `principal` may use the session `id` names.
    pub(crate) fn standing(
        &self,
        id: Option<&HeaderValue>,
        principal: &ExecutionPrincipal,
    ) -> Standing {
        let Some(id) = id else {
            return Standing::Own;
        };
        match self.owners.get(id.as_bytes()) {
            Some(owner)
                if owner.user == *principal.user_id()
                    && owner.agent.as_ref() == principal.agent_id() =>
            {
                Standing::Own
            }
            _ => Standing::NotFound,
        }
    }

    /// Remembers that the server started the session `id` for `principal` (an answer that
    /// carries `Mcp-Session-Id`). A session already bound keeps its owner.
    pub(crate) fn started(&self, id: &HeaderValue, principal: &ExecutionPrincipal) {
        let _ = self
            .owners
            .entry(id.as_bytes().into())
            .or_insert_with(|| Owner::of(principal));
    }

    /// Forgets the session `id` (its owner ended it).
    pub(crate) fn ended(&self, id: &HeaderValue) {
        self.owners.invalidate(id.as_bytes());
    }
}
