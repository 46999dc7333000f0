-- Browser sessions (tower-sessions-sqlx-store's `PostgresStore`, told this schema and table):
-- the columns its `migrate()` would create, in the schema of the other tables. `id` is a
-- digest of the session cookie, never the cookie; `data` the store's encoding of the record
-- (the user and their credential stamp).
CREATE TABLE agent_auth_sessions (
    id TEXT PRIMARY KEY NOT NULL,
    data BYTEA NOT NULL,
    expiry_date TIMESTAMPTZ NOT NULL
);
-- The periodic deletion of expired sessions finds them without reading the table.
CREATE INDEX agent_auth_sessions_by_expiry ON agent_auth_sessions (expiry_date);
