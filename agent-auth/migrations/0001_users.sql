-- The reference server's users: the stores' user directory and the login's passwords.
-- `IF NOT EXISTS`: databases created before this migration already have the table.
CREATE TABLE IF NOT EXISTS agent_auth_users (
    id            TEXT PRIMARY KEY,
    capabilities  TEXT,
    active        INTEGER NOT NULL,
    password_hash TEXT,
    created_at    BIGINT NOT NULL
);
