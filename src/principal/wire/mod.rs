//! The compact, versioned JSON encoding of a [`Principal`] that a shared second-level cache
//! stores (see `cache::RedisSecondLevel`). It holds no secret — ids, slugs, capability patterns,
//! the task's words — and every field of [`ExecutionPrincipal`], so a decoded principal admits
//! exactly what the encoded one did.
//!
//! Version 2 is an object with short keys; absent or `null` means "none":
//!
//! | key | field |
//! |---|---|
//! | `v` | `2` |
//! | `u` | the user id |
//! | `a` | the agent: `{"i": id, "s": slug, "y": type, "p": parent, "sc": [scopes], "md": [modes]}` |
//! | `s` | the source (`session`, `agent_token`, `delegated`) |
//! | `t` | the token id |
//! | `c` | the ceiling's layers, owner role first: `[source, [allow] or null, [deny]]` |
//! | `d` | the delegation chain: `[{"a": agent, "t": token id}]` |
//! | `ti` | the task id |
//! | `k` | the task scope: `{"ti", "in", "or", "en", "eoc", "mo", "db"}` |
//! | `o` | the orchestrator (an agent) |
//! | `m` | the use limit |
//! | `x` | expires at: `[unix seconds, nanoseconds]` |
//! | `r` | the audience: the resource the token is bound to |
//! | `ci` | the OAuth client the token was issued to |
//!
//! Version 1 had no `r` and `ci`. An entry of version 1 is a miss, not a principal without an
//! audience: a node of an older build may have written it for a token bound to a resource, and
//! reading it as unbound would let the token pass a layer bound to another.
//!
//! [`decode`] gives `None` for anything it cannot read in full — another version, a missing
//! field, a pattern that does not parse, a ceiling not bounded by an owner role first — so a
//! damaged or foreign entry is a cache miss, never a panic and never a different principal.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::{
    AgentId, AgentRef, AgentType, AuthSource, DelegationLink, ExecutionPrincipal, NameSet,
    Principal, TaskScope, TokenId, UserId,
};
use crate::ceiling::{CapabilityCeiling, CapabilitySet, LayerSource, Policy};

/// The version [`encode`] writes and [`decode`] reads.
const VERSION: u64 = 2;

/// The principal as version-2 JSON bytes.
pub(crate) fn encode(principal: &ExecutionPrincipal) -> Vec<u8> {
    let mut object = Map::new();
    object.insert("v".into(), json!(VERSION));
    object.insert("u".into(), json!(principal.user_id.as_str()));
    if let Some(agent) = &principal.agent {
        object.insert("a".into(), agent_value(agent));
    }
    object.insert("s".into(), json!(principal.source.as_str()));
    if let Some(token) = &principal.token_id {
        object.insert("t".into(), json!(token.as_str()));
    }
    let layers: Vec<Value> = principal
        .ceiling
        .layers()
        .map(|(source, policy)| {
            json!([
                layer_name(*source),
                policy.allowed().map(CapabilitySet::to_strings),
                policy.denied().to_strings(),
            ])
        })
        .collect();
    object.insert("c".into(), Value::Array(layers));
    if !principal.delegation.is_empty() {
        let links: Vec<Value> = principal
            .delegation
            .iter()
            .map(|link| json!({"a": agent_value(&link.agent), "t": link.token.as_str()}))
            .collect();
        object.insert("d".into(), Value::Array(links));
    }
    if let Some(task_id) = &principal.task_id {
        object.insert("ti".into(), json!(&**task_id));
    }
    if let Some(task) = &principal.task {
        object.insert(
            "k".into(),
            json!({
                "ti": task.task_id.as_deref(),
                "in": task.intent.as_deref(),
                "or": task.orchestrator.as_ref().map(AgentId::as_str),
                "en": task.environment.as_deref(),
                "eoc": task.expires_on_completion,
                "mo": task.max_operations,
                "db": task.delegated_by.as_ref().map(UserId::as_str),
            }),
        );
    }
    if let Some(orchestrator) = &principal.orchestrator {
        object.insert("o".into(), agent_value(orchestrator));
    }
    if let Some(n) = principal.max_operations {
        object.insert("m".into(), json!(n));
    }
    if let Some(at) = principal.expires_at {
        let nanos = at.unix_timestamp_nanos();
        let seconds = nanos.div_euclid(1_000_000_000) as i64;
        let rest = nanos.rem_euclid(1_000_000_000) as u32;
        object.insert("x".into(), json!([seconds, rest]));
    }
    if let Some(audience) = &principal.audience {
        object.insert("r".into(), json!(&**audience));
    }
    if let Some(client) = &principal.client_id {
        object.insert("ci".into(), json!(&**client));
    }
    // Serialising a `Value` built of strings, numbers and arrays cannot fail.
    serde_json::to_vec(&Value::Object(object)).unwrap_or_default()
}

/// The principal `bytes` encode, or `None` when they are not a complete version-2 encoding.
pub(crate) fn decode(bytes: &[u8]) -> Option<Principal> {
    let value: Value = serde_json::from_slice(bytes).ok()?;
    let object = value.as_object()?;
    if object.get("v")?.as_u64()? != VERSION {
        return None;
    }
    let user_id = UserId::new(object.get("u")?.as_str()?);
    let agent = optional(object, "a", agent_from)?;
    let source = match object.get("s")?.as_str()? {
        "session" => AuthSource::Session,
        "agent_token" => AuthSource::AgentToken,
        "delegated" => AuthSource::Delegated,
        _ => return None,
    };
    let token_id = optional(object, "t", |v| v.as_str().map(TokenId::new))?;
    let ceiling = ceiling_from(object.get("c")?)?;
    let delegation = optional(object, "d", |v| {
        v.as_array()?
            .iter()
            .map(|link| {
                let link = link.as_object()?;
                Some(DelegationLink::new(
                    agent_from(link.get("a")?)?,
                    link.get("t")?.as_str()?,
                ))
            })
            .collect::<Option<Vec<_>>>()
    })?
    .unwrap_or_default();
    let task_id = optional(object, "ti", text)?;
    let task = optional(object, "k", |v| {
        let task = v.as_object()?;
        let scope = TaskScope {
            task_id: optional(task, "ti", text)?,
            intent: optional(task, "in", text)?,
            orchestrator: optional(task, "or", |v| v.as_str().map(AgentId::new))?,
            environment: optional(task, "en", text)?,
            expires_on_completion: task.get("eoc")?.as_bool()?,
            max_operations: optional(task, "mo", Value::as_u64)?,
            delegated_by: optional(task, "db", |v| v.as_str().map(UserId::new))?,
        };
        Some(Arc::new(scope))
    })?;
    let orchestrator = optional(object, "o", agent_from)?;
    let max_operations = optional(object, "m", Value::as_u64)?;
    let expires_at = optional(object, "x", |v| {
        let [seconds, nanos] = v.as_array()?.as_slice() else {
            return None;
        };
        let nanos = nanos.as_u64().filter(|n| *n < 1_000_000_000)?;
        let total = i128::from(seconds.as_i64()?) * 1_000_000_000 + i128::from(nanos);
        time::OffsetDateTime::from_unix_timestamp_nanos(total).ok()
    })?;
    let audience = optional(object, "r", text)?;
    let client_id = optional(object, "ci", text)?;
    // What the constructors guarantee, a decoded principal holds too.
    if agent.is_none()
        && (source != AuthSource::Session
            || !delegation.is_empty()
            || orchestrator.is_some()
            || audience.is_some()
            || client_id.is_some())
    {
        return None;
    }
    if agent.is_some() != token_id.is_some()
        || (source == AuthSource::Delegated) == delegation.is_empty()
    {
        return None;
    }
    Some(Principal::new(ExecutionPrincipal {
        user_id,
        agent,
        source,
        token_id,
        ceiling,
        delegation: delegation.into(),
        task_id,
        task,
        orchestrator,
        max_operations,
        expires_at,
        audience,
        client_id,
    }))
}

/// `Some(None)` when `key` is absent or `null`, `Some(Some(_))` when `read` reads it, `None`
/// when it cannot.
fn optional<T>(
    object: &Map<String, Value>,
    key: &str,
    read: impl FnOnce(&Value) -> Option<T>,
) -> Option<Option<T>> {
    match object.get(key) {
        None | Some(Value::Null) => Some(None),
        Some(value) => read(value).map(Some),
    }
}

fn text(value: &Value) -> Option<Arc<str>> {
    value.as_str().map(Arc::from)
}

fn agent_value(agent: &AgentRef) -> Value {
    fn names(set: &Option<NameSet>) -> Option<Vec<&String>> {
        set.as_ref().map(|s| s.iter().collect())
    }
    json!({
        "i": agent.id.as_str(),
        "s": &*agent.slug,
        "y": agent.agent_type.as_str(),
        "p": agent.parent.as_ref().map(AgentId::as_str),
        "sc": names(&agent.scopes),
        "md": names(&agent.modes),
    })
}

fn agent_from(value: &Value) -> Option<AgentRef> {
    let agent = value.as_object()?;
    let names = |v: &Value| {
        v.as_array()?
            .iter()
            .map(|name| name.as_str().map(str::to_owned))
            .collect::<Option<BTreeSet<String>>>()
            .map(Arc::new)
    };
    Some(
        AgentRef::new(agent.get("i")?.as_str()?, agent.get("s")?.as_str()?)
            .with_type(AgentType::parse(agent.get("y")?.as_str()?)?)
            .with_parent(optional(agent, "p", |v| v.as_str().map(AgentId::new))?)
            .with_scopes(optional(agent, "sc", names)?)
            .with_modes(optional(agent, "md", names)?),
    )
}

fn ceiling_from(value: &Value) -> Option<CapabilityCeiling> {
    let mut layers = value.as_array()?.iter().map(|layer| {
        let [source, allow, deny] = layer.as_array()?.as_slice() else {
            return None;
        };
        let source = layer_source(source.as_str()?)?;
        let patterns = |v: &Value| {
            let patterns = v
                .as_array()?
                .iter()
                .map(Value::as_str)
                .collect::<Option<Vec<_>>>()?;
            CapabilitySet::parse(patterns).ok()
        };
        let policy = match allow {
            Value::Null => Policy::unrestricted(),
            allow => Policy::allow(patterns(allow)?),
        };
        Some((source, policy.with_deny(patterns(deny)?)))
    });
    let (LayerSource::OwnerRole, owner) = layers.next()?? else {
        return None;
    };
    layers.try_fold(CapabilityCeiling::new(Arc::new(owner)), |ceiling, layer| {
        let (source, policy) = layer?;
        Some(ceiling.narrowed_by(source, Arc::new(policy)))
    })
}

const LAYERS: [(LayerSource, &str); 9] = [
    (LayerSource::OwnerRole, "owner_role"),
    (LayerSource::AgentPolicy, "agent_policy"),
    (LayerSource::ParentAgentPolicy, "parent_agent_policy"),
    (LayerSource::Token, "token"),
    (LayerSource::DelegatorAgentPolicy, "delegator_agent_policy"),
    (
        LayerSource::DelegatorParentAgentPolicy,
        "delegator_parent_agent_policy",
    ),
    (LayerSource::DelegatorToken, "delegator_token"),
    (LayerSource::OrchestratorPolicy, "orchestrator_policy"),
    (LayerSource::DelegatingUserRole, "delegating_user_role"),
];

fn layer_name(source: LayerSource) -> &'static str {
    LAYERS
        .iter()
        .find(|(s, _)| *s == source)
        .map_or("unknown", |(_, name)| name)
}

fn layer_source(name: &str) -> Option<LayerSource> {
    LAYERS.iter().find(|(_, n)| *n == name).map(|(s, _)| *s)
}

#[cfg(test)]
mod tests;
