#![doc = include_str!("../../docs/approval.md")]

mod action;
mod binding;
mod deprecated;
mod gate;
mod model;
mod notify;
mod rejection;
mod request;
mod supervision;
mod text;

pub use action::CriticalAction;
pub use binding::{ApprovalBinding, canonical_json};
#[allow(deprecated)]
pub use deprecated::ApprovalGate;
pub use model::{
    Approval, ApprovalBounds, ApprovalFilter, ApprovalId, ApprovalStatus, Decision, NewApproval,
    Requested,
};
pub use notify::ApprovalNotifier;
pub use rejection::{APPROVAL_ID, ApprovalRejection, ApprovalSummary};
pub use request::ApprovalRequest;
pub use supervision::Supervision;
pub(crate) use supervision::approval_event;
pub(crate) use text::rfc3339;
pub use text::{check_readable, is_blank_looking};

use std::time::Duration;

/// How long a pending approval waits for a decision unless configured otherwise: 10 minutes.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(600);
/// The longest a pending approval may wait, and the longest window an approval may be given:
/// one day.
pub const MAX_LIFETIME: Duration = Duration::from_secs(86_400);
/// The most uses one approval may be given.
pub const MAX_USES: u32 = 1_000;
/// The most approvals one agent (all its tokens together) may have pending at once unless
/// configured otherwise
/// ([`Supervision::max_pending`]): 20.
pub const DEFAULT_MAX_PENDING: u32 = 20;
/// How many approvals a person's list shows unless asked otherwise
/// ([`Managed::approvals`](crate::store::Managed::approvals)): the newest 100.
pub const DEFAULT_LISTED: usize = 100;
/// The most approvals one list shows: 1 000.
pub const MAX_LISTED: usize = 1_000;
/// The longest binding message, in bytes.
pub const MAX_MESSAGE: usize = 200;
/// The longest details, as canonical JSON, in bytes.
pub const MAX_DETAILS: usize = 4_096;
