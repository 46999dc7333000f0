-- Uses of a use-limited token reserved by requests in flight: spent or released once the
-- application answers, so that only admitted requests spend a use.
ALTER TABLE agent_auth_tokens ADD COLUMN operations_in_flight INTEGER NOT NULL DEFAULT 0;
