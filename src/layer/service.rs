use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::bearer::{self, Credentials};
use super::future::{Resolution, ResponseFuture};
use super::layer::Shared;
use super::response::{LayerMarker, Rejection};
use crate::resolver::{InvalidReason, ResolveError, TokenLookup};
use crate::token::TokenError;

/// Length of `_` + 64 hex after the slug in a token.
const TOKEN_TAIL: usize = 65;

/// The service built by [`AgentAuthLayer`](crate::AgentAuthLayer).
#[derive(Clone)]
pub struct AgentAuth<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for AgentAuth<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentAuth")
            .field("inner", &self.inner)
            .field("prefix", &self.shared.format.prefix())
            .finish_non_exhaustive()
    }
}

impl<S> AgentAuth<S> {
    pub(crate) fn new(inner: S, shared: Arc<Shared>) -> Self {
        Self { inner, shared }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for AgentAuth<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    ReqBody: Send + 'static,
    ResBody: From<&'static str>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // The service that was driven to readiness is the one to call; keep a fresh clone.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = &self.shared;

        let lookup = match bearer::credentials(request.headers()) {
            Credentials::Malformed => {
                return ResponseFuture::rejected(Rejection::InvalidRequest, &shared.challenge);
            }
            Credentials::Bearer(token) => match shared.format.parse(token) {
                Ok(parsed) => Some((parsed.hash(), parsed.slug().len(), parsed.is_legacy())),
                Err(TokenError::NotOwned) => None,
                Err(error) => {
                    let reason = match error {
                        TokenError::Checksum => InvalidReason::Checksum,
                        _ => InvalidReason::Malformed,
                    };
                    return ResponseFuture::rejected(
                        Rejection::InvalidToken(reason),
                        &shared.challenge,
                    );
                }
            },
            Credentials::OtherScheme => None,
            Credentials::Absent => match &shared.session {
                Some(session) => {
                    let session = session.clone();
                    let resolution: Resolution<ReqBody> = Box::pin(async move {
                        let (parts, body) = request.into_parts();
                        let result = session.resolve_session(&parts).await;
                        let result = match result {
                            // A stale or forged session is the same as none.
                            Err(ResolveError::Invalid(_)) => Ok(None),
                            other => other,
                        };
                        (Request::from_parts(parts, body), result)
                    });
                    return ResponseFuture::resolving(resolution, inner, shared);
                }
                None if shared.required => {
                    return ResponseFuture::rejected(
                        Rejection::MissingCredentials,
                        &shared.challenge,
                    );
                }
                None => None,
            },
        };

        let Some((hash, slug_len, legacy)) = lookup else {
            // Not ours: pass through untouched, marked so extractors can answer 401, not 500.
            request
                .extensions_mut()
                .insert(LayerMarker(shared.challenge.clone()));
            return ResponseFuture::called(inner.call(request));
        };
        let resolver = shared.resolver.clone();
        let resolution: Resolution<ReqBody> = Box::pin(async move {
            // The token was checked above; borrow its slug again from the request we now own.
            let slug = bearer::bearer_token(request.headers()).and_then(|token| {
                let end = token.len().checked_sub(TOKEN_TAIL)?;
                token.get(end.checked_sub(slug_len)?..end)
            });
            let result = match slug {
                Some(slug) => resolver
                    .resolve(&TokenLookup::new(hash, slug, legacy))
                    .await
                    .map(Some),
                None => Err(ResolveError::Invalid(InvalidReason::Malformed)),
            };
            (request, result)
        });
        ResponseFuture::resolving(resolution, inner, shared)
    }
}
