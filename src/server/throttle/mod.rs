//! Limits on failed sign-in attempts, so a password cannot be guessed at the speed of the
//! server.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

mod limiter;

use limiter::Limiter;

/// How many failed sign-in attempts are allowed, and over how long. Each limit is a burst of
/// that many attempts, refilled evenly over `window` (so 5 per minute: 5 at once, then one
/// every 12 s). An attempt being verified counts until it turns out right (see
/// [`LoginThrottle`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    /// Failed attempts for one account from one client address: what stops guessing one
    /// password.
    pub per_account_and_address: NonZeroU32,
    /// Failed attempts from one client address, whatever the account: what stops one address
    /// trying one password on many accounts.
    pub per_address: NonZeroU32,
    /// Failed attempts for one account from every address together: what slows a guess
    /// spread over many addresses. Looser than the first, and not applied to an address the
    /// account signed in from before (see [`LoginThrottle`]), so an attack cannot keep the
    /// user out.
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

/// The sign-in limits, in memory (one process; a restart forgets them): GCRA limiters, one
/// per [`LoginLimits`] field, that count **failed** attempts. A correct password is never
/// refused because of earlier correct ones: ten sign-ins in a row from a script without the
/// device cookie are ten sign-ins.
///
/// Counting failures without letting concurrent guesses through: [`LoginThrottle::check`],
/// before the password is verified, *takes* an attempt from each limit that applies (refusing
/// when one is spent) and hands back an [`Attempt`]; [`Attempt::succeeded`] (a correct
/// password) and [`Attempt::unverified`] (no password was verified: the hashing pool was busy,
/// the user store down) give it back, and a wrong password ([`Attempt::failed`], or dropping
/// the attempt) keeps it taken. So at any moment a limit counts the failures of its window
/// plus the attempts still being verified: a thousand guesses sent at once get as far as the
/// limit's burst, not a thousand Argon2 verifications. (Checking first and counting after the
/// verification would let every guess in flight pass the check.) A refused attempt takes
/// nothing: only a verified wrong password counts.
///
/// Which limits apply: the (account, address) and address limits to every attempt; the
/// per-account limit not to an (account, address) pair that signed in successfully within
/// [`LoginLimits::known_for`], so an attacker spreading guesses over many addresses slows
/// them down for new addresses only, never for the user's own; a browser with a
/// [device cookie](DEVICE_COOKIE) of the account only its own limit
/// ([`LoginThrottle::check_device`]).
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
/// // Right passwords give their attempt back.
/// for _ in 0..10 {
///     throttle.check("alice", from).unwrap().succeeded();
/// }
/// // Wrong ones keep it: 5 per minute.
/// for _ in 0..5 {
///     throttle.check("alice", from).unwrap().failed();
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

/// A sign-in attempt admitted by the limits, its password not verified yet. Settle it with
/// what the verification said: [`Attempt::succeeded`], [`Attempt::failed`] or
/// [`Attempt::unverified`]. Dropped unsettled, it counts as failed.
#[must_use = "an attempt dropped unsettled counts as a failed sign-in"]
pub struct Attempt<'a> {
    throttle: &'a LoginThrottle,
    account: Box<str>,
    client: Client,
    taken: Taken,
}

/// What an [`Attempt`] took, to be given back.
enum Taken {
    /// From the device's own limit.
    Device([u8; 32]),
    /// From the (account, address) limit only: a known pair.
    Pair,
    /// From the address, (account, address) and account limits.
    All,
}

impl std::fmt::Debug for Attempt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attempt").finish_non_exhaustive()
    }
}

impl Attempt<'_> {
    /// The password was right: the attempt is given back, the (account, address) pair is
    /// known from now on (the per-account limit does not apply to it), and its next refusal
    /// is a [`Throttled::first`] again.
    pub fn succeeded(self) {
        self.give_back();
        let pair = (self.account, self.client);
        let throttle = self.throttle;
        throttle
            .refused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&Refused::Pair(pair.clone()));
        let mut known = throttle.known.lock().unwrap_or_else(|e| e.into_inner());
        let known_for = throttle.limits.known_for;
        bound_map(
            &mut known,
            throttle.limits.max_keys.max(1),
            |at| *at,
            |at| at.elapsed() < known_for,
        );
        known.insert(pair, Instant::now());
    }

    /// The password was wrong: the attempt stays counted until its limits refill.
    pub fn failed(self) {}

    /// No password was verified (the hashing pool was busy, the user store unreachable): the
    /// attempt is given back, as nothing was learnt from it.
    pub fn unverified(self) {
        self.give_back();
    }

    fn give_back(&self) {
        let throttle = self.throttle;
        let pair = || (self.account.clone(), self.client);
        match &self.taken {
            Taken::Device(digest) => throttle.by_device.give_back(digest),
            Taken::Pair => throttle.by_pair.give_back(&pair()),
            Taken::All => {
                throttle.by_address.give_back(&self.client);
                throttle.by_pair.give_back(&pair());
                throttle.by_account.give_back(&self.account);
            }
        }
    }
}

/// Makes room for one more entry in `map`, which holds at most `max`: entries `keep` no longer
/// wants go first, then the oldest tenth — never all at once, so that a flood of new entries
/// cannot wipe what protects the others (known pairs, device cookies).
fn bound_map<K: Clone + Eq + std::hash::Hash, V>(
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
            by_pair: Limiter::new(limits.per_account_and_address, limits.window),
            by_address: Limiter::new(limits.per_address, limits.window),
            by_account: Limiter::new(limits.per_account, limits.window),
            known: Mutex::default(),
            refused: Mutex::default(),
            devices: Mutex::default(),
            by_device: Limiter::new(limits.per_account_and_address, limits.window),
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

    /// Takes an attempt to sign in as `account` from `address`, or refuses it when a limit is
    /// spent. Call it before verifying the password, and settle the [`Attempt`] with the
    /// verification's answer.
    pub fn check(&self, account: &str, address: Option<IpAddr>) -> Result<Attempt<'_>, Throttled> {
        let client = Client::from(address);
        let account = account_key(account);
        let pair = (account.clone(), client);
        let max = self.limits.max_keys.max(1);
        let attempt = |taken| Attempt {
            throttle: self,
            account: account.clone(),
            client,
            taken,
        };
        // A pair that signed in before is held only to its own limit: neither another client
        // at the same address (a NAT, an office) trying many names nor many addresses trying
        // this name can lock its user out.
        let refusal = if self.is_known(&pair) {
            match self.by_pair.take(&pair, max) {
                Ok(()) => return Ok(attempt(Taken::Pair)),
                Err(wait) => (wait, ThrottleLimit::AccountAndAddress),
            }
        } else {
            // For any other pair the address limit comes first, so that a client trying a
            // new name each time adds no key to the pair limiter once its address is spent.
            // A refusal by a later limit gives back what the earlier ones took.
            match self.by_address.take(&client, max) {
                Err(wait) => (wait, ThrottleLimit::Address),
                Ok(()) => match self.by_pair.take(&pair, max) {
                    Err(wait) => {
                        self.by_address.give_back(&client);
                        (wait, ThrottleLimit::AccountAndAddress)
                    }
                    Ok(()) => match self.by_account.take(&account, max) {
                        Ok(()) => return Ok(attempt(Taken::All)),
                        Err(wait) => {
                            self.by_address.give_back(&client);
                            self.by_pair.give_back(&pair);
                            (wait, ThrottleLimit::Account)
                        }
                    },
                },
            }
        };
        let (retry_after, limit) = refusal;
        // What a refusal is recorded under: the limit's own key, so that a client trying a new
        // name each time is one record per window, not one per name.
        let key = match limit {
            ThrottleLimit::AccountAndAddress => Refused::Pair(pair),
            ThrottleLimit::Address => Refused::Address(client),
            ThrottleLimit::Account | ThrottleLimit::Device => Refused::Account(account),
        };
        Err(self.refusal(key, retry_after, limit))
    }

    /// Takes an attempt to sign in as `account` from a browser presenting the device cookie
    /// `device` from `address`: `None` when the cookie is not one this throttle gave for
    /// `account` (then [`LoginThrottle::check`] decides), else the verdict of the device's own
    /// limit — the address and account limits do not apply to it. Settle the [`Attempt`] as
    /// [`LoginThrottle::check`]'s.
    pub fn check_device(
        &self,
        account: &str,
        device: &str,
        address: Option<IpAddr>,
    ) -> Option<Result<Attempt<'_>, Throttled>> {
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
        Some(match self.by_device.take(&digest, max) {
            Ok(()) => Ok(Attempt {
                throttle: self,
                account,
                client: Client::from(address),
                taken: Taken::Device(digest),
            }),
            Err(wait) => Err(self.refusal(Refused::Device(digest), wait, ThrottleLimit::Device)),
        })
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
}

#[cfg(test)]
mod tests;
