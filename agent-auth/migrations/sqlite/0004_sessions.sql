-- Browser sessions (tower-sessions-sqlx-store's `SqliteStore`, with this table name): the
-- columns its `migrate()` would create. `id` is a digest of the session cookie, never the
-- cookie; `data` the store's encoding of the record (the user and their credential stamp);
-- `expiry_date` an RFC 3339 time, as the store writes it.
CREATE TABLE agent_auth_sessions (
    id TEXT PRIMARY KEY NOT NULL,
    data BLOB NOT NULL,
    expiry_date INTEGER NOT NULL
);
