use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::layer::Shared;
use super::response::{Challenge, LayerMarker, Rejection};
use crate::principal::Principal;
use crate::resolver::ResolveError;

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
    challenge: Arc<Challenge>,
    required: bool,
}

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
        },
        Rejected {
            response: Option<S::Response>,
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
            state: State::Calling { future },
        }
    }

    pub(crate) fn rejected(rejection: Rejection, challenge: &Challenge) -> Self {
        Self {
            state: State::Rejected {
                response: Some(rejection.response(Some(challenge))),
            },
        }
    }

    /// Continues with a verdict already at hand.
    pub(crate) fn settled(
        request: Request<ReqBody>,
        verdict: Result<Option<Principal>, ResolveError>,
        inner: S,
        shared: &Shared,
    ) -> Self {
        Self {
            state: settle(request, verdict, inner, &shared.challenge, shared.required),
        }
    }

    /// Waits for a lookup; `request` is `None` when the lookup holds it (sessions).
    pub(crate) fn resolving(
        resolution: Resolution<ReqBody>,
        request: Option<Request<ReqBody>>,
        inner: S,
        shared: &Shared,
    ) -> Self {
        let pending = Pending {
            resolution,
            request,
            inner,
            challenge: shared.challenge.clone(),
            required: shared.required,
        };
        Self {
            state: State::Resolving {
                pending: Some(Box::new(pending)),
            },
        }
    }
}

/// Turns a verdict into the next state: call the inner service (with the principal, or marked as
/// anonymous) or answer with a rejection.
fn settle<S, ReqBody, ResBody>(
    mut request: Request<ReqBody>,
    verdict: Result<Option<Principal>, ResolveError>,
    mut inner: S,
    challenge: &Arc<Challenge>,
    required: bool,
) -> State<S, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: From<&'static str>,
{
    let rejection = match verdict {
        Ok(Some(principal)) => {
            request
                .extensions_mut()
                .insert(principal.with_challenge(challenge.clone()));
            return State::Calling {
                future: inner.call(request),
            };
        }
        Ok(None) if !required => {
            request
                .extensions_mut()
                .insert(LayerMarker(challenge.clone()));
            return State::Calling {
                future: inner.call(request),
            };
        }
        Ok(None) => Rejection::MissingCredentials,
        Err(ResolveError::Invalid(reason)) => Rejection::InvalidToken(reason),
        Err(ResolveError::Unavailable(_)) => Rejection::Unavailable,
    };
    State::Rejected {
        response: Some(rejection.response(Some(challenge))),
    }
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
                    let Pending {
                        inner,
                        challenge,
                        required,
                        ..
                    } = *slot.take().expect("resolution completes once");
                    settle(request, verdict, inner, &challenge, required)
                }
                StateProj::Calling { future } => return future.poll(cx),
                StateProj::Rejected { response } => {
                    return Poll::Ready(Ok(response.take().expect("polled after completion")));
                }
            };
            state.set(next);
        }
    }
}
