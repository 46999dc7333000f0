//! Versioned migrations embedded in the crate.

use sha2::{Digest, Sha256};

/// One schema change.
pub(crate) struct Migration {
    pub(crate) version: i64,
    pub(crate) description: &'static str,
    pub(crate) sql: &'static str,
}

impl Migration {
    /// SHA-256 of the SQL: a migration edited after it was applied is refused.
    pub(crate) fn checksum(&self) -> String {
        hex::encode(Sha256::digest(self.sql.as_bytes()))
    }
}

#[cfg(feature = "sqlite")]
pub(crate) const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        description: "agents and tokens",
        sql: include_str!("../../../migrations/sqlite/0001_agents_and_tokens.sql"),
    },
    Migration {
        version: 2,
        description: "access grants",
        sql: include_str!("../../../migrations/sqlite/0002_access_grants.sql"),
    },
    Migration {
        version: 3,
        description: "identities and audit",
        sql: include_str!("../../../migrations/sqlite/0003_identities_and_audit.sql"),
    },
    Migration {
        version: 4,
        description: "uses in flight",
        sql: include_str!("../../../migrations/sqlite/0004_uses_in_flight.sql"),
    },
];

#[cfg(feature = "postgres")]
pub(crate) const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        description: "agents and tokens",
        sql: include_str!("../../../migrations/postgres/0001_agents_and_tokens.sql"),
    },
    Migration {
        version: 2,
        description: "access grants",
        sql: include_str!("../../../migrations/postgres/0002_access_grants.sql"),
    },
    Migration {
        version: 3,
        description: "identities and audit",
        sql: include_str!("../../../migrations/postgres/0003_identities_and_audit.sql"),
    },
    Migration {
        version: 4,
        description: "uses in flight",
        sql: include_str!("../../../migrations/postgres/0004_uses_in_flight.sql"),
    },
];

pub(crate) const CREATE_MIGRATIONS_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS agent_auth_schema_migrations (
    version     BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    checksum    TEXT NOT NULL,
    applied_at  BIGINT NOT NULL
)";
