-- Completing a task records when, as state: a completed token is refused whatever a node's
-- clock reads (before, its expiry was moved to the instant of completion, which a clock behind
-- that instant admitted again). Tokens completed before keep that expiry and stay refused.
ALTER TABLE agent_auth_tokens ADD COLUMN completed_at BIGINT;
