-- A user deactivated, removed or given another role (or password) is logged in the library's
-- change feed (its schema 11), as the store's triggers log tokens and agents, whoever writes.
CREATE TRIGGER agent_auth_users_changed
AFTER UPDATE OF id, capabilities, active, password_hash ON agent_auth_users
WHEN OLD.id IS NOT NEW.id OR OLD.capabilities IS NOT NEW.capabilities
    OR OLD.active IS NOT NEW.active OR OLD.password_hash IS NOT NEW.password_hash
BEGIN
    UPDATE agent_auth_change_epoch SET epoch = epoch + 1 WHERE id = 1;
    INSERT INTO agent_auth_changes (epoch, kind, id, at)
        SELECT epoch, 'user', OLD.id,
            CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)
        FROM agent_auth_change_epoch WHERE id = 1;
    DELETE FROM agent_auth_changes
        WHERE epoch <= (SELECT epoch - 10000 FROM agent_auth_change_epoch WHERE id = 1);
END;

CREATE TRIGGER agent_auth_users_deleted
AFTER DELETE ON agent_auth_users
BEGIN
    UPDATE agent_auth_change_epoch SET epoch = epoch + 1 WHERE id = 1;
    INSERT INTO agent_auth_changes (epoch, kind, id, at)
        SELECT epoch, 'user', OLD.id,
            CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)
        FROM agent_auth_change_epoch WHERE id = 1;
    DELETE FROM agent_auth_changes
        WHERE epoch <= (SELECT epoch - 10000 FROM agent_auth_change_epoch WHERE id = 1);
END;
