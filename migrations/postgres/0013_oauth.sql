-- The OAuth authorization server: the audience and client of the tokens its grants issue, and
-- its records — clients, authorization codes, refresh tokens in families, connections. Times
-- are Unix microseconds; codes and refresh tokens are kept as the SHA-256 of the secret, a
-- client's secret likewise; redirect URIs and capabilities are JSON arrays.

-- The resource (RFC 8707) a token is bound to, and the client it was issued to: NULL for
-- tokens minted otherwise, which every existing token was.
ALTER TABLE agent_auth_tokens ADD COLUMN resource TEXT;
ALTER TABLE agent_auth_tokens ADD COLUMN client_id TEXT;

-- A client is a registered agent (`agent_id` names it, and it goes with the agent), a client
-- that registered itself, or a Client ID Metadata Document.
CREATE TABLE agent_auth_oauth_clients (
    id             TEXT PRIMARY KEY,
    kind           TEXT NOT NULL,
    agent_id       TEXT REFERENCES agent_auth_agents (id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    redirect_uris  TEXT NOT NULL,
    auth           TEXT NOT NULL,
    secret_hash    BYTEA,
    scope          TEXT,
    may_introspect BOOLEAN NOT NULL DEFAULT FALSE,
    created_at     BIGINT NOT NULL,
    last_used_at   BIGINT,
    expires_at     BIGINT,
    revoked_at     BIGINT,
    CHECK ((kind = 'agent') = (agent_id IS NOT NULL))
);
-- The registration cap counts the live registered clients; purging finds the lapsed ones.
CREATE INDEX agent_auth_oauth_clients_by_kind ON agent_auth_oauth_clients (kind, expires_at);
CREATE INDEX agent_auth_oauth_clients_by_agent ON agent_auth_oauth_clients (agent_id)
    WHERE agent_id IS NOT NULL;

-- Authorization codes: single use (`redeemed_at`), bound to what the request named; `family`
-- is the refresh family the redemption started (set by the redemption itself), what a replay
-- revokes; `replayed_at` the first replay, which the redeemer reads once it has issued.
CREATE TABLE agent_auth_oauth_codes (
    hash         BYTEA PRIMARY KEY,
    client_id    TEXT NOT NULL REFERENCES agent_auth_oauth_clients (id) ON DELETE CASCADE,
    redirect_uri TEXT NOT NULL,
    challenge    TEXT NOT NULL,
    resource     TEXT,
    user_id      TEXT NOT NULL,
    agent_id     TEXT NOT NULL REFERENCES agent_auth_agents (id) ON DELETE CASCADE,
    capabilities TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    redeemed_at  BIGINT,
    family       TEXT,
    replayed_at  BIGINT
);
CREATE INDEX agent_auth_oauth_codes_by_expiry ON agent_auth_oauth_codes (expires_at);
CREATE INDEX agent_auth_oauth_codes_by_client ON agent_auth_oauth_codes (client_id);
CREATE INDEX agent_auth_oauth_codes_by_agent ON agent_auth_oauth_codes (agent_id);

-- Refresh tokens: each used once (`rotated_at`), in families that a reuse revokes whole.
-- `access_token_id` names the access token issued beside it, without a foreign key: the
-- family's record of what it issued outlives a purged token.
CREATE TABLE agent_auth_oauth_refresh_tokens (
    hash            BYTEA PRIMARY KEY,
    family          TEXT NOT NULL,
    client_id       TEXT NOT NULL REFERENCES agent_auth_oauth_clients (id) ON DELETE CASCADE,
    agent_id        TEXT NOT NULL REFERENCES agent_auth_agents (id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL,
    capabilities    TEXT NOT NULL,
    resource        TEXT,
    access_token_id TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT,
    rotated_at      BIGINT,
    revoked_at      BIGINT
);
CREATE INDEX agent_auth_oauth_refresh_by_family ON agent_auth_oauth_refresh_tokens (family, created_at);
CREATE INDEX agent_auth_oauth_refresh_by_client ON agent_auth_oauth_refresh_tokens (client_id);
CREATE INDEX agent_auth_oauth_refresh_by_agent ON agent_auth_oauth_refresh_tokens (agent_id);

-- Connections: one agent per person and client, the person's consent made an agent of theirs.
CREATE TABLE agent_auth_oauth_connections (
    user_id    TEXT NOT NULL,
    client_id  TEXT NOT NULL REFERENCES agent_auth_oauth_clients (id) ON DELETE CASCADE,
    agent_id   TEXT NOT NULL REFERENCES agent_auth_agents (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
CREATE INDEX agent_auth_oauth_connections_by_client ON agent_auth_oauth_connections (client_id);
CREATE INDEX agent_auth_oauth_connections_by_agent ON agent_auth_oauth_connections (agent_id);
