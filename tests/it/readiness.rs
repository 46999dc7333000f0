//! Readiness passes through the layers: `poll_ready` of `AgentAuth` and of `RequireCapability`
//! answers what the inner service answers — not ready, ready, or its error.

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use http::{Request, Response};
use tower::{Layer, Service};
use tower_agent_auth::store::{MemoryStore, MemoryUserDirectory};
use tower_agent_auth::token::TokenFormat;
use tower_agent_auth::{AgentAuthLayer, RequireCapabilityLayer};

/// An inner service whose readiness the test sets.
#[derive(Clone, Default)]
struct Gate {
    ready: Arc<Mutex<Option<Result<(), &'static str>>>>,
}

impl Gate {
    fn set(&self, ready: Option<Result<(), &'static str>>) {
        *self.ready.lock().unwrap() = ready;
    }
}

impl Service<Request<String>> for Gate {
    type Response = Response<String>;
    type Error = &'static str;
    type Future = std::future::Ready<Result<Response<String>, &'static str>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match *self.ready.lock().unwrap() {
            Some(ready) => Poll::Ready(ready),
            None => Poll::Pending,
        }
    }

    fn call(&mut self, _: Request<String>) -> Self::Future {
        std::future::ready(Ok(Response::new(String::new())))
    }
}

fn poll_ready<S: Service<Request<String>>>(service: &mut S) -> Poll<Result<(), S::Error>> {
    service.poll_ready(&mut Context::from_waker(Waker::noop()))
}

/// Pending, then ready, then failing: the wrapped service answers each in turn.
fn assert_readiness_follows_the_inner_service<S>(wrap: impl FnOnce(Gate) -> S)
where
    S: Service<Request<String>, Error = &'static str>,
{
    let gate = Gate::default();
    let mut service = wrap(gate.clone());
    assert_eq!(poll_ready(&mut service), Poll::Pending);
    gate.set(Some(Ok(())));
    assert_eq!(poll_ready(&mut service), Poll::Ready(Ok(())));
    gate.set(Some(Err("inner service down")));
    assert_eq!(
        poll_ready(&mut service),
        Poll::Ready(Err("inner service down"))
    );
    gate.set(None);
    assert_eq!(poll_ready(&mut service), Poll::Pending);
}

fn layer() -> AgentAuthLayer {
    let store = MemoryStore::new(
        TokenFormat::new("acme").unwrap(),
        MemoryUserDirectory::new(),
    );
    AgentAuthLayer::new(store)
}

#[test]
fn agent_auth_is_ready_exactly_when_its_inner_service_is() {
    assert_readiness_follows_the_inner_service(|gate| layer().layer(gate));
}

#[test]
fn require_capability_is_ready_exactly_when_its_inner_service_is() {
    assert_readiness_follows_the_inner_service(|gate| {
        RequireCapabilityLayer::new("posts:publish").layer(gate)
    });
}

#[test]
fn the_stack_is_ready_exactly_when_the_innermost_service_is() {
    assert_readiness_follows_the_inner_service(|gate| {
        layer().layer(RequireCapabilityLayer::new("posts:publish").layer(gate))
    });
}
