-- The device authorization grant (RFC 8628): one row per device's request. Times are Unix
-- microseconds. Neither code is kept: `hash` is the SHA-256 of the device code, `user_code`
-- the SHA-256 of the normalised user code (unique, so that a code entered finds one request).
-- `poll_interval` is in seconds and grows by 5 at each `slow_down`; `polled_at` is the last
-- poll. `status` is the person's answer; an approval names the agent the tokens belong to and
-- what was granted. `redeemed_at` and `family` are set together by the one poll that redeems,
-- `replayed_at` by the first poll after it.
CREATE TABLE agent_auth_oauth_devices (
    hash          BYTEA PRIMARY KEY,
    user_code     BYTEA NOT NULL UNIQUE,
    client_id     TEXT NOT NULL REFERENCES agent_auth_oauth_clients (id) ON DELETE CASCADE,
    resource      TEXT,
    requested     TEXT NOT NULL,
    poll_interval BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    polled_at     BIGINT,
    status        TEXT NOT NULL,
    user_id       TEXT,
    agent_id      TEXT REFERENCES agent_auth_agents (id) ON DELETE CASCADE,
    capabilities  TEXT NOT NULL,
    decided_at    BIGINT,
    redeemed_at   BIGINT,
    family        TEXT,
    replayed_at   BIGINT,
    CHECK (status IN ('pending', 'approved', 'denied')),
    CHECK ((status = 'approved') = (agent_id IS NOT NULL))
);
CREATE INDEX agent_auth_oauth_devices_by_expiry ON agent_auth_oauth_devices (expires_at);
CREATE INDEX agent_auth_oauth_devices_by_client ON agent_auth_oauth_devices (client_id);
CREATE INDEX agent_auth_oauth_devices_by_agent ON agent_auth_oauth_devices (agent_id)
    WHERE agent_id IS NOT NULL;
