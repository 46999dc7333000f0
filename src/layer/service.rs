use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::bearer::{self, Credentials};
use super::future::{Resolution, ResponseFuture, SessionResolution, TokenResolution};
use super::layer::Shared;
use super::response::{LayerMarker, Rejection};
use crate::principal::Principal;
use crate::resolver::{InvalidReason, ResolveError, TokenLookup};
use crate::token::{TokenError, TokenHash};

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

        let next = match bearer::credentials(request.headers()) {
            Credentials::Malformed => {
                return ResponseFuture::rejected(Rejection::InvalidRequest, &shared.challenge);
            }
            Credentials::Bearer(token) => match shared.format.parse_bytes(token) {
                Ok(parsed) => {
                    let lookup = TokenLookup::parsed(&parsed);
                    match shared.resolver.resolve_now(&lookup) {
                        Some(verdict) => Next::Settle(verdict.map(Some)),
                        None => match InlineSlug::new(lookup.slug_bytes()) {
                            Some(slug) => Next::Wait(*lookup.hash(), slug, lookup.is_legacy()),
                            None => Next::Settle(Err(InvalidReason::Malformed.into())),
                        },
                    }
                }
                // Not ours: foreign tokens only need to be well-formed b64tokens.
                Err(TokenError::NotOwned) if bearer::is_b64token(token) => Next::PassThrough,
                Err(TokenError::Checksum) => Next::Settle(Err(InvalidReason::Checksum.into())),
                // Ours but not our shape: a token all the same (401), unless the header itself
                // is broken (400). Checked only here, off the success path.
                Err(_) if bearer::is_b64token(token) => {
                    Next::Settle(Err(InvalidReason::Malformed.into()))
                }
                Err(_) => {
                    return ResponseFuture::rejected(Rejection::InvalidRequest, &shared.challenge);
                }
            },
            Credentials::OtherScheme => Next::PassThrough,
            Credentials::Absent => match &shared.session {
                Some(session) => {
                    let session = session.clone();
                    let resolution: SessionResolution<ReqBody> = Box::pin(async move {
                        let (parts, body) = request.into_parts();
                        let result = session.as_ref().resolve_session(&parts).await;
                        let result = match result {
                            // A stale or forged session is the same as none.
                            Err(ResolveError::Invalid(_) | ResolveError::Refused(_)) => Ok(None),
                            other => other,
                        };
                        (Request::from_parts(parts, body), result)
                    });
                    let resolution = Resolution::Session(resolution);
                    return ResponseFuture::resolving(resolution, None, inner, shared);
                }
                // No credentials: 401 if a principal is required, else on without one.
                None => Next::Settle(Ok(None)),
            },
        };

        match next {
            Next::PassThrough => {
                // Not ours: pass through untouched, marked so extractors can answer 401, not 500.
                request
                    .extensions_mut()
                    .insert(LayerMarker(shared.challenge.clone()));
                ResponseFuture::called(inner.call(request))
            }
            Next::Settle(verdict) => ResponseFuture::settled(request, verdict, inner, shared),
            Next::Wait(hash, slug, legacy) => {
                let resolver = shared.resolver.clone();
                let lookup: TokenResolution = Box::pin(async move {
                    let lookup = TokenLookup::from_parts(hash, slug.as_bytes(), legacy);
                    resolver.as_ref().resolve(&lookup).await
                });
                ResponseFuture::resolving(Resolution::Token(lookup), Some(request), inner, shared)
            }
        }
    }
}

/// What `call` does once the credentials have been read.
enum Next {
    /// Not our credentials: the inner service runs without a principal.
    PassThrough,
    /// The verdict is at hand (`Ok(None)`: no credentials).
    Settle(Result<Option<Principal>, ResolveError>),
    /// Ask the resolver asynchronously.
    Wait(TokenHash, InlineSlug, bool),
}

/// An agent slug (at most 64 ASCII bytes) copied out of the header, so the lookup future owns
/// it without allocating.
struct InlineSlug {
    bytes: [u8; MAX_SLUG],
    len: usize,
}

const MAX_SLUG: usize = 64;

impl InlineSlug {
    fn new(slug: &[u8]) -> Option<Self> {
        let len = slug.len();
        let mut bytes = [0u8; MAX_SLUG];
        bytes.get_mut(..len)?.copy_from_slice(slug);
        Some(Self { bytes, len })
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}
