-- The callback receiver: this application as the OAuth client of another service. Times are
-- Unix microseconds. No state, verifier or token is kept in clear: a pending authorization is
-- found by the SHA-256 of its `state`, bound to the SHA-256 of the session cookie it was handed
-- to, and its PKCE verifier is sealed (XChaCha20-Poly1305 under the receiver's key); a
-- provider's access and refresh tokens likewise, with the record's id as associated data.

-- Pending authorizations: each accepted once (`used_at`, set by the callback that takes it).
CREATE TABLE agent_auth_callback_states (
    hash       BLOB PRIMARY KEY,
    session    BLOB NOT NULL,
    user_id    TEXT NOT NULL,
    agent_id   TEXT NOT NULL REFERENCES agent_auth_agents (id) ON DELETE CASCADE,
    provider   TEXT NOT NULL,
    verifier   BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);
CREATE INDEX agent_auth_callback_states_by_expiry ON agent_auth_callback_states (expires_at);
CREATE INDEX agent_auth_callback_states_by_agent ON agent_auth_callback_states (agent_id);

-- Provider tokens: one per agent and provider (connecting again replaces it); scopes are a
-- JSON array.
CREATE TABLE agent_auth_provider_tokens (
    id           TEXT PRIMARY KEY,
    provider     TEXT NOT NULL,
    agent_id     TEXT NOT NULL REFERENCES agent_auth_agents (id) ON DELETE CASCADE,
    connected_by TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    scopes       TEXT NOT NULL,
    token_type   TEXT NOT NULL,
    expires_at   INTEGER,
    access       BLOB NOT NULL,
    refresh      BLOB,
    UNIQUE (agent_id, provider)
);
