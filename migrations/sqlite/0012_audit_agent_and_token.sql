-- The audit trail names what it records as the rest of the schema does: `agent_id`,
-- `parent_agent_id` and `token_id` (were `identity`, `parent_identity` and `credential`).
-- Renamed in place: every row stays, and the indexes follow their columns.
ALTER TABLE agent_auth_audit_events RENAME COLUMN identity TO agent_id;
ALTER TABLE agent_auth_audit_events RENAME COLUMN parent_identity TO parent_agent_id;
ALTER TABLE agent_auth_audit_events RENAME COLUMN credential TO token_id;

-- SQLite cannot rename an index: the two whose names said `identity` and `credential` are made
-- again under the new names (the same columns, order and condition).
DROP INDEX agent_auth_audit_by_identity;
CREATE INDEX agent_auth_audit_by_agent ON agent_auth_audit_events (agent_id, at, seq);
DROP INDEX agent_auth_audit_by_credential;
CREATE INDEX agent_auth_audit_by_token ON agent_auth_audit_events (token_id, at, seq)
    WHERE token_id IS NOT NULL;
