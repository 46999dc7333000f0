//! [`RequireCapabilityLayer`]: a route layer for tower stacks without axum that answers `403
//! insufficient_scope` unless the principal's ceiling allows one capability (the axum
//! equivalent is the `Require<C>` extractor).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::ceiling::{Capability, CapabilityError};
use crate::layer::rejection;

/// A tower [`Layer`] that lets a request through only if its principal's ceiling allows one
/// capability: `401` without a principal, `403 insufficient_scope` (with `scope=`) without the
/// capability. Place it inside [`AgentAuthLayer`](crate::AgentAuthLayer).
///
/// For axum handlers the `axum::Require` extractor (feature `axum`) does the same per handler.
#[derive(Debug, Clone)]
pub struct RequireCapabilityLayer {
    capability: Arc<str>,
}

impl RequireCapabilityLayer {
    /// Requires the capability `name` (e.g. `posts:publish`).
    ///
    /// # Panics
    /// If `name` is not a valid capability name (use [`RequireCapabilityLayer::try_new`] for
    /// names not known at compile time).
    pub fn new(name: &str) -> Self {
        Self::try_new(name).unwrap_or_else(|error| panic!("{error}"))
    }

    /// Requires the capability `name`, refusing patterns and invalid names.
    pub fn try_new(name: &str) -> Result<Self, CapabilityError> {
        match Capability::parse(name)? {
            Capability::Exact(_) => Ok(Self {
                capability: name.into(),
            }),
            _ => Err(CapabilityError::Invalid(name.to_owned())),
        }
    }
}

impl<S> Layer<S> for RequireCapabilityLayer {
    type Service = RequireCapability<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireCapability {
            inner,
            capability: self.capability.clone(),
        }
    }
}

/// The service built by [`RequireCapabilityLayer`].
#[derive(Debug, Clone)]
pub struct RequireCapability<S> {
    inner: S,
    capability: Arc<str>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequireCapability<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: From<&'static str>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = RequireCapabilityFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        match rejection::require(request.extensions(), &self.capability) {
            Ok(_) => RequireCapabilityFuture {
                kind: Kind::Inner {
                    future: self.inner.call(request),
                },
            },
            Err(rejection) => RequireCapabilityFuture {
                kind: Kind::Rejected {
                    response: Some(rejection.to_response()),
                },
            },
        }
    }
}

pin_project! {
    /// Response future of [`RequireCapability`].
    pub struct RequireCapabilityFuture<F, B> {
        #[pin]
        kind: Kind<F, B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, B> {
        Inner { #[pin] future: F },
        Rejected { response: Option<Response<B>> },
    }
}

impl<F, B, E> Future for RequireCapabilityFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { future } => future.poll(cx),
            KindProj::Rejected { response } => {
                Poll::Ready(Ok(response.take().expect("polled after completion")))
            }
        }
    }
}
