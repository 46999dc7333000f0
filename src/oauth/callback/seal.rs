//! The receiver's key, and sealing with it: XChaCha20-Poly1305 (RustCrypto's
//! `chacha20poly1305`), a fresh random 24-byte nonce per sealing (192 bits: random nonces never
//! meet), the record's id and the field's name as associated data — so a sealed value copied to
//! another record, or from the refresh field to the access field, does not open.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use zeroize::{Zeroize, Zeroizing};

use super::record::Sealed;

/// The first byte of every sealed value: the format, so that a later one can be told apart.
const VERSION: u8 = 1;
const NONCE: usize = 24;
/// Binds every sealed value to this use of the key.
const DOMAIN: &[u8] = b"tower-agent-auth callback v1";

/// The 32-byte key provider tokens are sealed with: the same on every node, kept secret, from
/// the configuration (`agent-auth serve --callback-key`). Losing it loses the stored tokens
/// (connect again); whoever holds it and the database can read them. `Debug` shows nothing of
/// it; it is wiped when dropped.
#[derive(Clone)]
pub struct CallbackKey([u8; 32]);

impl CallbackKey {
    /// A key of these bytes.
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A key written as 64 hex digits.
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        let mut bytes = Zeroizing::new(hex::decode(text.trim()).map_err(|_| KeyError)?);
        let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| KeyError)?;
        bytes.zeroize();
        Ok(Self(key))
    }

    /// Seals `plain` for the field `field` of the record `id`.
    pub(crate) fn seal(&self, id: &str, field: &str, plain: &str) -> Result<Sealed, SealError> {
        let mut nonce = [0u8; NONCE];
        getrandom::fill(&mut nonce).map_err(|_| SealError::Entropy)?;
        let aad = associated(id, field);
        let cipher = XChaCha20Poly1305::new(&Key::from(self.0));
        let sealed = cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plain.as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Opened)?;
        let mut out = Vec::with_capacity(1 + NONCE + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(Sealed::from_bytes(out))
    }

    /// Opens what [`CallbackKey::seal`] sealed for the same record and field.
    pub(crate) fn open(
        &self,
        id: &str,
        field: &str,
        sealed: &Sealed,
    ) -> Result<Zeroizing<String>, SealError> {
        let bytes = sealed.as_bytes();
        if bytes.len() < 1 + NONCE + 16 || bytes[0] != VERSION {
            return Err(SealError::Opened);
        }
        let (nonce, body) = bytes[1..].split_at(NONCE);
        let nonce: [u8; NONCE] = nonce.try_into().map_err(|_| SealError::Opened)?;
        let aad = associated(id, field);
        let cipher = XChaCha20Poly1305::new(&Key::from(self.0));
        let plain = cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: body,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| SealError::Opened)?;
        String::from_utf8(plain.to_vec())
            .map(Zeroizing::new)
            .map_err(|_| SealError::Opened)
    }
}

/// The associated data: the domain, the record's id and the field, each length-prefixed.
fn associated(id: &str, field: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(DOMAIN.len() + id.len() + field.len() + 24);
    for part in [DOMAIN, id.as_bytes(), field.as_bytes()] {
        aad.extend_from_slice(&(part.len() as u64).to_be_bytes());
        aad.extend_from_slice(part);
    }
    aad
}

impl Drop for CallbackKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for CallbackKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallbackKey(…)")
    }
}

/// A key that is not 64 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a callback key is 64 hex digits (32 bytes)")]
pub struct KeyError;

/// Why a value could not be sealed or opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// No randomness for a nonce.
    #[error("no entropy for a nonce")]
    Entropy,
    /// Sealed under another key, for another record or field, or altered.
    #[error("a sealed value does not open with this key (another key, another record, or altered)")]
    Opened,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_where_they_were_sealed() {
        let key = CallbackKey::new([7; 32]);
        let a = key.seal("ptk_1", "access", "gho_secret").unwrap();
        let b = key.seal("ptk_1", "access", "gho_secret").unwrap();
        assert_ne!(a, b, "a fresh nonce each time");
        assert!(!a.as_bytes().windows(10).any(|w| w == b"gho_secret"));
        assert_eq!(&*key.open("ptk_1", "access", &a).unwrap(), "gho_secret");
        assert_eq!(key.open("ptk_2", "access", &a), Err(SealError::Opened));
        assert_eq!(key.open("ptk_1", "refresh", &a), Err(SealError::Opened));
        let other = CallbackKey::new([8; 32]);
        assert_eq!(other.open("ptk_1", "access", &a), Err(SealError::Opened));
        let mut altered = a.as_bytes().to_vec();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        let altered = Sealed::from_bytes(altered);
        assert_eq!(
            key.open("ptk_1", "access", &altered),
            Err(SealError::Opened)
        );
        assert_eq!(
            key.open("ptk_1", "access", &Sealed::from_bytes(vec![1, 2])),
            Err(SealError::Opened)
        );
        assert_eq!(format!("{key:?}"), "CallbackKey(…)");
    }

    #[test]
    fn keys_are_64_hex_digits() {
        assert!(CallbackKey::from_hex(&"ab".repeat(32)).is_ok());
        assert_eq!(
            CallbackKey::from_hex(&"ab".repeat(31)).err(),
            Some(KeyError)
        );
        assert_eq!(CallbackKey::from_hex("zz").err(), Some(KeyError));
    }
}
