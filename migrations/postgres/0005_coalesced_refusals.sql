-- Repeated refusals of one token are recorded as one row per interval: how many occurrences
-- a row stands for (1 for every other event).
ALTER TABLE agent_auth_audit_events ADD COLUMN occurrences BIGINT NOT NULL DEFAULT 1;
