-- The change feed a verdict cache hears from: every change that can narrow or end access,
-- made by any writer (this library, the CLI, manual SQL), advances a one-row epoch by one per
-- changed row and logs the row's kind and id at that epoch. Triggers do it, so no writer can
-- forget; SQLite has one writer at a time, so epochs run in commit order without gaps.
CREATE TABLE agent_auth_change_epoch (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    epoch INTEGER NOT NULL
);
INSERT INTO agent_auth_change_epoch (id, epoch) VALUES (1, 0);

-- `kind` is `token`, `agent` or `user`; `at` is Unix microseconds, for operators only. Only the
-- last 10,000 epochs are kept: a reader further behind is told its picture is incomplete.
CREATE TABLE agent_auth_changes (
    epoch INTEGER PRIMARY KEY,
    kind  TEXT NOT NULL,
    id    TEXT NOT NULL,
    at    INTEGER NOT NULL
);

-- Tokens: every column a verdict may depend on, and none the request path writes (last-used
-- times, uses remaining and in flight), so that resolving and settling uses log nothing.
-- `UPDATE OF` keeps the trigger from even being considered for the request path's updates.
CREATE TRIGGER agent_auth_tokens_changed
AFTER UPDATE OF id, agent_id, hash, display_prefix, label, capabilities, created_at, created_by,
    expires_at, revoked_at, max_operations, expires_on_completion, task_id, intent, orchestrator,
    environment, delegated_by, delegation_parent, delegation_depth, completed_at,
    operations_remaining
ON agent_auth_tokens
WHEN OLD.id IS NOT NEW.id OR OLD.agent_id IS NOT NEW.agent_id OR OLD.hash IS NOT NEW.hash
    OR OLD.display_prefix IS NOT NEW.display_prefix OR OLD.label IS NOT NEW.label
    OR OLD.capabilities IS NOT NEW.capabilities OR OLD.created_at IS NOT NEW.created_at
    OR OLD.created_by IS NOT NEW.created_by OR OLD.expires_at IS NOT NEW.expires_at
    OR OLD.revoked_at IS NOT NEW.revoked_at OR OLD.max_operations IS NOT NEW.max_operations
    OR OLD.expires_on_completion IS NOT NEW.expires_on_completion
    OR OLD.task_id IS NOT NEW.task_id OR OLD.intent IS NOT NEW.intent
    OR OLD.orchestrator IS NOT NEW.orchestrator OR OLD.environment IS NOT NEW.environment
    OR OLD.delegated_by IS NOT NEW.delegated_by
    OR OLD.delegation_parent IS NOT NEW.delegation_parent
    OR OLD.delegation_depth IS NOT NEW.delegation_depth OR OLD.completed_at IS NOT NEW.completed_at
    -- A count set or cleared makes a token use-limited or not (a cached verdict must not stand);
    -- the request path only moves a count that is set, which logs nothing.
    OR (OLD.operations_remaining IS NULL) IS NOT (NEW.operations_remaining IS NULL)
BEGIN
    UPDATE agent_auth_change_epoch SET epoch = epoch + 1 WHERE id = 1;
    INSERT INTO agent_auth_changes (epoch, kind, id, at)
        SELECT epoch, 'token', OLD.id,
            CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)
        FROM agent_auth_change_epoch WHERE id = 1;
    DELETE FROM agent_auth_changes
        WHERE epoch <= (SELECT epoch - 10000 FROM agent_auth_change_epoch WHERE id = 1);
END;

-- Deleted tokens, those a foreign key's cascade deletes (a delegated subtree, an agent's) too.
CREATE TRIGGER agent_auth_tokens_deleted
AFTER DELETE ON agent_auth_tokens
BEGIN
    UPDATE agent_auth_change_epoch SET epoch = epoch + 1 WHERE id = 1;
    INSERT INTO agent_auth_changes (epoch, kind, id, at)
        SELECT epoch, 'token', OLD.id,
            CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)
        FROM agent_auth_change_epoch WHERE id = 1;
    DELETE FROM agent_auth_changes
        WHERE epoch <= (SELECT epoch - 10000 FROM agent_auth_change_epoch WHERE id = 1);
END;

-- Agents: every column but the informative last-used and last-rotated times.
CREATE TRIGGER agent_auth_agents_changed
AFTER UPDATE OF id, slug, owner, agent_type, status, policy, created_at, expires_at, parent_id,
    scopes, modes, orchestrator
ON agent_auth_agents
WHEN OLD.id IS NOT NEW.id OR OLD.slug IS NOT NEW.slug OR OLD.owner IS NOT NEW.owner
    OR OLD.agent_type IS NOT NEW.agent_type OR OLD.status IS NOT NEW.status
    OR OLD.policy IS NOT NEW.policy OR OLD.created_at IS NOT NEW.created_at
    OR OLD.expires_at IS NOT NEW.expires_at OR OLD.parent_id IS NOT NEW.parent_id
    OR OLD.scopes IS NOT NEW.scopes OR OLD.modes IS NOT NEW.modes
    OR OLD.orchestrator IS NOT NEW.orchestrator
BEGIN
    UPDATE agent_auth_change_epoch SET epoch = epoch + 1 WHERE id = 1;
    INSERT INTO agent_auth_changes (epoch, kind, id, at)
        SELECT epoch, 'agent', OLD.id,
            CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)
        FROM agent_auth_change_epoch WHERE id = 1;
    DELETE FROM agent_auth_changes
        WHERE epoch <= (SELECT epoch - 10000 FROM agent_auth_change_epoch WHERE id = 1);
END;

CREATE TRIGGER agent_auth_agents_deleted
AFTER DELETE ON agent_auth_agents
BEGIN
    UPDATE agent_auth_change_epoch SET epoch = epoch + 1 WHERE id = 1;
    INSERT INTO agent_auth_changes (epoch, kind, id, at)
        SELECT epoch, 'agent', OLD.id,
            CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)
        FROM agent_auth_change_epoch WHERE id = 1;
    DELETE FROM agent_auth_changes
        WHERE epoch <= (SELECT epoch - 10000 FROM agent_auth_change_epoch WHERE id = 1);
END;
