//! From an MCP name (a tool's, a prompt's, a resource's URI) to one capability segment, so that
//! two names never share a capability.
//!
//! MCP names are case-sensitive and may hold any character; capability segments are
//! `[a-z0-9_.-]`. The escaping below is injective (it can be undone byte for byte), keeps the
//! common `snake_case` and `kebab-case` names as they are, and makes a `camelCase` name still
//! readable:
//!
//! | in the name | in the segment |
//! |---|---|
//! | `a`–`z`, `0`–`9`, `_`, `-` | the same |
//! | `A`–`Z` | `.` and the lower-case letter (`getWeather` → `get.weather`) |
//! | `.` | `..` (`files.read` → `files..read`) |
//! | any other byte of its UTF-8 | `._` and two lower-case hex digits (`files/read` → `files._2fread`) |
//!
//! A segment is read back left to right: after a `.` comes `.`, a letter, or `_` and two hex
//! digits, and nothing else; so no two names give the same segment. A name whose capability
//! would pass the grammar's 128 bytes, or an empty one, cannot be mapped: the layer refuses
//! it rather than fold it into a shorter one, and the host declares a capability for it
//! instead (`McpLayer::tool`).

use std::fmt::Write;

use crate::ceiling::is_capability_name;

/// The longest capability the grammar takes, in bytes.
const MAX_CAPABILITY: usize = 128;

/// `name` as one capability segment (see the module docs for the rule).
#[cfg(test)]
pub(crate) fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    escape_into(&mut out, name);
    out
}

fn escape_into(out: &mut String, name: &str) {
    for byte in name.bytes() {
        match byte {
            b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' => out.push(byte as char),
            b'A'..=b'Z' => {
                out.push('.');
                out.push(byte.to_ascii_lowercase() as char);
            }
            b'.' => out.push_str(".."),
            other => {
                // Writing to a String cannot fail.
                let _ = write!(out, "._{other:02x}");
            }
        }
    }
}

/// The inverse of [`escape`]: `None` for a segment `escape` never makes.
#[cfg(test)]
pub(crate) fn unescape(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'.' => match bytes.get(i + 1)? {
                b'.' => {
                    out.push(b'.');
                    i += 2;
                }
                b'_' => {
                    let hex = segment.get(i + 2..i + 4)?;
                    if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                        return None;
                    }
                    let byte = u8::from_str_radix(hex, 16).ok()?;
                    // A byte that has a shorter spelling is never hex-escaped.
                    if byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'.') {
                        return None;
                    }
                    out.push(byte);
                    i += 4;
                }
                letter @ b'a'..=b'z' => {
                    out.push(letter.to_ascii_uppercase());
                    i += 2;
                }
                _ => return None,
            },
            byte @ (b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-') => {
                out.push(byte);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

/// `prefix:` + the escaped `name`, if that is a capability name (`prefix` is one).
pub(crate) fn capability(prefix: &str, name: &str) -> Option<String> {
    if name.is_empty() {
        return None;
    }
    let mut capability = String::with_capacity(prefix.len() + 1 + name.len() + 8);
    capability.push_str(prefix);
    capability.push(':');
    escape_into(&mut capability, name);
    // Escaping writes grammar characters only, in a segment that is never empty: the length
    // is all that is left to check.
    debug_assert!(capability.len() > MAX_CAPABILITY || is_capability_name(&capability));
    (capability.len() <= MAX_CAPABILITY).then_some(capability)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Golden vectors: the rule as the docs state it.
    #[test]
    fn names_escape_as_documented() {
        for (name, segment) in [
            ("get_weather", "get_weather"),
            ("get-weather", "get-weather"),
            ("getWeather", "get.weather"),
            ("GetWeather", ".get.weather"),
            ("files.read", "files..read"),
            ("files/read", "files._2fread"),
            ("a b", "a._20b"),
            ("é", "._c3._a9"),
            ("file:///x", "file._3a._2f._2f._2fx"),
        ] {
            assert_eq!(escape(name), segment, "{name}");
            assert_eq!(unescape(segment).as_deref(), Some(name), "{segment}");
        }
    }

    #[test]
    fn names_that_differ_only_in_case_get_different_capabilities() {
        let names = ["getweather", "getWeather", "GetWeather", "GETWEATHER"];
        let capabilities: std::collections::HashSet<_> = names
            .iter()
            .map(|n| capability("mcp:tools", n).unwrap())
            .collect();
        assert_eq!(capabilities.len(), names.len());
    }

    /// The escapes that look alike stay apart: a literal dot, an upper-case letter, a hex
    /// escape, and the characters the grammar keeps.
    #[test]
    fn lookalike_names_stay_apart() {
        let names = [
            "a.b", "aB", "a._62", "a_62", "a.B", "a..b", "a/b", "a._2fb", "A", ".a", "a.",
        ];
        let segments: std::collections::HashSet<_> = names.iter().map(|n| escape(n)).collect();
        assert_eq!(segments.len(), names.len());
        for name in names {
            assert_eq!(unescape(&escape(name)).as_deref(), Some(name));
        }
    }

    #[test]
    fn segments_escape_never_makes_are_not_read_back() {
        for segment in [
            "A", ".", "a.", "._2", "._zz", "._61", "._2F", "._+2", ".1", "a:b",
        ] {
            assert_eq!(unescape(segment), None, "{segment}");
        }
    }

    #[test]
    fn a_name_too_long_or_empty_is_not_mapped() {
        assert_eq!(capability("mcp:tools", ""), None);
        let longest = "a".repeat(128 - "mcp:tools:".len());
        assert!(capability("mcp:tools", &longest).is_some());
        assert_eq!(capability("mcp:tools", &format!("{longest}a")), None);
        // Escaping counts: 59 upper-case letters are 118 bytes, 60 are too many.
        assert!(capability("mcp:tools", &"A".repeat(59)).is_some());
        assert_eq!(capability("mcp:tools", &"A".repeat(60)), None);
    }

    #[test]
    fn every_byte_escapes_to_capability_characters() {
        for byte in 0u8..=127 {
            let name = (byte as char).to_string();
            let capability = capability("mcp:tools", &name).unwrap();
            assert!(is_capability_name(&capability), "{byte}: {capability}");
            assert_eq!(unescape(&escape(&name)).as_deref(), Some(name.as_str()));
        }
    }
}
