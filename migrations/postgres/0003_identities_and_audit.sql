-- Machine identities: thread-scoped children under a parent, resource scopes and modes (JSON
-- arrays, NULL for no restriction), last used and last rotated; and the audit trail.
ALTER TABLE agent_auth_agents ADD COLUMN parent_id TEXT REFERENCES agent_auth_agents (id) ON DELETE CASCADE;
ALTER TABLE agent_auth_agents ADD COLUMN scopes TEXT;
ALTER TABLE agent_auth_agents ADD COLUMN modes TEXT;
ALTER TABLE agent_auth_agents ADD COLUMN last_used_at BIGINT;
ALTER TABLE agent_auth_agents ADD COLUMN last_rotated_at BIGINT;
CREATE INDEX agent_auth_agents_by_parent ON agent_auth_agents (parent_id);

-- Events outlive the identities they name: no foreign keys. `seq` is the recording order.
CREATE TABLE agent_auth_audit_events (
    seq              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at               BIGINT NOT NULL,
    identity         TEXT,
    parent_identity  TEXT,
    credential       TEXT,
    actor            TEXT,
    delegation_chain TEXT NOT NULL,
    action           TEXT NOT NULL,
    outcome          TEXT NOT NULL,
    reason           TEXT,
    method           TEXT,
    path             TEXT,
    status           INTEGER,
    task_id          TEXT,
    detail           TEXT
);
CREATE INDEX agent_auth_audit_by_identity ON agent_auth_audit_events (identity, seq);
-- Most identities have no parent: index only those that do.
CREATE INDEX agent_auth_audit_by_parent ON agent_auth_audit_events (parent_identity, seq)
    WHERE parent_identity IS NOT NULL;
CREATE INDEX agent_auth_audit_by_credential ON agent_auth_audit_events (credential, seq)
    WHERE credential IS NOT NULL;
