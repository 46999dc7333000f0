-- An approval records the task of the token that asked (so the trail filtered by task finds
-- its approval events) and the orchestrator that minted that task token (so the person sees
-- why the request was supervised). Both are empty for approvals asked before, and for tokens
-- minted for no task.
ALTER TABLE agent_auth_approvals ADD COLUMN task_id TEXT;
ALTER TABLE agent_auth_approvals ADD COLUMN orchestrator TEXT;
