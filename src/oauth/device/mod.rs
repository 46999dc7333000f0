//! The device authorization grant (RFC 8628): its records and the rules of a poll here, the
//! endpoint in [`authorization`], the person's pages in [`page`], the limit on wrong user
//! codes in [`entries`], the grant in [`grant::device`](super::grant). [`DeviceFlow`] tells
//! the flow from end to end, in the public docs.
//!
//! The store keeps a [`DeviceAuthorization`] per request: the SHA-256 of the device code
//! (256 random bits) and of the user code, never either code. A user code is short by design
//! (≈ 34.6 bits), so its hash hides it only from a casual reader of the database; what it
//! unlocks is the consent page of a pending request, within its lifetime. Each step many
//! nodes could race is one [`Backend`](crate::store::Backend) method: a decision is recorded
//! once ([`Backend::decide_device`](crate::store::Backend::decide_device)), and a poll —
//! the slow-down bookkeeping, the redemption — is one step
//! ([`Backend::poll_device`](crate::store::Backend::poll_device)) whose rules are
//! [`DevicePoll::apply`], so that every backend answers alike.

mod authorization;
mod entries;
mod flow;
mod page;
mod user_code;

pub use flow::DeviceFlow;

pub(crate) use authorization::router as authorization_router;
pub(crate) use page::router as page_router;

use std::time::Duration;

use time::OffsetDateTime;

use super::refresh::FamilyId;
use crate::ceiling::CapabilitySet;
use crate::principal::{AgentId, UserId};
use crate::token::TokenHash;

/// How much `slow_down` adds to a device's polling interval (RFC 8628 §3.5), for good.
pub const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

/// Where a device authorization stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceStatus {
    /// Waiting for a person.
    Pending,
    /// A person allowed it.
    Approved,
    /// A person denied it.
    Denied,
}

impl DeviceStatus {
    /// The status as stored: `pending`, `approved` or `denied`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
        }
    }

    /// The status a stored name stands for.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "pending" => Self::Pending,
            "approved" => Self::Approved,
            "denied" => Self::Denied,
            _ => return None,
        })
    }
}

/// A device authorization request as the store keeps it: the hashes of its two codes, what was
/// asked for, the polling bookkeeping, and the person's answer.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DeviceAuthorization {
    /// The SHA-256 of the device code.
    pub hash: TokenHash,
    /// The SHA-256 of the user code (normalised: 8 capitals, no dash; hashed in a domain of its
    /// own).
    pub user_code: TokenHash,
    /// The client that asked.
    pub client_id: String,
    /// The `resource` (RFC 8707) the tokens will be bound to.
    pub resource: Option<String>,
    /// What was asked for.
    pub requested: CapabilitySet,
    /// The least time between two polls, in whole seconds; each `slow_down` adds
    /// [`SLOW_DOWN_STEP`].
    pub interval: Duration,
    /// When it was asked for.
    pub created_at: OffsetDateTime,
    /// When both codes lapse.
    pub expires_at: OffsetDateTime,
    /// When the device last polled.
    pub polled_at: Option<OffsetDateTime>,
    /// Where it stands.
    pub status: DeviceStatus,
    /// The person who answered.
    pub user: Option<UserId>,
    /// The agent the tokens belong to (set when approved).
    pub agent: Option<AgentId>,
    /// What the person granted (empty unless approved).
    pub capabilities: CapabilitySet,
    /// When the person answered.
    pub decided_at: Option<OffsetDateTime>,
    /// When a poll redeemed it: a later poll is a replay.
    pub redeemed_at: Option<OffsetDateTime>,
    /// The refresh family the redemption started: what a replay revokes.
    pub family: Option<FamilyId>,
    /// When it was first presented again after its redemption.
    pub replayed_at: Option<OffsetDateTime>,
}

impl DeviceAuthorization {
    /// A pending request of `client_id` for `requested`, made `now`, living `lifetime`, polled
    /// at most every `interval` (whole seconds).
    pub fn new(
        hash: TokenHash,
        user_code: TokenHash,
        client_id: impl Into<String>,
        requested: CapabilitySet,
        now: OffsetDateTime,
        lifetime: Duration,
        interval: Duration,
    ) -> Self {
        let lifetime = time::Duration::try_from(lifetime).unwrap_or(time::Duration::MAX);
        Self {
            hash,
            user_code,
            client_id: client_id.into(),
            resource: None,
            requested,
            interval: Duration::from_secs(interval.as_secs()),
            created_at: now,
            expires_at: now.saturating_add(lifetime),
            polled_at: None,
            status: DeviceStatus::Pending,
            user: None,
            agent: None,
            capabilities: CapabilitySet::empty(),
            decided_at: None,
            redeemed_at: None,
            family: None,
            replayed_at: None,
        }
    }

    /// Whether a person may still answer it at `now`: pending and unexpired.
    pub fn is_pending_at(&self, now: OffsetDateTime) -> bool {
        self.status == DeviceStatus::Pending && now < self.expires_at
    }

    /// The request approved by `user` at `now`: the tokens will belong to `agent` and hold
    /// `granted`.
    pub fn approved(
        &self,
        user: UserId,
        agent: AgentId,
        granted: CapabilitySet,
        now: OffsetDateTime,
    ) -> Self {
        Self {
            status: DeviceStatus::Approved,
            user: Some(user),
            agent: Some(agent),
            capabilities: granted,
            decided_at: Some(now),
            ..self.clone()
        }
    }

    /// The request denied by `user` at `now`.
    pub fn denied(&self, user: UserId, now: OffsetDateTime) -> Self {
        Self {
            status: DeviceStatus::Denied,
            user: Some(user),
            agent: None,
            capabilities: CapabilitySet::empty(),
            decided_at: Some(now),
            ..self.clone()
        }
    }
}

/// One poll of the token endpoint with a device code: what
/// [`Backend::poll_device`](crate::store::Backend::poll_device) is asked.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DevicePoll {
    /// The SHA-256 of the device code presented.
    pub hash: TokenHash,
    /// The client that presented it.
    pub client_id: String,
    /// The refresh family a redemption now starts.
    pub family: FamilyId,
    /// Now.
    pub now: OffsetDateTime,
}

/// What a poll found ([`Backend::poll_device`](crate::store::Backend::poll_device)).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Polled {
    /// No such device code, or another client's.
    Unknown,
    /// Not answered yet (`authorization_pending`).
    Pending,
    /// Not answered yet, and polled too soon (`slow_down`): the interval from now on.
    SlowDown(Duration),
    /// The person denied it (`access_denied`).
    Denied,
    /// It lapsed before it was redeemed (`expired_token`).
    Expired,
    /// Approved, and redeemed now: the request as it was.
    Redeemed(DeviceAuthorization),
    /// Redeemed before: a replay, now marked. The request as it is (its family names what it
    /// issued).
    Replayed(DeviceAuthorization),
}

impl DevicePoll {
    /// A poll of the device code of hash `hash` by `client_id` at `now`; a redemption starts
    /// `family`.
    pub fn new(
        hash: TokenHash,
        client_id: impl Into<String>,
        family: FamilyId,
        now: OffsetDateTime,
    ) -> Self {
        Self {
            hash,
            client_id: client_id.into(),
            family,
            now,
        }
    }

    /// The rules of a poll, for a backend to apply to the stored request `found`, as one step:
    /// what the poll answers, and the request to store in its place (`None`: nothing changes).
    ///
    /// - another client's code is [`Polled::Unknown`];
    /// - a redeemed one is [`Polled::Replayed`], marked (`replayed_at`, the first replay's);
    /// - past its expiry, [`Polled::Expired`]; denied, [`Polled::Denied`];
    /// - approved, [`Polled::Redeemed`]: `redeemed_at`, `family` and `polled_at` set;
    /// - pending: `polled_at` is now, and if that is sooner than `interval` after the last
    ///   poll (or, for the first, after the request), the interval grows by
    ///   [`SLOW_DOWN_STEP`] ([`Polled::SlowDown`]); else [`Polled::Pending`].
    pub fn apply(&self, found: &DeviceAuthorization) -> (Polled, Option<DeviceAuthorization>) {
        let now = self.now;
        if found.client_id != self.client_id {
            return (Polled::Unknown, None);
        }
        if found.redeemed_at.is_some() {
            let mut marked = found.clone();
            marked.replayed_at.get_or_insert(now);
            let changed = (marked != *found).then(|| marked.clone());
            return (Polled::Replayed(marked), changed);
        }
        if found.expires_at <= now {
            return (Polled::Expired, None);
        }
        match found.status {
            DeviceStatus::Denied => (Polled::Denied, None),
            DeviceStatus::Approved => {
                let mut redeemed = found.clone();
                redeemed.redeemed_at = Some(now);
                redeemed.family = Some(self.family.clone());
                redeemed.polled_at = Some(now);
                (Polled::Redeemed(found.clone()), Some(redeemed))
            }
            DeviceStatus::Pending => {
                let last = found.polled_at.unwrap_or(found.created_at);
                let interval =
                    time::Duration::try_from(found.interval).unwrap_or(time::Duration::MAX);
                let mut polled = found.clone();
                polled.polled_at = Some(now);
                if now < last.saturating_add(interval) {
                    polled.interval = found.interval.saturating_add(SLOW_DOWN_STEP);
                    (Polled::SlowDown(polled.interval), Some(polled))
                } else {
                    (Polled::Pending, Some(polled))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(seconds)
    }

    fn request() -> DeviceAuthorization {
        DeviceAuthorization::new(
            TokenHash::of("dc_x"),
            TokenHash::of("BCDFGHJK"),
            "c_1",
            CapabilitySet::parse(["posts:read"]).unwrap(),
            at(0),
            Duration::from_secs(600),
            Duration::from_secs(5),
        )
    }

    fn poll(seconds: i64) -> DevicePoll {
        DevicePoll::new(
            TokenHash::of("dc_x"),
            "c_1",
            FamilyId::new("f1"),
            at(seconds),
        )
    }

    /// Applies a poll and stores what it says, as a backend does.
    fn step(stored: &mut DeviceAuthorization, poll: &DevicePoll) -> Polled {
        let (answer, changed) = poll.apply(stored);
        if let Some(changed) = changed {
            *stored = changed;
        }
        answer
    }

    #[test]
    fn polling_too_soon_slows_the_device_down_for_good() {
        let mut stored = request();
        // The first poll counts from the request.
        assert_eq!(
            step(&mut stored, &poll(1)),
            Polled::SlowDown(Duration::from_secs(10))
        );
        assert_eq!(stored.polled_at, Some(at(1)));
        // 10 s after the last poll: on time, and the interval stays 10 s.
        assert_eq!(step(&mut stored, &poll(11)), Polled::Pending);
        assert_eq!(
            step(&mut stored, &poll(20)),
            Polled::SlowDown(Duration::from_secs(15))
        );
        assert_eq!(step(&mut stored, &poll(35)), Polled::Pending);
        assert_eq!(stored.interval, Duration::from_secs(15));
    }

    #[test]
    fn an_approved_code_is_redeemed_once_and_a_replay_is_marked() {
        let mut stored = request().approved(
            "alice".into(),
            "agt_1".into(),
            CapabilitySet::parse(["posts:read"]).unwrap(),
            at(3),
        );
        let Polled::Redeemed(was) = step(&mut stored, &poll(4)) else {
            panic!("not redeemed");
        };
        assert_eq!(was.redeemed_at, None, "answered as it was");
        assert_eq!(stored.redeemed_at, Some(at(4)));
        assert_eq!(stored.family, Some(FamilyId::new("f1")));
        let Polled::Replayed(now) = step(&mut stored, &poll(5)) else {
            panic!("not a replay");
        };
        assert_eq!(now.family, Some(FamilyId::new("f1")));
        assert_eq!(now.replayed_at, Some(at(5)));
        // The first replay's time stays; a replay after expiry is still a replay.
        assert!(matches!(step(&mut stored, &poll(900)), Polled::Replayed(_)));
        assert_eq!(stored.replayed_at, Some(at(5)));
    }

    #[test]
    fn another_clients_denied_and_expired_codes() {
        let stored = request();
        let mut other = poll(30);
        other.client_id = "c_2".into();
        assert_eq!(other.apply(&stored), (Polled::Unknown, None));
        assert_eq!(poll(600).apply(&stored), (Polled::Expired, None));
        let denied = stored.denied("alice".into(), at(2));
        assert_eq!(poll(30).apply(&denied), (Polled::Denied, None));
        let approved = stored.approved("alice".into(), "a".into(), CapabilitySet::empty(), at(2));
        assert_eq!(poll(600).apply(&approved), (Polled::Expired, None));
        assert!(stored.is_pending_at(at(599)) && !stored.is_pending_at(at(600)));
        assert!(!denied.is_pending_at(at(3)));
    }

    #[test]
    fn statuses_read_back() {
        for status in [
            DeviceStatus::Pending,
            DeviceStatus::Approved,
            DeviceStatus::Denied,
        ] {
            assert_eq!(DeviceStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(DeviceStatus::parse("used"), None);
    }
}
