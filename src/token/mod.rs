#![doc = include_str!("../../docs/token.md")]

mod format;
mod hash;
mod raw;

pub(crate) use format::valid_slug;
pub use format::{ParsedToken, TokenError, TokenFormat};
pub(crate) use hash::DigestHasher;
pub use hash::TokenHash;
pub use raw::RawToken;
