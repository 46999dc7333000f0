//! Token format: minting, parsing, checksums and hashing.
//!
//! A token looks like `{prefix}_{slug}_{64 lowercase hex}`:
//!
//! * `prefix` is the application's (`[a-z0-9]`, underscores allowed inside, 1–32 bytes);
//! * `slug` is the agent's (`[a-z0-9-]{1,64}`);
//! * the 64 hex digits are 56 hex of CSPRNG output (224 bits) followed by the 8 hex CRC32 of
//!   everything before them, so scanners and this crate reject typos and look-alikes offline.
//!
//! Parsing works from the right (the hex body, then the slug), so a prefix may itself contain
//! underscores. Only [`TokenHash`] (SHA-256 of the whole token) is ever stored; the raw token is a
//! [`RawToken`] that redacts itself in `Debug` and has no `Display`.
//!
//! ```
//! use tower_agent_auth::token::{TokenFormat, TokenError};
//!
//! let format = TokenFormat::new("acme").unwrap();
//! let token = format.mint("deploy-bot").unwrap();
//! let parsed = format.parse(token.expose_secret()).unwrap();
//! assert_eq!(parsed.slug(), "deploy-bot");
//! assert!(format!("{token:?}").contains("redacted"));
//!
//! // One changed character breaks the checksum: rejected without any lookup.
//! let mut typo = token.expose_secret().to_owned();
//! let last = typo.pop().unwrap();
//! typo.push(if last == '0' { '1' } else { '0' });
//! assert_eq!(format.parse(&typo).unwrap_err(), TokenError::Checksum);
//! ```

mod format;
mod hash;
mod raw;

pub(crate) use format::valid_slug;
pub use format::{ParsedToken, TokenError, TokenFormat};
pub use hash::TokenHash;
pub use raw::RawToken;
