//! Durations as people type them: `500ms`, `45s`, `15m`, `12h`, `30d`, `2w` or plain seconds.

use std::time::Duration;

/// The longest duration accepted: a hundred years.
const LONGEST: u64 = 100 * 365 * 86_400;

/// Parses `500ms`, `45s`, `15m`, `12h`, `30d`, `2w` or `3600` (seconds); refuses anything else, and
/// anything longer than a hundred years, with a message that says what is expected.
///
/// ```
/// use std::time::Duration;
/// use tower_agent_auth::server::parse_duration;
///
/// assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
/// assert_eq!(parse_duration("3600"), Ok(Duration::from_secs(3600)));
/// assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
/// assert!(parse_duration("1 h").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!("invalid duration {text:?}: expected e.g. 500ms, 45s, 15m, 12h, 30d, 2w or 3600")
    };
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().map_err(|_| bad())?;
    if unit == "ms" {
        return Some(Duration::from_millis(n))
            .filter(|d| d.as_secs() <= LONGEST)
            .ok_or_else(bad);
    }
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(bad()),
    };
    n.checked_mul(seconds)
        .filter(|s| *s <= LONGEST)
        .map(Duration::from_secs)
        .ok_or_else(bad)
}
