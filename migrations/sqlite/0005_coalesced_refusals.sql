-- Repeated refusals of one token are recorded as one row per interval: how many occurrences
-- a row stands for (1 for every other event).
ALTER TABLE agent_auth_audit_events ADD COLUMN occurrences INTEGER NOT NULL DEFAULT 1;

-- The trail is listed by time (`ORDER BY at, seq`), a page of the newest at a time: the
-- indexes lead with what a query names and then follow that order.
DROP INDEX agent_auth_audit_by_identity;
DROP INDEX agent_auth_audit_by_parent;
DROP INDEX agent_auth_audit_by_credential;
CREATE INDEX agent_auth_audit_by_identity ON agent_auth_audit_events (identity, at, seq);
CREATE INDEX agent_auth_audit_by_parent ON agent_auth_audit_events (parent_identity, at, seq)
    WHERE parent_identity IS NOT NULL;
CREATE INDEX agent_auth_audit_by_credential ON agent_auth_audit_events (credential, at, seq)
    WHERE credential IS NOT NULL;
