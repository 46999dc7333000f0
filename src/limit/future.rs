//! [`ResponseFuture`]: waits for the count of a request's limits, then calls the inner service
//! or answers the refusal. It decides nothing: [`check`](super::check) does.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::RateLimitRejection;
use super::check::Check;

pin_project! {
    /// Response future of [`RateLimit`](super::RateLimit).
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
        Checking {
            check: Check,
            pending: Option<(S, Request<ReqBody>)>,
        },
        Calling {
            #[pin]
            future: S::Future,
        },
        Refused {
            rejection: Option<RateLimitRejection>,
        },
    }
}

impl<S, ReqBody> ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>>,
{
    pub(crate) fn calling(future: S::Future) -> Self {
        Self {
            state: State::Calling { future },
        }
    }

    pub(crate) fn checking(check: Check, inner: S, request: Request<ReqBody>) -> Self {
        Self {
            state: State::Checking {
                check,
                pending: Some((inner, request)),
            },
        }
    }
}

impl<S, ReqBody, ResBody> Future for ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: From<String>,
{
    type Output = Result<Response<ResBody>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            let next = match state.as_mut().project() {
                StateProj::Checking { check, pending } => {
                    let verdict = ready!(check.as_mut().poll(cx));
                    let (mut inner, request) = pending.take().expect("a check completes once");
                    match verdict {
                        Ok(()) => State::Calling {
                            future: inner.call(request),
                        },
                        Err(rejection) => State::Refused {
                            rejection: Some(rejection),
                        },
                    }
                }
                StateProj::Calling { future } => return future.poll(cx),
                StateProj::Refused { rejection } => {
                    let rejection = rejection.take().expect("polled after completion");
                    return Poll::Ready(Ok(rejection.response()));
                }
            };
            state.set(next);
        }
    }
}
