//! The name a client gives itself, made fit for the consent page: a person reads it there, so
//! nothing in it may make it read as another client's.

/// The longest client name kept, in characters.
pub(crate) const MAX_NAME: usize = 100;

/// A client name fit for the consent page: control characters out, cut to [`MAX_NAME`].
pub(crate) fn clean_name(name: Option<&str>) -> String {
    // The consent page shows the name to a person: no control, invisible or bidirectional
    // characters that would make it read as another client's, and single spaces only.
    let name: String = name
        .unwrap_or_default()
        .chars()
        .filter(|&c| !c.is_control() && !crate::store::validate::is_hidden_char(c))
        .map(|c| {
            if crate::approval::is_blank_looking(c) {
                ' '
            } else {
                c
            }
        })
        .take(MAX_NAME)
        .collect();
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    match name.trim() {
        "" => "Unnamed client".to_owned(),
        trimmed => trimmed.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cleaned() {
        assert_eq!(clean_name(Some("  Tool\u{7}\n ")), "Tool");
        assert_eq!(clean_name(Some(&"x".repeat(500))).len(), MAX_NAME);
    }

    /// A name that would read as another client's on the consent page loses what makes it
    /// so: bidirectional overrides, zero-width and blank-looking characters, runs of spaces.
    #[test]
    fn a_client_name_reads_as_it_is() {
        assert_eq!(
            clean_name(Some("\u{202e}GitHub\u{200b} Official\u{00a0}\u{00a0}App")),
            "GitHub Official App"
        );
        assert_eq!(clean_name(Some("\u{2066}\u{feff}")), "Unnamed client");
        assert_eq!(clean_name(Some("Docs  search\n")), "Docs search");
    }
}
