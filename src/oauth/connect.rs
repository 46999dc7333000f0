//! Who a client acts as once a person consents, and what may be granted: a registered agent
//! (its owner's or an admin's consent), or for a registered client the person's connection —
//! one agent per (person, client), owned by the person, its policy what was granted.

use super::authority::Authority;
use super::client::{Client, ClientKind};
use super::scope;
use crate::audit::{AuditAction, AuditEvent, Outcome};
use crate::ceiling::{CapabilitySet, Policy};
use crate::error::{Conflict, StoreError};
use crate::oauth::Connection;
use crate::principal::UserId;
use crate::store::{Agent, AgentStatus, Backend, NewAgent, Operation, authorize};

/// The agent a client will act as.
pub(crate) enum Acting {
    /// A registered agent, the client itself.
    Agent(Agent),
    /// The person's connection to a registered client: its agent, if it has one already.
    Connection(Option<Agent>),
}

impl Acting {
    /// The agent as the consent page names it.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Agent(agent) | Self::Connection(Some(agent)) => agent.slug.to_string(),
            Self::Connection(None) => "a new agent of yours, made for this client".to_owned(),
        }
    }
}

/// Why consent cannot be given: said on an error page, never sent to the client.
pub(crate) struct Refused(pub(crate) &'static str);

/// The agent `client` will act as for `user`. For a registered agent, only its owner or a
/// holder of an `admin` grant on it may consent; anyone else is refused, and the attempt is
/// audited.
pub(crate) async fn acting<B: Backend>(
    server: &Authority<B>,
    client: &Client,
    user: &UserId,
) -> Result<Result<Acting, Refused>, StoreError> {
    let store = server.store();
    match &client.kind {
        ClientKind::Agent(id) => {
            let Some(agent) = store.agent(id).await? else {
                return Ok(Err(Refused(
                    "The agent this client stands for no longer exists.",
                )));
            };
            let role = store.role_of(id, user).await?;
            if authorize(user, &agent, role, Operation::IssueToken).is_err() {
                server
                    .record(
                        AuditEvent::new(server.now(), AuditAction::ConsentRefused, Outcome::Denied)
                            .agent(agent.id.clone())
                            .parent(agent.parent.clone())
                            .actor(user.clone())
                            .detail(format!(
                                "client {}: neither the owner nor an admin of the agent",
                                client.id
                            )),
                    )
                    .await;
                return Ok(Err(Refused(
                    "Only the agent's owner, or a person with an admin grant on it, may allow this.",
                )));
            }
            if agent.status == AgentStatus::Disabled {
                return Ok(Err(Refused("The agent is disabled.")));
            }
            Ok(Ok(Acting::Agent(agent)))
        }
        _ => {
            let Some(connection) = store.backend().connection(user, &client.id).await? else {
                return Ok(Ok(Acting::Connection(None)));
            };
            match store.agent(&connection.agent).await? {
                Some(agent) if agent.status == AgentStatus::Disabled => Ok(Err(Refused(
                    "You disconnected this client: its agent is disabled. Enable it to connect again.",
                ))),
                agent => Ok(Ok(Acting::Connection(agent))),
            }
        }
    }
}

/// What of `requested` may be granted: ∩ the owner's role, and for a registered agent ∩ its
/// policy (and its parent's). `None` when the owner is unknown or deactivated.
pub(crate) async fn grantable<B: Backend>(
    server: &Authority<B>,
    acting: &Acting,
    user: &UserId,
    requested: &CapabilitySet,
) -> Result<Option<CapabilitySet>, StoreError> {
    let store = server.store();
    let owner = match acting {
        Acting::Agent(agent) => &agent.owner,
        Acting::Connection(_) => user,
    };
    let record = store
        .config()
        .directory
        .user(owner)
        .await
        .map_err(StoreError::Unavailable)?;
    let Some(record) = record.filter(|r| r.is_active()) else {
        return Ok(None);
    };
    let mut granted = scope::within(requested, record.role());
    if let Acting::Agent(agent) = acting {
        granted = scope::within(&granted, &agent.policy);
        if let Some(parent) = store.parent_of(agent).await? {
            granted = scope::within(&granted, &parent.policy);
        }
    }
    Ok(Some(granted))
}

/// `a ∪ b`.
fn union(a: &CapabilitySet, b: &CapabilitySet) -> CapabilitySet {
    a.iter().chain(b.iter()).collect()
}

/// A slug for a connection's agent: the client's name in slug characters, and a random tail.
fn connection_slug(name: &str) -> Result<String, StoreError> {
    let mut base = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            base.push(c);
        } else if !base.ends_with('-') && !base.is_empty() {
            base.push('-');
        }
        if base.len() >= 40 {
            break;
        }
    }
    let base = base.trim_end_matches('-');
    let base = if base.is_empty() { "client" } else { base };
    let mut tail = [0u8; 4];
    getrandom::fill(&mut tail).map_err(|e| StoreError::unavailable(e.to_string()))?;
    Ok(format!("{base}-{}", hex::encode(tail)))
}

/// The agent a consent to a registered client grants through: the person's connection's,
/// its policy widened to hold `granted`; or a new one, owned by the person, whose policy is
/// `granted`, connected in one step (two consents at once make one connection).
pub(crate) async fn connection_agent<B: Backend>(
    server: &Authority<B>,
    client: &Client,
    user: &UserId,
    existing: Option<Agent>,
    granted: &CapabilitySet,
) -> Result<Agent, StoreError> {
    let store = server.store();
    if let Some(agent) = existing {
        return widen(server, agent, granted).await;
    }
    // A connection whose agent is gone connects nothing: make room for the new one.
    store.backend().delete_connection(user, &client.id).await?;
    let mut attempts = 0;
    let agent = loop {
        let new = NewAgent::new(connection_slug(&client.name)?, user.clone())
            .with_type(server.connection_agent_type())
            .with_policy(Policy::allow(granted.clone()));
        match store.create_agent(new).await {
            Err(StoreError::Conflict(Conflict::Slug(_))) if attempts < 3 => attempts += 1,
            other => break other?,
        }
    };
    let connection = Connection::new(
        user.clone(),
        client.id.clone(),
        agent.id.clone(),
        server.now(),
    );
    let standing = store.backend().connect(&connection).await?;
    if standing.agent != agent.id {
        // Another consent connected first: its agent is the one.
        store.delete_agent(&agent.id).await?;
        let Some(theirs) = store.agent(&standing.agent).await? else {
            return Err(StoreError::unknown_agent(&standing.agent));
        };
        return widen(server, theirs, granted).await;
    }
    server
        .record(
            AuditEvent::new(server.now(), AuditAction::AgentCreated, Outcome::Success)
                .agent(agent.id.clone())
                .actor(user.clone())
                .detail(format!("connection of client {}", client.id)),
        )
        .await;
    Ok(agent)
}

/// The connection's agent with a policy that holds `granted` (what was granted before stays:
/// tokens and refresh tokens issued under it keep working).
async fn widen<B: Backend>(
    server: &Authority<B>,
    agent: Agent,
    granted: &CapabilitySet,
) -> Result<Agent, StoreError> {
    let wider = match agent.policy.allowed() {
        Some(allowed) if !allowed.covers_all(granted) => union(allowed, granted),
        _ => return Ok(agent),
    };
    let policy = Policy::allow(wider).with_deny(agent.policy.denied().clone());
    let changed = server.store().set_agent_policy(&agent.id, policy).await?;
    server
        .record(
            AuditEvent::new(
                server.now(),
                AuditAction::AgentPolicyChanged,
                Outcome::Success,
            )
            .agent(changed.id.clone())
            .actor(changed.owner.clone())
            .detail(format!(
                "consent widened it to {}",
                scope::to_scope(granted)
            )),
        )
        .await;
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_slugs_are_slugs() {
        let slug = connection_slug("Claude Code (MCP) — beta").unwrap();
        assert!(slug.starts_with("claude-code-mcp-beta-"), "{slug}");
        assert!(crate::token::valid_slug(&slug), "{slug}");
        let slug = connection_slug("???").unwrap();
        assert!(slug.starts_with("client-") && crate::token::valid_slug(&slug));
        let long = connection_slug(&"x".repeat(200)).unwrap();
        assert!(crate::token::valid_slug(&long), "{long}");
    }
}
