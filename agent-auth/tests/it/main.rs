//! The `agent-auth` binary run as a user would, one test binary: the CLI on SQLite and on
//! PostgreSQL ([`cli`]), `serve` under attack ([`serve_hardening`]), many nodes on one
//! PostgreSQL and Redis ([`cluster`]), the authorization server on many nodes
//! ([`cluster_oauth`]), a real OAuth client ([`oauth_client`]), the official MCP client SDK
//! ([`mcp_client`]) and a real browser
//! ([`browser`]) against it.
//!
//! Tests that need PostgreSQL or Redis skip with a notice when their URL is not set
//! (`AGENT_AUTH_TEST_POSTGRES_URL`, `AGENT_AUTH_TEST_REDIS_URL`), and fail then under
//! `AGENT_AUTH_REQUIRE_SERVICES=1`.

mod browser;
mod cli;
mod cluster;
mod cluster_oauth;
mod document_server;
mod mcp_client;
mod oauth_client;
mod serve_hardening;
mod support;
