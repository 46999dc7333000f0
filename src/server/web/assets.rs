//! `GET /assets/app.css` and `GET /assets/app.js`: the pages' one stylesheet and one script,
//! compiled into the binary.

use ::axum::Router;
use ::axum::response::IntoResponse;
use ::axum::routing::get;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};

const STYLESHEET: &str = include_str!("../../../assets/app.css");
const SCRIPT: &str = include_str!("../../../assets/app.js");

/// An hour: long enough to spare requests, short enough that an upgrade shows soon.
const CACHED: &str = "public, max-age=3600";

pub(crate) fn routes() -> Router {
    Router::new()
        .route(
            "/assets/app.css",
            get(|| async {
                (
                    [
                        (CONTENT_TYPE, "text/css; charset=utf-8"),
                        (CACHE_CONTROL, CACHED),
                    ],
                    STYLESHEET,
                )
                    .into_response()
            }),
        )
        .route(
            "/assets/app.js",
            get(|| async {
                (
                    [
                        (CONTENT_TYPE, "text/javascript; charset=utf-8"),
                        (CACHE_CONTROL, CACHED),
                    ],
                    SCRIPT,
                )
                    .into_response()
            }),
        )
}
