-- A user deactivated, removed or given another role (or password) is logged in the library's
-- change feed (its schema 11: `agent_auth_row_changed`), as the store's triggers log tokens
-- and agents, whoever writes.
CREATE CONSTRAINT TRIGGER agent_auth_users_changed
AFTER UPDATE OF id, capabilities, active, password_hash ON agent_auth_users
DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW
WHEN (OLD.id IS DISTINCT FROM NEW.id OR OLD.capabilities IS DISTINCT FROM NEW.capabilities
    OR OLD.active IS DISTINCT FROM NEW.active
    OR OLD.password_hash IS DISTINCT FROM NEW.password_hash)
EXECUTE FUNCTION agent_auth_row_changed('user');

CREATE CONSTRAINT TRIGGER agent_auth_users_deleted
AFTER DELETE ON agent_auth_users
DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW
EXECUTE FUNCTION agent_auth_row_changed('user');

CREATE TRIGGER agent_auth_users_truncated
AFTER TRUNCATE ON agent_auth_users
FOR EACH STATEMENT
EXECUTE FUNCTION agent_auth_table_truncated();
