//! Durations as people type them, one syntax for the management API and the `agent-auth` CLI:
//! `humantime`'s (`500ms`, `45s`, `15m`, `12h`, `30d`, `2w`, `1h 30m`), or plain seconds.

use std::time::Duration;

/// The longest duration accepted: a hundred years.
const LONGEST: Duration = Duration::from_secs(100 * 365 * 86_400);

/// Parses a duration in `humantime`'s syntax (`500ms`, `45s`, `15m`, `12h`, `30d`, `2w`,
/// `1h 30m`) or plain seconds (`3600`); refuses anything else, and anything longer than a
/// hundred years, with a message that says what is expected.
///
/// ```
/// use std::time::Duration;
/// use tower_agent_auth::server::parse_duration;
///
/// assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
/// assert_eq!(parse_duration("3600"), Ok(Duration::from_secs(3600)));
/// assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
/// assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
/// assert!(parse_duration("1 fortnight").is_err());
/// assert!(parse_duration("200y").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!("invalid duration {text:?}: expected e.g. 500ms, 45s, 15m, 12h, 30d, 2w or 3600")
    };
    // Plain seconds, which the API and the CLI have always taken; humantime wants a unit.
    let parsed = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse().map(Duration::from_secs).map_err(|_| bad())?
    } else {
        humantime::parse_duration(text).map_err(|_| bad())?
    };
    Some(parsed).filter(|d| *d <= LONGEST).ok_or_else(bad)
}
