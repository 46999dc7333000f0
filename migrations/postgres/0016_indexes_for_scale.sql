-- Every operation costs what it touches, not the number of rows stored (issue 23).
-- Listing the agents a user owns (and so the agents they may see) reads their own agents, in
-- slug order, instead of every agent.
CREATE INDEX agent_auth_agents_by_owner ON agent_auth_agents (owner, slug);
-- The grants a user holds: the primary key leads with the agent.
CREATE INDEX agent_auth_grants_by_user ON agent_auth_grants (user_id, agent_id);
-- A purge finds the tokens that ended before its cutoff through these, instead of reading
-- every token while it holds the write lock. Partial: most tokens are never revoked or
-- completed, and those without an expiry never expire.
CREATE INDEX agent_auth_tokens_by_revoked ON agent_auth_tokens (revoked_at)
    WHERE revoked_at IS NOT NULL;
CREATE INDEX agent_auth_tokens_by_completed ON agent_auth_tokens (completed_at)
    WHERE completed_at IS NOT NULL;
CREATE INDEX agent_auth_tokens_by_expiry ON agent_auth_tokens (expires_at)
    WHERE expires_at IS NOT NULL;
