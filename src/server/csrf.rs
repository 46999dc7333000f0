//! Refusing cross-site requests that change state with the session cookie (CSRF).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use ::axum::body::Body;
use ::axum::response::{IntoResponse, Response};
use http::header::{HOST, ORIGIN};
use http::{Method, Request, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

use super::error::ApiError;

use super::sessions::Sessions;

/// Which requests a [`SameOriginLayer`] checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Those that carry the session cookie.
    SessionCookie,
    /// Every one (the sign-in form: login CSRF comes without a cookie).
    Every,
}

/// How a refusal looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Json,
    Html,
}

/// Refuses, with 403, a state-changing request (any method but `GET`, `HEAD`, `OPTIONS`,
/// `TRACE`) that a browser made from another site. `SameSite=Lax` cookies do not cover
/// this: a sibling origin (`evil.example.com` next to `app.example.com`) is the same site, and
/// its form posts carry the cookie.
///
/// The rule, for a checked request:
///
/// * `Sec-Fetch-Site` present and neither `same-origin` nor `none` (typed by the user) →
///   refused (`same-site` and `cross-site` both are);
/// * `Origin` present and not the request's own origin (`http://` or `https://` and its `Host`
///   header; only the configured scheme with [`SameOriginLayer::https`]) → refused
///   (`Origin: null` is refused too);
/// * neither header → allowed. Every current browser sends at least one of them on such a
///   request, so a request with neither is not a browser's: curl, a script, the CLI. Those
///   have no ambient cookie to be abused — a non-browser client that sends the cookie is the
///   user themself.
///
/// [`SameOriginLayer::for_session_cookie`] checks only requests carrying the session cookie
/// ([`SESSION_COOKIE`](super::SESSION_COOKIE)): a request authenticated by an agent's bearer
/// token alone has no ambient credential and is let through whatever its origin.
/// [`SameOriginLayer::every_request`] checks all (the sign-in and sign-out routes).
/// The refusal is JSON `{"error": "forbidden", "message": …}` by default, or a small page
/// with [`SameOriginLayer::html`].
///
/// Behind a proxy, the `Host` header must reach the server as the browser sent it.
///
/// ```
/// use axum::{Router, body::Body, routing::post};
/// use http::{Request, StatusCode};
/// use tower::ServiceExt;
/// use tower_agent_auth::server::SameOriginLayer;
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let app = Router::new()
///     .route("/api/thing", post(|| async { "changed" }))
///     .layer(SameOriginLayer::for_session_cookie());
/// let cross_site = Request::post("/api/thing")
///     .header("host", "app.example.com")
///     .header("origin", "https://evil.example.com")
///     .header("cookie", "agent_auth_session=abc")
///     .body(Body::empty())
///     .unwrap();
/// let response = app.oneshot(cross_site).await.unwrap();
/// assert_eq!(response.status(), StatusCode::FORBIDDEN);
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct SameOriginLayer {
    scope: Scope,
    answer: Answer,
    https: Option<bool>,
}

impl SameOriginLayer {
    /// Checks the requests that carry the session cookie.
    pub fn for_session_cookie() -> Self {
        Self {
            scope: Scope::SessionCookie,
            answer: Answer::Json,
            https: None,
        }
    }

    /// Checks every request.
    pub fn every_request() -> Self {
        Self {
            scope: Scope::Every,
            ..Self::for_session_cookie()
        }
    }

    /// Refuses with a small HTML page (a link back to `/login`) instead of JSON.
    pub fn html(mut self) -> Self {
        self.answer = Answer::Html;
        self
    }

    /// The server's own scheme: `true` for `https`, `false` for `http`. Unset (the default),
    /// an `Origin` of either scheme with the right host passes.
    pub fn https(mut self, https: bool) -> Self {
        self.https = Some(https);
        self
    }

    /// Whether `request` is refused.
    pub fn refuses<B>(&self, request: &Request<B>) -> bool {
        let headers = request.headers();
        if matches!(
            *request.method(),
            Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
        ) {
            return false;
        }
        if self.scope == Scope::SessionCookie && Sessions::cookie(headers).is_none() {
            return false;
        }
        let fetch_site_bad = headers
            .get("sec-fetch-site")
            .is_some_and(|site| !matches!(site.as_bytes(), b"same-origin" | b"none"));
        let origin_bad = headers
            .get(ORIGIN)
            .is_some_and(|origin| !self.is_own_origin(origin.as_bytes(), request));
        fetch_site_bad || origin_bad
    }

    /// Whether `origin` is the request's own: its scheme, and its `Host` header (HTTP/1.1) or
    /// URI authority (HTTP/2's `:authority`).
    fn is_own_origin<B>(&self, origin: &[u8], request: &Request<B>) -> bool {
        let host = match request.headers().get(HOST) {
            Some(host) => host.as_bytes(),
            None => match request.uri().authority() {
                Some(authority) => authority.as_str().as_bytes(),
                None => return false,
            },
        };
        let schemes: &[&[u8]] = match self.https {
            Some(true) => &[b"https://"],
            Some(false) => &[b"http://"],
            None => &[b"http://", b"https://"],
        };
        schemes.iter().any(|scheme| {
            origin
                .strip_prefix(*scheme)
                .is_some_and(|rest| rest.eq_ignore_ascii_case(host))
        })
    }

    fn refusal(&self) -> Response {
        const MESSAGE: &str =
            "cross-site request refused: it must come from this server's own pages";
        match self.answer {
            Answer::Json => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", MESSAGE).into_response()
            }
            Answer::Html => super::web::message::page(StatusCode::FORBIDDEN, "Refused", MESSAGE),
        }
    }
}

impl<S> Layer<S> for SameOriginLayer {
    type Service = SameOrigin<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SameOrigin {
            inner,
            layer: *self,
        }
    }
}

/// The service of a [`SameOriginLayer`].
#[derive(Debug, Clone)]
pub struct SameOrigin<S> {
    inner: S,
    layer: SameOriginLayer,
}

impl<S, B> Service<Request<B>> for SameOrigin<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = SameOriginFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if self.layer.refuses(&request) {
            tracing::info!(
                method = %request.method(),
                path = request.uri().path(),
                "cross-site request refused"
            );
            SameOriginFuture::refused(self.layer.refusal())
        } else {
            SameOriginFuture::inner(self.inner.call(request))
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of a [`SameOrigin`] service.
    pub struct SameOriginFuture<F, E> {
        #[pin]
        state: State<F, E>,
    }
}

pin_project_lite::pin_project! {
    #[project = Projected]
    enum State<F, E> {
        Inner { #[pin] future: F },
        Refused { response: Option<Response<Body>>, error: std::marker::PhantomData<fn() -> E> },
    }
}

impl<F, E> SameOriginFuture<F, E> {
    fn inner(future: F) -> Self {
        Self {
            state: State::Inner { future },
        }
    }

    fn refused(response: Response<Body>) -> Self {
        Self {
            state: State::Refused {
                response: Some(response),
                error: std::marker::PhantomData,
            },
        }
    }
}

impl<F, E> Future for SameOriginFuture<F, E>
where
    F: Future<Output = Result<Response<Body>, E>>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            Projected::Inner { future } => future.poll(cx),
            Projected::Refused { response, .. } => {
                Poll::Ready(Ok(response.take().unwrap_or_default()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use tower::{ServiceBuilder, ServiceExt};

    async fn call(layer: SameOriginLayer, request: Request<Body>) -> (StatusCode, String) {
        let service = ServiceBuilder::new()
            .layer(layer)
            .service_fn(|_: Request<Body>| async {
                Ok::<_, std::convert::Infallible>(Response::new(Body::from("inner")))
            });
        let response = service.oneshot(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    fn request(method: Method, headers: &[(&str, &str)]) -> Request<Body> {
        let mut builder = Request::builder()
            .method(method)
            .uri("/api/agents/a/disable")
            .header("host", "app.example.com:8080");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(Body::empty()).unwrap()
    }

    const COOKIE: (&str, &str) = ("cookie", "theme=dark; agent_auth_session=abc");

    async fn status(
        layer: SameOriginLayer,
        method: Method,
        headers: &[(&str, &str)],
    ) -> StatusCode {
        call(layer, request(method, headers)).await.0
    }

    #[tokio::test]
    async fn a_cross_site_post_with_the_cookie_is_refused_as_json() {
        let (code, body) = call(
            SameOriginLayer::for_session_cookie(),
            request(
                Method::POST,
                &[
                    COOKIE,
                    ("origin", "https://evil.example.com"),
                    ("sec-fetch-site", "same-site"),
                ],
            ),
        )
        .await;
        assert_eq!(code, StatusCode::FORBIDDEN);
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["error"], "forbidden");
        assert!(json["message"].as_str().unwrap().contains("cross-site"));
    }

    #[tokio::test]
    async fn sec_fetch_site_alone_decides_when_there_is_no_origin() {
        let layer = SameOriginLayer::for_session_cookie();
        for (site, expected) in [
            ("same-origin", StatusCode::OK),
            ("none", StatusCode::OK),
            ("same-site", StatusCode::FORBIDDEN),
            ("cross-site", StatusCode::FORBIDDEN),
            ("nonsense", StatusCode::FORBIDDEN),
        ] {
            let got = status(layer, Method::POST, &[COOKIE, ("sec-fetch-site", site)]).await;
            assert_eq!(got, expected, "Sec-Fetch-Site: {site}");
        }
    }

    #[tokio::test]
    async fn origin_alone_must_be_the_host_itself() {
        let layer = SameOriginLayer::for_session_cookie();
        for (origin, expected) in [
            ("http://app.example.com:8080", StatusCode::OK),
            ("https://APP.example.com:8080", StatusCode::OK),
            ("http://app.example.com", StatusCode::FORBIDDEN),
            ("http://evil.example.com:8080", StatusCode::FORBIDDEN),
            (
                "http://app.example.com:8080.evil.com",
                StatusCode::FORBIDDEN,
            ),
            ("ftp://app.example.com:8080", StatusCode::FORBIDDEN),
            ("null", StatusCode::FORBIDDEN),
        ] {
            let got = status(layer, Method::DELETE, &[COOKIE, ("origin", origin)]).await;
            assert_eq!(got, expected, "Origin: {origin}");
        }
    }

    #[tokio::test]
    async fn a_configured_scheme_must_match() {
        let https = SameOriginLayer::for_session_cookie().https(true);
        let origin = |o| [COOKIE, ("origin", o)];
        assert_eq!(
            status(https, Method::POST, &origin("https://app.example.com:8080")).await,
            StatusCode::OK
        );
        assert_eq!(
            status(https, Method::POST, &origin("http://app.example.com:8080")).await,
            StatusCode::FORBIDDEN
        );
    }

    #[tokio::test]
    async fn both_headers_must_agree() {
        let layer = SameOriginLayer::for_session_cookie();
        let got = status(
            layer,
            Method::PUT,
            &[
                COOKIE,
                ("origin", "http://app.example.com:8080"),
                ("sec-fetch-site", "cross-site"),
            ],
        )
        .await;
        assert_eq!(got, StatusCode::FORBIDDEN);
        let got = status(
            layer,
            Method::PATCH,
            &[
                COOKIE,
                ("origin", "http://app.example.com:8080"),
                ("sec-fetch-site", "same-origin"),
            ],
        )
        .await;
        assert_eq!(got, StatusCode::OK);
    }

    #[tokio::test]
    async fn neither_header_is_a_non_browser_client_and_passes() {
        let got = status(SameOriginLayer::every_request(), Method::POST, &[COOKIE]).await;
        assert_eq!(got, StatusCode::OK);
    }

    #[tokio::test]
    async fn without_a_host_header_the_uri_authority_is_the_own_origin() {
        // HTTP/2 carries the host as `:authority`, in the URI.
        let request = |origin: &str| {
            Request::post("https://app.example.com/x")
                .header("cookie", "agent_auth_session=abc")
                .header("origin", origin)
                .body(Body::empty())
                .unwrap()
        };
        let layer = SameOriginLayer::for_session_cookie();
        assert_eq!(
            call(layer, request("https://app.example.com")).await.0,
            StatusCode::OK
        );
        assert_eq!(
            call(layer, request("https://evil.example.com")).await.0,
            StatusCode::FORBIDDEN
        );
    }

    #[tokio::test]
    async fn a_missing_host_never_matches_an_origin() {
        let request = Request::post("/x")
            .header("cookie", "agent_auth_session=abc")
            .header("origin", "http://app.example.com")
            .body(Body::empty())
            .unwrap();
        let (code, _) = call(SameOriginLayer::for_session_cookie(), request).await;
        assert_eq!(code, StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn safe_methods_pass_whatever_their_origin() {
        let cross = [
            COOKIE,
            ("origin", "https://evil.example"),
            ("sec-fetch-site", "cross-site"),
        ];
        for method in [Method::GET, Method::HEAD, Method::OPTIONS] {
            let got = status(SameOriginLayer::every_request(), method.clone(), &cross).await;
            assert_eq!(got, StatusCode::OK, "{method}");
        }
    }

    #[tokio::test]
    async fn without_the_session_cookie_only_every_request_checks() {
        // A bearer-token request from a browser app on another origin: no ambient credential.
        let headers = [
            ("authorization", "Bearer acme_writer_0000"),
            ("cookie", "theme=dark"),
            ("origin", "https://other.example"),
            ("sec-fetch-site", "cross-site"),
        ];
        assert_eq!(
            status(
                SameOriginLayer::for_session_cookie(),
                Method::POST,
                &headers
            )
            .await,
            StatusCode::OK
        );
        // Login CSRF comes without a cookie: the sign-in routes check every request.
        assert_eq!(
            status(SameOriginLayer::every_request(), Method::POST, &headers).await,
            StatusCode::FORBIDDEN
        );
    }

    #[tokio::test]
    async fn the_html_refusal_is_a_page_with_a_way_back() {
        let (code, body) = call(
            SameOriginLayer::every_request().html(),
            request(Method::POST, &[("sec-fetch-site", "cross-site")]),
        )
        .await;
        assert_eq!(code, StatusCode::FORBIDDEN);
        assert!(
            body.contains("<!doctype html>") && body.contains(r#"<a href="/">"#),
            "{body}"
        );
    }
}
