//! Byte-class checks on the request path, eight bytes at a time.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// For every byte `b < 0x80` of `word`, sets the byte's high bit iff `lo <= b <= hi`.
///
/// No carry or borrow crosses bytes: `b + (0x80 - lo) <= 0xff` and `(0x80 + hi) - b >= 0` for
/// `b < 0x80`.
#[inline(always)]
fn in_range(word: u64, lo: u8, hi: u8) -> u64 {
    let at_least_lo = word.wrapping_add(ONES * u64::from(0x80 - lo));
    let at_most_hi = (ONES * u64::from(0x80 + hi)).wrapping_sub(word);
    at_least_lo & at_most_hi & HIGH
}

/// Whether every byte is lowercase hex (`[0-9a-f]`), checked a 64-bit word at a time (SWAR):
/// ~2 operations a byte where a byte-by-byte loop takes ~5, on a check every request makes.
pub(crate) fn all_lower_hex(bytes: &[u8]) -> bool {
    let mut words = bytes.chunks_exact(8);
    for chunk in &mut words {
        let word = u64::from_le_bytes(chunk.try_into().expect("8-byte chunk"));
        if word & HIGH != 0 || (in_range(word, b'0', b'9') | in_range(word, b'a', b'f')) != HIGH {
            return false;
        }
    }
    words.remainder().iter().all(|&b| is_lower_hex(b))
}

/// `[0-9a-f]`
pub(crate) fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
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
    fn swar_hex_agrees_with_the_scalar_check_on_every_byte_and_position() {
        for len in [0usize, 1, 7, 8, 9, 16, 63, 64, 65] {
            for position in 0..len {
                for b in 0..=255u8 {
                    let mut bytes = vec![b'a'; len];
                    bytes[position] = b;
                    assert_eq!(
                        all_lower_hex(&bytes),
                        is_lower_hex(b),
                        "len {len} at {position} byte {b}"
                    );
                }
            }
        }
    }
}
