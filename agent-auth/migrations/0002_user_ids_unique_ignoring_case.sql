-- User ids differing only in case (`Alice`, `alice`) read as one person in every list: at most
-- one of them. `user add` checks this too; the index also holds for two adds at once.
CREATE UNIQUE INDEX agent_auth_users_by_folded_id ON agent_auth_users (lower(id));
