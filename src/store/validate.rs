//! The checks of every request and the construction of the records a backend stores: written
//! once, so that every backend refuses the same input with the same error and stores the same
//! values.

use std::collections::BTreeSet;
use std::sync::Arc;

use time::OffsetDateTime;

use super::config::StoreConfig;
use super::model::{Agent, AgentStatus, AgentType, ImportedToken, NewAgent, NewToken, TokenInfo};
use crate::ceiling::{CapabilitySet, Policy};
use crate::error::{InputError, NotFound, StoreError, TokenError};
use crate::principal::{AgentId, TokenId};
use crate::token::{RawToken, TokenHash};

/// A management call naming `user` (an agent's owner, a grant's user) requires them to exist
/// in the directory. Every store calls this after it found the agent the call names, so that
/// the same request fails the same way everywhere: unknown agent first, then unknown user.
pub(crate) async fn existing_user(
    config: &StoreConfig,
    user: &crate::principal::UserId,
) -> Result<(), StoreError> {
    let found = config
        .directory
        .as_ref()
        .user(user)
        .await
        .map_err(StoreError::Unavailable)?;
    match found {
        Some(_) => Ok(()),
        None => Err(StoreError::NotFound(NotFound::User(user.to_string()))),
    }
}

/// The instant before which `purge` deletes: `older_than` before `now`; `None` for an
/// `older_than` longer than time itself (nothing is that old).
pub(crate) fn purge_cutoff(
    now: OffsetDateTime,
    older_than: std::time::Duration,
) -> Option<OffsetDateTime> {
    time::Duration::try_from(older_than)
        .ok()
        .and_then(|by| now.checked_sub(by))
}

/// Timestamps are kept to the microsecond, the precision every backend stores.
pub(crate) fn truncate(at: OffsetDateTime) -> OffsetDateTime {
    from_micros(micros(at))
}

/// Microseconds since the Unix epoch.
pub(crate) fn micros(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

/// The instant `micros` microseconds after the Unix epoch.
pub(crate) fn from_micros(micros: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `now + by`, refused rather than overflowing.
pub(crate) fn later(
    now: OffsetDateTime,
    by: std::time::Duration,
) -> Result<OffsetDateTime, StoreError> {
    time::Duration::try_from(by)
        .ok()
        .and_then(|by| now.checked_add(by))
        // Past what every backend stores (microseconds in an i64) is past "too far" too.
        .filter(|at| at.unix_timestamp_nanos() / 1_000 < i128::from(i64::MAX))
        .ok_or_else(|| {
            StoreError::Input(InputError::InvalidLifetime("too far in the future".into()))
        })
}

/// A token ready to be stored.
pub(crate) struct PreparedToken {
    pub(crate) raw: RawToken,
    pub(crate) hash: TokenHash,
    pub(crate) info: TokenInfo,
}

/// The most scopes, or modes, an agent may name.
pub const MAX_NAMES: usize = 64;
/// The most capability patterns one policy list (allow or deny) or one token may hold.
pub const MAX_CAPABILITIES: usize = 256;

fn validate_text(what: &str, text: &Option<String>, max: usize) -> Result<(), StoreError> {
    match text {
        Some(text) if text.len() > max || text.chars().any(is_hidden_char) => {
            Err(StoreError::invalid(format!(
                "{what}: at most {max} bytes, no control, invisible or bidirectional-override characters"
            )))
        }
        _ => Ok(()),
    }
}

/// A list of capability patterns a client set: bounded, so that a request cannot make every
/// later check of this agent's tokens slow.
fn bounded_capabilities(what: &str, set: &CapabilitySet) -> Result<(), StoreError> {
    let count = set.iter().count();
    if count > MAX_CAPABILITIES {
        return Err(StoreError::invalid(format!(
            "{what}: at most {MAX_CAPABILITIES} capability patterns, not {count}"
        )));
    }
    Ok(())
}

fn bounded_policy(policy: &Policy) -> Result<(), StoreError> {
    if let Some(allowed) = policy.allowed() {
        bounded_capabilities("policy allow", allowed)?;
    }
    bounded_capabilities("policy deny", policy.denied())
}

/// A new policy for an existing agent: bounded, and for a child within its parent's.
pub(crate) fn check_new_policy(policy: &Policy, parent: Option<&Agent>) -> Result<(), StoreError> {
    bounded_policy(policy)?;
    match (parent, policy.allowed()) {
        (Some(parent), Some(allowed)) => check_within_policy(&parent.policy, allowed),
        // A child allowing everything is still bounded by its parent at every request.
        _ => Ok(()),
    }
}

/// Token capabilities within the owner's role: the ceiling would drop anything else at every
/// request, so asking for more is a mistake to name now. An owner missing from the directory
/// is not judged here: every request of the token is refused for it anyway.
pub(crate) async fn within_owner_role(
    config: &StoreConfig,
    agent: &Agent,
    requested: Option<&CapabilitySet>,
) -> Result<(), StoreError> {
    let Some(requested) = requested else {
        return Ok(());
    };
    let owner = config
        .directory
        .as_ref()
        .user(&agent.owner)
        .await
        .map_err(StoreError::Unavailable)?;
    let Some(owner) = owner else {
        return Ok(());
    };
    let outside = outside_policy(owner.role(), requested);
    if outside.is_empty() {
        Ok(())
    } else {
        Err(StoreError::Input(InputError::CapabilitiesOutsideRole {
            user: agent.owner.to_string(),
            capabilities: outside.join(", "),
        }))
    }
}

fn outside_policy(policy: &Policy, requested: &CapabilitySet) -> Vec<String> {
    requested
        .iter()
        .filter(|pattern| {
            policy.allowed().is_some_and(|allow| !allow.covers(pattern))
                || policy.denied().covers(pattern)
        })
        .map(|pattern| pattern.to_string())
        .collect()
}

/// Refuses token capabilities that the agent's policy does not cover.
pub(crate) fn check_within_policy(
    policy: &Policy,
    requested: &CapabilitySet,
) -> Result<(), StoreError> {
    let outside = outside_policy(policy, requested);
    if outside.is_empty() {
        Ok(())
    } else {
        Err(StoreError::Input(InputError::CapabilitiesOutsidePolicy(
            outside.join(", "),
        )))
    }
}

/// Scope and mode names: short, printable, and free of the `,` that lists on the command line
/// are split on.
fn validate_names(what: &str, names: &Option<BTreeSet<String>>) -> Result<(), StoreError> {
    let count = names.as_ref().map_or(0, BTreeSet::len);
    if count > MAX_NAMES {
        return Err(StoreError::invalid(format!(
            "{what}s: at most {MAX_NAMES}, not {count}"
        )));
    }
    let bad = names.iter().flatten().find(|name| {
        name.is_empty()
            || name.len() > 100
            || name.contains(',')
            || name.chars().any(is_hidden_char)
    });
    match bad {
        Some(name) => Err(StoreError::invalid(format!(
            "{what} {name:?}: 1-100 bytes, no commas, control, invisible or bidirectional-override characters"
        ))),
        None => Ok(()),
    }
}

/// The child's set, which must lie within the parent's; a child that names none inherits the
/// parent's.
fn within_parent(
    what: &str,
    child: Option<BTreeSet<String>>,
    parent: &Option<Arc<BTreeSet<String>>>,
) -> Result<Option<BTreeSet<String>>, StoreError> {
    match (child, parent) {
        (None, parent) => Ok(parent.as_deref().cloned()),
        (Some(child), None) => Ok(Some(child)),
        (Some(child), Some(parent)) => {
            let outside: Vec<&str> = child
                .iter()
                .filter(|name| !parent.contains(*name))
                .map(String::as_str)
                .collect();
            if outside.is_empty() {
                Ok(Some(child))
            } else {
                Err(StoreError::invalid(format!(
                    "{what} outside the parent's: {}",
                    outside.join(", ")
                )))
            }
        }
    }
}

/// Checks `new` (against its parent, for a child identity) and builds the agent record. The
/// owner's existence is for the caller to check.
pub(crate) fn prepare_agent(
    config: &StoreConfig,
    new: NewAgent,
    parent: Option<&Agent>,
) -> Result<Agent, StoreError> {
    if !crate::token::valid_slug(&new.slug) {
        return Err(StoreError::Input(InputError::InvalidSlug(
            super::shortened(&new.slug),
        )));
    }
    validate_names("scope", &new.scopes)?;
    validate_names("mode", &new.modes)?;
    bounded_policy(&new.policy)?;
    let now = truncate(config.clock.now());
    let mut expires_at = match new.expires_in {
        Some(ttl) if ttl.is_zero() => {
            return Err(StoreError::Input(InputError::InvalidLifetime(
                "an agent lifetime must be longer than zero".into(),
            )));
        }
        Some(ttl) => Some(later(now, ttl)?),
        None => new.expires_at.map(truncate),
    };
    if expires_at.is_some_and(|at| at <= now) {
        return Err(StoreError::Input(InputError::InvalidLifetime(
            "the agent would already be expired".into(),
        )));
    }
    let (owner, scopes, modes) = match parent {
        None => (
            new.owner
                .ok_or_else(|| StoreError::invalid("an agent needs an owner"))?,
            new.scopes,
            new.modes,
        ),
        Some(parent) => {
            // Its task tokens would carry neither its parent's policy nor its parent's status.
            if new.orchestrator {
                return Err(
                    crate::error::DelegationError::OrchestratorIsChild(super::shortened(&new.slug))
                        .into(),
                );
            }
            if parent.parent.is_some() {
                return Err(StoreError::invalid(
                    "a child identity cannot have children of its own",
                ));
            }
            if parent.status == AgentStatus::Disabled
                || parent.expires_at.is_some_and(|at| at <= now)
            {
                return Err(StoreError::invalid(format!(
                    "the parent identity {:?} is disabled or expired",
                    parent.slug
                )));
            }
            if new
                .owner
                .as_ref()
                .is_some_and(|owner| *owner != parent.owner)
            {
                return Err(StoreError::invalid(
                    "a child identity acts for its parent's owner",
                ));
            }
            if let Some(allowed) = new.policy.allowed() {
                check_within_policy(&parent.policy, allowed)?;
            }
            match (expires_at, parent.expires_at) {
                (Some(child), Some(parent)) if child > parent => {
                    return Err(StoreError::Input(InputError::InvalidLifetime(
                        "a child identity cannot outlive its parent".into(),
                    )));
                }
                (None, Some(parent)) => expires_at = Some(parent),
                _ => {}
            }
            (
                parent.owner.clone(),
                within_parent("scopes", new.scopes, &parent.scopes)?,
                within_parent("modes", new.modes, &parent.modes)?,
            )
        }
    };
    // A child of a supervised agent is supervised whatever type it was asked with: its
    // critical actions wait for the person its parent's do.
    let agent_type = match parent {
        Some(parent) if parent.agent_type == AgentType::Supervised => AgentType::Supervised,
        _ => new.agent_type,
    };
    Ok(Agent {
        id: AgentId::new(random_id("agt")?),
        slug: new.slug.into(),
        owner,
        agent_type,
        status: AgentStatus::Active,
        policy: Arc::new(new.policy),
        created_at: now,
        expires_at,
        parent: parent.map(|p| p.id.clone()),
        scopes: scopes.map(Arc::new),
        modes: modes.map(Arc::new),
        last_used_at: None,
        last_rotated_at: None,
        is_orchestrator: new.orchestrator,
    })
}

/// Token capabilities must lie within the agent's policy and, for a child identity, its
/// parent's: a clear error now rather than a silent narrowing at every request.
fn check_capabilities(
    agent: &Agent,
    parent: Option<&Agent>,
    requested: &CapabilitySet,
) -> Result<(), StoreError> {
    check_within_policy(&agent.policy, requested)?;
    match parent {
        Some(parent) => check_within_policy(&parent.policy, requested),
        None => Ok(()),
    }
}

/// Checks `new` against the agent and the configuration, and mints the token.
pub(crate) fn prepare_token(
    config: &StoreConfig,
    agent: &Agent,
    parent: Option<&Agent>,
    new: NewToken,
) -> Result<PreparedToken, StoreError> {
    validate_label(&new.label)?;
    validate_text("task id", &new.task_id, 200)?;
    validate_text("intent", &new.intent, 1000)?;
    validate_text("environment", &new.environment, 200)?;
    validate_text("resource", &new.resource, 2000)?;
    validate_text("client id", &new.client_id, 2000)?;
    // Every backend counts uses in a signed 64-bit integer: a larger limit is refused, not
    // silently clamped.
    if new
        .max_operations
        .is_some_and(|n| n == 0 || i64::try_from(n).is_err())
    {
        return Err(StoreError::invalid(format!(
            "max_operations must be 1 to {}",
            i64::MAX
        )));
    }
    if new.expires_on_completion && new.max_operations.is_none() {
        return Err(StoreError::invalid(
            "expires_on_completion needs max_operations: completion is the last operation",
        ));
    }
    if let Some(requested) = &new.capabilities {
        if requested.is_empty() {
            return Err(StoreError::invalid(
                "capabilities: an empty list would make a token that may do nothing; leave it out \
                 for the agent's whole ceiling",
            ));
        }
        bounded_capabilities("capabilities", requested)?;
        check_capabilities(agent, parent, requested)?;
    }
    let ttl = config
        .lifetimes
        .lifetime_for(agent.agent_type, new.expires_in)?;
    let now = truncate(config.clock.now());
    let mut expires_at = ttl.map(|ttl| later(now, ttl)).transpose()?;
    // A delegated token never outlives its delegator: absent or later, it gets its expiry.
    if let Some(by) = new.lineage.expires_by {
        expires_at = Some(expires_at.map_or(by, |at| at.min(by)));
    }
    let raw = config.format.mint(&agent.slug)?;
    let hash = raw.hash();
    let info = TokenInfo {
        id: TokenId::new(random_id("tok")?),
        agent_id: agent.id.clone(),
        display_prefix: display_prefix(
            raw.expose_secret(),
            config.format.prefix().len(),
            agent.slug.len(),
        ),
        label: new.label,
        capabilities: new.capabilities,
        created_at: now,
        created_by: new.created_by,
        expires_at,
        last_used_at: None,
        revoked_at: None,
        task_completed_at: None,
        max_operations: new.max_operations,
        operations_remaining: new.max_operations,
        expires_on_completion: new.expires_on_completion,
        task_id: new.task_id,
        intent: new.intent,
        orchestrator: new.lineage.orchestrator,
        environment: new.environment,
        delegated_by: new.lineage.delegated_by,
        delegation_parent: new.lineage.parent,
        delegation_depth: new.lineage.depth,
        resource: new.resource,
        client_id: new.client_id,
    };
    Ok(PreparedToken { raw, hash, info })
}

/// Whether a token counts as live for a single-task agent: not revoked, not completed, not
/// expired.
pub(crate) fn is_live(info: &TokenInfo, now: OffsetDateTime) -> bool {
    info.is_live_at(now)
}

/// Checks an imported token against the agent and builds its record.
pub(crate) fn prepare_import(
    config: &StoreConfig,
    agent: &Agent,
    parent: Option<&Agent>,
    imported: ImportedToken,
) -> Result<(TokenHash, TokenInfo), StoreError> {
    validate_label(&imported.label)?;
    if let Some(requested) = &imported.capabilities {
        bounded_capabilities("capabilities", requested)?;
        check_capabilities(agent, parent, requested)?;
    }
    let now = truncate(config.clock.now());
    if imported.expires_at.is_some_and(|at| at <= now) {
        return Err(StoreError::Input(InputError::InvalidLifetime(
            "the imported token has already expired".into(),
        )));
    }
    let info = TokenInfo {
        id: TokenId::new(random_id("tok")?),
        agent_id: agent.id.clone(),
        display_prefix: format!("{}_{}_…", config.format.prefix(), agent.slug),
        label: imported.label,
        capabilities: imported.capabilities,
        created_at: truncate(imported.created_at.unwrap_or(now)),
        created_by: None,
        expires_at: imported.expires_at.map(truncate),
        last_used_at: None,
        revoked_at: None,
        task_completed_at: None,
        max_operations: None,
        operations_remaining: None,
        expires_on_completion: false,
        task_id: None,
        intent: None,
        orchestrator: None,
        environment: None,
        delegated_by: None,
        delegation_parent: None,
        delegation_depth: 0,
        resource: None,
        client_id: None,
    };
    Ok((imported.hash, info))
}

/// What rotating a token does to the old one.
pub(crate) struct PreparedRotation {
    pub(crate) new: PreparedToken,
    /// The old token's new expiry (never later than its own).
    pub(crate) old_expires_at: Option<OffsetDateTime>,
    /// Set when the grace period is zero: the old token is revoked now.
    pub(crate) old_revoked_at: Option<OffsetDateTime>,
}

/// A new token that keeps everything of `old` (label, capabilities, expiry, remaining
/// operations, task), and what becomes of `old`: it stays valid for `grace`, never past its own
/// expiry; a zero grace revokes it now.
pub(crate) fn prepare_rotation(
    config: &StoreConfig,
    agent: &Agent,
    old: &TokenInfo,
    grace: std::time::Duration,
) -> Result<PreparedRotation, StoreError> {
    let now = truncate(config.clock.now());
    if !is_live(old, now) {
        return Err(StoreError::invalid("only a live token can be rotated"));
    }
    if old.operations_remaining == Some(0) {
        return Err(StoreError::invalid("a spent token cannot be rotated"));
    }
    let raw = config.format.mint(&agent.slug)?;
    let hash = raw.hash();
    let info = TokenInfo {
        id: TokenId::new(random_id("tok")?),
        display_prefix: display_prefix(
            raw.expose_secret(),
            config.format.prefix().len(),
            agent.slug.len(),
        ),
        created_at: now,
        last_used_at: None,
        revoked_at: None,
        task_completed_at: None,
        max_operations: old.operations_remaining,
        ..old.clone()
    };
    let (old_expires_at, old_revoked_at) = if grace.is_zero() {
        (old.expires_at, Some(now))
    } else {
        let end = later(now, grace)?;
        (Some(old.expires_at.map_or(end, |at| at.min(end))), None)
    };
    Ok(PreparedRotation {
        new: PreparedToken { raw, hash, info },
        old_expires_at,
        old_revoked_at,
    })
}

/// A fresh random id such as `tok_3f9a…` (64 bits of CSPRNG output).
pub(crate) fn random_id(kind: &str) -> Result<String, StoreError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|_| StoreError::Token(TokenError::Entropy))?;
    Ok(format!("{kind}_{}", hex::encode(bytes)))
}

/// What lists show of a token: `{prefix}_{slug}_` and the first 8 hex digits.
pub(crate) fn display_prefix(token: &str, prefix_len: usize, slug_len: usize) -> String {
    let shown = (prefix_len + slug_len + 2 + 8).min(token.len());
    format!("{}…", &token[..shown])
}

/// Characters a person reading a label, a scope or an intent cannot see for what they are:
/// controls, bidirectional overrides and isolates (which reorder what is shown), and the
/// zero-width and other invisible format characters (which hide a difference).
pub(crate) fn is_hidden_char(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}'
            | '\u{17B5}' | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}' | '\u{FFF0}'..='\u{FFFB}'
            | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
}

pub(crate) fn validate_label(label: &str) -> Result<(), StoreError> {
    // A blank label says nothing in a list of tokens.
    if label.trim().is_empty() || label.len() > 200 || label.chars().any(is_hidden_char) {
        return Err(StoreError::Input(InputError::InvalidLabel));
    }
    Ok(())
}
