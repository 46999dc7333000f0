//! [`ResponseFuture`]: drives a request through the states the layer's decisions put it in —
//! waiting for a resolver, calling the inner service, answering a refusal, waiting for room in
//! the audit queue. It decides nothing: [`decide`](super::decide) does.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::challenge::Challenge;
use super::decide::{self, Admitted, Answer, Decision, Finishing, Resolution, Shared};
use super::rejection::Rejection;

/// A lookup and what the request needs once it is answered. Boxed, so that the common case —
/// a verdict ready in `call` — moves a small future around.
struct Pending<S, B> {
    resolution: Resolution<B>,
    inner: S,
    shared: Arc<Shared>,
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
            admitted: Option<Box<Admitted>>,
        },
        Rejected {
            rejection: Option<Rejection>,
            challenge: Arc<Challenge>,
        },
        Finishing {
            wait: Finishing,
            output: Option<Box<Result<S::Response, S::Error>>>,
        },
    }
}

impl<S, ReqBody, ResBody> ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: From<&'static str>,
{
    /// The future that carries out `decision`.
    #[inline]
    pub(crate) fn new(decision: Decision<ReqBody>, inner: S, shared: &Arc<Shared>) -> Self {
        Self {
            state: State::from_decision(decision, inner, shared),
        }
    }
}

impl<S, ReqBody, ResBody> State<S, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: From<&'static str>,
{
    #[inline]
    fn from_decision(decision: Decision<ReqBody>, mut inner: S, shared: &Arc<Shared>) -> Self {
        match decision {
            Decision::Call(request, admitted) => State::Calling {
                future: inner.call(request),
                admitted,
            },
            Decision::Reject { rejection, wait } => match wait {
                None => State::Rejected {
                    rejection: Some(rejection),
                    challenge: shared.challenge.clone(),
                },
                Some(wait) => State::Finishing {
                    wait,
                    output: Some(Box::new(Ok(rejection.response(Some(&shared.challenge))))),
                },
            },
            Decision::Resolve(resolution) => State::Resolving {
                pending: Some(Box::new(Pending {
                    resolution,
                    inner,
                    shared: shared.clone(),
                })),
            },
        }
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
                    let (request, answer) = ready!(pending.resolution.poll_answer(cx));
                    let Pending { inner, shared, .. } =
                        *slot.take().expect("resolution completes once");
                    State::from_decision(decide::verdict(&shared, request, answer), inner, &shared)
                }
                StateProj::Calling { future, admitted } => {
                    let result = ready!(future.poll(cx));
                    let Some(admitted) = admitted.take() else {
                        return Poll::Ready(result);
                    };
                    let answer = result.as_ref().ok().map(|response| {
                        let extensions = response.extensions();
                        Answer {
                            status: response.status(),
                            not_acted: extensions.get::<super::NotActed>().is_some(),
                            rate_limited: extensions
                                .get::<crate::limit::RateLimited>()
                                .map(|limited| limited.limit),
                        }
                    });
                    match admitted.answered(answer) {
                        None => return Poll::Ready(result),
                        // Keep the answer until its use is settled and its event has room.
                        Some(wait) => State::Finishing {
                            wait,
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
                StateProj::Finishing { wait, output } => {
                    ready!(wait.as_mut().poll(cx));
                    return Poll::Ready(*output.take().expect("polled after completion"));
                }
            };
            state.set(next);
        }
    }
}
