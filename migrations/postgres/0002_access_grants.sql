-- Access grants: a user's role (admin > operator > viewer) on an agent.
CREATE TABLE agent_auth_grants (
    agent_id    TEXT NOT NULL REFERENCES agent_auth_agents (id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL,
    role        TEXT NOT NULL,
    granted_at  BIGINT NOT NULL,
    PRIMARY KEY (agent_id, user_id)
);
