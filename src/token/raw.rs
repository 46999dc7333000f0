use zeroize::Zeroizing;

/// A raw bearer token, as handed to its holder exactly once.
///
/// It has no `Display` and its `Debug` is redacted, so it cannot end up in a log line or an
/// error message by accident; the memory is wiped when it is dropped. Read it deliberately with
/// [`RawToken::expose_secret`].
#[derive(Clone, PartialEq, Eq)]
pub struct RawToken(Zeroizing<String>);

impl RawToken {
    pub(crate) fn new(secret: String) -> Self {
        Self(Zeroizing::new(secret))
    }

    /// Wraps a token received from elsewhere (for example read from a file by a client).
    pub fn from_secret(secret: impl Into<String>) -> Self {
        Self::new(secret.into())
    }

    /// The secret itself. Show it to its owner once; never log it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// The SHA-256 of the token: the only form a store keeps.
    pub fn hash(&self) -> super::TokenHash {
        super::TokenHash::of(self.expose_secret())
    }
}

impl std::fmt::Debug for RawToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RawToken(<redacted>)")
    }
}
