//! The `agent-auth` binary run as a user would, one test binary: the CLI on SQLite and on
//! PostgreSQL ([`cli`]), `serve` under attack ([`serve_hardening`]), many nodes on one
//! PostgreSQL and Redis ([`cluster`]), the authorization server on many nodes
//! ([`cluster_oauth`], and the agents' grants: [`cluster_grants`]), a real OAuth client
//! ([`oauth_client`]; the agents' grants: [`oauth_grants`]; the device flow:
//! [`oauth_device`]), the official MCP client SDK ([`mcp_client`]) and a real browser
//! ([`browser`], and on the device flow's pages [`browser_device`]) against it. The pages for
//! people, their journeys in Chromium: [`web_agents`], [`web_approvals`], [`web_sessions`]; the
//! pages under attack: [`web_attack`];
//! browser sessions on the database, across restarts and nodes, over HTTP: [`sessions`].
//!
//! Tests that need PostgreSQL or Redis skip with a notice when their URL is not set
//! (`AGENT_AUTH_TEST_POSTGRES_URL`, `AGENT_AUTH_TEST_REDIS_URL`), and fail then under
//! `AGENT_AUTH_REQUIRE_SERVICES=1`.

mod browser;
mod browser_device;
mod cli;
mod cluster;
mod cluster_grants;
mod cluster_oauth;
mod document_server;
mod mcp_client;
mod oauth_client;
mod oauth_device;
mod oauth_grants;
mod serve_hardening;
mod sessions;
mod support;
mod web_agents;
mod web_approvals;
mod web_apps;
mod web_attack;
mod web_sessions;
