//! `grant_type=urn:ietf:params:oauth:grant-type:token-exchange` (RFC 8693): a sub-agent's
//! narrower token from its parent's, over [delegation](crate::delegation).
//!
//! - `subject_token` (`subject_token_type` = `urn:ietf:params:oauth:token-type:access_token`)
//!   is an agent token of this store: the parent, the proof of possession. It is read without
//!   spending a use. A token issued to an OAuth client may be exchanged by that client only;
//!   one minted otherwise (the CLI, the REST API), by any.
//! - `actor_token` (with `actor_token_type`, the same type) is a token of the acting
//!   sub-agent: the child is that agent's. Without one, the child is the subject's own agent's.
//! - `scope` narrows (within the subject's effective ceiling, and the actor agent's policy);
//!   `resource` (or `audience`, the same here) says where the child may be used: a subject
//!   bound to a resource binds the child to it (naming another is `invalid_target`); one bound
//!   to none has a child bound to none, and naming a resource is `invalid_target` — binding
//!   it would admit the child where an audience is required and the subject is refused.
//! - The child lives the access-token lifetime, or less: never past the subject's effective
//!   expiry.
//!
//! The answer is the child, `issued_token_type` access token, `token_type: Bearer`, and no
//! refresh token. Every request of the child checks its whole chain, and introspection shows
//! it as the nested `act` claim (RFC 8693 §4.1). A subject or actor token that does not
//! resolve, or that policy refuses, is `invalid_request` (RFC 8693 §2.2.2), wider scope
//! `invalid_scope`, another resource `invalid_target`. The issue, or its refusal, is audited
//! as a delegation (`token_issued`, with the chain), never with a token.

use std::time::Duration;

use super::Grant;
use crate::audit::{AuditAction, AuditEvent, Outcome};
use crate::ceiling::CapabilitySet;
use crate::delegation::{Delegation, DelegationError, Delegator};
use crate::error::{InputError, StoreError};
use crate::oauth::authority::Authority;
use crate::oauth::client::Client;
use crate::oauth::error::OAuthError;
use crate::oauth::issue::seconds_until;
use crate::oauth::params::Params;
use crate::oauth::response::TokenResponse;
use crate::oauth::scope;
use crate::resolver::TokenLookup;
use crate::store::resolve::Inspection;
use crate::store::{Backend, Store};

/// The grant type of token exchange.
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// The one token type exchanged and issued: an access token (RFC 8693 §3).
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// How much sooner than the access-token lifetime a subject's expiry must fall for the child
/// simply to inherit it (the store reads its clock again when it checks the child's expiry).
const INHERIT_WITHIN: Duration = Duration::from_secs(5);

/// The token-exchange grant (RFC 8693). Every client may use it: the subject token is the
/// proof.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenExchangeGrant;

/// A token parameter with its `…_type`: present together, of [`ACCESS_TOKEN_TYPE`].
fn token_param<'p>(params: &'p Params, name: &str) -> Result<Option<&'p str>, OAuthError> {
    let kind_name = format!("{name}_type");
    match (params.get(name), params.get(&kind_name)) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(OAuthError::invalid_request(format!(
            "{kind_name} is required with {name}"
        ))),
        (None, Some(_)) => Err(OAuthError::invalid_request(format!(
            "{kind_name} is sent only with {name}"
        ))),
        (Some(token), Some(ACCESS_TOKEN_TYPE)) => Ok(Some(token)),
        (Some(_), Some(_)) => Err(OAuthError::invalid_request(format!(
            "{kind_name}: only {ACCESS_TOKEN_TYPE} is exchanged here"
        ))),
    }
}

/// The token `raw`, inspected without spending a use: `invalid_request` if it does not
/// resolve now (RFC 8693 §2.2.2).
async fn inspect<B: Backend>(
    store: &Store<B>,
    raw: &str,
    name: &str,
) -> Result<Inspection, OAuthError> {
    match crate::delegation::inspect_parent(store, raw).await {
        Ok(inspection) => Ok(inspection),
        Err(StoreError::Delegation(DelegationError::ParentRefused(reason))) => {
            tracing::debug!(%reason, name, "oauth: token exchange of an inactive token");
            Err(OAuthError::invalid_request(format!(
                "{name} is not an active token of this server"
            )))
        }
        Err(error) => Err(error.into()),
    }
}

/// The resource the child is bound to: the subject's, or none. A subject bound to none works
/// only where no audience is required; binding its child to a resource (named, or this
/// server's default) would admit the child where an audience is required and the subject is
/// refused — a leaked CLI token turned into one for an MCP server.
fn resource_for(subject: &Inspection, params: &Params) -> Result<Option<String>, OAuthError> {
    let asked = match (params.get("resource"), params.get("audience")) {
        (Some(resource), Some(audience)) if resource != audience => {
            return Err(OAuthError::invalid_target(
                "resource and audience name different targets",
            ));
        }
        (resource, audience) => resource.or(audience),
    };
    match (subject.principal.audience(), asked) {
        (Some(bound), Some(asked)) if bound != asked => Err(OAuthError::invalid_target(
            "the subject_token is bound to another resource",
        )),
        (Some(bound), _) => Ok(Some(bound.to_owned())),
        (None, Some(asked)) => Err(OAuthError::invalid_target(format!(
            "the subject_token is bound to no resource: its child cannot be bound to {asked}"
        ))),
        (None, None) => Ok(None),
    }
}

/// How long the child lives: the access-token lifetime, unless the subject ends sooner (then
/// the child inherits its expiry).
fn lifetime<B: Backend>(authority: &Authority<B>, subject: &Inspection) -> Option<Duration> {
    let lifetime = authority.access_lifetime();
    let horizon = time::Duration::try_from(lifetime.saturating_add(INHERIT_WITHIN))
        .ok()
        .and_then(|span| authority.now().checked_add(span));
    match (subject.expires_at, horizon) {
        (Some(at), Some(horizon)) if at <= horizon => None,
        (Some(_), None) => None,
        _ => Some(lifetime),
    }
}

/// A refused delegation as RFC 8693 §2.2.2 and RFC 6749 §5.2 name it.
fn refusal(error: StoreError) -> OAuthError {
    match error {
        StoreError::Delegation(refused) => match refused {
            DelegationError::CapabilitiesExceedParent(_) => OAuthError::invalid_scope(format!(
                "scope is wider than the subject_token: {refused}"
            )),
            DelegationError::OtherResource(_) | DelegationError::ResourceWithoutAudience(_) => {
                OAuthError::invalid_target(refused.to_string())
            }
            DelegationError::TargetOfAnotherOwner(_) => OAuthError::invalid_request(
                "the actor_token's agent acts for another owner than the subject_token's",
            ),
            DelegationError::ParentRefused(_) => {
                OAuthError::invalid_request("subject_token is not an active token of this server")
            }
            other => OAuthError::invalid_request(other.to_string()),
        },
        StoreError::Input(
            refused @ (InputError::CapabilitiesOutsidePolicy(_)
            | InputError::CapabilitiesOutsideRole { .. }),
        ) => {
            OAuthError::invalid_scope(format!("scope is wider than the actor may hold: {refused}"))
        }
        StoreError::Input(refused) => OAuthError::invalid_request(refused.to_string()),
        StoreError::NotFound(_) => OAuthError::invalid_request("the actor_token's agent is gone"),
        other => other.into(),
    }
}

/// What the child may do, as a `scope`: what it asked, or — when it asked for nothing and
/// inherits its parent's ceiling — the patterns every layer of its ceiling allows.
async fn scope_of<B: Backend>(
    store: &Store<B>,
    asked: Option<&CapabilitySet>,
    child: &crate::store::IssuedToken,
) -> Result<String, OAuthError> {
    if let Some(asked) = asked {
        return Ok(scope::to_scope(asked));
    }
    let parsed = store
        .config()
        .format
        .parse(child.token.expose_secret())
        .map_err(|_| OAuthError::invalid_request("the issued token does not parse"))?;
    let inspection = store
        .inspect_token(&TokenLookup::parsed(&parsed))
        .await
        .map_err(|error| OAuthError::unavailable(&error))?;
    let allowed = (inspection.principal.ceiling().layers())
        .fold(CapabilitySet::everything(), |set, (_, layer)| {
            scope::within(&set, layer)
        });
    Ok(scope::to_scope(&allowed))
}

#[async_trait::async_trait]
impl<B: Backend> Grant<B> for TokenExchangeGrant {
    fn grant_type(&self) -> &'static str {
        TOKEN_EXCHANGE
    }

    async fn exchange(
        &self,
        authority: &Authority<B>,
        client: &Client,
        params: &Params,
    ) -> Result<TokenResponse, OAuthError> {
        let subject_token = token_param(params, "subject_token")?
            .ok_or_else(|| OAuthError::invalid_request("subject_token is required"))?;
        let actor_token = token_param(params, "actor_token")?;
        if params
            .get("requested_token_type")
            .is_some_and(|kind| kind != ACCESS_TOKEN_TYPE)
        {
            return Err(OAuthError::invalid_request(format!(
                "requested_token_type: only {ACCESS_TOKEN_TYPE} is issued here"
            )));
        }
        let asked = match params.get("scope").map(scope::parse) {
            None | Some(Ok(None)) => None,
            Some(Ok(Some(asked))) => Some(asked),
            Some(Err(error)) => return Err(OAuthError::invalid_scope(error.to_string())),
        };
        let store = authority.store();
        let subject = inspect(store, subject_token, "subject_token").await?;
        if let Some(issued_to) = (subject.token.client_id.as_ref()).filter(|id| **id != client.id) {
            // A token one client obtained, presented by another: worth a line in the trail.
            let event = AuditEvent::new(authority.now(), AuditAction::TokenIssued, Outcome::Denied)
                .agent(subject.token.agent_id.clone())
                .actor(subject.principal.user_id().clone())
                .detail(format!(
                    "oauth token exchange refused: token {} of client {issued_to} presented by \
                     client {}",
                    subject.token.id, client.id
                ));
            authority.record(event).await;
            return Err(OAuthError::invalid_request(
                "the subject_token was issued to another client",
            ));
        }
        let target = match actor_token {
            Some(actor) => inspect(store, actor, "actor_token").await?.token.agent_id,
            None => subject.token.agent_id.clone(),
        };
        let resource = resource_for(&subject, params)?;

        let mut delegation = Delegation::to(target, format!("oauth token exchange {}", client.id))
            .client(client.id.clone());
        if let Some(resource) = resource {
            delegation = delegation.resource(resource);
        }
        if let Some(asked) = &asked {
            delegation = delegation.with_capabilities(asked.clone());
        }
        if let Some(lifetime) = lifetime(authority, &subject) {
            delegation = delegation.expires_in(lifetime);
        }
        let mut delegator = Delegator::new(store);
        if let Some(writer) = authority.audit_writer() {
            delegator = delegator.with_audit(writer);
        }
        let child = delegator
            .delegate_inspected(&subject, delegation)
            .await
            .map_err(refusal)?;
        let scope = scope_of(store, asked.as_ref(), &child).await?;
        let expires_in = seconds_until(child.info.expires_at, authority.now());
        Ok(TokenResponse::bearer(child.token, expires_in, scope)
            .field("issued_token_type", ACCESS_TOKEN_TYPE.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_parameters_come_with_their_type() {
        let params = |body: &str| Params::parse(body.as_bytes()).unwrap();
        let access = format!("subject_token=t&subject_token_type={ACCESS_TOKEN_TYPE}");
        assert_eq!(
            token_param(&params(&access), "subject_token").unwrap(),
            Some("t")
        );
        assert_eq!(token_param(&params(""), "actor_token").unwrap(), None);
        for bad in [
            "subject_token=t",
            "subject_token_type=urn:ietf:params:oauth:token-type:access_token",
            "subject_token=t&subject_token_type=urn:ietf:params:oauth:token-type:refresh_token",
        ] {
            let error = token_param(&params(bad), "subject_token").unwrap_err();
            assert_eq!(
                error.code(),
                crate::oauth::ErrorCode::InvalidRequest,
                "{bad}"
            );
        }
    }

    #[test]
    fn refusals_are_the_rfcs_codes() {
        use crate::oauth::ErrorCode;
        let code = |error: StoreError| refusal(error).code();
        assert_eq!(
            code(DelegationError::CapabilitiesExceedParent("posts:*".into()).into()),
            ErrorCode::InvalidScope
        );
        assert_eq!(
            code(DelegationError::OtherResource("https://a".into()).into()),
            ErrorCode::InvalidTarget
        );
        assert_eq!(
            code(DelegationError::DepthExceeded { depth: 5, max: 4 }.into()),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            code(InputError::CapabilitiesOutsidePolicy("posts:write".into()).into()),
            ErrorCode::InvalidScope
        );
        let another = refusal(DelegationError::TargetOfAnotherOwner("bobs-bot".into()).into());
        assert!(
            !another.description().contains("bobs-bot"),
            "no other owner's slug"
        );
    }
}
