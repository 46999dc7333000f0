-- Agents (machine identities) and their tokens. Times are Unix microseconds.
CREATE TABLE agent_auth_agents (
    id          TEXT PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    owner       TEXT NOT NULL,
    agent_type  TEXT NOT NULL,
    status      TEXT NOT NULL,
    policy      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT
);

CREATE TABLE agent_auth_tokens (
    id                    TEXT PRIMARY KEY,
    agent_id              TEXT NOT NULL REFERENCES agent_auth_agents (id) ON DELETE CASCADE,
    hash                  BYTEA NOT NULL UNIQUE,
    display_prefix        TEXT NOT NULL,
    label                 TEXT NOT NULL,
    capabilities          TEXT,
    created_at            BIGINT NOT NULL,
    created_by            TEXT,
    expires_at            BIGINT,
    last_used_at          BIGINT,
    revoked_at            BIGINT,
    max_operations        BIGINT,
    operations_remaining  BIGINT,
    expires_on_completion BOOLEAN NOT NULL DEFAULT FALSE,
    task_id               TEXT,
    intent                TEXT
);

CREATE INDEX agent_auth_tokens_by_agent ON agent_auth_tokens (agent_id, created_at);
