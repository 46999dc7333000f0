//! Text sent back to a client: what an error may echo of it.

/// At most 64 characters of `text`, for an error that names what a client sent: a 100 KB slug
/// is not echoed back whole.
pub(crate) fn shortened(text: &str) -> String {
    match text.char_indices().nth(64) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}
