//! Why a SQL store's change feed failed: apart from the feed, so that the backend trait can name
//! it without the feed's code (which uses the backend) being its dependency.

/// Why the change feed could not be read, or a subscription broke.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChangeFeedError {
    /// The database failed.
    #[error("change feed: {0}")]
    Database(#[source] sqlx::Error),
    /// The listening connection was lost: notices sent meanwhile are gone. The subscription
    /// stays broken; subscribe again and catch up with `changes_since`.
    #[error("change feed: the listening connection was lost; notices may have been missed")]
    ConnectionLost,
    /// A notice or logged change without a usable epoch (written by hand, or by another
    /// program on the channel).
    #[error("change feed: malformed change {0:?}")]
    Malformed(String),
}
