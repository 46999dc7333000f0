//! Instants as the pages show them.

use time::OffsetDateTime;
use time::macros::format_description;

/// `at` as `2026-12-07 16:38 UTC`.
pub(crate) fn instant(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    at.format(format_description!(
        "[year]-[month]-[day] [hour]:[minute] UTC"
    ))
    .unwrap_or_else(|_| at.to_string())
}

/// `at` as [`instant`], or `none` when there is none.
pub(crate) fn ago_or(at: Option<OffsetDateTime>, none: &str) -> String {
    at.map_or_else(|| none.to_owned(), instant)
}
