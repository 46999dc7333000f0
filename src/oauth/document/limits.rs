//! The bounds of every fetch.

use std::time::Duration;

/// The largest document read, in bytes (5 KiB, the draft's recommendation).
pub const MAX_SIZE: usize = 5 * 1024;

/// The longest a fetch may take, resolution, connection, TLS and body together.
pub const MAX_TIME: Duration = Duration::from_secs(5);

/// The most fetches under way at once, all documents together; past it a request is refused
/// (`temporarily_unavailable`) rather than queued.
pub const MAX_FETCHES: usize = 32;
