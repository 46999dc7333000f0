//! Supervised agents over MCP: a critical tool call held for a person's approval, bound to the
//! tool's name and its arguments, answered with a JSON-RPC error that says how to retry.

use std::future::Future;
use std::pin::Pin;

use http::{Method, Response, StatusCode};
use serde_json::json;
use serde_json::value::RawValue;

use super::ResponseBody;
use super::answer::{self, INTERNAL_ERROR, INVALID_PARAMS};
use crate::ExecutionPrincipal;
use crate::approval::{ApprovalRejection, CriticalAction, Supervision, rfc3339};
use crate::store::{Backend, Store};

/// JSON-RPC error code: a person must approve this call; call again with the same arguments
/// once they have (`data.approval_id` names the approval).
pub const APPROVAL_REQUIRED: i64 = -32061;
/// JSON-RPC error code: a person denied this call (`data.approval_id`).
pub const APPROVAL_DENIED: i64 = -32062;
/// JSON-RPC error code: too many of the agent's approvals wait for a person; retry after
/// `data.retry_after` seconds.
pub const TOO_MANY_APPROVALS: i64 = -32063;

type Checked<'a> = Pin<Box<dyn Future<Output = Result<(), ApprovalRejection>> + Send + 'a>>;

/// [`Supervision`] without its store's type, for the layer to hold.
pub(crate) trait Gate: Send + Sync + 'static {
    fn is_critical(&self, capability: &str) -> bool;
    fn check<'a>(
        &'a self,
        principal: &'a ExecutionPrincipal,
        action: &'a CriticalAction,
    ) -> Checked<'a>;
}

impl<B: Backend> Gate for Supervision<Store<B>> {
    fn is_critical(&self, capability: &str) -> bool {
        Supervision::is_critical(self, capability)
    }

    fn check<'a>(
        &'a self,
        principal: &'a ExecutionPrincipal,
        action: &'a CriticalAction,
    ) -> Checked<'a> {
        Box::pin(Supervision::check(self, principal, action))
    }
}

/// What a person approves for the call of `tool` with `arguments` at `path`: the capability,
/// the tool's name and the arguments, so that a retry with other arguments asks anew.
pub(crate) fn action(
    capability: &str,
    path: &str,
    tool: &str,
    arguments: Option<&RawValue>,
) -> Result<CriticalAction, &'static str> {
    let arguments = match arguments {
        Some(raw) => serde_json::from_str(raw.get())
            .map_err(|_| "the arguments cannot be read as JSON for the approval")?,
        None => serde_json::Value::Null,
    };
    let message = message(tool, &arguments);
    let mut action = CriticalAction::new(capability, &Method::POST, path)
        .details(json!({"tool": tool, "arguments": arguments}));
    if let Some(message) = message {
        action = action.message(message);
    }
    Ok(action)
}

/// What the person reads: the tool and its arguments (`Call send_payment: amount=50,
/// currency="EUR", to="ACME"`), so that they approve knowing what; the tool alone when the
/// arguments do not fit the message (they are in the details, shown beside it); `None` when
/// not even the name reads as it is.
fn message(tool: &str, arguments: &serde_json::Value) -> Option<String> {
    let readable = |text: &String| {
        text.len() <= crate::approval::MAX_MESSAGE && crate::approval::check_readable(text).is_ok()
    };
    let listed = match arguments {
        serde_json::Value::Object(map) if !map.is_empty() => map
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect::<Vec<_>>()
            .join(", "),
        serde_json::Value::Object(_) | serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    let full = if listed.is_empty() {
        format!("Call {tool}")
    } else {
        format!("Call {tool}: {listed}")
    };
    if readable(&full) {
        return Some(full);
    }
    let short = format!("Call {tool} (its arguments are in the details)");
    readable(&short).then_some(short)
}

/// The refusal of the call `id` as the JSON-RPC error an MCP client reads.
pub(crate) fn refusal<B>(
    id: Option<&RawValue>,
    rejection: &ApprovalRejection,
) -> Response<ResponseBody<B>> {
    let summary = rejection.approval().map(|s| {
        json!({
            "approval_id": s.id().as_str(),
            "expires_at": rfc3339(s.expires_at()),
            "binding_message": s.binding_message(),
        })
    });
    let with = |mut data: serde_json::Value, error: &str| {
        if let Some(summary) = &summary {
            for (key, value) in summary.as_object().into_iter().flatten() {
                data[key] = value.clone();
            }
        }
        data["error"] = json!(error);
        data
    };
    match rejection {
        ApprovalRejection::Required(_) => answer::error(
            StatusCode::OK,
            id,
            APPROVAL_REQUIRED,
            "a person must approve this call; call the tool again with the same arguments once they have",
            Some(with(json!({}), "approval_required")),
        ),
        ApprovalRejection::Denied(_) => answer::error(
            StatusCode::OK,
            id,
            APPROVAL_DENIED,
            "a person denied this call",
            Some(with(json!({}), "approval_denied")),
        ),
        ApprovalRejection::TooMany { retry_after } => answer::error(
            StatusCode::OK,
            id,
            TOO_MANY_APPROVALS,
            "too many approvals of this agent wait for a person; retry later",
            Some(with(
                json!({"retry_after": retry_after.as_secs().max(1)}),
                "too_many_pending_approvals",
            )),
        ),
        ApprovalRejection::Invalid(message) => answer::error(
            StatusCode::OK,
            id,
            INVALID_PARAMS,
            &format!("this call cannot be put to a person: {message}"),
            None,
        ),
        ApprovalRejection::Unavailable => answer::error(
            StatusCode::SERVICE_UNAVAILABLE,
            id,
            INTERNAL_ERROR,
            "approvals cannot be checked right now",
            None,
        ),
        // The layer checked the ceiling before asking; a refusal here is the gate's own
        // answer, passed on as it is.
        other => other.to_response::<String>().map(ResponseBody::from),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_the_tool_and_its_arguments() {
        let arguments = json!({"amount": 50, "currency": "EUR", "to": "ACME"});
        assert_eq!(
            message("send_payment", &arguments).unwrap(),
            r#"Call send_payment: amount=50, currency="EUR", to="ACME""#
        );
        assert_eq!(message("ping", &json!({})).unwrap(), "Call ping");
        let long = json!({"note": "x".repeat(300)});
        assert_eq!(
            message("send_payment", &long).unwrap(),
            "Call send_payment (its arguments are in the details)"
        );
        assert_eq!(message("bad\u{202e}name", &json!({})), None);
    }
}
