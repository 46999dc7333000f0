//! The library's integration tests: one binary (one link), a module per area. Modules whose
//! features are off compile to nothing (`#![cfg(…)]` at their top).

mod common;

mod approval;
mod audit;
mod axum_extractors;
mod callback_support;
mod capability_macro;
mod ceiling_properties;
mod change_feed;
mod compat;
mod delegation_properties;
mod delegation_surfaces;
mod layer;
mod layer_edges;
mod mcp;
mod memory_verdict_cache;
mod migration_suite;
mod module_cycles;
mod no_secrets;
mod oauth_agent_token;
mod oauth_callback;
mod oauth_device;
mod oauth_device_entry;
mod oauth_flow;
mod oauth_grants;
mod oauth_grants_env;
mod oauth_metadata;
mod oauth_redirect;
mod oauth_registration;
mod oauth_support;
mod oauth_tokens;
mod outside_store;
mod rate_limit;
mod readiness;
mod redis;
mod resolve_pipeline;
mod resolver_api;
mod server;
mod store_memory;
mod store_postgres;
mod store_sqlite;
mod token_format;
mod verdict_cache;
