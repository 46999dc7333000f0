//! The records stores keep: agents and token metadata.

mod agent;
mod token;

pub use crate::principal::AgentType;
pub use agent::{Agent, AgentStatus, NewAgent};
pub use token::{ImportedToken, IssuedToken, NewToken, TokenInfo, TokenStatus};
