//! Text a person reads to decide: all there is to read, nothing hidden.

use time::OffsetDateTime;

use crate::store::validate::is_hidden_char;

/// Whether `c` shows as blank space without being U+0020: no-break, ideographic, Ogham,
/// Braille-blank and Hangul-filler spaces, the typographic spaces U+2000–U+200A, and every
/// other Unicode whitespace.
pub fn is_blank_looking(c: char) -> bool {
    (c.is_whitespace() && c != ' ')
        || matches!(
            c,
            '\u{00A0}' | '\u{1680}' | '\u{2000}'
                ..='\u{200A}'
                    | '\u{202F}'
                    | '\u{205F}'
                    | '\u{2800}'
                    | '\u{3000}'
                    | '\u{3164}'
                    | '\u{FFA0}'
                    | '\u{115F}'
                    | '\u{1160}'
        )
}

/// Checks a text a person reads to decide — a binding message, or a part of one such as a
/// payee — so that what they read is all there is: not blank, no leading or trailing space,
/// no whitespace but single U+0020 spaces (no runs: `"ACME" + 35 spaces + "x"` would hide
/// the `x`), no blank-looking ([`is_blank_looking`]), control, invisible or
/// bidirectional-override characters. The error says which rule, in a few words.
pub fn check_readable(text: &str) -> Result<(), &'static str> {
    if text.trim().is_empty() {
        return Err("blank");
    }
    if text.starts_with(' ') || text.ends_with(' ') {
        return Err("leading or trailing space");
    }
    if text.contains("  ") {
        return Err("runs of spaces");
    }
    if text.chars().any(is_blank_looking) {
        return Err("whitespace other than single spaces, or blank-looking characters");
    }
    if text.chars().any(is_hidden_char) {
        return Err("control, invisible or bidirectional-override characters");
    }
    Ok(())
}

/// An instant as RFC 3339, as answers and audit details show it.
pub(crate) fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_text_that_reads_as_it_is_passes() {
        for ok in ["Pay 50 EUR to ACME", "ACME Corp", "Zahle 50 € an Müller"] {
            assert_eq!(check_readable(ok), Ok(()), "{ok:?}");
        }
        let padded = format!("ACME{}x", " ".repeat(35));
        for bad in [
            "ACME\u{00a0}",
            "ACME\u{3000}",
            "ACME\u{2800}",
            "ACME\u{1680}",
            "ACME\u{2007}",
            "ACME\u{202f}",
            "ACME\u{205f}",
            "ACME\u{3164}",
            " ACME",
            "ACME ",
            "AC\nME",
            "AC\tME",
            padded.as_str(),
            "   ",
            "",
            "ACME\u{202e}",
        ] {
            assert!(check_readable(bad).is_err(), "{bad:?}");
        }
    }
}
