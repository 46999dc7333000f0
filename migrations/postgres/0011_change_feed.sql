-- The change feed a verdict cache hears from: every change that can narrow or end access,
-- made by any writer (this library, the CLI, manual SQL), advances a one-row epoch by one per
-- changed row, logs the row's kind and id at that epoch and notifies listeners. Triggers do
-- it, so no writer can forget. The epoch row's lock, held to the commit, orders the changing
-- transactions: epochs run in commit order without gaps.
CREATE TABLE agent_auth_change_epoch (
    id    BOOLEAN PRIMARY KEY CHECK (id),
    epoch BIGINT NOT NULL
);
INSERT INTO agent_auth_change_epoch (id, epoch) VALUES (TRUE, 0);

-- `kind` is `token`, `agent` or `user`; `at` is Unix microseconds, for operators only. Only the
-- last 10,000 epochs are kept: a reader further behind is told its picture is incomplete.
CREATE TABLE agent_auth_changes (
    epoch BIGINT PRIMARY KEY,
    kind  TEXT NOT NULL,
    id    TEXT NOT NULL,
    at    BIGINT NOT NULL
);

-- The channel notices go out on: `agent_auth_changes` for the tables in `public`, and one per
-- other schema (a notice is database-wide; stores in two schemas must not hear each other's
-- epochs), hashed where the name would pass PostgreSQL's 63-byte limit.
CREATE FUNCTION agent_auth_change_channel() RETURNS TEXT
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT CASE
        WHEN n.nspname = 'public' THEN 'agent_auth_changes'
        WHEN octet_length(n.nspname) <= 44 THEN 'agent_auth_changes.' || n.nspname
        ELSE 'agent_auth_changes.' || md5(n.nspname)
    END
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.oid = 'agent_auth_changes'::regclass
$$;

-- Logs one change and returns its epoch. The notice (`<epoch> <kind> <id>`, at most 8000
-- bytes, so an outsized id is sent as `<epoch> all`) goes out when the transaction commits.
-- `SET search_path FROM CURRENT`: a writer whose search path differs (manual SQL naming the
-- schema) still logs to this schema's tables.
CREATE FUNCTION agent_auth_log_change(change_kind TEXT, change_id TEXT) RETURNS BIGINT
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    logged BIGINT;
    payload TEXT;
BEGIN
    UPDATE agent_auth_change_epoch SET epoch = epoch + 1 WHERE id RETURNING epoch INTO logged;
    INSERT INTO agent_auth_changes (epoch, kind, id, at)
        VALUES (logged, change_kind, change_id,
                (extract(epoch FROM clock_timestamp()) * 1000000)::BIGINT);
    DELETE FROM agent_auth_changes WHERE epoch <= logged - 10000;
    payload := logged || ' ' || change_kind || ' ' || change_id;
    IF octet_length(payload) > 7900 THEN
        payload := logged || ' all';
    END IF;
    PERFORM pg_notify(agent_auth_change_channel(), payload);
    RETURN logged;
END
$$;

-- The row trigger of every table logged: the kind is the trigger's argument.
CREATE FUNCTION agent_auth_row_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM agent_auth_log_change(TG_ARGV[0], OLD.id);
    RETURN NULL;
END
$$;

-- Constraint triggers deferred to the commit: a transaction takes the epoch row's lock after
-- every row lock it takes, never between two statements, so a transaction changing rows in
-- several statements (deleting an agent) cannot deadlock with one changing one of those rows.

-- Tokens: every column a verdict may depend on, and none the request path writes (last-used
-- times, uses remaining and in flight), so that resolving and settling uses log nothing.
-- `UPDATE OF` keeps the trigger from even being considered for the request path's updates.
CREATE CONSTRAINT TRIGGER agent_auth_tokens_changed
AFTER UPDATE OF id, agent_id, hash, display_prefix, label, capabilities, created_at, created_by,
    expires_at, revoked_at, max_operations, expires_on_completion, task_id, intent, orchestrator,
    environment, delegated_by, delegation_parent, delegation_depth, completed_at,
    operations_remaining
ON agent_auth_tokens
DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW
WHEN (OLD.id IS DISTINCT FROM NEW.id OR OLD.agent_id IS DISTINCT FROM NEW.agent_id
    OR OLD.hash IS DISTINCT FROM NEW.hash OR OLD.display_prefix IS DISTINCT FROM NEW.display_prefix
    OR OLD.label IS DISTINCT FROM NEW.label OR OLD.capabilities IS DISTINCT FROM NEW.capabilities
    OR OLD.created_at IS DISTINCT FROM NEW.created_at
    OR OLD.created_by IS DISTINCT FROM NEW.created_by
    OR OLD.expires_at IS DISTINCT FROM NEW.expires_at
    OR OLD.revoked_at IS DISTINCT FROM NEW.revoked_at
    OR OLD.max_operations IS DISTINCT FROM NEW.max_operations
    OR OLD.expires_on_completion IS DISTINCT FROM NEW.expires_on_completion
    OR OLD.task_id IS DISTINCT FROM NEW.task_id OR OLD.intent IS DISTINCT FROM NEW.intent
    OR OLD.orchestrator IS DISTINCT FROM NEW.orchestrator
    OR OLD.environment IS DISTINCT FROM NEW.environment
    OR OLD.delegated_by IS DISTINCT FROM NEW.delegated_by
    OR OLD.delegation_parent IS DISTINCT FROM NEW.delegation_parent
    OR OLD.delegation_depth IS DISTINCT FROM NEW.delegation_depth
    OR OLD.completed_at IS DISTINCT FROM NEW.completed_at
    -- A count set or cleared makes a token use-limited or not (a cached verdict must not stand);
    -- the request path only moves a count that is set, which logs nothing.
    OR (OLD.operations_remaining IS NULL) <> (NEW.operations_remaining IS NULL))
EXECUTE FUNCTION agent_auth_row_changed('token');

-- Deleted tokens, those a foreign key's cascade deletes (a delegated subtree, an agent's) too.
CREATE CONSTRAINT TRIGGER agent_auth_tokens_deleted
AFTER DELETE ON agent_auth_tokens
DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW
EXECUTE FUNCTION agent_auth_row_changed('token');

-- Agents: every column but the informative last-used and last-rotated times.
CREATE CONSTRAINT TRIGGER agent_auth_agents_changed
AFTER UPDATE OF id, slug, owner, agent_type, status, policy, created_at, expires_at, parent_id,
    scopes, modes, orchestrator
ON agent_auth_agents
DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW
WHEN (OLD.id IS DISTINCT FROM NEW.id OR OLD.slug IS DISTINCT FROM NEW.slug
    OR OLD.owner IS DISTINCT FROM NEW.owner OR OLD.agent_type IS DISTINCT FROM NEW.agent_type
    OR OLD.status IS DISTINCT FROM NEW.status OR OLD.policy IS DISTINCT FROM NEW.policy
    OR OLD.created_at IS DISTINCT FROM NEW.created_at
    OR OLD.expires_at IS DISTINCT FROM NEW.expires_at
    OR OLD.parent_id IS DISTINCT FROM NEW.parent_id OR OLD.scopes IS DISTINCT FROM NEW.scopes
    OR OLD.modes IS DISTINCT FROM NEW.modes OR OLD.orchestrator IS DISTINCT FROM NEW.orchestrator)
EXECUTE FUNCTION agent_auth_row_changed('agent');

CREATE CONSTRAINT TRIGGER agent_auth_agents_deleted
AFTER DELETE ON agent_auth_agents
DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW
EXECUTE FUNCTION agent_auth_row_changed('agent');

-- `TRUNCATE` fires no row triggers: it logs one change that drops every verdict.
CREATE FUNCTION agent_auth_table_truncated() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM agent_auth_log_change('all', TG_TABLE_NAME);
    RETURN NULL;
END
$$;

CREATE TRIGGER agent_auth_tokens_truncated
AFTER TRUNCATE ON agent_auth_tokens
FOR EACH STATEMENT
EXECUTE FUNCTION agent_auth_table_truncated();

CREATE TRIGGER agent_auth_agents_truncated
AFTER TRUNCATE ON agent_auth_agents
FOR EACH STATEMENT
EXECUTE FUNCTION agent_auth_table_truncated();
