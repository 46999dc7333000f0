//! `POST /oauth/agent-token`, the "Agent Tokens" endpoint: task tokens an orchestrator mints
//! for the other agents of its owner, on behalf of a person, over
//! [`Store::issue_task_token`](crate::store::Store::issue_task_token). Who may call it, the
//! parameters, the answer and the errors are in the [`oauth`](super) module's docs.
//!
//! The order: client authentication (a secret is required), the client an active
//! orchestrator's, the form's shape, the target (an agent of the orchestrator's owner; another
//! owner's reads as unknown), its type, the resource, the person's authorization of the
//! orchestrator, then the store's own checks. Every refusal after the client authenticated is
//! audited on the orchestrator's side; the token's issue under the target, with the person as
//! its actor.

use std::time::Duration;

use ::axum::Router;
use ::axum::body::Bytes;
use ::axum::extract::State;
use ::axum::routing::post;
use http::HeaderMap;
use serde_json::Value;

use super::authority::Authority;
use super::client::{Client, ClientAuth};
use super::client_auth::{authenticate, presented};
use super::error::{ErrorCode, OAuthError};
use super::issue::seconds_until;
use super::params::Params;
use super::response::TokenResponse;
use super::routes::AGENT_TOKEN;
use super::scope;
use crate::audit::{AuditAction, AuditEvent, Outcome};
use crate::ceiling::CapabilitySet;
use crate::error::{DelegationError, InputError, StoreError};
use crate::principal::{AgentType, UserId};
use crate::store::{Agent, AgentStatus, Backend, NewToken, Operation, authorize};
use crate::text::shortened;

/// How long a task token lives when the request names no `expires_in`.
pub const DEFAULT_TASK_TOKEN_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// The longest a task token from this endpoint lives.
pub const MAX_TASK_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// What the form asks for, read and checked for shape.
#[derive(Debug)]
struct TaskRequest {
    delegated_by: UserId,
    agent: String,
    agent_type: Option<AgentType>,
    scope: CapabilitySet,
    task_id: String,
    max_operations: Option<u64>,
    expires_on_completion: bool,
    intent: Option<String>,
    lifetime: Duration,
    resource: Option<String>,
}

impl TaskRequest {
    fn read(params: &Params) -> Result<Self, OAuthError> {
        let number = |name: &str| -> Result<Option<u64>, OAuthError> {
            params
                .get(name)
                .map(|text| {
                    text.parse::<u64>()
                        .ok()
                        .filter(|n| *n > 0 && text.bytes().all(|b| b.is_ascii_digit()))
                        .ok_or_else(|| {
                            OAuthError::invalid_request(format!("{name} is a positive integer"))
                        })
                })
                .transpose()
        };
        let agent_type = params
            .get("agent_type")
            .map(|kind| {
                AgentType::parse(kind).ok_or_else(|| {
                    OAuthError::invalid_request("agent_type is autonomous, supervised or ephemeral")
                })
            })
            .transpose()?;
        let scope = match scope::parse(params.get("scope").unwrap_or_default()) {
            Ok(Some(scope)) => scope,
            Ok(None) => {
                return Err(OAuthError::invalid_scope(
                    "scope is required: a task token names what it may do",
                ));
            }
            Err(error) => return Err(OAuthError::invalid_scope(error.to_string())),
        };
        let expires_on_completion = match params.get("expires_on_completion") {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => {
                return Err(OAuthError::invalid_request(
                    "expires_on_completion is true or false",
                ));
            }
        };
        let lifetime = number("expires_in")?
            .map_or(DEFAULT_TASK_TOKEN_LIFETIME, Duration::from_secs)
            .min(MAX_TASK_TOKEN_LIFETIME);
        Ok(Self {
            delegated_by: UserId::from(params.require("delegated_by_user_id")?),
            agent: params.require("agent")?.to_owned(),
            agent_type,
            scope,
            task_id: params.require("task_id")?.to_owned(),
            max_operations: number("max_operations")?,
            expires_on_completion,
            intent: params.get("intent_description").map(str::to_owned),
            lifetime,
            resource: params.get("resource").map(str::to_owned),
        })
    }

    /// The token to mint, for `client`, bound to `resource`.
    fn new_token(&self, client: &Client, resource: Option<String>) -> NewToken {
        let mut token = NewToken::new(format!("oauth agent-token {}", client.id))
            .with_capabilities(self.scope.clone())
            .task_id(self.task_id.clone())
            .expires_in(self.lifetime)
            .client(client.id.clone());
        if let Some(n) = self.max_operations {
            token = token.max_operations(n);
        }
        if self.expires_on_completion {
            token = token.expires_on_completion();
        }
        if let Some(intent) = &self.intent {
            token = token.intent(intent.clone());
        }
        if let Some(resource) = resource {
            token = token.resource(resource);
        }
        token
    }
}

/// The orchestrator `client` is: an agent's client, that agent an active orchestrator.
async fn orchestrator_of<B: Backend>(
    authority: &Authority<B>,
    client: &Client,
) -> Result<Agent, OAuthError> {
    let refused = || {
        OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "only an active orchestrator agent's client mints task tokens",
        )
    };
    let agent = client.agent().ok_or_else(refused)?;
    let agent = authority.store().agent(agent).await?.ok_or_else(refused)?;
    let now = authority.now();
    let active = agent.status == AgentStatus::Active && agent.expires_at.is_none_or(|at| at > now);
    if !agent.is_orchestrator || agent.parent.is_some() || !active {
        return Err(refused());
    }
    Ok(agent)
}

/// A refused task token as RFC 6749 §5.2 names it.
fn refusal(error: StoreError) -> OAuthError {
    match error {
        StoreError::Delegation(refused) => match refused {
            DelegationError::CapabilitiesExceedOrchestrator(_) => {
                OAuthError::invalid_scope(refused.to_string())
            }
            DelegationError::DelegatingUserInactive(_)
            | DelegationError::DelegatingUserUnrelated { .. } => {
                OAuthError::invalid_grant(refused.to_string())
            }
            DelegationError::NotOrchestrator(_) => {
                OAuthError::new(ErrorCode::UnauthorizedClient, refused.to_string())
            }
            other => OAuthError::invalid_request(other.to_string()),
        },
        StoreError::Input(
            refused @ (InputError::CapabilitiesOutsidePolicy(_)
            | InputError::CapabilitiesOutsideRole { .. }),
        ) => OAuthError::invalid_scope(refused.to_string()),
        StoreError::Input(refused) => OAuthError::invalid_request(refused.to_string()),
        StoreError::NotFound(_) => OAuthError::invalid_request("unknown agent"),
        other => other.into(),
    }
}

/// Records a refusal on the orchestrator's side (the person is named in the detail only: the
/// request typed it, so it may be no user at all).
async fn refused<B: Backend>(
    authority: &Authority<B>,
    orchestrator: &Agent,
    request: &TaskRequest,
    error: OAuthError,
) -> OAuthError {
    authority
        .record(
            AuditEvent::new(authority.now(), AuditAction::TokenIssued, Outcome::Denied)
                .agent(orchestrator.id.clone())
                .task_id(Some(request.task_id.clone()))
                .detail(format!(
                    "oauth agent-token refused: orchestrator {}, agent {:?}, on behalf of {:?}: {}",
                    orchestrator.slug,
                    shortened(&request.agent),
                    shortened(request.delegated_by.as_str()),
                    error.description()
                )),
        )
        .await;
    error
}

/// Whether the person may be named by the orchestrator: its owner or an `admin` of it.
async fn has_authorized<B: Backend>(
    authority: &Authority<B>,
    orchestrator: &Agent,
    person: &UserId,
) -> Result<bool, OAuthError> {
    let role = authority.store().role_of(&orchestrator.id, person).await?;
    Ok(authorize(person, orchestrator, role, Operation::IssueToken).is_ok())
}

async fn agent_token<B: Backend>(
    State(authority): State<Authority<B>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<TokenResponse, OAuthError> {
    let params = Params::from_form(&headers, &body)?;
    let presented = presented(&headers, &params)?;
    if presented.method == ClientAuth::None {
        return Err(OAuthError::invalid_client(
            "the agent-token endpoint requires client authentication",
        ));
    }
    let store = authority.store();
    let client = authenticate(store, &presented, authority.now()).await?;
    let orchestrator = orchestrator_of(&authority, &client).await?;
    let request = TaskRequest::read(&params)?;
    let deny = |error| refused(&authority, &orchestrator, &request, error);
    // Another owner's agent reads as no agent at all.
    let Some(target) = store
        .agent_by_slug(&request.agent)
        .await?
        .filter(|agent| agent.owner == orchestrator.owner)
    else {
        return Err(deny(OAuthError::invalid_request("unknown agent")).await);
    };
    if request
        .agent_type
        .is_some_and(|kind| kind != target.agent_type)
    {
        let said = format!("agent_type: the agent is {}", target.agent_type.as_str());
        return Err(deny(OAuthError::invalid_request(said)).await);
    }
    let resource = match authority.target(request.resource.as_deref()) {
        Ok(resource) => resource,
        Err(why) => return Err(deny(OAuthError::invalid_target(why)).await),
    };
    if !has_authorized(&authority, &orchestrator, &request.delegated_by).await? {
        let error = OAuthError::invalid_grant(
            "delegated_by_user_id has not authorized this orchestrator: they must own it or \
             hold an admin grant on it",
        );
        return Err(deny(error).await);
    }
    let token = request.new_token(&client, resource.clone());
    let issued = match store
        .issue_task_token(&orchestrator.id, &target.id, &request.delegated_by, token)
        .await
    {
        Ok(issued) => issued,
        Err(error) => return Err(deny(refusal(error)).await),
    };
    authority
        .record(
            AuditEvent::new(authority.now(), AuditAction::TokenIssued, Outcome::Success)
                .agent(target.id.clone())
                .token(issued.info.id.clone())
                .actor(request.delegated_by.clone())
                .task_id(issued.info.task_id.clone())
                .detail(format!(
                    "oauth agent-token for client {} as orchestrator {} on behalf of {}, \
                     scope {}, resource {}",
                    client.id,
                    orchestrator.slug,
                    request.delegated_by,
                    scope::to_scope(&request.scope),
                    resource.as_deref().unwrap_or("none"),
                )),
        )
        .await;
    authority.touch_client(&client).await;
    let expires_in = seconds_until(issued.info.expires_at, authority.now());
    let info = &issued.info;
    let fields = [
        ("agent_type", Value::from(target.agent_type.as_str())),
        ("task_id", Value::from(info.task_id.clone())),
        ("max_operations", Value::from(info.max_operations)),
        (
            "expires_on_completion",
            Value::from(info.expires_on_completion),
        ),
    ];
    let scope = scope::to_scope(&request.scope);
    let answer = (fields.into_iter()).fold(
        TokenResponse::bearer(issued.token, expires_in, scope),
        |answer, (name, value)| answer.field(name, value),
    );
    Ok(answer)
}

/// `POST /oauth/agent-token`.
pub(crate) fn router<B: Backend>(authority: Authority<B>) -> Router {
    let route = format!("{}{AGENT_TOKEN}", authority.issuer().path());
    Router::new()
        .route(&route, post(agent_token::<B>))
        .with_state(authority)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(body: &str) -> Result<TaskRequest, OAuthError> {
        TaskRequest::read(&Params::parse(body.as_bytes()).unwrap())
    }

    const BASE: &str = "delegated_by_user_id=alice&agent=worker&scope=posts:read&task_id=t-1";

    #[test]
    fn the_form_is_read_strictly() {
        let request = read(BASE).unwrap();
        assert_eq!(request.lifetime, DEFAULT_TASK_TOKEN_LIFETIME);
        assert!(!request.expires_on_completion);
        let long = read(&format!("{BASE}&expires_in=86400&max_operations=3")).unwrap();
        assert_eq!(long.lifetime, MAX_TASK_TOKEN_LIFETIME, "cut to one hour");
        assert_eq!(long.max_operations, Some(3));
        for (bad, code) in [
            ("&max_operations=0", ErrorCode::InvalidRequest),
            ("&max_operations=-1", ErrorCode::InvalidRequest),
            ("&max_operations=%2B3", ErrorCode::InvalidRequest),
            ("&expires_in=0", ErrorCode::InvalidRequest),
            ("&expires_on_completion=yes", ErrorCode::InvalidRequest),
            ("&agent_type=robot", ErrorCode::InvalidRequest),
        ] {
            let error = read(&format!("{BASE}{bad}")).unwrap_err();
            assert_eq!(error.code(), code, "{bad}");
        }
        let no_scope = read("delegated_by_user_id=alice&agent=worker&task_id=t").unwrap_err();
        assert_eq!(no_scope.code(), ErrorCode::InvalidScope);
        let bad_scope = read("delegated_by_user_id=a&agent=w&task_id=t&scope=A:B").unwrap_err();
        assert_eq!(bad_scope.code(), ErrorCode::InvalidScope);
        for missing in ["delegated_by_user_id", "agent", "task_id"] {
            let body: Vec<&str> = BASE
                .split('&')
                .filter(|pair| !pair.starts_with(missing))
                .collect();
            let error = read(&body.join("&")).unwrap_err();
            assert_eq!(error.code(), ErrorCode::InvalidRequest, "{missing}");
        }
    }

    #[test]
    fn refusals_are_the_rfcs_codes() {
        let code = |error: StoreError| refusal(error).code();
        assert_eq!(
            code(DelegationError::CapabilitiesExceedOrchestrator("x".into()).into()),
            ErrorCode::InvalidScope
        );
        assert_eq!(
            code(DelegationError::DelegatingUserInactive("bob".into()).into()),
            ErrorCode::InvalidGrant
        );
        assert_eq!(
            code(StoreError::invalid(
                "the ephemeral agent serves another task"
            )),
            ErrorCode::InvalidRequest
        );
    }
}
