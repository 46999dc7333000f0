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
            parent_id, scopes, modes, last_used_at, last_rotated_at, orchestrator)
    };
}

/// Calls `$then!` with the columns of `agent_auth_tokens` a [`TokenInfo`](crate::store::TokenInfo)
/// is read from.
macro_rules! token_columns {
    ($then:ident!($($args:tt)*)) => {
        $then!($($args)* id, agent_id, display_prefix, label, capabilities, created_at,
            created_by, expires_at, last_used_at, revoked_at, max_operations,
            operations_remaining, expires_on_completion, task_id, intent, orchestrator,
            environment, delegated_by, delegation_parent, delegation_depth, completed_at)
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
        params!(@ [] [1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25] $($column)*)
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

/// The columns an agent is read from.
pub(crate) const AGENT_COLUMNS: &str = agent_columns!(list!());
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
     WHERE agent_id = $3 AND id = $4 AND revoked_at IS NULL AND completed_at IS NULL \
     AND (expires_at IS NULL OR expires_at > $5) \
     AND COALESCE(operations_remaining, -1) = $6";
/// The tokens [`PURGE`] deletes, as the condition on a token row.
macro_rules! purgeable {
    () => {
        "(revoked_at IS NOT NULL AND revoked_at < $1) \
         OR (completed_at IS NOT NULL AND completed_at < $1) \
         OR (expires_at IS NOT NULL AND expires_at < $1)"
    };
}
/// Deletes the tokens dead before `$1`; the tokens delegated from them go by the foreign key's
/// `ON DELETE CASCADE`, which the database does not count: [`PURGEABLE_TREE`] does.
pub(crate) const PURGE: &str = concat!("DELETE FROM agent_auth_tokens WHERE ", purgeable!());
/// How many tokens [`PURGE`] removes, the delegated ones included (`n`).
pub(crate) const PURGEABLE_TREE: &str = concat!(
    "WITH RECURSIVE tree(id) AS (SELECT id FROM agent_auth_tokens WHERE ",
    purgeable!(),
    " UNION SELECT d.id FROM agent_auth_tokens d JOIN tree ON d.delegation_parent = tree.id) \
     SELECT COUNT(*) AS n FROM tree"
);

/// The columns of a resolve row: the token, its agent, the agent's parent (for a child
/// identity) and the orchestrator that minted the token (for a task token).
macro_rules! resolve_select {
    () => {
        concat!(
            "SELECT ",
            token_columns!(aliased!("t", "token_",)),
            ", t.operations_in_flight AS token_operations_in_flight, ",
            agent_columns!(aliased!("a", "agent_",)),
            ", ",
            agent_columns!(aliased!("p", "parent_",)),
            ", ",
            agent_columns!(aliased!("o", "orchestrator_",)),
        )
    };
}

/// The token with its agent and, for a child identity, its parent: the parent's status, expiry
/// and policy bound the child.
pub(crate) const RESOLVE: &str = concat!(
    resolve_select!(),
    " FROM agent_auth_tokens t \
     JOIN agent_auth_agents a ON a.id = t.agent_id \
     LEFT JOIN agent_auth_agents p ON p.id = a.parent_id \
     LEFT JOIN agent_auth_agents o ON o.id = t.orchestrator WHERE t.hash = $1"
);
/// The tokens a delegated token `$1` was delegated from, each with the same columns as
/// [`RESOLVE`], nearest first (`chain_step` 1 is the delegator), at most
/// [`MAX_DELEGATION_DEPTH_LIMIT`](crate::store::MAX_DELEGATION_DEPTH_LIMIT) (64) of them. An ancestor that is gone ends
/// the walk: the pipeline then finds the chain shorter than the token's depth and refuses it.
pub(crate) const DELEGATORS: &str = concat!(
    "WITH RECURSIVE chain(id, step) AS ( \
     SELECT delegation_parent, 1 FROM agent_auth_tokens \
     WHERE id = $1 AND delegation_parent IS NOT NULL \
     UNION ALL SELECT d.delegation_parent, c.step + 1 FROM agent_auth_tokens d \
     JOIN chain c ON d.id = c.id WHERE d.delegation_parent IS NOT NULL AND c.step < 64) ",
    resolve_select!(),
    ", c.step AS chain_step FROM chain c JOIN agent_auth_tokens t ON t.id = c.id \
     JOIN agent_auth_agents a ON a.id = t.agent_id \
     LEFT JOIN agent_auth_agents p ON p.id = a.parent_id \
     LEFT JOIN agent_auth_agents o ON o.id = t.orchestrator ORDER BY c.step"
);
/// `$1` and every token it was delegated from, for a statement to act on the whole chain.
macro_rules! chain_of {
    ($param:literal) => {
        concat!(
            "(WITH RECURSIVE chain(id, step) AS (SELECT CAST(",
            $param,
            " AS TEXT), 0 UNION ALL SELECT d.delegation_parent, c.step + 1 \
             FROM agent_auth_tokens d JOIN chain c ON d.id = c.id \
             WHERE d.delegation_parent IS NOT NULL AND c.step < 64) SELECT id FROM chain)"
        )
    };
}
/// `$1` and every token delegated from it, below and below that.
macro_rules! tree_of {
    ($param:literal) => {
        concat!(
            "(WITH RECURSIVE tree(id) AS (SELECT CAST(",
            $param,
            " AS TEXT) UNION SELECT d.id FROM agent_auth_tokens d \
             JOIN tree ON d.delegation_parent = tree.id) SELECT id FROM tree)"
        )
    };
}
/// Revokes a token (`$3`, of the agent `$2`) and every token delegated from it, at `$1`.
pub(crate) const REVOKE_TREE: &str = concat!(
    "UPDATE agent_auth_tokens SET revoked_at = $1 WHERE revoked_at IS NULL AND id IN ",
    tree_of!("$3"),
    " AND EXISTS (SELECT 1 FROM agent_auth_tokens r WHERE r.id = $3 AND r.agent_id = $2)"
);
/// Ends, at `$1`, every live token of the owner `$2`'s agents with the task id `$3` and every
/// token delegated from one.
pub(crate) const COMPLETE_TASK: &str = "WITH RECURSIVE tree(id) AS ( \
     SELECT t.id FROM agent_auth_tokens t JOIN agent_auth_agents a ON a.id = t.agent_id \
     WHERE a.owner = $2 AND t.task_id = $3 \
     UNION SELECT d.id FROM agent_auth_tokens d JOIN tree ON d.delegation_parent = tree.id) \
     UPDATE agent_auth_tokens SET completed_at = $1 WHERE id IN (SELECT id FROM tree) \
     AND revoked_at IS NULL AND completed_at IS NULL AND (expires_at IS NULL OR expires_at > $1)";
/// Locks the agent `$1`'s row until the transaction ends (changes nothing): what serializes
/// the single-task check of concurrent mints for one agent.
pub(crate) const LOCK_AGENT: &str = "UPDATE agent_auth_agents SET status = status WHERE id = $1";
/// The task ids of the live tokens of agent `$1` at `$2`.
pub(crate) const LIVE_TASKS: &str = "SELECT DISTINCT task_id FROM agent_auth_tokens \
     WHERE agent_id = $1 AND task_id IS NOT NULL AND revoked_at IS NULL \
     AND completed_at IS NULL AND (expires_at IS NULL OR expires_at > $2)";
/// Atomic: of concurrent requests for the last use, exactly one gets a row.
pub(crate) const RESERVE: &str = "UPDATE agent_auth_tokens SET operations_remaining = operations_remaining - 1, \
     operations_in_flight = operations_in_flight + 1 \
     WHERE id = $1 AND operations_remaining > 0 AND revoked_at IS NULL \
     RETURNING operations_remaining";
/// The chain of a token as a statement's locked rows. Every statement that changes the use
/// counts of a chain takes its rows' locks in one order, the root first (a delegated token's
/// depth is one more than its parent's): a reservation (one `RESERVE` per limited link, root
/// first, in one transaction), a spend and a release. Two of them never wait for each other in
/// a circle, so PostgreSQL never breaks a deadlock by failing one (which lost uses). `FOR
/// UPDATE` takes the locks in the `ORDER BY`'s order; SQLite has one writer and needs none.
macro_rules! settle_chain {
    ($set:literal, $param:literal, $lock:literal) => {
        concat!(
            "WITH locked AS MATERIALIZED (SELECT id FROM agent_auth_tokens WHERE id IN ",
            chain_of!($param),
            " ORDER BY delegation_depth ",
            $lock,
            ") UPDATE agent_auth_tokens SET ",
            $set,
            " WHERE operations_in_flight > 0 AND id IN (SELECT id FROM locked)"
        )
    };
}
/// Spends the use in flight of every use-limited link of the chain of `$2` (a request under a
/// delegated token reserved one of each). Columns on the right of SET hold the values before
/// the update: the last use in flight of a spent token completes its task. `$1` is now.
macro_rules! spend {
    ($lock:literal) => {
        settle_chain!(
            "operations_in_flight = operations_in_flight - 1, \
             expires_at = CASE WHEN expires_on_completion AND operations_remaining = 0 \
             AND operations_in_flight = 1 THEN $1 ELSE expires_at END",
            "$2",
            $lock
        )
    };
}
/// Releases the use in flight of every use-limited link of the chain of `$1`.
macro_rules! release {
    ($lock:literal) => {
        settle_chain!(
            "operations_in_flight = operations_in_flight - 1, \
             operations_remaining = operations_remaining + 1",
            "$1",
            $lock
        )
    };
}
/// [`spend!`] as SQLite runs it (one writer: no row locks).
#[cfg(feature = "sqlite")]
pub(crate) const SPEND_SQLITE: &str = spend!("");
/// [`release!`] as SQLite runs it.
#[cfg(feature = "sqlite")]
pub(crate) const RELEASE_SQLITE: &str = release!("");
/// [`spend!`] as PostgreSQL runs it: the chain's rows locked root first.
#[cfg(feature = "postgres")]
pub(crate) const SPEND_POSTGRES: &str = spend!("FOR UPDATE");
/// [`release!`] as PostgreSQL runs it.
#[cfg(feature = "postgres")]
pub(crate) const RELEASE_POSTGRES: &str = release!("FOR UPDATE");
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
pub(crate) const GRANTS_ON_AGENT: &str = "SELECT agent_id, user_id, role, granted_at \
     FROM agent_auth_grants WHERE agent_id = $1 ORDER BY user_id";
pub(crate) const GRANTS_OF_USER: &str = "SELECT agent_id, user_id, role, granted_at \
     FROM agent_auth_grants WHERE user_id = $1 ORDER BY agent_id";
pub(crate) const GRANT_OF_USER_ON_AGENT: &str = "SELECT agent_id, user_id, role, granted_at \
     FROM agent_auth_grants WHERE agent_id = $1 AND user_id = $2";

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

/// The store's change epoch and the logged changes after `$1`, oldest first, at most `$2`, read
/// in one statement so that both come from one snapshot: no change logged is past the epoch
/// read. Without changes after `$1`, one row with the epoch and empty change columns.
pub(crate) const CHANGES_SINCE: &str = "SELECT e.epoch AS current_epoch, c.epoch AS epoch, \
     c.kind AS kind, c.id AS id FROM agent_auth_change_epoch e \
     LEFT JOIN (SELECT epoch, kind, id FROM agent_auth_changes WHERE epoch > $1 \
     ORDER BY epoch LIMIT $2) c ON 1 = 1 ORDER BY c.epoch";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_parameters_match() {
        const AGENTS: &str = agent_columns!(list!());
        const TOKENS: &str = token_columns!(list!());
        assert_eq!(AGENTS.split(", ").count(), 14);
        assert_eq!(TOKENS.split(", ").count(), 21);
        assert_eq!(AUDIT_COLUMNS.split(", ").count(), AUDIT_COLUMN_COUNT);
        assert!(INSERT_AGENT.ends_with("$13, $14)"));
        assert!(INSERT_TOKEN.ends_with("$21, $22)"));
        assert!(RESOLVE.contains("a.slug AS agent_slug"));
        assert!(RESOLVE.contains("p.id AS parent_id, "));
        assert!(RESOLVE.contains("t.agent_id AS token_agent_id"));
        assert!(!RESOLVE.contains('?'));
    }

    #[test]
    fn chain_walks_reach_the_deepest_chain_issued() {
        let limit = format!("c.step < {}", crate::store::MAX_DELEGATION_DEPTH_LIMIT);
        assert!(DELEGATORS.contains(&limit));
        assert!(chain_of!("$1").contains(&limit));
    }
}
