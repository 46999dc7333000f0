//! The MCP layer's own answers: JSON-RPC errors in the HTTP status the transport asks for.

use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Response, StatusCode};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::ResponseBody;
use crate::outcome::NotActed;

/// JSON-RPC: the body is not JSON.
pub(crate) const PARSE_ERROR: i64 = -32700;
/// JSON-RPC: the body is not a request this layer can read as the server would.
pub(crate) const INVALID_REQUEST: i64 = -32600;
/// JSON-RPC: the parameters cannot be used (an argument too large to be approved).
pub(crate) const INVALID_PARAMS: i64 = -32602;
/// JSON-RPC: the server failed.
pub(crate) const INTERNAL_ERROR: i64 = -32603;
/// MCP 2026-07-28: the `Mcp-*` headers are malformed or disagree with the body.
pub(crate) const HEADER_MISMATCH: i64 = -32020;

/// A JSON-RPC error answering the request `id` (`null` when it is not known), with `status`.
/// Every answer of the layer is a refusal made before the server acted: marked [`NotActed`].
pub(crate) fn error<B>(
    status: StatusCode,
    id: Option<&RawValue>,
    code: i64,
    message: &str,
    data: Option<Value>,
) -> Response<ResponseBody<B>> {
    let id: Value = id
        .and_then(|raw| serde_json::from_str(raw.get()).ok())
        .unwrap_or(Value::Null);
    let mut error = json!({"code": code, "message": message});
    if let Some(data) = data {
        error["data"] = data;
    }
    let body = json!({"jsonrpc": "2.0", "id": id, "error": error}).to_string();
    let mut response = Response::new(ResponseBody::full(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.extensions_mut().insert(NotActed);
    response
}

/// `400`: the request cannot be read.
pub(crate) fn bad_request<B>(code: i64, message: &str) -> Response<ResponseBody<B>> {
    error(StatusCode::BAD_REQUEST, None, code, message, None)
}

/// `413`: the body is larger than the layer reads.
pub(crate) fn too_large<B>(max: usize) -> Response<ResponseBody<B>> {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        None,
        INVALID_REQUEST,
        &format!("the request body is larger than {max} bytes"),
        None,
    )
}

/// `403` for a target whose name has no capability: nobody may call it.
pub(crate) fn unmapped<B>(id: Option<&RawValue>, what: &str) -> Response<ResponseBody<B>> {
    error(
        StatusCode::FORBIDDEN,
        id,
        INVALID_PARAMS,
        &format!("the {what} cannot be mapped to a capability; the server must declare one for it"),
        None,
    )
}
