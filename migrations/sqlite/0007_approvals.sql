-- Approvals a person gives (or refuses) a supervised agent's critical request. Like audit
-- events, an approval names agents and tokens by id without foreign keys, so that the record
-- of what was approved stays when they go.
-- `binding` is the SHA-256 of token, capability, method, path and canonical details: a
-- retry is admitted only by an approval with the same binding. Times are Unix microseconds;
-- `delegation_chain` is a JSON array of agent ids, `details` canonical JSON.
CREATE TABLE agent_auth_approvals (
    id               TEXT PRIMARY KEY,
    binding          TEXT NOT NULL,
    agent_id         TEXT NOT NULL,
    owner            TEXT NOT NULL,
    token_id         TEXT NOT NULL,
    delegation_chain TEXT NOT NULL,
    method           TEXT NOT NULL,
    path             TEXT NOT NULL,
    capability       TEXT NOT NULL,
    details          TEXT,
    binding_message  TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'used')),
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    decided_by       TEXT,
    decided_at       INTEGER,
    uses             INTEGER,
    uses_remaining   INTEGER
);
-- A request looks for an approval of its binding; lists go by agent or owner, by time.
CREATE INDEX agent_auth_approvals_by_binding ON agent_auth_approvals (binding, created_at);
CREATE INDEX agent_auth_approvals_by_agent ON agent_auth_approvals (agent_id, created_at);
CREATE INDEX agent_auth_approvals_by_owner ON agent_auth_approvals (owner, created_at);
