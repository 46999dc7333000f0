-- Lists of approvals go by the agents a user may see and by status, newest first; a request
-- counts its token's pending approvals (at most a few dozen each).
CREATE INDEX agent_auth_approvals_by_agent_status
    ON agent_auth_approvals (agent_id, status, created_at);
CREATE INDEX agent_auth_approvals_by_token_status
    ON agent_auth_approvals (token_id, status);
-- Retention deletes by expiry.
CREATE INDEX agent_auth_approvals_by_expiry ON agent_auth_approvals (expires_at);
