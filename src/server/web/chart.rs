//! The agent's activity over the last 24 hours, per hour, as the agent page draws it (an SVG
//! from `templates/activity.html`: the bars' places and heights are computed here, the markup
//! is the template's).
//!
//! What counts, from the audit trail (the agent's events and its thread-scoped children's):
//! - **admitted**: a [`Request`](AuditAction::Request) that succeeded, i.e. the agent's token
//!   was accepted and the application answered with neither 401 nor 403;
//! - **refused**: a presented token refused ([`TokenRefused`](AuditAction::TokenRefused):
//!   revoked, expired, …), a request the application refused with 401 or 403 (a `Request`
//!   [`Denied`](Outcome::Denied)), and a request refused by a rate limit
//!   ([`RateLimited`](AuditAction::RateLimited)).
//!
//! Management events (tokens issued, policy changed, …) are people's doing, not the agent's
//! requests, and are not counted. A row standing for repeated refusals counts as many times as
//! it occurred.

use time::{Duration, OffsetDateTime};

use crate::audit::{AuditAction, AuditEvent, Outcome};

/// The hours drawn.
pub(super) const HOURS: usize = 24;

/// At most this many events are read for the chart; past it the chart says it is incomplete.
pub(super) const MAX_EVENTS: usize = 50_000;

/// The drawing's width and height, in SVG units.
const WIDTH: u32 = 720;
const HEIGHT: u32 = 190;
/// Room for the scale on the left and the hours below.
const LEFT: u32 = 40;
const BOTTOM: u32 = 22;
const TOP: u32 = 10;
/// Each hour's column, and each of its two bars.
const COLUMN: u32 = (WIDTH - LEFT) / HOURS as u32;
const BAR: u32 = 11;

/// Whether `event` is one of the agent's requests admitted (`Some(true)`), refused
/// (`Some(false)`), or neither (`None`): the rule in the module's documentation.
fn counted(event: &AuditEvent) -> Option<bool> {
    match (event.action, &event.outcome) {
        (AuditAction::Request, Outcome::Success) => Some(true),
        (AuditAction::Request, _) | (AuditAction::TokenRefused, _) => Some(false),
        (AuditAction::RateLimited, _) => Some(false),
        _ => None,
    }
}

/// One hour's column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Hour {
    /// When it starts, `14:00` (UTC).
    pub label: String,
    /// Whether its label is written under the axis (every third hour back from the current
    /// one, not to crowd it).
    pub labelled: bool,
    /// Requests admitted and refused.
    pub admitted: u64,
    pub refused: u64,
    /// The column's left edge and its label's centre.
    pub x: u32,
    pub label_x: u32,
    /// The bars: left edge of each, top and height.
    pub admitted_x: u32,
    pub admitted_y: u32,
    pub admitted_height: u32,
    pub refused_x: u32,
    pub refused_y: u32,
    pub refused_height: u32,
}

/// The chart: 24 hours, oldest first, ending with the current one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Activity {
    pub hours: Vec<Hour>,
    /// Totals over the 24 hours.
    pub admitted: u64,
    pub refused: u64,
    /// The value at the top of the scale (a round number at or above the busiest hour).
    pub scale: u64,
    /// Whether more events happened than were read ([`MAX_EVENTS`]).
    pub incomplete: bool,
    /// The drawing's size and the baseline's and the scale's places.
    pub width: u32,
    pub height: u32,
    pub left: u32,
    pub top: u32,
    pub baseline: u32,
    pub label_y: u32,
}

/// The first instant the chart covers at `now`: the start of the hour 23 hours before the
/// current one.
pub(super) fn since(now: OffsetDateTime) -> OffsetDateTime {
    hour_start(now) - Duration::hours(HOURS as i64 - 1)
}

fn hour_start(at: OffsetDateTime) -> OffsetDateTime {
    let at = at.to_offset(time::UtcOffset::UTC);
    at.replace_time(time::Time::from_hms(at.hour(), 0, 0).unwrap_or(time::Time::MIDNIGHT))
}

/// The smallest of 1, 2, 5, 10, 20, 50, … at or above `n` (at least 1).
fn round_up(n: u64) -> u64 {
    let mut step = 1u64;
    loop {
        for scale in [step, step.saturating_mul(2), step.saturating_mul(5)] {
            if scale >= n {
                return scale;
            }
        }
        if step > u64::MAX / 10 {
            return u64::MAX;
        }
        step *= 10;
    }
}

/// A bar's height for `count` on a scale of `scale` over `room` units: at least one unit for
/// any count above zero, so that a single request shows.
fn height(count: u64, scale: u64, room: u32) -> u32 {
    if count == 0 {
        return 0;
    }
    let h = (u128::from(count) * u128::from(room)).div_ceil(u128::from(scale.max(1)));
    u32::try_from(h).unwrap_or(room).clamp(1, room)
}

impl Activity {
    /// The chart of `events` (as read since [`since`]`(now)`), `incomplete` when the read was
    /// cut at [`MAX_EVENTS`].
    pub(super) fn new(events: &[AuditEvent], now: OffsetDateTime, incomplete: bool) -> Self {
        let first = since(now);
        let mut counts = [(0u64, 0u64); HOURS];
        for event in events {
            let Some(admitted) = counted(event) else {
                continue;
            };
            // Not `whole_hours` alone: it rounds toward zero, which would put a minute before
            // the first hour in it.
            if event.at < first {
                continue;
            }
            let offset = (event.at - first).whole_hours();
            let Some(slot) = usize::try_from(offset).ok().filter(|&h| h < HOURS) else {
                continue;
            };
            let n = event.occurrences.max(1);
            if admitted {
                counts[slot].0 = counts[slot].0.saturating_add(n);
            } else {
                counts[slot].1 = counts[slot].1.saturating_add(n);
            }
        }
        let busiest = counts.iter().map(|&(a, r)| a.max(r)).max().unwrap_or(0);
        let scale = round_up(busiest);
        let baseline = HEIGHT - BOTTOM;
        let room = baseline - TOP;
        let hours = counts
            .iter()
            .enumerate()
            .map(|(i, &(admitted, refused))| {
                let start = first + Duration::hours(i as i64);
                let x = LEFT + COLUMN * i as u32;
                let admitted_height = height(admitted, scale, room);
                let refused_height = height(refused, scale, room);
                Hour {
                    label: format!("{:02}:00", start.hour()),
                    labelled: (HOURS - 1 - i) % 3 == 0,
                    admitted,
                    refused,
                    x,
                    label_x: x + COLUMN / 2,
                    admitted_x: x + 2,
                    admitted_y: baseline - admitted_height,
                    admitted_height,
                    refused_x: x + 2 + BAR,
                    refused_y: baseline - refused_height,
                    refused_height,
                }
            })
            .collect();
        Self {
            hours,
            admitted: counts.iter().map(|c| c.0).sum(),
            refused: counts.iter().map(|c| c.1).sum(),
            scale,
            incomplete,
            width: WIDTH,
            height: HEIGHT,
            left: LEFT,
            top: TOP,
            baseline,
            label_y: HEIGHT - 6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::InvalidReason;
    use time::macros::datetime;

    fn at(at: OffsetDateTime, action: AuditAction, outcome: Outcome) -> AuditEvent {
        AuditEvent::new(at, action, outcome)
    }

    #[test]
    fn requests_fall_in_their_hour_and_count_as_admitted_or_refused() {
        let now = datetime!(2026-03-01 14:20 UTC);
        let mut repeated = at(
            datetime!(2026-03-01 13:05 UTC),
            AuditAction::TokenRefused,
            Outcome::Refused(InvalidReason::Revoked),
        );
        repeated.occurrences = 4;
        let events = [
            at(now, AuditAction::Request, Outcome::Success),
            at(
                datetime!(2026-03-01 14:00 UTC),
                AuditAction::Request,
                Outcome::Success,
            ),
            at(
                datetime!(2026-03-01 13:59 UTC),
                AuditAction::Request,
                Outcome::Denied,
            ),
            repeated,
            at(
                datetime!(2026-02-28 15:00 UTC),
                AuditAction::RateLimited,
                Outcome::Denied,
            ),
            // Before the first hour, and not a request: not counted.
            at(
                datetime!(2026-02-28 14:59 UTC),
                AuditAction::Request,
                Outcome::Success,
            ),
            at(now, AuditAction::TokenIssued, Outcome::Success),
        ];
        let chart = Activity::new(&events, now, false);
        assert_eq!(chart.hours.len(), HOURS);
        assert_eq!(chart.hours[0].label, "15:00");
        assert_eq!(chart.hours[23].label, "14:00");
        assert!(chart.hours[23].labelled && chart.hours[20].labelled);
        assert!(!chart.hours[22].labelled);
        assert_eq!((chart.hours[23].admitted, chart.hours[23].refused), (2, 0));
        assert_eq!((chart.hours[22].admitted, chart.hours[22].refused), (0, 5));
        assert_eq!((chart.hours[0].admitted, chart.hours[0].refused), (0, 1));
        assert_eq!((chart.admitted, chart.refused), (2, 6));
        assert_eq!(chart.scale, 5);
        // The busiest bar fills the room; a smaller one is in proportion, on the baseline.
        let room = chart.baseline - chart.top;
        assert_eq!(chart.hours[22].refused_height, room);
        assert_eq!(chart.hours[22].refused_y, chart.top);
        assert_eq!(chart.hours[23].admitted_height, (2 * room).div_ceil(5));
        assert_eq!(
            chart.hours[23].admitted_y + chart.hours[23].admitted_height,
            chart.baseline
        );
        assert_eq!(chart.hours[5].admitted_height, 0);
    }

    #[test]
    fn the_scale_is_a_round_number() {
        for (n, scale) in [
            (0, 1),
            (1, 1),
            (3, 5),
            (7, 10),
            (11, 20),
            (120, 200),
            (501, 1000),
        ] {
            assert_eq!(round_up(n), scale, "{n}");
        }
        assert_eq!(round_up(u64::MAX), u64::MAX);
        assert_eq!(height(1, 1000, 100), 1, "a single request shows");
        assert_eq!(height(u64::MAX, u64::MAX, 100), 100);
    }
}
