//! The limit on wrong user codes, per signed-in session and per client address: what keeps a
//! person (or a script with a session) from trying codes until one is someone's.
//!
//! Each entry takes one try of both windows *before* the code is looked up, and a right code
//! gives its tries back: requests sent at once cannot look up more codes than the limit
//! allows. A window opens at its first try and closes [`DeviceFlow::entry_window`] later;
//! windows are kept in memory ([`moka`], bounded), on each node.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use moka::sync::Cache;

use super::flow::DeviceFlow;

/// The windows kept per kind: a bound on memory (an evicted window starts afresh).
const CAPACITY: u64 = 100_000;

/// One window: when it opened, how many tries it counted, whether its refusal was reported.
struct Window {
    opened: Instant,
    tries: AtomicU32,
    reported: AtomicBool,
}

impl Window {
    fn new() -> Self {
        Self {
            opened: Instant::now(),
            tries: AtomicU32::new(0),
            reported: AtomicBool::new(false),
        }
    }

    /// Takes a try if fewer than `limit` were taken: the tries left after it.
    fn take(&self, limit: u32) -> Option<u32> {
        self.tries
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|before| limit - before - 1)
    }

    fn give_back(&self) {
        let _ =
            (self.tries).fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }
}

/// Which limit refused an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit {
    Session,
    Address,
}

impl Limit {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::Address => "address",
        }
    }
}

/// An entry refused: how long until the window closes, which limit, and whether it is the
/// first refusal of that window (report only those).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Throttled {
    pub(crate) retry_after: Duration,
    pub(crate) limit: Limit,
    pub(crate) first: bool,
}

/// A try taken: the tries left after it, and the windows to give it back to if the code was
/// right.
pub(crate) struct Try {
    pub(crate) left: u32,
    windows: [Arc<Window>; 2],
}

impl Try {
    /// The code was right: the try is given back.
    pub(crate) fn give_back(self) {
        for window in &self.windows {
            window.give_back();
        }
    }
}

/// The windows of every session and address.
pub(crate) struct WrongEntries {
    flow: DeviceFlow,
    sessions: Cache<[u8; 32], Arc<Window>>,
    addresses: Cache<[u8; 16], Arc<Window>>,
}

/// The address as the limit counts it: an IPv6 address by its /64; unknown is one for all.
fn address_key(address: Option<IpAddr>) -> [u8; 16] {
    match address.map(|a| a.to_canonical()) {
        Some(IpAddr::V4(v4)) => v4.to_ipv6_mapped().octets(),
        Some(IpAddr::V6(v6)) => {
            let mut key = [0u8; 16];
            key[..8].copy_from_slice(&v6.octets()[..8]);
            key[8] = 0xff;
            key
        }
        None => [0; 16],
    }
}

impl WrongEntries {
    pub(crate) fn new(flow: DeviceFlow) -> Self {
        let window = flow.entry_window.max(Duration::from_secs(1));
        Self {
            flow,
            sessions: Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(window)
                .build(),
            addresses: Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(window)
                .build(),
        }
    }

    fn refused(&self, window: &Window, limit: Limit) -> Throttled {
        let closes = window.opened + self.flow.entry_window;
        Throttled {
            retry_after: closes
                .saturating_duration_since(Instant::now())
                .max(Duration::from_secs(1)),
            limit,
            first: !window.reported.swap(true, Ordering::AcqRel),
        }
    }

    /// Takes a try for the session `session` (a digest naming it) from `address`, before the
    /// code is looked up; refused when either window has none left.
    pub(crate) fn take(
        &self,
        session: [u8; 32],
        address: Option<IpAddr>,
    ) -> Result<Try, Throttled> {
        let by_session = self.sessions.get_with(session, || Arc::new(Window::new()));
        let by_address =
            (self.addresses).get_with(address_key(address), || Arc::new(Window::new()));
        let Some(session_left) = by_session.take(self.flow.wrong_entries_per_session.get()) else {
            return Err(self.refused(&by_session, Limit::Session));
        };
        let Some(address_left) = by_address.take(self.flow.wrong_entries_per_address.get()) else {
            by_session.give_back();
            return Err(self.refused(&by_address, Limit::Address));
        };
        Ok(Try {
            left: session_left.min(address_left),
            windows: [by_session, by_address],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::num::NonZeroU32;

    fn limits(session: u32, address: u32) -> WrongEntries {
        WrongEntries::new(DeviceFlow {
            wrong_entries_per_session: NonZeroU32::new(session).unwrap(),
            wrong_entries_per_address: NonZeroU32::new(address).unwrap(),
            ..DeviceFlow::default()
        })
    }

    const HOME: Option<IpAddr> = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));

    #[test]
    fn a_session_has_its_tries_and_right_codes_cost_none() {
        let entries = limits(3, 100);
        entries.take([1; 32], HOME).unwrap().give_back();
        let lefts: Vec<u32> = (0..3)
            .map(|_| entries.take([1; 32], HOME).unwrap().left)
            .collect();
        assert_eq!(lefts, [2, 1, 0]);
        let refused = entries.take([1; 32], HOME).err().unwrap();
        assert_eq!(refused.limit, Limit::Session);
        assert!(refused.first);
        assert!(
            refused.retry_after > Duration::from_secs(800),
            "{refused:?}"
        );
        assert!(
            !entries.take([1; 32], HOME).err().unwrap().first,
            "reported once"
        );
        // Another session is not affected.
        assert_eq!(entries.take([2; 32], HOME).unwrap().left, 2);
    }

    #[test]
    fn an_address_counts_every_session_of_it() {
        let entries = limits(5, 4);
        for session in 0..4u8 {
            entries.take([session; 32], HOME).unwrap();
        }
        let refused = entries.take([9; 32], HOME).err().unwrap();
        assert_eq!(refused.limit, Limit::Address);
        // The session's try was given back: it has all 5 of its own, from other addresses.
        for n in 0..5 {
            let elsewhere = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, n)));
            entries.take([9; 32], elsewhere).unwrap();
        }
        let elsewhere = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 1, 1)));
        let refused = entries.take([9; 32], elsewhere).err().unwrap();
        assert_eq!(refused.limit, Limit::Session);
        // An IPv6 /64 is one address.
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::2".parse().unwrap();
        assert_eq!(address_key(Some(a)), address_key(Some(b)));
        assert_ne!(address_key(Some(a)), address_key(HOME));
    }

    #[test]
    fn tries_taken_at_once_never_pass_the_limit() {
        let entries = Arc::new(limits(5, 100));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let entries = entries.clone();
                std::thread::spawn(move || entries.take([7; 32], HOME).is_ok())
            })
            .collect();
        let taken = threads
            .into_iter()
            .filter_map(|t| t.join().unwrap().then_some(()))
            .count();
        // The tries are kept, as wrong codes keep them.
        assert_eq!(taken, 5);
    }
}
