//! User codes (RFC 8628 §6.1): 8 letters of 20 consonants — no vowel, so no word is spelled,
//! and no letter read as a digit — shown `BCDF-GHJK`; read back with case, spaces and dashes
//! ignored. 20⁸ ≈ 2.6·10¹⁰ codes (≈ 34.6 bits), drawn uniformly from the operating system's
//! CSPRNG.

use zeroize::Zeroizing;

use crate::oauth::error::OAuthError;
use crate::token::TokenHash;

/// The letters a user code is made of.
pub(crate) const ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";

/// How many letters a user code has.
pub(crate) const LENGTH: usize = 8;

/// What a user code's hash is taken over, before its letters: no other secret of this crate
/// hashes to the same digest.
const DOMAIN: &str = "tower-agent-auth device user code ";

/// A user code, normalised: 8 capitals of [`ALPHABET`].
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct UserCode(String);

impl std::fmt::Debug for UserCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UserCode(…)")
    }
}

impl UserCode {
    /// A new code, each letter drawn uniformly (bytes of 240 and above are drawn again, so that
    /// no letter is likelier than another).
    pub(crate) fn generate() -> Result<Self, OAuthError> {
        let mut code = String::with_capacity(LENGTH);
        let mut bytes = Zeroizing::new([0u8; 32]);
        while code.len() < LENGTH {
            getrandom::fill(&mut *bytes).map_err(|error| OAuthError::unavailable(&error))?;
            for byte in bytes.iter().filter(|b| usize::from(**b) < 240) {
                if code.len() == LENGTH {
                    break;
                }
                code.push(char::from(ALPHABET[usize::from(*byte) % ALPHABET.len()]));
            }
        }
        Ok(Self(code))
    }

    /// The code a person typed: letters in either case, with any spaces and dashes. `None` if
    /// it is not 8 letters of the alphabet.
    pub(crate) fn parse(entered: &str) -> Option<Self> {
        let mut code = String::with_capacity(LENGTH);
        for c in entered.chars() {
            if c == '-' || c.is_whitespace() {
                continue;
            }
            let upper = c.to_ascii_uppercase();
            if !upper.is_ascii() || !ALPHABET.contains(&(upper as u8)) || code.len() == LENGTH {
                return None;
            }
            code.push(upper);
        }
        (code.len() == LENGTH).then_some(Self(code))
    }

    /// As shown to people: `BCDF-GHJK`.
    pub(crate) fn display(&self) -> String {
        let (head, tail) = self.0.split_at(LENGTH / 2);
        format!("{head}-{tail}")
    }

    /// What the store keeps.
    pub(crate) fn hash(&self) -> TokenHash {
        TokenHash::of(&format!("{DOMAIN}{}", self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_eight_consonants_shown_in_two_halves() {
        for _ in 0..200 {
            let code = UserCode::generate().unwrap();
            assert_eq!(code.0.len(), LENGTH);
            assert!(code.0.bytes().all(|b| ALPHABET.contains(&b)), "{}", code.0);
            let shown = code.display();
            assert_eq!(shown.len(), 9);
            assert_eq!(&shown[4..5], "-");
            assert_eq!(UserCode::parse(&shown), Some(code));
        }
    }

    #[test]
    fn case_spaces_and_dashes_are_ignored() {
        let code = UserCode::parse("BCDF-GHJK").unwrap();
        for typed in ["bcdfghjk", " bcdf ghjk ", "B-C-D-F-G-H-J-K", "bcDF-gHjK\n"] {
            assert_eq!(UserCode::parse(typed).as_ref(), Some(&code), "{typed:?}");
        }
        assert_eq!(code.hash(), UserCode::parse("bcdf-ghjk").unwrap().hash());
        assert_ne!(
            code.hash(),
            TokenHash::of("BCDFGHJK"),
            "hashed in its own domain"
        );
        assert_eq!(format!("{code:?}"), "UserCode(…)");
    }

    #[test]
    fn anything_else_is_not_a_code() {
        for typed in [
            "",
            "BCDF-GHJ",
            "BCDF-GHJKL",
            "ABCD-EFGH",
            "BCDF-GHJ1",
            "BCDF_GHJK",
            "ВCDF-GHJK",
            "BCDF-GHJK-BCDF",
        ] {
            assert_eq!(UserCode::parse(typed), None, "{typed:?}");
        }
    }

    #[test]
    fn every_letter_is_drawn() {
        let mut seen = [0usize; 20];
        for _ in 0..500 {
            for b in UserCode::generate().unwrap().0.bytes() {
                seen[ALPHABET.iter().position(|a| *a == b).unwrap()] += 1;
            }
        }
        // 4000 letters: each of the 20 expected 200 times.
        assert!(seen.iter().all(|n| (100..300).contains(n)), "{seen:?}");
    }
}
