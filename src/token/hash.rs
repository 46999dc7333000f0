use sha2::{Digest, Sha256};

/// SHA-256 of a raw token: what stores keep and look tokens up by.
///
/// Equality is constant-time. The `Debug` form shows only the first 8 hex digits, enough to
/// correlate log lines, too few to matter.
#[derive(Clone, Copy, Eq)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// Hashes a raw token.
    pub fn of(token: &str) -> Self {
        Self::of_bytes(token.as_bytes())
    }

    pub(crate) fn of_bytes(token: &[u8]) -> Self {
        Self(Sha256::digest(token).into())
    }

    /// Wraps a digest read back from storage.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Parses 64 hex digits (either case), as stored by systems that keep hex digests.
    pub fn from_hex(hex_digest: &str) -> Option<Self> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex_digest, &mut bytes).ok()?;
        Some(Self(bytes))
    }

    /// The digest bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex of the digest.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl PartialEq for TokenHash {
    /// Constant time: XOR-folds all 32 bytes before the single comparison, so the time taken
    /// does not depend on where two digests differ.
    fn eq(&self, other: &Self) -> bool {
        let mut difference = 0u64;
        for (a, b) in self.0.chunks_exact(8).zip(other.0.chunks_exact(8)) {
            let a = u64::from_ne_bytes(a.try_into().expect("8-byte chunk"));
            let b = u64::from_ne_bytes(b.try_into().expect("8-byte chunk"));
            difference |= a ^ b;
        }
        subtle::ConstantTimeEq::ct_eq(&difference, &0).into()
    }
}

impl std::hash::Hash for TokenHash {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write(&self.0);
    }
}

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenHash({}…)", hex::encode(&self.0[..4]))
    }
}

/// A hasher for maps keyed by [`TokenHash`]: keys are SHA-256 digests, uniformly distributed and
/// not chosen by an attacker (finding a token whose digest collides with another's is a
/// preimage problem), so their first 8 bytes are a perfect hash and SipHash's flood protection
/// buys nothing.
#[derive(Default)]
pub(crate) struct DigestHasher(u64);

impl std::hash::Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8).take(1) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 ^= u64::from_le_bytes(word);
        }
    }
}
