//! [`Mcp`]: the service [`McpLayer`](super::McpLayer) builds. `call` decides what it can from
//! the headers; the future reads the body, checks it against them and the ceiling, and drives
//! the inner service.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, Method, Request, Response};
use http_body::Body;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::ResponseBody;
use super::answer::{self, HEADER_MISMATCH, INVALID_REQUEST, PARSE_ERROR};
use super::config::Config;
use super::request::{self, BodyError, Message, TOOLS_LIST};
use super::session::Standing;
use crate::Principal;
use crate::ceiling::LayerSource;
use crate::layer::rejection;

const MCP_METHOD: HeaderName = HeaderName::from_static("mcp-method");
const MCP_NAME: HeaderName = HeaderName::from_static("mcp-name");
const MCP_SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");

/// The service built by [`McpLayer`](super::McpLayer). The inner service receives the body
/// the layer read, whole, and never the inbound `Authorization` header: a tool cannot pass the
/// caller's token on.
#[derive(Debug, Clone)]
pub struct Mcp<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> Mcp<S> {
    pub(crate) fn new(inner: S, config: Arc<Config>) -> Self {
        Self { inner, config }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

pin_project! {
    /// Response future of [`Mcp`].
    pub struct ResponseFuture<B, E> {
        #[pin]
        kind: Kind<B, E>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B, E> {
        Refused { response: Option<Response<ResponseBody<B>>> },
        Running { future: BoxFuture<Result<Response<ResponseBody<B>>, E>> },
    }
}

impl<B, E> ResponseFuture<B, E> {
    fn refused(response: Response<ResponseBody<B>>) -> Self {
        Self {
            kind: Kind::Refused {
                response: Some(response),
            },
        }
    }
}

impl<B, E> Future for ResponseFuture<B, E> {
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Refused { response } => {
                Poll::Ready(Ok(response.take().expect("polled after completion")))
            }
            KindProj::Running { future } => future.as_mut().poll(cx),
        }
    }
}

/// The `Mcp-Method` and `Mcp-Name` headers, decoded.
struct Headers {
    method: Option<String>,
    name: Option<String>,
}

impl Headers {
    fn read(headers: &HeaderMap) -> Result<Self, request::HeaderError> {
        let one = |name: &HeaderName| -> Result<Option<String>, request::HeaderError> {
            let mut values = headers.get_all(name).iter();
            let Some(value) = values.next() else {
                return Ok(None);
            };
            if values.next().is_some() {
                return Err(request::HeaderError("an Mcp- header given twice"));
            }
            request::header_text(value).map(Some)
        };
        let headers = Self {
            method: one(&MCP_METHOD)?,
            name: one(&MCP_NAME)?,
        };
        match &headers.method {
            None if headers.name.is_some() => {
                return Err(request::HeaderError("Mcp-Name without Mcp-Method"));
            }
            Some(method) if request::has_target(method) && headers.name.is_none() => {
                return Err(request::HeaderError(
                    "Mcp-Name is required with this Mcp-Method",
                ));
            }
            _ => {}
        }
        Ok(headers)
    }

    /// Whether the body says what the headers say (when they say anything).
    fn agree(&self, body: &request::Body) -> Result<(), request::HeaderError> {
        let Some(method) = &self.method else {
            return Ok(());
        };
        let request::Body::One(message) = body else {
            return Err(request::HeaderError("Mcp-Method on a batch"));
        };
        if message.method.as_deref() != Some(method.as_str()) {
            return Err(request::HeaderError("Mcp-Method does not match the body"));
        }
        if request::has_target(method) && self.name != message.target {
            return Err(request::HeaderError("Mcp-Name does not match the body"));
        }
        Ok(())
    }
}

/// `403 insufficient_scope` for `missing`, naming in `scope` what the token holds already and
/// what it lacks: a client that re-authorizes with that scope (as MCP clients do on step-up)
/// keeps what it had.
fn step_up<B>(
    extensions: &http::Extensions,
    principal: &Principal,
    missing: &[String],
) -> Response<ResponseBody<B>> {
    let mut scope: Vec<String> = principal
        .ceiling()
        .layers()
        .filter(|(source, _)| matches!(source, LayerSource::Token))
        .filter_map(|(_, policy)| policy.allowed())
        .flat_map(|allowed| allowed.to_strings())
        .collect();
    for capability in missing {
        if !scope.contains(capability) {
            scope.push(capability.clone());
        }
    }
    let mut response = rejection::insufficient_scope(extensions, &scope.join(" "));
    response.extensions_mut().insert(crate::outcome::NotActed);
    response
}

/// What the principal may not do of `messages`: `Err` with the message whose target cannot be
/// mapped.
fn missing<'m>(
    config: &Config,
    principal: &Principal,
    messages: &'m [Message],
) -> Result<Vec<String>, &'m Message> {
    let mut missing = Vec::new();
    for message in messages {
        let method = message.method.as_deref().unwrap_or("");
        let Some(capability) = config.capability_for(method, message.target.as_deref()) else {
            return Err(message);
        };
        if !principal.can(&capability) && !missing.iter().any(|m| *m == *capability) {
            missing.push(capability.into_owned());
        }
    }
    Ok(missing)
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Mcp<S>
where
    S: Service<Request<Full<Bytes>>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Body + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The service made ready by `poll_ready` serves this request; a clone stays for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = self.config.clone();
        let (mut parts, body) = request.into_parts();
        let principal = match rejection::principal(&parts.extensions) {
            Ok(principal) => principal.clone(),
            Err(rejection) => return ResponseFuture::refused(rejection.to_response()),
        };
        // Never pass the inbound token on: not to the server, not to a tool.
        parts.headers.remove(AUTHORIZATION);
        let session = parts.headers.get(MCP_SESSION_ID).cloned();
        if config.sessions.standing(session.as_ref(), &principal) == Standing::NotFound {
            // Another caller's session, or one this layer does not know: as the transport
            // answers a session that does not exist, so a client starts a new one.
            return ResponseFuture::refused(answer::error(
                http::StatusCode::NOT_FOUND,
                None,
                INVALID_REQUEST,
                "session not found",
                None,
            ));
        }
        let ending = parts.method == Method::DELETE;

        if parts.method != Method::POST {
            // GET opens the server's event stream, DELETE ends a session: the baseline.
            if !principal.can(&config.baseline) {
                let missing = [config.baseline.to_string()];
                return ResponseFuture::refused(step_up(&parts.extensions, &principal, &missing));
            }
            let request = Request::from_parts(parts, Full::default());
            let future = inner.call(request);
            return ResponseFuture {
                kind: Kind::Running {
                    future: Box::pin(async move {
                        let response = future.await?;
                        settle(&response, &config, &principal, session.as_ref(), ending);
                        Ok(response.map(ResponseBody::inner))
                    }),
                },
            };
        }

        let headers = match Headers::read(&parts.headers) {
            Ok(headers) => headers,
            Err(error) => {
                return ResponseFuture::refused(answer::bad_request(HEADER_MISMATCH, error.0));
            }
        };
        // The 2026-07-28 headers decide a refusal before the body is read; the body is still
        // read and must agree before anything reaches the server.
        if let Some(method) = &headers.method {
            match config.capability_for(method, headers.name.as_deref()) {
                None => return ResponseFuture::refused(answer::unmapped(None, "target's name")),
                Some(capability) if !principal.can(&capability) => {
                    let missing = [capability.into_owned()];
                    return ResponseFuture::refused(step_up(
                        &parts.extensions,
                        &principal,
                        &missing,
                    ));
                }
                Some(_) => {}
            }
        }
        let declared = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|length| length > config.max_body as u64) {
            return ResponseFuture::refused(answer::too_large(config.max_body));
        }

        ResponseFuture {
            kind: Kind::Running {
                future: Box::pin(async move {
                    let bytes = match Limited::new(body, config.max_body).collect().await {
                        Ok(collected) => collected.to_bytes(),
                        Err(error) if error.is::<LengthLimitError>() => {
                            return Ok(answer::too_large(config.max_body));
                        }
                        Err(_) => {
                            return Ok(answer::bad_request(
                                INVALID_REQUEST,
                                "the request body could not be read",
                            ));
                        }
                    };
                    let body = match request::parse(&bytes) {
                        Ok(body) => body,
                        Err(BodyError::NotJson) => {
                            return Ok(answer::bad_request(PARSE_ERROR, "the body is not JSON"));
                        }
                        Err(BodyError::Invalid(why)) => {
                            return Ok(answer::bad_request(
                                INVALID_REQUEST,
                                &format!("invalid request: {why}"),
                            ));
                        }
                    };
                    if let Err(error) = headers.agree(&body) {
                        return Ok(answer::bad_request(HEADER_MISMATCH, error.0));
                    }
                    // Headers that agree with the body were checked already: what they name
                    // is what the body asks.
                    let checked = if headers.method.is_some() {
                        body.messages().len()
                    } else {
                        0
                    };
                    let missing = match missing(&config, &principal, &body.messages()[checked..]) {
                        Ok(missing) => missing,
                        Err(unmapped) => {
                            return Ok(answer::unmapped(unmapped.id.as_deref(), "target's name"));
                        }
                    };
                    if !missing.is_empty() {
                        return Ok(step_up(&parts.extensions, &principal, &missing));
                    }
                    if let Some(response) =
                        supervise(&config, &principal, parts.uri.path(), &body).await
                    {
                        return Ok(response);
                    }
                    let listing = config.hide_uncallable_tools
                        && matches!(&body, request::Body::One(m) if m.method.as_deref() == Some(TOOLS_LIST));
                    let request = Request::from_parts(parts, Full::new(bytes));
                    let response = inner.call(request).await?;
                    settle(&response, &config, &principal, session.as_ref(), false);
                    if listing {
                        Ok(cut_list(response, &config, &principal).await)
                    } else {
                        Ok(response.map(ResponseBody::inner))
                    }
                }),
            },
        }
    }
}

/// What the server's answer says of sessions: one started (it names its id) is the caller's;
/// one the caller ended is forgotten.
fn settle<B>(
    response: &Response<B>,
    config: &Config,
    principal: &Principal,
    session: Option<&http::HeaderValue>,
    ending: bool,
) {
    if let Some(started) = response.headers().get(MCP_SESSION_ID) {
        config.sessions.started(started, principal);
    }
    if ending && response.status().is_success() {
        if let Some(session) = session {
            config.sessions.ended(session);
        }
    }
}

/// The largest `tools/list` answer the layer cuts: 4 MiB.
const MAX_LIST: usize = 4 << 20;

/// The `tools/list` answer with only the tools the principal may call.
async fn cut_list<B>(
    response: Response<B>,
    config: &Config,
    principal: &Principal,
) -> Response<ResponseBody<B>>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (mut parts, body) = response.into_parts();
    // The server ends a request's event stream once it has answered (Streamable HTTP); the
    // bound keeps a server that sends too much from holding memory.
    let Ok(collected) = Limited::new(body, MAX_LIST).collect().await else {
        return answer::error(
            http::StatusCode::BAD_GATEWAY,
            None,
            answer::INTERNAL_ERROR,
            "the server's tool list could not be read",
            None,
        );
    };
    let bytes = collected.to_bytes();
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let keep = |name: &str| config.may_call(principal, name);
    match super::list::cut(content_type, &bytes, &keep) {
        Some(cut) => {
            parts.headers.remove(CONTENT_LENGTH);
            Response::from_parts(parts, ResponseBody::full(cut))
        }
        None => Response::from_parts(parts, ResponseBody::full(bytes)),
    }
}

/// The approval a supervised principal's critical call waits for: `Some` with the answer while
/// it is not given.
async fn supervise<B>(
    config: &Config,
    principal: &Principal,
    path: &str,
    body: &request::Body,
) -> Option<Response<ResponseBody<B>>> {
    use super::approval;
    use super::request::TOOLS_CALL;

    let gate = config.gate.as_ref()?;
    if !principal.is_supervised() {
        return None;
    }
    let critical: Vec<(&Message, String)> = body
        .messages()
        .iter()
        .filter(|m| m.method.as_deref() == Some(TOOLS_CALL))
        .filter_map(|m| {
            let capability = config.capability_for(TOOLS_CALL, m.target.as_deref())?;
            gate.is_critical(&capability)
                .then(|| (m, capability.into_owned()))
        })
        .collect();
    let (message, capability) = match (body, critical.as_slice()) {
        (_, []) => return None,
        (request::Body::One(_), [(message, capability)]) => (*message, capability),
        _ => {
            return Some(answer::bad_request(
                INVALID_REQUEST,
                "a tool that needs a person's approval is called alone, not in a batch",
            ));
        }
    };
    let tool = message.target.as_deref().unwrap_or("");
    let action = match approval::action(capability, path, tool, message.arguments.as_deref()) {
        Ok(action) => action,
        Err(why) => {
            return Some(answer::error(
                http::StatusCode::OK,
                message.id.as_deref(),
                answer::INVALID_PARAMS,
                why,
                None,
            ));
        }
    };
    match gate.check(principal, &action).await {
        Ok(()) => None,
        Err(rejection) => Some(approval::refusal(message.id.as_deref(), &rejection)),
    }
}
