-- Delegation and task scope. A delegated token names the token it was delegated from: deleting
-- that token (or its agent) deletes the whole subtree below it, so no child outlives the
-- authority it was lent. An orchestrator agent may mint task tokens for other agents of its
-- owner, on behalf of the person named in `delegated_by`.
ALTER TABLE agent_auth_agents ADD COLUMN orchestrator INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agent_auth_tokens ADD COLUMN orchestrator TEXT;
ALTER TABLE agent_auth_tokens ADD COLUMN environment TEXT;
ALTER TABLE agent_auth_tokens ADD COLUMN delegated_by TEXT;
ALTER TABLE agent_auth_tokens ADD COLUMN delegation_parent TEXT
    REFERENCES agent_auth_tokens (id) ON DELETE CASCADE;
ALTER TABLE agent_auth_tokens ADD COLUMN delegation_depth INTEGER NOT NULL DEFAULT 0;

-- Subtree revocation and the cascade walk children by their parent; completing a task finds
-- its tokens by task id.
CREATE INDEX agent_auth_tokens_by_delegation_parent ON agent_auth_tokens (delegation_parent)
    WHERE delegation_parent IS NOT NULL;
CREATE INDEX agent_auth_tokens_by_task ON agent_auth_tokens (task_id) WHERE task_id IS NOT NULL;
