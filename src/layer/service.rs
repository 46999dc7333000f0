//! [`AgentAuth`], the service [`AgentAuthLayer`](crate::AgentAuthLayer) builds: `call` hands the
//! request to [`decide`](super::decide) and returns the future that carries the decision out.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::decide::{self, Shared};
use super::future::ResponseFuture;

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

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The service that was driven to readiness is the one to call; keep a fresh clone.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let decision = decide::request(&self.shared, request);
        ResponseFuture::new(decision, inner, &self.shared)
    }
}
