//! [`DeviceFlow`]: the lifetimes and limits of the device authorization grant.

use std::num::NonZeroU32;
use std::time::Duration;

/// How the device flow runs (RFC 8628), given to
/// [`AuthorizationServer::device_flow`](crate::oauth::AuthorizationServer::device_flow): how
/// an agent without a browser — a CLI, a service on a server — obtains a token a person allows
/// from another device.
///
/// 1. The device asks `POST /oauth/device_authorization`, authenticated as at the token
///    endpoint, with `scope` and `resource`. It gets a `device_code` to keep, a `user_code`
///    to show (`BCDF-GHJK`: 8 letters of the 20 consonants `BCDFGHJKLMNPQRSTVWXZ`), the
///    `verification_uri` (`/oauth/device`), `verification_uri_complete` (the same with
///    `?user_code=`), `expires_in` ([`lifetime`](Self::lifetime)) and `interval`.
/// 2. The person opens `/oauth/device` and signs in (the sign-in page of `/oauth/authorize`,
///    with a way back). They enter the user code — case, spaces and dashes ignored — and
///    answer a consent page in the layout of the authorization endpoint's: who asks, as which
///    agent, which capabilities (each can be unticked), for how long, and the code to check
///    against the device's. The forms carry a CSRF token bound to the session, as the consent
///    page's.
/// 3. The device polls `POST /oauth/token` with
///    `grant_type=urn:ietf:params:oauth:grant-type:device_code`
///    ([`DeviceCodeGrant`](crate::oauth::grant::DeviceCodeGrant)). Each answer is 400 JSON
///    until the person allows it:
///    - `authorization_pending` until the person answers;
///    - `slow_down` when the device polls sooner than its interval after its last poll (or
///      after asking, for its first), and its interval grows by 5 s for good;
///    - `access_denied` once the person denies;
///    - `expired_token` once the codes lapse.
///
///    Once allowed, a poll gets an access token and a refresh token, minted as the code
///    grant's. The device code is then spent: presented again it is `invalid_grant`, and what
///    it issued is revoked.
///
/// Wrong user codes are limited: [`wrong_entries_per_session`](Self::wrong_entries_per_session)
/// per signed-in session and [`wrong_entries_per_address`](Self::wrong_entries_per_address)
/// per client address, within [`entry_window`](Self::entry_window) (5, 20 and 15 minutes by
/// default). Before either is reached, a wrong code shows the form again with the tries left.
/// Past either, the page answers 429 with `Retry-After` and says how many minutes to wait;
/// the first refusal of a window is audited (`device_entry_throttled`). A code that is not 8
/// letters of the alphabet is pointed out and not counted: it cannot match anything, so it
/// tells a guesser nothing. These limits are kept in each node's memory.
///
/// ```
/// use std::time::Duration;
/// use tower_agent_auth::oauth::{AuthorizationServer, DeviceFlow};
/// use tower_agent_auth::store::{MemoryStore, MemoryUserDirectory};
/// use tower_agent_auth::token::TokenFormat;
///
/// let store = MemoryStore::new(TokenFormat::new("acme").unwrap(), MemoryUserDirectory::new());
/// let server = AuthorizationServer::new(store, "https://auth.example.com")
///     .unwrap()
///     .device_flow(DeviceFlow {
///         lifetime: Duration::from_secs(300),
///         ..DeviceFlow::default()
///     });
/// assert_eq!(
///     server.metadata()["device_authorization_endpoint"],
///     "https://auth.example.com/oauth/device_authorization"
/// );
/// assert!(server.grant_types().contains(&"urn:ietf:params:oauth:grant-type:device_code"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceFlow {
    /// How long a device code and its user code live: the person has this long to enter the
    /// code and answer.
    pub lifetime: Duration,
    /// The least time a device waits between two polls, in whole seconds (at least 1); each
    /// `slow_down` adds 5 s.
    pub interval: Duration,
    /// Wrong user codes one signed-in session may enter within `entry_window`.
    pub wrong_entries_per_session: NonZeroU32,
    /// Wrong user codes one client address may enter within `entry_window`, whatever the
    /// session (an IPv6 address counts by its /64).
    pub wrong_entries_per_address: NonZeroU32,
    /// The window wrong entries are counted in: it opens at the first wrong entry, and the
    /// count starts afresh when it closes.
    pub entry_window: Duration,
    /// Device authorizations one client address may ask for in a burst, refilled evenly over
    /// `request_window` (each is a record, and asking takes no secret for a public client).
    pub requests_per_address: NonZeroU32,
    /// The window `requests_per_address` refills over.
    pub request_window: Duration,
}

impl Default for DeviceFlow {
    /// Codes of 10 minutes, polled every 5 s; 5 wrong codes per session and 20 per address in
    /// 15 minutes; 30 requests per address per 10 minutes.
    fn default() -> Self {
        Self {
            lifetime: Duration::from_secs(600),
            interval: Duration::from_secs(5),
            wrong_entries_per_session: NonZeroU32::new(5).unwrap_or(NonZeroU32::MIN),
            wrong_entries_per_address: NonZeroU32::new(20).unwrap_or(NonZeroU32::MIN),
            entry_window: Duration::from_secs(900),
            requests_per_address: NonZeroU32::new(30).unwrap_or(NonZeroU32::MIN),
            request_window: Duration::from_secs(600),
        }
    }
}

impl DeviceFlow {
    /// The interval devices are told, in whole seconds, at least 1.
    pub(crate) fn interval_secs(&self) -> u64 {
        self.interval.as_secs().max(1)
    }
}
