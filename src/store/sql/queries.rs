//! Every statement the stores run, in one placeholder style (`$1, $2, …`) for both databases.
//!
//! Column lists are written once, in the macros below, and read back by name (see
//! [`rows`](super::rows)). In the resolve query, which joins a token with its agent and the
//! agent's parent, each table's columns carry the prefix of its role (`token_`, `agent_`,
//! `parent_`), so that no name is ambiguous and no position matters.

/// Calls `$then!` with the columns of `agent_auth_agents`.
macro_rules! agent_columns {
    ($then:ident!($($args:tt)*)) => {
        $then!($($args)* id, slug, owner, agent_type, status, policy, created_at, expires_at,
            parent_id, scopes, modes, last_used_at, last_rotated_at)
    };
}

/// Calls `$then!` with the columns of `agent_auth_tokens` a [`TokenInfo`](crate::store::TokenInfo)
/// is read from.
macro_rules! token_columns {
    ($then:ident!($($args:tt)*)) => {
        $then!($($args)* id, agent_id, display_prefix, label, capabilities, created_at,
            created_by, expires_at, last_used_at, revoked_at, max_operations,
            operations_remaining, expires_on_completion, task_id, intent)
    };
}

/// `a, b, c`
macro_rules! list {
    ($first:ident $(, $column:ident)*) => {
        concat!(stringify!($first) $(, ", ", stringify!($column))*)
    };
}

/// `$1, $2, …` for as many parameters as columns.
macro_rules! params {
    ($($column:ident),*) => {
        params!(@ [] [1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20] $($column)*)
    };
    (@ [$($done:literal)*] [$n:literal $($rest:literal)*] $column:ident $($more:ident)*) => {
        params!(@ [$($done)* $n] [$($rest)*] $($more)*)
    };
    (@ [$first:literal $($done:literal)*] [$($rest:literal)*]) => {
        concat!("$", $first $(, ", $", $done)*)
    };
}

/// `t.a AS token_a, t.b AS token_b, …`
macro_rules! aliased {
    ($table:literal, $prefix:literal, $first:ident $(, $column:ident)*) => {
        concat!(
            $table, ".", stringify!($first), " AS ", $prefix, stringify!($first)
            $(, ", ", $table, ".", stringify!($column), " AS ", $prefix, stringify!($column))*
        )
    };
}

pub(crate) const INSERT_AGENT: &str = concat!(
    "INSERT INTO agent_auth_agents (",
    agent_columns!(list!()),
    ") VALUES (",
    agent_columns!(params!()),
    ")"
);
pub(crate) const AGENT_BY_ID: &str = concat!(
    "SELECT ",
    agent_columns!(list!()),
    " FROM agent_auth_agents WHERE id = $1"
);
pub(crate) const AGENT_BY_SLUG: &str = concat!(
    "SELECT ",
    agent_columns!(list!()),
    " FROM agent_auth_agents WHERE slug = $1"
);
pub(crate) const LIST_AGENTS: &str = concat!(
    "SELECT ",
    agent_columns!(list!()),
    " FROM agent_auth_agents ORDER BY slug"
);
pub(crate) const CHILDREN: &str = concat!(
    "SELECT ",
    agent_columns!(list!()),
    " FROM agent_auth_agents WHERE parent_id = $1 ORDER BY slug"
);
pub(crate) const SET_AGENT_STATUS: &str = concat!(
    "UPDATE agent_auth_agents SET status = $1 WHERE id = $2 RETURNING ",
    agent_columns!(list!())
);
pub(crate) const SET_AGENT_POLICY: &str = concat!(
    "UPDATE agent_auth_agents SET policy = $1 WHERE id = $2 RETURNING ",
    agent_columns!(list!())
);
/// An agent's children go with it, grants and tokens first: none may outlive the parent that
/// bounds it. Each statement takes the agent's id.
pub(crate) const DELETE_AGENT: [&str; 6] = [
    "DELETE FROM agent_auth_grants WHERE agent_id IN \
     (SELECT id FROM agent_auth_agents WHERE parent_id = $1)",
    "DELETE FROM agent_auth_tokens WHERE agent_id IN \
     (SELECT id FROM agent_auth_agents WHERE parent_id = $1)",
    "DELETE FROM agent_auth_agents WHERE parent_id = $1",
    "DELETE FROM agent_auth_grants WHERE agent_id = $1",
    "DELETE FROM agent_auth_tokens WHERE agent_id = $1",
    "DELETE FROM agent_auth_agents WHERE id = $1",
];
pub(crate) const MARK_ROTATED: &str =
    "UPDATE agent_auth_agents SET last_rotated_at = $1 WHERE id = $2";

pub(crate) const INSERT_TOKEN: &str = concat!(
    "INSERT INTO agent_auth_tokens (hash, ",
    token_columns!(list!()),
    ") VALUES (",
    token_columns!(params!(hash,)),
    ")"
);
pub(crate) const LIST_TOKENS: &str = concat!(
    "SELECT ",
    token_columns!(list!()),
    " FROM agent_auth_tokens WHERE agent_id = $1 ORDER BY created_at, id"
);
pub(crate) const GET_TOKEN: &str = concat!(
    "SELECT ",
    token_columns!(list!()),
    " FROM agent_auth_tokens WHERE agent_id = $1 AND id = $2"
);
pub(crate) const REVOKE_TOKEN: &str = concat!(
    "UPDATE agent_auth_tokens SET revoked_at = COALESCE(revoked_at, $1) \
     WHERE agent_id = $2 AND id = $3 RETURNING ",
    token_columns!(list!())
);
pub(crate) const REVOKE_ALL_TOKENS: &str = "UPDATE agent_auth_tokens SET revoked_at = $1 \
     WHERE agent_id = $2 AND revoked_at IS NULL";
/// Only if still live: two concurrent rotations of one token cannot both succeed.
/// Only if still live, and only if no use was reserved since its uses were read ($6, -1 for a
/// token without a limit): the uses left move to the new token, counted on one side only. Two
/// concurrent rotations of one token cannot both succeed.
pub(crate) const RETIRE_ROTATED: &str = "UPDATE agent_auth_tokens SET expires_at = $1, revoked_at = $2, \
     operations_remaining = CASE WHEN operations_remaining IS NULL THEN NULL ELSE 0 END \
     WHERE agent_id = $3 AND id = $4 AND revoked_at IS NULL \
     AND (expires_at IS NULL OR expires_at > $5) \
     AND COALESCE(operations_remaining, -1) = $6";
pub(crate) const PURGE: &str = "DELETE FROM agent_auth_tokens \
     WHERE (revoked_at IS NOT NULL AND revoked_at < $1) \
     OR (expires_at IS NOT NULL AND expires_at < $1)";

/// The token with its agent and, for a child identity, its parent: the parent's status, expiry
/// and policy bound the child.
pub(crate) const RESOLVE: &str = concat!(
    "SELECT ",
    token_columns!(aliased!("t", "token_",)),
    ", t.operations_in_flight AS token_operations_in_flight, ",
    agent_columns!(aliased!("a", "agent_",)),
    ", ",
    agent_columns!(aliased!("p", "parent_",)),
    " FROM agent_auth_tokens t \
     JOIN agent_auth_agents a ON a.id = t.agent_id \
     LEFT JOIN agent_auth_agents p ON p.id = a.parent_id WHERE t.hash = $1"
);
/// Atomic: of concurrent requests for the last use, exactly one gets a row.
pub(crate) const RESERVE: &str = "UPDATE agent_auth_tokens SET operations_remaining = operations_remaining - 1, \
     operations_in_flight = operations_in_flight + 1 \
     WHERE id = $1 AND operations_remaining > 0 AND revoked_at IS NULL \
     RETURNING operations_remaining";
/// Columns on the right of SET hold the values before the update: the last use in flight of a
/// spent token completes its task. `$1` is now, `$2` the token.
pub(crate) const SPEND: &str = "UPDATE agent_auth_tokens SET operations_in_flight = operations_in_flight - 1, \
     expires_at = CASE WHEN expires_on_completion AND operations_remaining = 0 \
     AND operations_in_flight = 1 THEN $1 ELSE expires_at END \
     WHERE id = $2 AND operations_in_flight > 0";
pub(crate) const RELEASE: &str = "UPDATE agent_auth_tokens SET operations_in_flight = operations_in_flight - 1, \
     operations_remaining = operations_remaining + 1 \
     WHERE id = $1 AND operations_in_flight > 0";
/// Both counts from one row version: a release moves a use from one to the other.
pub(crate) const USES: &str = "SELECT operations_remaining, operations_in_flight \
     FROM agent_auth_tokens WHERE id = $1";
/// The last-used time of a token and of its agent, if later than the stored one: `$1` the
/// time, `$2` the token.
pub(crate) const TOUCH: [&str; 2] = [
    "UPDATE agent_auth_tokens SET last_used_at = $1 \
     WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)",
    "UPDATE agent_auth_agents SET last_used_at = $1 \
     WHERE id = (SELECT agent_id FROM agent_auth_tokens WHERE id = $2) \
     AND (last_used_at IS NULL OR last_used_at < $1)",
];

pub(crate) const UPSERT_GRANT: &str = "INSERT INTO agent_auth_grants (agent_id, user_id, role, granted_at) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (agent_id, user_id) \
     DO UPDATE SET role = excluded.role, granted_at = excluded.granted_at";
pub(crate) const DELETE_GRANT: &str =
    "DELETE FROM agent_auth_grants WHERE agent_id = $1 AND user_id = $2";
pub(crate) const LIST_GRANTS: &str = "SELECT user_id, role, granted_at FROM agent_auth_grants \
     WHERE agent_id = $1 ORDER BY user_id";
pub(crate) const ROLE_OF: &str =
    "SELECT role FROM agent_auth_grants WHERE agent_id = $1 AND user_id = $2";

macro_rules! audit_columns {
    ($then:ident!($($args:tt)*)) => {
        $then!($($args)* at, identity, parent_identity, credential, actor, delegation_chain,
            action, outcome, reason, method, path, status, task_id, detail, occurrences)
    };
}
/// The columns of `agent_auth_audit_events` an event is stored in.
pub(crate) const AUDIT_COLUMNS: &str = audit_columns!(list!());
/// How many columns an event is stored in.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) const AUDIT_COLUMN_COUNT: usize = 15;

/// The columns of `agent_auth_approvals`, in insert order.
pub(crate) const APPROVAL_COLUMNS: &str = "id, binding, agent_id, owner, token_id, \
    delegation_chain, method, path, capability, details, binding_message, status, created_at, \
    expires_at, decided_by, decided_at, uses, uses_remaining";

pub(crate) const INSERT_APPROVAL: &str = "INSERT INTO agent_auth_approvals (id, binding, \
    agent_id, owner, token_id, delegation_chain, method, path, capability, details, \
    binding_message, status, created_at, expires_at, decided_by, decided_at, uses, \
    uses_remaining) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
    $16, $17, $18)";

/// A decision, made only while the approval is pending and unexpired (`$4` is now): the
/// database, not a read before, says whether it still is, so two deciders cannot both win.
pub(crate) const DECIDE_APPROVAL: &str = "UPDATE agent_auth_approvals SET status = $2, \
    decided_by = $3, decided_at = $4, uses = $5, uses_remaining = $5, \
    expires_at = COALESCE($6, expires_at) \
    WHERE id = $1 AND status = 'pending' AND expires_at > $4";

/// Spends one use of the oldest approved, unexpired approval with binding `$1` at `$2`, in
/// one statement: the conditions are checked again on the row it updates (PostgreSQL re-reads
/// a row another transaction changed meanwhile; SQLite has one writer), so a use is never
/// spent twice.
pub(crate) const CONSUME_APPROVAL: &str = "UPDATE agent_auth_approvals \
    SET uses_remaining = uses_remaining - 1, \
        status = CASE WHEN uses_remaining = 1 THEN 'used' ELSE status END \
    WHERE id = (SELECT id FROM agent_auth_approvals WHERE binding = $1 AND status = 'approved' \
        AND expires_at > $2 AND uses_remaining > 0 ORDER BY created_at, id LIMIT 1) \
      AND status = 'approved' AND expires_at > $2 AND uses_remaining > 0 \
    RETURNING id";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_parameters_match() {
        const AGENTS: &str = agent_columns!(list!());
        const TOKENS: &str = token_columns!(list!());
        assert_eq!(AGENTS.split(", ").count(), 13);
        assert_eq!(TOKENS.split(", ").count(), 15);
        assert_eq!(AUDIT_COLUMNS.split(", ").count(), AUDIT_COLUMN_COUNT);
        assert!(INSERT_AGENT.ends_with("$12, $13)"));
        assert!(INSERT_TOKEN.ends_with("$15, $16)"));
        assert!(RESOLVE.contains("a.slug AS agent_slug"));
        assert!(RESOLVE.contains("p.id AS parent_id, "));
        assert!(RESOLVE.contains("t.agent_id AS token_agent_id"));
        assert!(!RESOLVE.contains('?'));
    }
}
