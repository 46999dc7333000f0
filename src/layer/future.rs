use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::layer::Shared;
use super::response::{Challenge, LayerMarker, Rejection};
use crate::audit::{AuditAction, AuditEvent, AuditRecorder, Outcome};
use crate::principal::{ExecutionPrincipal, Principal};
use crate::resolver::{RefusedCredential, ResolveError};

/// A token lookup in flight.
pub(crate) type TokenResolution =
    Pin<Box<dyn Future<Output = Result<Principal, ResolveError>> + Send>>;

/// A session lookup in flight; it borrows the request's parts, so it owns the request and hands
/// it back with the verdict.
pub(crate) type SessionResolution<B> =
    Pin<Box<dyn Future<Output = (Request<B>, Result<Option<Principal>, ResolveError>)> + Send>>;

pub(crate) enum Resolution<B> {
    /// A token lookup; the request waits beside it.
    Token(TokenResolution),
    /// A session lookup, which holds the request itself.
    Session(SessionResolution<B>),
}

type Verdict<B> = (Request<B>, Result<Option<Principal>, ResolveError>);

impl<B> Resolution<B> {
    /// Polls the lookup; on completion hands back the request with the verdict.
    /// `request` is the request of a token lookup (`None` for a session lookup, which holds it).
    fn poll_verdict(
        &mut self,
        request: &mut Option<Request<B>>,
        cx: &mut Context<'_>,
    ) -> Poll<Verdict<B>> {
        match self {
            Self::Token(lookup) => {
                let verdict = ready!(lookup.as_mut().poll(cx)).map(Some);
                let request = request.take().expect("a lookup completes once");
                Poll::Ready((request, verdict))
            }
            Self::Session(lookup) => lookup.as_mut().poll(cx),
        }
    }
}

/// What a lookup keeps until it finishes. Boxed, so that the common case — a verdict ready in
/// `call` — moves a small future around.
pub(crate) struct Pending<S, B> {
    resolution: Resolution<B>,
    request: Option<Request<B>>,
    inner: S,
    shared: Arc<Shared>,
}

/// A request event waiting for the response status. Dropped before the response (the client
/// went away, a timeout fired), it still records the request, with status 499.
pub(crate) struct PendingAudit {
    recorder: Arc<dyn AuditRecorder>,
    event: Option<AuditEvent>,
}

/// Status recorded for a request whose response was never produced (nginx's "client closed").
const CLIENT_CLOSED: u16 = 499;

impl Drop for PendingAudit {
    fn drop(&mut self) {
        if let Some(mut event) = self.event.take() {
            event.at = time::OffsetDateTime::now_utc();
            if let Some(request) = &mut event.request {
                request.status = CLIENT_CLOSED;
            }
            self.recorder.record_detached(event);
        }
    }
}

/// Waiting for room in the audit queue.
type AuditWait = Pin<Box<dyn Future<Output = ()> + Send>>;

pin_project! {
    /// Response future of [`AgentAuth`](crate::layer::AgentAuth).
    pub struct ResponseFuture<S, ReqBody>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        state: State<S, ReqBody>,
    }
}

pin_project! {
    // Every request moves this future, so its states stay small: a refusal keeps the
    // `Rejection` and builds the response when polled, and only the rare wait for room in the
    // audit queue boxes what it answers with.
    #[project = StateProj]
    enum State<S, ReqBody>
    where
        S: Service<Request<ReqBody>>,
    {
        Resolving {
            pending: Option<Box<Pending<S, ReqBody>>>,
        },
        Calling {
            #[pin]
            future: S::Future,
            audit: Option<Box<PendingAudit>>,
        },
        Rejected {
            rejection: Option<Rejection>,
            challenge: Arc<Challenge>,
        },
        Recording {
            wait: AuditWait,
            output: Option<Box<Result<S::Response, S::Error>>>,
        },
    }
}

impl<S, ReqBody, ResBody> ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: From<&'static str>,
{
    pub(crate) fn called(future: S::Future) -> Self {
        Self {
            state: State::Calling {
                future,
                audit: None,
            },
        }
    }

    pub(crate) fn rejected(rejection: Rejection, challenge: &Arc<Challenge>) -> Self {
        Self {
            state: rejected(rejection, challenge),
        }
    }

    /// Continues with a verdict already at hand.
    #[inline]
    pub(crate) fn settled(
        request: Request<ReqBody>,
        verdict: Result<Option<Principal>, ResolveError>,
        inner: S,
        shared: &Shared,
    ) -> Self {
        Self {
            state: settle(request, verdict, inner, shared),
        }
    }

    /// Waits for a lookup; `request` is `None` when the lookup holds it (sessions).
    pub(crate) fn resolving(
        resolution: Resolution<ReqBody>,
        request: Option<Request<ReqBody>>,
        inner: S,
        shared: &Arc<Shared>,
    ) -> Self {
        let pending = Pending {
            resolution,
            request,
            inner,
            shared: shared.clone(),
        };
        Self {
            state: State::Resolving {
                pending: Some(Box::new(pending)),
            },
        }
    }
}

fn rejected<S, ReqBody>(rejection: Rejection, challenge: &Arc<Challenge>) -> State<S, ReqBody>
where
    S: Service<Request<ReqBody>>,
{
    State::Rejected {
        rejection: Some(rejection),
        challenge: challenge.clone(),
    }
}

/// Turns a verdict into the next state: call the inner service (with the principal, or marked as
/// anonymous) or answer with a rejection.
#[inline]
fn settle<S, ReqBody, ResBody>(
    mut request: Request<ReqBody>,
    verdict: Result<Option<Principal>, ResolveError>,
    mut inner: S,
    shared: &Shared,
) -> State<S, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: From<&'static str>,
{
    let challenge = &shared.challenge;
    let rejection = match verdict {
        Ok(Some(principal)) => {
            let audit = match &shared.audit {
                Some(recorder) if principal.agent_ref().is_some() => Some(Box::new(PendingAudit {
                    recorder: recorder.clone(),
                    event: Some(request_event(&principal, &request)),
                })),
                _ => None,
            };
            request
                .extensions_mut()
                .insert(principal.with_challenge(challenge.clone()));
            return State::Calling {
                future: inner.call(request),
                audit,
            };
        }
        Ok(None) if !shared.required => {
            request
                .extensions_mut()
                .insert(LayerMarker(challenge.clone()));
            return State::Calling {
                future: inner.call(request),
                audit: None,
            };
        }
        Ok(None) => Rejection::MissingCredentials,
        Err(ResolveError::Invalid(reason)) => Rejection::InvalidToken(reason),
        Err(ResolveError::Refused(refused)) => {
            let rejection = Rejection::InvalidToken(refused.reason);
            if let Some(recorder) = &shared.audit {
                let status = rejection.status().as_u16();
                let event = refusal_event(&refused, &request, status);
                if let Err(event) = recorder.try_record(event) {
                    let response = rejection.response(Some(challenge));
                    return State::Recording {
                        wait: recorder.wait_to_record(event),
                        output: Some(Box::new(Ok(response))),
                    };
                }
            }
            rejection
        }
        Err(ResolveError::Unavailable(_)) => Rejection::Unavailable,
    };
    rejected(rejection, challenge)
}

/// The event of an agent-authenticated request; the time and status are filled in when the
/// response is ready (or the request is dropped), so the clock is read once.
fn request_event<B>(principal: &ExecutionPrincipal, request: &Request<B>) -> AuditEvent {
    let mut event = AuditEvent::new(
        time::OffsetDateTime::UNIX_EPOCH,
        AuditAction::Request,
        Outcome::Success,
    )
    .actor(principal.user_id().clone())
    .delegation_chain(principal.delegation_chain().to_vec())
    .task_id(principal.task_id().map(str::to_owned))
    .request(request.method().as_str(), request.uri().path(), 0);
    if let Some(agent) = principal.agent_ref() {
        event = event
            .identity(agent.id().clone())
            .parent(agent.parent().cloned());
    }
    if let Some(token) = principal.token_id() {
        event = event.credential(token.clone());
    }
    event
}

/// The event of a refused token whose credential is known.
fn refusal_event<B>(refused: &RefusedCredential, request: &Request<B>, status: u16) -> AuditEvent {
    AuditEvent::new(
        time::OffsetDateTime::now_utc(),
        AuditAction::TokenRefused,
        Outcome::Refused(refused.reason),
    )
    .identity(refused.agent_id.clone())
    .parent(refused.parent.clone())
    .credential(refused.token_id.clone())
    .actor(refused.user_id.clone())
    .task_id(refused.task_id.clone())
    .request(request.method().as_str(), request.uri().path(), status)
}

impl<S, ReqBody, ResBody> Future for ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: From<&'static str>,
{
    type Output = Result<Response<ResBody>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            let next = match state.as_mut().project() {
                StateProj::Resolving { pending: slot } => {
                    let pending = slot.as_mut().expect("resolution completes once");
                    let (request, verdict) =
                        ready!(pending.resolution.poll_verdict(&mut pending.request, cx));
                    let Pending { inner, shared, .. } =
                        *slot.take().expect("resolution completes once");
                    settle(request, verdict, inner, &shared)
                }
                StateProj::Calling { future, audit } => {
                    let result = ready!(future.poll(cx));
                    let Some(mut pending) = audit.take() else {
                        return Poll::Ready(result);
                    };
                    let Some(mut event) = pending.event.take() else {
                        return Poll::Ready(result);
                    };
                    event.at = time::OffsetDateTime::now_utc();
                    if let Some(request) = &mut event.request {
                        // An inner error becomes a 500 further out.
                        request.status = result.as_ref().map_or(500, |r| r.status().as_u16());
                    }
                    match pending.recorder.try_record(event) {
                        Ok(()) => return Poll::Ready(result),
                        // Backpressure: keep the answer until the queue has room.
                        Err(event) => State::Recording {
                            wait: pending.recorder.wait_to_record(event),
                            output: Some(Box::new(result)),
                        },
                    }
                }
                StateProj::Rejected {
                    rejection,
                    challenge,
                } => {
                    let rejection = rejection.take().expect("polled after completion");
                    return Poll::Ready(Ok(rejection.response(Some(challenge))));
                }
                StateProj::Recording { wait, output } => {
                    ready!(wait.as_mut().poll(cx));
                    return Poll::Ready(*output.take().expect("polled after completion"));
                }
            };
            state.set(next);
        }
    }
}
