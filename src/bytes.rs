//! Byte-class checks on the request path.

/// Whether every byte is lowercase hex (`[0-9a-f]`). No early exit, so the compiler checks
/// 16 bytes per instruction (SSE2) on a check every request makes.
pub(crate) fn all_lower_hex(bytes: &[u8]) -> bool {
    bytes.iter().fold(true, |all, &b| all & is_lower_hex(b))
}

/// Bytes known to be UTF-8 (a slug: checked `[a-z0-9-]`, or taken from a `&str`) as a `str`.
/// Converted only when asked for, so the request path, which compares bytes, never pays for
/// UTF-8 validation.
pub(crate) fn ascii_str(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}

/// `[0-9a-f]`
pub(crate) fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() | (b'a'..=b'f').contains(&b)
}

/// `[a-z0-9-]`
pub(crate) fn is_slug_char(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'
}

/// RFC 6750 `b64token` body: `ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/"`.
pub(crate) fn is_b64_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_check_finds_any_non_hex_byte_at_any_position() {
        for len in [0usize, 1, 7, 8, 9, 16, 63, 64, 65] {
            for position in 0..len {
                for b in 0..=255u8 {
                    let mut bytes = vec![b'a'; len];
                    bytes[position] = b;
                    assert_eq!(
                        all_lower_hex(&bytes),
                        b"0123456789abcdef".contains(&b),
                        "len {len} at {position} byte {b}"
                    );
                }
            }
        }
    }
}
