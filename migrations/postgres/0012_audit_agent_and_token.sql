-- The audit trail names what it records as the rest of the schema does: `agent_id`,
-- `parent_agent_id` and `token_id` (were `identity`, `parent_identity` and `credential`).
-- Renamed in place: every row stays, and the indexes follow their columns.
ALTER TABLE agent_auth_audit_events RENAME COLUMN identity TO agent_id;
ALTER TABLE agent_auth_audit_events RENAME COLUMN parent_identity TO parent_agent_id;
ALTER TABLE agent_auth_audit_events RENAME COLUMN credential TO token_id;
ALTER INDEX agent_auth_audit_by_identity RENAME TO agent_auth_audit_by_agent;
ALTER INDEX agent_auth_audit_by_credential RENAME TO agent_auth_audit_by_token;
