use super::{RawToken, TokenHash};
use crate::bytes::{all_lower_hex, ascii_str, is_slug_char};

/// Bytes of CSPRNG output in a token (56 hex digits, 224 bits).
const ENTROPY_BYTES: usize = 28;
/// Hex digits after the slug: entropy + CRC32.
const BODY_HEX: usize = 64;
const CHECKSUM_HEX: usize = 8;
const MAX_PREFIX: usize = 32;
const MAX_SLUG: usize = 64;

pub use crate::error::TokenError;

/// The token format of one application: its prefix, and whether legacy tokens are accepted.
///
/// With [`TokenFormat::accept_legacy`] the format also accepts `{prefix}_{slug}_{64 hex}` tokens
/// whose last 8 hex digits are not a checksum — the shape of tokens minted by systems such as
/// Data Machine (`datamachine_{slug}_{64 hex}`) — so they can be imported by hash and keep working.
/// Such tokens skip the offline checksum check and are looked up like any other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenFormat {
    prefix: Box<str>,
    accept_legacy: bool,
}

/// A token that passed the offline checks of a [`TokenFormat`]; borrowed from the presented string.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ParsedToken<'a> {
    token: &'a [u8],
    /// Checked to be `[a-z0-9-]`.
    slug: &'a [u8],
    legacy: bool,
}

impl std::fmt::Debug for ParsedToken<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedToken")
            .field("slug", &self.slug())
            .field("legacy", &self.legacy)
            .finish_non_exhaustive()
    }
}

impl<'a> ParsedToken<'a> {
    /// The agent slug embedded in the token.
    pub fn slug(&self) -> &'a str {
        ascii_str(self.slug)
    }

    /// The slug's bytes, checked to be `[a-z0-9-]`.
    pub(crate) fn slug_bytes(&self) -> &'a [u8] {
        self.slug
    }

    /// True when the token was accepted without a checksum (legacy mode).
    pub fn is_legacy(&self) -> bool {
        self.legacy
    }

    /// SHA-256 of the whole token, for the lookup.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of_bytes(self.token)
    }
}

impl TokenFormat {
    /// A format minting and accepting `{prefix}_{slug}_{64 hex}` tokens with a checksum.
    pub fn new(prefix: impl Into<String>) -> Result<Self, TokenError> {
        let prefix = prefix.into();
        if !valid_prefix(&prefix) {
            return Err(TokenError::InvalidPrefix);
        }
        Ok(Self {
            prefix: prefix.into_boxed_str(),
            accept_legacy: false,
        })
    }

    /// Also accept checksum-less 64-hex tokens (imported from an existing system).
    pub fn accept_legacy(mut self, accept: bool) -> Self {
        self.accept_legacy = accept;
        self
    }

    /// The application prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether checksum-less legacy tokens are accepted.
    pub fn accepts_legacy(&self) -> bool {
        self.accept_legacy
    }

    /// True when `token` starts with `{prefix}_`, i.e. this format is the one to judge it.
    pub fn owns(&self, token: &str) -> bool {
        self.strip_prefix(token).is_some()
    }

    fn strip_prefix<'a>(&self, token: &'a str) -> Option<&'a str> {
        token.strip_prefix(&*self.prefix)?.strip_prefix('_')
    }

    /// Mints a new token for the agent `slug` from the operating system's CSPRNG.
    pub fn mint(&self, slug: &str) -> Result<RawToken, TokenError> {
        let mut entropy = [0u8; ENTROPY_BYTES];
        getrandom::fill(&mut entropy).map_err(|_| TokenError::Entropy)?;
        self.mint_with_entropy(slug, &entropy)
    }

    /// Builds the token for given entropy. Deterministic: this is what the golden test vectors
    /// pin down. Use [`TokenFormat::mint`] for real tokens.
    pub fn mint_with_entropy(
        &self,
        slug: &str,
        entropy: &[u8; ENTROPY_BYTES],
    ) -> Result<RawToken, TokenError> {
        if !valid_slug(slug) {
            return Err(TokenError::InvalidSlug);
        }
        let mut token = String::with_capacity(self.prefix.len() + slug.len() + 2 + BODY_HEX);
        token.push_str(&self.prefix);
        token.push('_');
        token.push_str(slug);
        token.push('_');
        token.push_str(&hex::encode(entropy));
        let checksum = crc32fast::hash(token.as_bytes());
        token.push_str(&format!("{checksum:08x}"));
        Ok(RawToken::new(token))
    }

    /// Checks a presented token offline (prefix, shape, checksum), from the right.
    ///
    /// No hashing and no lookup happen here, so a malformed or mistyped token costs next to
    /// nothing to reject.
    pub fn parse<'a>(&self, token: &'a str) -> Result<ParsedToken<'a>, TokenError> {
        self.parse_bytes(token.as_bytes())
    }

    /// [`TokenFormat::parse`] on the raw bytes of a header value.
    pub(crate) fn parse_bytes<'a>(&self, token: &'a [u8]) -> Result<ParsedToken<'a>, TokenError> {
        let rest = token
            .strip_prefix(self.prefix.as_bytes())
            .and_then(|rest| rest.strip_prefix(b"_"))
            .ok_or(TokenError::NotOwned)?;
        // `{slug}_{64 hex}`: the body is the last 64 bytes, preceded by '_' and a slug.
        let split = rest
            .len()
            .checked_sub(BODY_HEX + 1)
            .filter(|&at| at > 0)
            .ok_or(TokenError::Malformed)?;
        let (slug, body) = rest.split_at(split);
        let body = body.strip_prefix(b"_").ok_or(TokenError::Malformed)?;
        if !all_lower_hex(body) || slug.len() > MAX_SLUG || !slug.iter().all(|&b| is_slug_char(b)) {
            return Err(TokenError::Malformed);
        }
        let checked_len = token.len() - CHECKSUM_HEX;
        let expected = parse_hex_u32(&body[BODY_HEX - CHECKSUM_HEX..]);
        let legacy = crc32fast::hash(&token[..checked_len]) != expected;
        if legacy && !self.accept_legacy {
            return Err(TokenError::Checksum);
        }
        Ok(ParsedToken {
            token,
            slug,
            legacy,
        })
    }
}

fn valid_prefix(prefix: &str) -> bool {
    let bytes = prefix.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_PREFIX
        && bytes[0].is_ascii_lowercase()
        && bytes[bytes.len() - 1] != b'_'
        && bytes
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Whether `slug` is a valid agent slug: 1–64 of `[a-z0-9-]`.
pub(crate) fn valid_slug(slug: &str) -> bool {
    !slug.is_empty() && slug.len() <= MAX_SLUG && slug.bytes().all(is_slug_char)
}

/// Parses 8 lowercase hex digits already checked to be lowercase hex.
fn parse_hex_u32(digits: &[u8]) -> u32 {
    digits.iter().fold(0u32, |acc, &d| {
        let nibble = if d.is_ascii_digit() {
            d - b'0'
        } else {
            d - b'a' + 10
        };
        (acc << 4) | u32::from(nibble)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format() -> TokenFormat {
        TokenFormat::new("acme").unwrap()
    }

    #[test]
    fn minted_tokens_parse_back() {
        let token = format().mint("bot-1").unwrap();
        let parsed = format().parse(token.expose_secret()).unwrap();
        assert_eq!(parsed.slug(), "bot-1");
        assert!(!parsed.is_legacy());
    }

    #[test]
    fn minted_tokens_differ() {
        let a = format().mint("bot").unwrap();
        let b = format().mint("bot").unwrap();
        assert_ne!(a.expose_secret(), b.expose_secret());
    }

    #[test]
    fn foreign_prefix_is_not_owned() {
        assert_eq!(format().parse("ghp_abc").unwrap_err(), TokenError::NotOwned);
        // A prefix that merely starts the same is still foreign.
        assert_eq!(
            format().parse("acmex_bot_00").unwrap_err(),
            TokenError::NotOwned
        );
    }

    #[test]
    fn short_or_non_hex_bodies_are_malformed() {
        let f = format();
        assert_eq!(f.parse("acme_bot_abc").unwrap_err(), TokenError::Malformed);
        assert_eq!(
            f.parse(&format!("acme__{}", "a".repeat(64))).unwrap_err(),
            TokenError::Malformed
        );
        assert_eq!(
            f.parse(&format!("acme_bot_{}", "A".repeat(64)))
                .unwrap_err(),
            TokenError::Malformed
        );
        assert_eq!(
            f.parse(&format!("acme_bot-{}", "a".repeat(64)))
                .unwrap_err(),
            TokenError::Malformed
        );
        assert_eq!(
            f.parse(&format!("acme_Bot_{}", "a".repeat(64)))
                .unwrap_err(),
            TokenError::Malformed
        );
        assert_eq!(
            f.parse(&format!("acme_bé_{}", "a".repeat(64))).unwrap_err(),
            TokenError::Malformed
        );
    }

    #[test]
    fn legacy_tokens_need_the_setting() {
        let legacy = format!("acme_bot_{}", "ab".repeat(32));
        assert_eq!(format().parse(&legacy).unwrap_err(), TokenError::Checksum);
        let parsed = format().accept_legacy(true).parse(&legacy).unwrap();
        assert!(parsed.is_legacy());
    }

    #[test]
    fn prefixes_are_validated() {
        for bad in ["", "Acme", "1acme", "acme_", "ac-me", &"a".repeat(33)] {
            assert_eq!(
                TokenFormat::new(bad).unwrap_err(),
                TokenError::InvalidPrefix,
                "{bad:?}"
            );
        }
        for good in ["a", "datamachine", "my_app", "app2"] {
            assert!(TokenFormat::new(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn prefix_with_underscore_parses_from_the_right() {
        let f = TokenFormat::new("my_app").unwrap();
        let token = f.mint("bot").unwrap();
        assert_eq!(f.parse(token.expose_secret()).unwrap().slug(), "bot");
    }

    #[test]
    fn slugs_are_validated_on_mint() {
        assert_eq!(format().mint("").unwrap_err(), TokenError::InvalidSlug);
        assert_eq!(format().mint("a_b").unwrap_err(), TokenError::InvalidSlug);
        assert_eq!(
            format().mint(&"a".repeat(65)).unwrap_err(),
            TokenError::InvalidSlug
        );
        assert!(format().mint(&"a".repeat(64)).is_ok());
    }

    #[test]
    fn prefix_is_the_one_given() {
        assert_eq!(format().prefix(), "acme");
    }

    #[test]
    fn legacy_is_refused_unless_enabled() {
        assert!(!format().accepts_legacy());
        assert!(format().accept_legacy(true).accepts_legacy());
        assert!(
            !format()
                .accept_legacy(true)
                .accept_legacy(false)
                .accepts_legacy()
        );
    }

    #[test]
    fn owns_a_token_with_our_prefix_and_underscore() {
        assert!(format().owns("acme_bot_00"));
        // Owning is only about the prefix: a malformed body is still ours to refuse.
        assert!(format().owns("acme_"));
    }

    #[test]
    fn does_not_own_a_foreign_or_lookalike_token() {
        assert!(!format().owns("ghp_abc"));
        assert!(!format().owns("acmex_bot_00"));
        assert!(!format().owns("acme"));
        assert!(!format().owns("acmebot_00"));
    }

    #[test]
    fn slug_bytes_are_the_slug() {
        let token = format().mint("bot-1").unwrap();
        assert_eq!(
            format().parse(token.expose_secret()).unwrap().slug_bytes(),
            b"bot-1"
        );
    }

    #[test]
    fn parsed_token_debug_shows_the_slug_but_not_the_token() {
        let token = format().mint("bot-1").unwrap();
        let parsed = format().parse(token.expose_secret()).unwrap();
        assert_eq!(
            format!("{parsed:?}"),
            r#"ParsedToken { slug: "bot-1", legacy: false, .. }"#
        );
    }
}
