//! What the layer does with a request: every decision of [`AgentAuth`](super::AgentAuth), made
//! here so that `call` only reads the request and the response future only drives states.
//!
//! [`request`] turns a request into a [`Decision`]: call the inner service (with a principal,
//! or untouched, or marked as anonymous), reject it, or wait for a resolver. [`verdict`] turns
//! a resolver's answer into a decision the same way, whether it came at once or after waiting.
//! An admitted request carries an [`Admitted`]: what is owed once the application answers —
//! its audit event and, for a use-limited token, the settling of its use
//! ([`spends_use`] says which answers spend it).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::{Request, StatusCode};

use super::bearer::{self, Credentials};
use super::challenge::{Challenge, LayerMarker};
use super::rejection::Rejection;
use crate::audit::AuditRecorder;
use crate::audit::request::{PendingRequestEvent, refusal_event};
use crate::clock::Clock;
use crate::error::{InvalidReason, ResolveError};
use crate::principal::{Principal, TokenId};
use crate::resolver::{SessionResolver, TokenLookup, TokenResolver};
use crate::token::{TokenError, TokenFormat};

/// The layer's settings, shared by every service it builds.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) resolver: Arc<dyn TokenResolver>,
    pub(crate) format: TokenFormat,
    pub(crate) session: Option<Arc<dyn SessionResolver>>,
    pub(crate) required: bool,
    /// Whether a required layer lets credentials it does not own through (to another
    /// authentication layer inside it).
    pub(crate) pass_foreign: bool,
    pub(crate) realm: Arc<str>,
    pub(crate) resource_metadata: Option<Arc<str>>,
    /// The scope the 401 challenges name.
    pub(crate) scope: Option<Arc<str>>,
    /// The resource this layer protects: a principal bound to another is refused.
    pub(crate) resource: Option<Arc<str>>,
    /// Whether a principal bound to no resource is refused too.
    pub(crate) require_audience: bool,
    pub(crate) challenge: Arc<Challenge>,
    /// Whether `challenge` is the default one, which extractors assume when a request carries
    /// a principal and no marker: an admitted request then needs one extensions insert, not two.
    pub(crate) default_challenge: bool,
    pub(crate) audit: Option<Arc<dyn AuditRecorder>>,
    pub(crate) clock: Arc<dyn Clock>,
}

/// A token lookup in flight.
pub(crate) type TokenResolution =
    Pin<Box<dyn Future<Output = Result<Principal, ResolveError>> + Send>>;

/// A session lookup in flight; it borrows the request's parts, so it owns the request and hands
/// it back with the verdict.
pub(crate) type SessionResolution<B> =
    Pin<Box<dyn Future<Output = (Request<B>, Result<Option<Principal>, ResolveError>)> + Send>>;

/// What an answered request still waits for: the write that settles its use, room in the
/// audit queue.
pub(crate) type Finishing = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A lookup the layer waits for.
// Lives boxed in the response future's waiting state: its size is paid once per wait.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Resolution<B> {
    /// A token lookup; the request waits beside it.
    Token(TokenResolution, Option<Request<B>>),
    /// A session lookup, which holds the request itself.
    Session(SessionResolution<B>),
}

/// A request with its resolver's answer.
pub(crate) type Answered<B> = (Request<B>, Result<Option<Principal>, ResolveError>);

impl<B> Resolution<B> {
    /// Polls the lookup; on completion hands back the request with the answer.
    pub(crate) fn poll_answer(&mut self, cx: &mut Context<'_>) -> Poll<Answered<B>> {
        match self {
            Self::Token(lookup, request) => {
                let answer = ready!(lookup.as_mut().poll(cx)).map(Some);
                let request = request.take().expect("a lookup completes once");
                Poll::Ready((request, answer))
            }
            Self::Session(lookup) => lookup.as_mut().poll(cx),
        }
    }
}

/// What to do with a request.
pub(crate) enum Decision<B> {
    /// Call the inner service with this request; `Some` when something is owed once it answers.
    Call(Request<B>, Option<Box<Admitted>>),
    /// Answer without calling it; `wait` is set when the refusal's audit event waits for room.
    Reject {
        rejection: Rejection,
        wait: Option<Finishing>,
    },
    /// Ask a resolver first.
    Resolve(Resolution<B>),
}

impl<B> Decision<B> {
    fn reject(rejection: Rejection) -> Self {
        Self::Reject {
            rejection,
            wait: None,
        }
    }
}

/// Decides what to do with `request`.
pub(crate) fn request<B: Send + 'static>(shared: &Shared, request: Request<B>) -> Decision<B> {
    // Admitted by an outer layer already: not resolved (nor a use reserved) twice; only this
    // layer's own condition, its audience, is checked.
    if let Some(principal) = request.extensions().get::<Principal>() {
        if !audience_fits(shared, principal) {
            return Decision::reject(Rejection::InvalidToken(InvalidReason::Audience));
        }
        // The innermost layer's challenge (its resource metadata, its scope) is the one a
        // refusal behind it names.
        let mut request = request;
        if !shared.default_challenge {
            request
                .extensions_mut()
                .insert(LayerMarker::new(shared.challenge.clone()));
        }
        return Decision::Call(request, None);
    }
    let token = match bearer::credentials(request.headers()) {
        Credentials::Malformed => return Decision::reject(Rejection::InvalidRequest),
        // Another scheme (`Basic` from a proxy, cached by a browser) is not a credential to us:
        // with sessions the request is judged by its session, as one without the header.
        Credentials::OtherScheme if shared.session.is_some() => {
            return without_credentials(shared, request);
        }
        // Not ours: refused by a required layer, else passed through untouched (marked so that
        // extractors answer 401, not 500).
        Credentials::OtherScheme => return not_ours(shared, request, false),
        Credentials::Absent => return without_credentials(shared, request),
        Credentials::Bearer(token) => token,
    };
    let parsed = match shared.format.parse_bytes(token) {
        Ok(parsed) => parsed,
        // Foreign tokens only need to be well-formed b64tokens.
        Err(TokenError::NotOwned) if bearer::is_b64token(token) => {
            return not_ours(shared, request, true);
        }
        Err(TokenError::Checksum) => {
            return verdict(shared, request, Err(InvalidReason::Checksum.into()));
        }
        // Ours but not our shape: a token all the same (401), unless the header itself is
        // broken (400). Checked only here, off the success path.
        Err(_) if bearer::is_b64token(token) => {
            return verdict(shared, request, Err(InvalidReason::Malformed.into()));
        }
        Err(_) => return Decision::reject(Rejection::InvalidRequest),
    };
    let lookup = TokenLookup::parsed(&parsed);
    if let Some(answer) = shared.resolver.resolve_now(&lookup) {
        return verdict(shared, request, answer.map(Some));
    }
    let Some(slug) = InlineSlug::new(lookup.slug_bytes()) else {
        return verdict(shared, request, Err(InvalidReason::Malformed.into()));
    };
    let (hash, legacy) = (*lookup.hash(), lookup.is_legacy());
    let resolver = shared.resolver.clone();
    let resolution: TokenResolution = Box::pin(async move {
        let lookup = TokenLookup::from_parts(hash, slug.as_bytes(), legacy);
        resolver.as_ref().resolve(&lookup).await
    });
    Decision::Resolve(Resolution::Token(resolution, Some(request)))
}

/// No `Authorization` header: a session, if a session resolver is configured; else none.
fn without_credentials<B: Send + 'static>(shared: &Shared, request: Request<B>) -> Decision<B> {
    let Some(session) = shared.session.clone() else {
        return verdict(shared, request, Ok(None));
    };
    let resolution: SessionResolution<B> = Box::pin(async move {
        let (parts, body) = request.into_parts();
        let answer = match session.as_ref().resolve_session(&parts).await {
            // A stale or forged session is the same as none.
            Err(ResolveError::Invalid(_) | ResolveError::Refused(_)) => Ok(None),
            other => other,
        };
        (Request::from_parts(parts, body), answer)
    });
    Decision::Resolve(Resolution::Session(resolution))
}

/// Credentials this layer does not own: another scheme, or (`bearer`) a bearer token of
/// another prefix. A required layer refuses them — a route behind it is never reached without
/// a principal — unless it was told to pass them on to another authentication layer.
fn not_ours<B>(shared: &Shared, mut request: Request<B>, bearer: bool) -> Decision<B> {
    if shared.required && !shared.pass_foreign {
        return Decision::reject(if bearer {
            Rejection::ForeignToken
        } else {
            Rejection::MissingCredentials
        });
    }
    request.extensions_mut().insert(LayerMarker {
        challenge: shared.challenge.clone(),
        foreign_bearer: bearer,
    });
    Decision::Call(request, None)
}

/// Whether `principal` may be used at this layer's resource: any principal when the layer
/// names none; else one bound to that resource, or to none unless the layer requires it.
/// Sessions are bound to none.
#[inline]
fn audience_fits(shared: &Shared, principal: &Principal) -> bool {
    let Some(resource) = shared.resource.as_deref() else {
        return true;
    };
    match principal.audience() {
        Some(audience) => audience == resource,
        None => !shared.require_audience,
    }
}

/// The request goes on without a principal, marked as having passed the layer.
fn anonymous<B>(shared: &Shared, mut request: Request<B>) -> Decision<B> {
    request
        .extensions_mut()
        .insert(LayerMarker::new(shared.challenge.clone()));
    Decision::Call(request, None)
}

/// Decides on a resolver's answer (`Ok(None)`: no credentials).
#[inline]
pub(crate) fn verdict<B>(
    shared: &Shared,
    mut request: Request<B>,
    answer: Result<Option<Principal>, ResolveError>,
) -> Decision<B> {
    let rejection = match answer {
        Ok(Some(principal)) if !audience_fits(shared, &principal) => {
            Rejection::InvalidToken(InvalidReason::Audience)
        }
        Ok(Some(principal)) => {
            let admitted = Admitted::new(shared, &principal, &request);
            let extensions = request.extensions_mut();
            if !shared.default_challenge {
                extensions.insert(LayerMarker::new(shared.challenge.clone()));
            }
            extensions.insert(principal);
            return Decision::Call(request, admitted);
        }
        Ok(None) if !shared.required => return anonymous(shared, request),
        // Another scheme and no session: passed on when the layer was told to (off the
        // success path, so reading the header again costs nothing that matters).
        Ok(None)
            if shared.pass_foreign
                && matches!(
                    bearer::credentials(request.headers()),
                    Credentials::OtherScheme
                ) =>
        {
            return anonymous(shared, request);
        }
        Ok(None) => Rejection::MissingCredentials,
        Err(ResolveError::Invalid(reason)) => Rejection::InvalidToken(reason),
        Err(ResolveError::Refused(refused)) => {
            let rejection = Rejection::InvalidToken(refused.reason);
            let Some(recorder) = &shared.audit else {
                return Decision::reject(rejection);
            };
            let status = rejection.status().as_u16();
            let path = request.uri().path();
            let event = refusal_event(&refused, request.method(), path, status, &*shared.clock);
            let wait = recorder
                .try_record(event)
                .err()
                .map(|event| recorder.wait_to_record(event));
            return Decision::Reject { rejection, wait };
        }
        Err(ResolveError::Unavailable(_)) => Rejection::Unavailable,
        Err(ResolveError::Corrupt(_)) => Rejection::ServerError,
    };
    Decision::reject(rejection)
}

/// Whether an answer spends the use a use-limited token reserved: every answer but those by
/// which the application refused the request before acting on it — `401`, `403` (a capability
/// check), `404`, `405` (no such route or method), `429` (a rate limit), or any answer marked
/// [`NotActed`](super::NotActed) (what [`ApprovalRejection`](crate::approval::ApprovalRejection)
/// answers are). Any other `4xx` spends it (a `400`, `409` or `422` may come after a handler
/// acted), and so does a `5xx`.
pub(crate) fn spends_use(status: StatusCode, not_acted: bool) -> bool {
    !not_acted
        && !matches!(
            status,
            StatusCode::UNAUTHORIZED
                | StatusCode::FORBIDDEN
                | StatusCode::NOT_FOUND
                | StatusCode::METHOD_NOT_ALLOWED
                | StatusCode::TOO_MANY_REQUESTS
        )
}

/// What an admitted request owes once the application answers: its audit event, and the
/// settling of the use it reserved. Dropped unanswered, the request is recorded as 499 and its
/// use is spent (the handler may have acted).
pub(crate) struct Admitted {
    event: Option<PendingRequestEvent>,
    reserved: Option<ReservedUse>,
}

impl Admitted {
    fn new<B>(shared: &Shared, principal: &Principal, request: &Request<B>) -> Option<Box<Self>> {
        let event = match &shared.audit {
            Some(recorder) if principal.agent_ref().is_some() => Some(PendingRequestEvent::new(
                recorder,
                &shared.clock,
                principal,
                request.method(),
                request.uri().path(),
            )),
            _ => None,
        };
        let reserved = match (principal.max_operations(), principal.token_id()) {
            (Some(_), Some(token)) => Some(ReservedUse {
                resolver: shared.resolver.clone(),
                token: Some(token.clone()),
            }),
            _ => None,
        };
        (event.is_some() || reserved.is_some()).then(|| Box::new(Self { event, reserved }))
    }

    /// The application answered (`None`: the inner service failed, which becomes a 500
    /// further out). Returns what the answer must wait for, if anything: the write that
    /// settles the use, room in the audit queue.
    pub(crate) fn answered(mut self: Box<Self>, answer: Option<Answer>) -> Option<Finishing> {
        let Answer {
            status,
            not_acted,
            rate_limited,
        } = answer.unwrap_or(Answer {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            not_acted: false,
            rate_limited: None,
        });
        let settling = self
            .reserved
            .take()
            .and_then(|reserved| reserved.settle(spends_use(status, not_acted)));
        let recording = self
            .event
            .take()
            .and_then(|event| event.answered(status.as_u16(), rate_limited))
            .map(|(recorder, event)| recorder.wait_to_record(event));
        match (settling, recording) {
            (None, None) => None,
            (Some(wait), None) | (None, Some(wait)) => Some(wait),
            (Some(settling), Some(recording)) => Some(Box::pin(async move {
                settling.await;
                recording.await;
            })),
        }
    }
}

/// What the application answered an admitted request, as the layer reads it.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    /// Marked [`NotActed`](super::NotActed).
    pub(crate) not_acted: bool,
    /// Refused by a rate limit: the [`RateLimited`](crate::limit::RateLimited) marker's limit.
    pub(crate) rate_limited: Option<crate::limit::Limit>,
}

/// A use reserved for an admitted request, settled exactly once.
struct ReservedUse {
    resolver: Arc<dyn TokenResolver>,
    token: Option<TokenId>,
}

impl ReservedUse {
    fn settle(mut self, spent: bool) -> Option<Finishing> {
        let token = self.token.take()?;
        self.resolver.settle_use(&token, spent)
    }
}

impl Drop for ReservedUse {
    fn drop(&mut self) {
        if let Some(token) = self.token.take() {
            // Dropping the write unfinished hands it to the resolver to finish (its contract).
            drop(self.resolver.settle_use(&token, true));
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_before_acting_release_the_use_and_every_other_answer_spends_it() {
        for released in [401, 403, 404, 405, 429] {
            let status = StatusCode::from_u16(released).unwrap();
            assert!(!spends_use(status, false), "{released}");
        }
        for spent in [200, 201, 204, 302, 400, 409, 422, 500, 503] {
            let status = StatusCode::from_u16(spent).unwrap();
            assert!(spends_use(status, false), "{spent}");
            assert!(!spends_use(status, true), "{spent} marked NotActed");
        }
    }
}
