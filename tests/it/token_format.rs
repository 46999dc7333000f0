//! Golden vectors for the token format (DESIGN §5). The expected strings and digests were
//! computed independently (Python's `zlib.crc32` and `hashlib.sha256`), not by this crate.

use proptest::prelude::*;
use tower_agent_auth::token::{RawToken, TokenError, TokenFormat, TokenHash};

struct Vector {
    prefix: &'static str,
    slug: &'static str,
    entropy: [u8; 28],
    token: &'static str,
    sha256: &'static str,
}

fn vectors() -> Vec<Vector> {
    let mut sequential = [0u8; 28];
    let mut mixed = [0u8; 28];
    for i in 0..28 {
        sequential[i] = i as u8;
        mixed[i] = ((i * 37 + 11) % 256) as u8;
    }
    vec![
        Vector {
            prefix: "acme",
            slug: "deploy-bot",
            entropy: sequential,
            token: "acme_deploy-bot_000102030405060708090a0b0c0d0e0f101112131415161718191a1b58910a0a",
            sha256: "92d36cf2b7717e1cdb0a8a14f9eb2f768b77d6d18b9eceaaf2c0dc338110208e",
        },
        Vector {
            prefix: "datamachine",
            slug: "a",
            entropy: [0xff; 28],
            token: "datamachine_a_ffffffffffffffffffffffffffffffffffffffffffffffffffffffff5889c0af",
            sha256: "391f7c9446f23b16613d02556f6e31eb1c95847ba12fb17c4dba42fd43618aaf",
        },
        Vector {
            prefix: "my_app",
            slug: "codex-7f3a",
            entropy: mixed,
            token: "my_app_codex-7f3a_0b30557a9fc4e90e33587da2c7ec11365b80a5caef14395e83a8cdf23567356e",
            sha256: "1255ab4b26a411fd3f396e46cbd302260b13217e0e0fb3d6f912a5986cf82912",
        },
    ]
}

#[test]
fn minting_matches_the_golden_vectors() {
    for v in vectors() {
        let format = TokenFormat::new(v.prefix).unwrap();
        let token = format.mint_with_entropy(v.slug, &v.entropy).unwrap();
        assert_eq!(token.expose_secret(), v.token);
    }
}

#[test]
fn golden_tokens_parse_and_hash() {
    for v in vectors() {
        let format = TokenFormat::new(v.prefix).unwrap();
        let parsed = format.parse(v.token).unwrap();
        assert_eq!(parsed.slug(), v.slug);
        assert!(!parsed.is_legacy());
        assert_eq!(parsed.hash().to_hex(), v.sha256);
        assert_eq!(parsed.hash(), TokenHash::from_hex(v.sha256).unwrap());
        assert_eq!(RawToken::from_secret(v.token).hash().to_hex(), v.sha256);
    }
}

#[test]
fn data_machine_tokens_are_accepted_only_in_legacy_mode() {
    // `datamachine_{slug}_{64 hex}` minted by Data Machine: 32 random bytes, no checksum.
    let legacy =
        "datamachine_content-bot_9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let strict = TokenFormat::new("datamachine").unwrap();
    assert_eq!(strict.parse(legacy).unwrap_err(), TokenError::Checksum);
    let compatible = strict.accept_legacy(true);
    let parsed = compatible.parse(legacy).unwrap();
    assert!(parsed.is_legacy());
    assert_eq!(parsed.slug(), "content-bot");
    // New tokens minted in legacy mode still carry a checksum and are not legacy.
    let fresh = compatible.mint("content-bot").unwrap();
    assert!(!compatible.parse(fresh.expose_secret()).unwrap().is_legacy());
}

proptest! {
    #[test]
    fn any_single_character_change_is_caught(position in 0usize..64, replacement in prop::sample::select(b"0123456789abcdef".to_vec())) {
        let format = TokenFormat::new("acme").unwrap();
        let token = format.mint("bot").unwrap();
        let mut bytes = token.expose_secret().as_bytes().to_vec();
        let at = bytes.len() - 64 + position;
        prop_assume!(bytes[at] != replacement);
        bytes[at] = replacement;
        let changed = String::from_utf8(bytes).unwrap();
        prop_assert_eq!(format.parse(&changed).unwrap_err(), TokenError::Checksum);
    }

    #[test]
    fn parse_never_panics(input in ".{0,120}") {
        let format = TokenFormat::new("acme").unwrap().accept_legacy(true);
        let _ = format.parse(&input);
        let _ = format.parse(&format!("acme_{input}"));
    }

    #[test]
    fn minted_tokens_round_trip(slug in "[a-z0-9-]{1,64}") {
        let format = TokenFormat::new("acme").unwrap();
        let token = format.mint(&slug).unwrap();
        let parsed = format.parse(token.expose_secret()).unwrap();
        prop_assert_eq!(parsed.slug(), slug.as_str());
    }

    #[test]
    fn owns_agrees_with_parse(input in "(acme|acm|acmex|ghp)?_?[a-z0-9_]{0,8}") {
        // `owns` is the cheap question a layer asks before passing a token on: it must say "ours"
        // exactly when `parse` would judge the token rather than answer `NotOwned`.
        let format = TokenFormat::new("acme").unwrap();
        prop_assert_eq!(format.owns(&input), format.parse(&input) != Err(TokenError::NotOwned));
    }
}
