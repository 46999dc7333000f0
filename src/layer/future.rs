use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::layer::Shared;
use super::response::{Challenge, LayerMarker, Rejection};
use crate::principal::{ExecutionPrincipal, Principal};
use crate::resolver::ResolveError;

/// A credential lookup in flight; it owns the request and hands it back with the verdict.
pub(crate) type Resolution<B> = Pin<
    Box<dyn Future<Output = (Request<B>, Result<Option<ExecutionPrincipal>, ResolveError>)> + Send>,
>;

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
            resolution: Resolution<ReqBody>,
            inner: Option<S>,
            challenge: Arc<Challenge>,
            required: bool,
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

    pub(crate) fn resolving(resolution: Resolution<ReqBody>, inner: S, shared: &Shared) -> Self {
        Self {
            state: State::Resolving {
                resolution,
                inner: Some(inner),
                challenge: shared.challenge.clone(),
                required: shared.required,
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
                StateProj::Resolving {
                    resolution,
                    inner,
                    challenge,
                    required,
                } => {
                    let (mut request, verdict) = ready!(resolution.as_mut().poll(cx));
                    let rejection = match verdict {
                        Ok(Some(principal)) => {
                            request
                                .extensions_mut()
                                .insert(Principal::with_challenge(principal, challenge.clone()));
                            None
                        }
                        Ok(None) if *required => Some(Rejection::MissingCredentials),
                        Ok(None) => {
                            request
                                .extensions_mut()
                                .insert(LayerMarker(challenge.clone()));
                            None
                        }
                        Err(ResolveError::Invalid(reason)) => Some(Rejection::InvalidToken(reason)),
                        Err(ResolveError::Unavailable(_)) => Some(Rejection::Unavailable),
                    };
                    match rejection {
                        Some(rejection) => State::Rejected {
                            response: Some(rejection.response(Some(challenge))),
                        },
                        None => {
                            let mut inner = inner.take().expect("resolution completes once");
                            State::Calling {
                                future: inner.call(request),
                            }
                        }
                    }
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
