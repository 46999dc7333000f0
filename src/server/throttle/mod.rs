//! Limits on sign-in attempts, so a password cannot be guessed at the speed of the server.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// How many sign-in attempts are allowed, and over how long. Each limit is a burst of that many
/// attempts, refilled evenly over `window` (so 5 per minute: 5 at once, then one every 12 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    /// Attempts for one account from one client address: what stops guessing one password.
    pub per_account_and_address: NonZeroU32,
    /// Attempts from one client address, whatever the account: what stops one address trying
    /// one password on many accounts.
    pub per_address: NonZeroU32,
    /// Attempts for one account from every address together: what slows a guess spread over
    /// many addresses. Looser than the first, and not applied to an address the account signed
    /// in from before (see [`LoginThrottle`]), so an attack cannot keep the user out.
    pub per_account: NonZeroU32,
    /// The window every limit refills over.
    pub window: Duration,
    /// How long a successful sign-in marks its (account, address) pair as known.
    pub known_for: Duration,
    /// The most keys each limiter holds: past it, keys whose limit has refilled are dropped
    /// and, if every key is still live, the limiter is cleared (memory stays bounded; the
    /// limits reset rather than grow).
    pub max_keys: usize,
}

impl Default for LoginLimits {
    /// 5 per (account, address), 30 per address, 20 per account, each per minute; known pairs
    /// remembered 30 days; at most 100 000 keys per limiter.
    fn default() -> Self {
        Self {
            per_account_and_address: NonZeroU32::new(5).unwrap_or(NonZeroU32::MIN),
            per_address: NonZeroU32::new(30).unwrap_or(NonZeroU32::MIN),
            per_account: NonZeroU32::new(20).unwrap_or(NonZeroU32::MIN),
            window: Duration::from_secs(60),
            known_for: Duration::from_secs(30 * 86_400),
            max_keys: 100_000,
        }
    }
}

/// A sign-in attempt refused by a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// When the next attempt may be made (answer `Retry-After` with it, rounded up).
    pub retry_after: Duration,
    /// Which limit refused it.
    pub limit: ThrottleLimit,
    /// Whether it is the first refusal for this account and address in this window: record
    /// only those in the audit trail, so an attack does not flood it.
    pub first: bool,
}

/// Which limit of [`LoginLimits`] refused an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleLimit {
    /// [`LoginLimits::per_account_and_address`].
    AccountAndAddress,
    /// [`LoginLimits::per_address`].
    Address,
    /// [`LoginLimits::per_account`].
    Account,
    /// [`LoginLimits::per_account_and_address`], for a browser holding a device cookie of the
    /// account.
    Device,
}

impl ThrottleLimit {
    /// `account_and_address`, `address`, `account` or `device`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::AccountAndAddress => "account_and_address",
            Self::Address => "address",
            Self::Account => "account",
            Self::Device => "device",
        }
    }
}

/// The client as the limits see it: an IPv6 address counts by its /64, which one host usually
/// owns whole; an unknown address (no `ConnectInfo`) is one client for all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Client {
    V4([u8; 4]),
    V6([u8; 8]),
    Unknown,
}

/// The key a refusal is recorded under: the key of the limit that refused it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Refused {
    Device([u8; 32]),
    Pair((Box<str>, Client)),
    Address(Client),
    Account(Box<str>),
}

impl From<Option<IpAddr>> for Client {
    fn from(address: Option<IpAddr>) -> Self {
        match address.map(|a| a.to_canonical()) {
            Some(IpAddr::V4(v4)) => Self::V4(v4.octets()),
            Some(IpAddr::V6(v6)) => {
                let mut prefix = [0u8; 8];
                prefix.copy_from_slice(&v6.octets()[..8]);
                Self::V6(prefix)
            }
            None => Self::Unknown,
        }
    }
}

/// Account names are cut to this many bytes in keys (user ids are at most 100 bytes): a
/// megabyte of name costs no more memory than a real one.
const NAME_BYTES: usize = 128;

fn account_key(account: &str) -> Box<str> {
    let mut end = account.len().min(NAME_BYTES);
    while !account.is_char_boundary(end) {
        end -= 1;
    }
    account[..end].into()
}

/// The sign-in limits, in memory (one process; a restart forgets them). Uses
/// [`governor`]'s GCRA limiters, one per [`LoginLimits`] field. Every attempt counts against
/// the (account, address) and address limits; the per-account limit does not apply to an
/// (account, address) pair that signed in successfully within
/// [`LoginLimits::known_for`], so an attacker spreading guesses over many addresses slows
/// them down for new addresses only, never for the user's own. A success does not refill the
/// (account, address) limit (governor's limiters have no per-key reset): its burst is what a
/// person who mistypes needs, and it refills within the window.
///
/// Memory is bounded: each limiter holds at most [`LoginLimits::max_keys`] keys (refilled
/// ones are dropped first; a limiter full of live keys starts afresh), and so do the maps of
/// known pairs and of refusals.
///
/// ```
/// use std::net::{IpAddr, Ipv4Addr};
/// use tower_agent_auth::server::{LoginLimits, LoginThrottle};
/// let throttle = LoginThrottle::new(LoginLimits::default());
/// let from = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
/// for _ in 0..5 {
///     assert!(throttle.check("alice", from).is_ok());
/// }
/// let refused = throttle.check("alice", from).unwrap_err();
/// assert!(refused.retry_after.as_secs() <= 12);
/// // Another address is not affected.
/// assert!(throttle.check("alice", Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)))).is_ok());
/// ```
pub struct LoginThrottle {
    limits: LoginLimits,
    by_pair: Limiter<(Box<str>, Client)>,
    by_address: Limiter<Client>,
    by_account: Limiter<Box<str>>,
    clock: DefaultClock,
    /// Pairs that signed in, and when.
    known: Mutex<HashMap<(Box<str>, Client), Instant>>,
    /// What was refused in this window, and when first (for [`Throttled::first`]).
    refused: Mutex<HashMap<Refused, Instant>>,
    /// Device cookies handed out at successful sign-ins (their SHA-256): for which account,
    /// since when.
    devices: Mutex<HashMap<[u8; 32], Device>>,
    by_device: Limiter<[u8; 32]>,
}

/// A device cookie handed out: the account it signs in to, and since when.
type Device = (Box<str>, Instant);

/// The device cookie: set by a successful sign-in, it lets that browser sign in to that account
/// under a limit of its own, so that no one else's attempts — from the same address (a NAT, an
/// office) or from anywhere — can lock it out (OWASP's "device cookies").
pub const DEVICE_COOKIE: &str = "agent_auth_device";

impl std::fmt::Debug for LoginThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginThrottle")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

fn quota(attempts: NonZeroU32, window: Duration) -> Quota {
    let period = (window / attempts.get()).max(Duration::from_millis(1));
    Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(attempts)
}

/// One keyed limiter, replaced by a fresh one when it holds `max` live keys.
struct Limiter<K: Hash + Eq + Clone> {
    quota: Quota,
    current: ArcSwap<DefaultKeyedRateLimiter<K>>,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    fn new(quota: Quota) -> Self {
        Self {
            quota,
            current: ArcSwap::from_pointee(RateLimiter::keyed(quota)),
        }
    }

    /// Counts one attempt for `key`: `Err(wait)` when over the limit.
    fn check(&self, key: &K, max: usize, clock: &DefaultClock) -> Result<(), Duration> {
        let mut limiter = self.current.load_full();
        if limiter.len() >= max {
            limiter.retain_recent();
            limiter.shrink_to_fit();
            if limiter.len() >= max {
                // Only a flood of distinct keys within one window gets here: start afresh
                // rather than grow.
                limiter = Arc::new(RateLimiter::keyed(self.quota));
                self.current.store(limiter.clone());
            }
        }
        limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(clock.now()))
    }
}

/// Makes room for one more entry in `map`, which holds at most `max`: entries `keep` no longer
/// wants go first, then the oldest tenth — never all at once, so that a flood of new entries
/// cannot wipe what protects the others (known pairs, device cookies).
fn bound_map<K: Clone + Eq + Hash, V>(
    map: &mut HashMap<K, V>,
    max: usize,
    since: impl Fn(&V) -> Instant,
    keep: impl Fn(&V) -> bool,
) {
    if map.len() < max {
        return;
    }
    map.retain(|_, value| keep(value));
    if map.len() < max {
        return;
    }
    let mut ages: Vec<(Instant, K)> = map.iter().map(|(k, v)| (since(v), k.clone())).collect();
    ages.sort_unstable_by_key(|(at, _)| *at);
    for (_, key) in ages.into_iter().take((max / 10).max(1)) {
        map.remove(&key);
    }
}

/// The most device cookies one account holds; a new one replaces its oldest.
const DEVICES_PER_ACCOUNT: usize = 16;

impl LoginThrottle {
    /// Limits as `limits` say.
    pub fn new(limits: LoginLimits) -> Self {
        Self {
            by_pair: Limiter::new(quota(limits.per_account_and_address, limits.window)),
            by_address: Limiter::new(quota(limits.per_address, limits.window)),
            by_account: Limiter::new(quota(limits.per_account, limits.window)),
            clock: DefaultClock::default(),
            known: Mutex::default(),
            refused: Mutex::default(),
            devices: Mutex::default(),
            by_device: Limiter::new(quota(limits.per_account_and_address, limits.window)),
            limits,
        }
    }

    /// The limits.
    pub fn limits(&self) -> &LoginLimits {
        &self.limits
    }

    fn is_known(&self, pair: &(Box<str>, Client)) -> bool {
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        known
            .get(pair)
            .is_some_and(|at| at.elapsed() < self.limits.known_for)
    }

    /// Counts an attempt to sign in as `account` from `address`; refuses it when a limit is
    /// reached. Call it before checking the password.
    pub fn check(&self, account: &str, address: Option<IpAddr>) -> Result<(), Throttled> {
        let client = Client::from(address);
        let account = account_key(account);
        let pair = (account.clone(), client);
        let max = self.limits.max_keys.max(1);
        let clock = &self.clock;
        // A pair that signed in before is held only to its own limit: neither another client
        // at the same address (a NAT, an office) trying many names nor many addresses trying
        // this name can lock its user out.
        // For any other pair the address limit comes first, so that a client trying a new name
        // each time adds no key to the pair limiter once its address is spent.
        let known = self.is_known(&pair);
        let refusal = if known {
            self.by_pair
                .check(&pair, max, clock)
                .err()
                .map(|wait| (wait, ThrottleLimit::AccountAndAddress))
        } else if let Err(wait) = self.by_address.check(&client, max, clock) {
            Some((wait, ThrottleLimit::Address))
        } else if let Err(wait) = self.by_pair.check(&pair, max, clock) {
            Some((wait, ThrottleLimit::AccountAndAddress))
        } else if let Err(wait) = self.by_account.check(&account, max, clock) {
            Some((wait, ThrottleLimit::Account))
        } else {
            None
        };
        let Some((retry_after, limit)) = refusal else {
            return Ok(());
        };
        // What a refusal is recorded under: the limit's own key, so that a client trying a new
        // name each time is one record per window, not one per name.
        let key = match limit {
            ThrottleLimit::AccountAndAddress => Refused::Pair(pair),
            ThrottleLimit::Address => Refused::Address(client),
            ThrottleLimit::Account | ThrottleLimit::Device => Refused::Account(account),
        };
        Err(self.refusal(key, retry_after, limit))
    }

    /// Counts an attempt to sign in as `account` from a browser presenting the device cookie
    /// `device`: `None` when the cookie is not one this throttle gave for `account` (then
    /// [`LoginThrottle::check`] decides), else the verdict of the device's own limit — the
    /// address and account limits do not apply to it.
    pub fn check_device(&self, account: &str, device: &str) -> Option<Result<(), Throttled>> {
        let digest: [u8; 32] = Sha256::digest(device.as_bytes()).into();
        let account = account_key(account);
        let known = {
            let devices = self.devices.lock().unwrap_or_else(|e| e.into_inner());
            devices.get(&digest).is_some_and(|(owner, since)| {
                *owner == account && since.elapsed() < self.limits.known_for
            })
        };
        if !known {
            return None;
        }
        let max = self.limits.max_keys.max(1);
        Some(
            self.by_device
                .check(&digest, max, &self.clock)
                .map_err(|wait| self.refusal(Refused::Device(digest), wait, ThrottleLimit::Device)),
        )
    }

    /// A new device cookie value for a browser that just signed in as `account` (see
    /// [`DEVICE_COOKIE`]); `None` if no randomness is available.
    pub fn remember_device(&self, account: &str) -> Option<String> {
        let mut secret = [0u8; 16];
        getrandom::fill(&mut secret).ok()?;
        let secret = hex::encode(secret);
        let digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let account = account_key(account);
        let mut devices = self.devices.lock().unwrap_or_else(|e| e.into_inner());
        let known_for = self.limits.known_for;
        // One account signing in again and again replaces its own oldest cookie; it cannot
        // crowd out other users' devices.
        let mut own: Vec<([u8; 32], Instant)> = devices
            .iter()
            .filter(|(_, (owner, _))| *owner == account)
            .map(|(digest, (_, since))| (*digest, *since))
            .collect();
        if own.len() >= DEVICES_PER_ACCOUNT {
            own.sort_unstable_by_key(|(_, since)| *since);
            for (digest, _) in &own[..=own.len() - DEVICES_PER_ACCOUNT] {
                devices.remove(digest);
            }
        }
        bound_map(
            &mut devices,
            self.limits.max_keys.max(1),
            |(_, since)| *since,
            |(_, since)| since.elapsed() < known_for,
        );
        devices.insert(digest, (account, Instant::now()));
        Some(secret)
    }

    /// A refusal under `key`, marked [`Throttled::first`] once per window.
    fn refusal(&self, key: Refused, retry_after: Duration, limit: ThrottleLimit) -> Throttled {
        let mut refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        let window = self.limits.window;
        bound_map(
            &mut refused,
            self.limits.max_keys.max(1),
            |at| *at,
            |at| at.elapsed() < window,
        );
        let first = match refused.get(&key) {
            Some(at) if at.elapsed() < window => false,
            _ => {
                refused.insert(key, Instant::now());
                true
            }
        };
        Throttled {
            retry_after: retry_after.max(Duration::from_millis(1)),
            limit,
            first,
        }
    }

    /// Records a successful sign-in: the pair is known from now on (the per-account limit
    /// does not apply to it), and its next refusal is a [`Throttled::first`] again.
    pub fn succeeded(&self, account: &str, address: Option<IpAddr>) {
        let pair = (account_key(account), Client::from(address));
        self.refused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&Refused::Pair(pair.clone()));
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        let known_for = self.limits.known_for;
        bound_map(
            &mut known,
            self.limits.max_keys.max(1),
            |at| *at,
            |at| at.elapsed() < known_for,
        );
        known.insert(pair, Instant::now());
    }
}

#[cfg(test)]
mod tests;
