//! Duration flags, parsed by clap: the management API's syntax
//! ([`parse_duration`]: `humantime`'s `15m`, `12h`, `30d`, `1h 30m`, or plain seconds), so a
//! command line and a request take the same text. A bad value is refused by clap, naming the
//! flag, before anything runs.

use std::time::Duration;

pub use tower_agent_auth::server::parse_duration;

/// Any duration, zero included (`--grace 0` revokes now).
pub fn duration(text: &str) -> Result<Duration, String> {
    parse_duration(text.trim())
}

/// A duration longer than zero: a timeout, a window, a lifetime.
pub fn positive(text: &str) -> Result<Duration, String> {
    let parsed = duration(text)?;
    if parsed.is_zero() {
        return Err("must be more than 0".into());
    }
    Ok(parsed)
}

/// `approval approve --for`: the examples it gives lie within an approval's longest window
/// (1 day), not the 30d or 2w of other flags.
pub fn approval_window(text: &str) -> Result<Duration, String> {
    duration(text).map_err(|_| {
        format!("invalid duration {text:?}: expected e.g. 90s, 15m, 12h or 1d (at most 1d)")
    })
}

/// How a duration is shown back: `15m`, `1h 30m`.
pub fn shown(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(duration("3600"), Ok(Duration::from_secs(3600)));
        assert_eq!(duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(duration("0"), Ok(Duration::ZERO));
        // humantime's syntax: units may be combined.
        assert_eq!(duration("1h 30m"), Ok(Duration::from_secs(5400)));
        for bad in ["", "m", "15x", "-5m", "99999999999999d"] {
            assert!(duration(bad).is_err(), "{bad}");
        }
        assert!(positive("0").is_err());
        assert!(positive("0s").is_err());
        assert_eq!(positive("1s"), Ok(Duration::from_secs(1)));
        let refused = approval_window("xyz").unwrap_err();
        assert!(refused.ends_with("12h or 1d (at most 1d)"), "{refused}");
        assert!(!refused.contains("2w"), "{refused}");
    }
}
