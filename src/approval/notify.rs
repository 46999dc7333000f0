//! Telling the person an approval waits for them.

use super::Approval;
use crate::error::BoxError;

/// Tells a person that an approval waits for them — by mail, chat, push — with its id, what
/// it is for ([`Approval::binding_message`], [`Approval::details`]) and where to answer.
///
/// [`Supervision`](super::Supervision) calls it once per new pending approval, after storing
/// it and before refusing the request. An error is logged (through `tracing`, with the
/// feature `audit`) and does not fail the request: the approval is listed all the same.
///
/// ```
/// use tower_agent_auth::approval::{Approval, ApprovalNotifier};
///
/// struct Chat;
///
/// #[tower_agent_auth::async_trait]
/// impl ApprovalNotifier for Chat {
///     async fn notify(&self, approval: &Approval) -> Result<(), tower_agent_auth::reason::BoxError> {
///         println!("{} asks: {} (agent-auth approval approve {})",
///             approval.owner, approval.binding_message, approval.id);
///         Ok(())
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait ApprovalNotifier: Send + Sync + 'static {
    /// Tells the person about `approval`, pending.
    async fn notify(&self, approval: &Approval) -> Result<(), BoxError>;
}
