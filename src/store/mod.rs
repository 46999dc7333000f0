#![doc = include_str!("../../docs/store.md")]

mod access;
mod agents;
pub mod backend;
mod config;
mod deprecated;
mod directory;
mod domain;
mod grants;
mod managed;
pub mod memory;
mod model;
pub mod resolve;
#[cfg(feature = "sql")]
pub(crate) mod sql;
mod tokens;
pub(crate) mod validate;

pub use access::{AccessGrant, AccessRole, Operation, authorize};
pub use backend::Backend;
pub use config::{
    DEFAULT_MAX_DELEGATION_DEPTH, Lifetime, LifetimePolicy, MAX_DELEGATION_DEPTH_LIMIT, StoreConfig,
};
#[allow(deprecated)]
pub use deprecated::{AgentStore, GrantStore, StoreError, TokenStore};
pub use directory::{MemoryUserDirectory, UserDirectory, UserRecord};
pub use domain::Store;
pub use managed::Managed;
pub use memory::{MemoryBackend, MemoryStore};
pub use model::{
    Agent, AgentStatus, AgentType, ImportedToken, IssuedToken, NewAgent, NewToken, TokenInfo,
    TokenStatus,
};
pub use validate::{MAX_CAPABILITIES, MAX_NAMES};

#[cfg(feature = "sql")]
#[allow(deprecated)]
pub use deprecated::ChangeFeedError;
#[cfg(feature = "postgres")]
pub use sql::PgStore;
#[cfg(feature = "sqlite")]
pub use sql::SqliteStore;
#[cfg(feature = "sql")]
pub use sql::{PoolSettings, SqlBackend, migrate};

#[cfg(feature = "testing")]
pub(crate) use managed::AGENTS_PER_APPROVAL_QUERY;

pub(crate) use crate::text::shortened;
