//! Reading what an MCP request asks: the `Mcp-Method` and `Mcp-Name` headers of the 2026-07-28
//! transport, and the JSON-RPC body every version sends.
//!
//! The body is read for only what authorization needs (`method`, `id`, and of `params` the
//! `name`, `uri` and `arguments`); everything else is skipped without being built. A body the
//! server behind could read differently is refused here: a key given twice, `params` that is
//! not an object on a method that names its target, a name that is not a string.

use std::borrow::Cow;

use base64::Engine;
use http::HeaderValue;
use serde::Deserialize;
use serde_json::value::RawValue;

/// The methods whose target the `Mcp-Name` header and the capability name.
pub(crate) const TOOLS_CALL: &str = "tools/call";
pub(crate) const PROMPTS_GET: &str = "prompts/get";
pub(crate) const RESOURCES_READ: &str = "resources/read";
pub(crate) const TOOLS_LIST: &str = "tools/list";

/// The most messages one JSON-RPC batch may carry.
pub(crate) const MAX_BATCH: usize = 64;
/// The deepest nesting of arrays and objects a body may have: below the 128 levels a
/// serde-based server follows, so that what passes here is read there too.
pub(crate) const MAX_DEPTH: usize = 64;

/// One JSON-RPC message of the body.
#[derive(Debug)]
pub(crate) struct Message {
    /// `None` for a response or an error the client sends back to the server.
    pub(crate) method: Option<String>,
    /// `params.name` of `tools/call` and `prompts/get`, `params.uri` of `resources/read`.
    pub(crate) target: Option<String>,
    /// The request id, as sent (`None` for a notification).
    pub(crate) id: Option<Box<RawValue>>,
    /// `params.arguments` of `tools/call`, as sent.
    pub(crate) arguments: Option<Box<RawValue>>,
}

/// A body: one message or a batch.
#[derive(Debug)]
pub(crate) enum Body {
    One(Message),
    Batch(Vec<Message>),
}

impl Body {
    pub(crate) fn messages(&self) -> &[Message] {
        match self {
            Self::One(message) => std::slice::from_ref(message),
            Self::Batch(messages) => messages,
        }
    }
}

/// Why a body was refused: each is a JSON-RPC error, answered with `400`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// Not JSON (or nested deeper than the parser follows): `-32700`.
    NotJson,
    /// JSON, but not a message this layer can read as the server would: `-32600`.
    Invalid(&'static str),
}

/// Whether `method` names a target in `params` (and so in `Mcp-Name`).
pub(crate) fn has_target(method: &str) -> bool {
    matches!(method, TOOLS_CALL | PROMPTS_GET | RESOURCES_READ)
}

#[derive(Deserialize)]
struct WireMessage<'a> {
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(default)]
    id: Option<Box<RawValue>>,
    #[serde(default)]
    params: Option<WireParams>,
}

/// `params`, read in the same pass as the message, and only as an object: MCP's params are
/// objects, and a struct read from an array would take its first element for the name.
#[derive(Default)]
struct WireParams {
    name: Option<String>,
    uri: Option<String>,
    arguments: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum ParamsField {
    Name,
    Uri,
    Arguments,
    #[serde(other)]
    Other,
}

impl<'de> Deserialize<'de> for WireParams {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = WireParams;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("params as an object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<WireParams, A::Error> {
                use serde::de::Error;
                let mut params = WireParams::default();
                let (mut name, mut uri, mut arguments) = (false, false, false);
                while let Some(field) = map.next_key::<ParamsField>()? {
                    // A key given twice is refused: a server may keep the first or the last.
                    let seen = match field {
                        ParamsField::Name => &mut name,
                        ParamsField::Uri => &mut uri,
                        ParamsField::Arguments => &mut arguments,
                        ParamsField::Other => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                            continue;
                        }
                    };
                    if std::mem::replace(seen, true) {
                        return Err(A::Error::custom("a key given twice"));
                    }
                    match field {
                        ParamsField::Name => params.name = map.next_value()?,
                        ParamsField::Uri => params.uri = map.next_value()?,
                        _ => params.arguments = map.next_value()?,
                    }
                }
                Ok(params)
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

/// Whether the arrays and objects of `bytes` nest at most `max` deep (strings skipped).
/// One pass over the bytes, no recursion: a body of a million `[` costs a loop, not a stack.
fn nests_within(bytes: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'"' => {
                // To the closing quote, over escaped characters: a tight loop over the text.
                at += 1;
                loop {
                    let Some(offset) = bytes[at..].iter().position(|&b| b == b'"' || b == b'\\')
                    else {
                        // A string never closed: no JSON, which the parser says.
                        return true;
                    };
                    at += offset;
                    if bytes[at] == b'"' {
                        break;
                    }
                    at += 2;
                    if at >= bytes.len() {
                        return true;
                    }
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        at += 1;
    }
    true
}

/// Reads a JSON-RPC body: one pass over a message, whatever its size.
pub(crate) fn parse(bytes: &[u8]) -> Result<Body, BodyError> {
    if !nests_within(bytes, MAX_DEPTH) {
        return Err(BodyError::Invalid("a body nested deeper than 64 levels"));
    }
    let batch = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    if !batch {
        return message(bytes).map(Body::One);
    }
    let entries: Vec<&RawValue> = serde_json::from_slice(bytes).map_err(|_| BodyError::NotJson)?;
    if entries.is_empty() {
        return Err(BodyError::Invalid("an empty batch"));
    }
    if entries.len() > MAX_BATCH {
        return Err(BodyError::Invalid("a batch of more than 64 messages"));
    }
    entries
        .into_iter()
        .map(|entry| message(entry.get().as_bytes()))
        .collect::<Result<_, _>>()
        .map(Body::Batch)
}

fn message(bytes: &[u8]) -> Result<Message, BodyError> {
    let wire: WireMessage<'_> = match serde_json::from_slice(bytes) {
        Ok(wire) => wire,
        // Told apart only when refused: JSON that is no message we read, or no JSON.
        Err(_) => {
            return Err(
                match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                    Ok(_) => BodyError::Invalid(
                        "a message whose method, id or params cannot be read (params must be an object, each key given once)",
                    ),
                    Err(_) => BodyError::NotJson,
                },
            );
        }
    };
    let method = wire.method.map(Cow::into_owned);
    let (mut target, mut arguments) = (None, None);
    if let Some(method) = method.as_deref().filter(|m| has_target(m)) {
        let params = wire
            .params
            .ok_or(BodyError::Invalid("a call without params"))?;
        target = match method {
            RESOURCES_READ => params.uri,
            _ => params.name,
        };
        if target.is_none() {
            return Err(BodyError::Invalid("a call that names no target"));
        }
        arguments = params.arguments;
    }
    Ok(Message {
        method,
        target,
        id: wire.id,
        arguments,
    })
}

/// Why a header was refused: answered `400` with the JSON-RPC error `-32020`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeaderError(pub(crate) &'static str);

/// A header value as the transport spells it: the text itself, or `=?base64?…?=` around the
/// Base64 of UTF-8 text (for names that are not printable ASCII).
pub(crate) fn header_text(value: &HeaderValue) -> Result<String, HeaderError> {
    let text = value
        .to_str()
        .map_err(|_| HeaderError("a header that is not printable ASCII (use =?base64?…?=)"))?;
    match text
        .strip_prefix("=?base64?")
        .and_then(|rest| rest.strip_suffix("?="))
    {
        Some(encoded) => base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or(HeaderError(
                "a =?base64?…?= header that is not Base64 of UTF-8",
            )),
        None => Ok(text.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(body: &str) -> Message {
        match parse(body.as_bytes()).unwrap() {
            Body::One(message) => message,
            Body::Batch(_) => panic!("a batch"),
        }
    }

    #[test]
    fn a_tool_call_names_its_tool_and_keeps_its_arguments() {
        let m = one(
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"pay","arguments":{"amount":5},"_meta":{"x":[1,2]}}}"#,
        );
        assert_eq!(m.method.as_deref(), Some("tools/call"));
        assert_eq!(m.target.as_deref(), Some("pay"));
        assert_eq!(m.id.unwrap().get(), "7");
        assert_eq!(m.arguments.unwrap().get(), r#"{"amount":5}"#);
    }

    #[test]
    fn a_resource_read_names_its_uri() {
        let m = one(
            r#"{"jsonrpc":"2.0","id":"a","method":"resources/read","params":{"uri":"file:///x","name":"ignored"}}"#,
        );
        assert_eq!(m.target.as_deref(), Some("file:///x"));
    }

    #[test]
    fn escapes_in_names_are_read_as_the_server_reads_them() {
        let m = one(r#"{"id":1,"method":"tools\/call","params":{"name":"p\u0061y"}}"#);
        assert_eq!(m.method.as_deref(), Some("tools/call"));
        assert_eq!(m.target.as_deref(), Some("pay"));
    }

    #[test]
    fn other_methods_name_no_target() {
        let m = one(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"cursor":"x"}}"#);
        assert_eq!(m.method.as_deref(), Some("tools/list"));
        assert!(m.target.is_none());
        let response = one(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#);
        assert!(response.method.is_none());
    }

    #[test]
    fn a_key_given_twice_is_refused() {
        for body in [
            r#"{"id":1,"method":"tools/list","method":"tools/call","params":{"name":"a"}}"#,
            r#"{"id":1,"method":"tools/call","params":{"name":"a","name":"b"}}"#,
        ] {
            assert!(
                matches!(parse(body.as_bytes()), Err(BodyError::Invalid(_))),
                "{body}"
            );
        }
    }

    #[test]
    fn a_call_without_a_readable_target_is_refused() {
        for body in [
            r#"{"id":1,"method":"tools/call"}"#,
            r#"{"id":1,"method":"tools/call","params":["pay"]}"#,
            r#"{"id":1,"method":"tools/call","params":{"name":7}}"#,
            r#"{"id":1,"method":"tools/call","params":{}}"#,
            r#"{"id":1,"method":7}"#,
            r#"{"id":1,"method":"tools/list","params":[1]}"#,
            r#"{"id":1,"method":"tools/call","params":{"name":null}}"#,
            r#""tools/call""#,
            r#"[]"#,
            r#"[1]"#,
        ] {
            assert!(
                matches!(parse(body.as_bytes()), Err(BodyError::Invalid(_))),
                "{body}"
            );
        }
    }

    #[test]
    fn what_is_not_json_is_refused_as_such() {
        for body in ["", "{", "tools/call", "{\"id\":1}x", "\u{feff}{}"] {
            assert_eq!(
                parse(body.as_bytes()).unwrap_err(),
                BodyError::NotJson,
                "{body}"
            );
        }
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing_the_stack() {
        let nested = |depth: usize| {
            format!(
                r#"{{"id":1,"method":"tools/call","params":{{"name":"a","arguments":{}{}}}}}"#,
                "[".repeat(depth),
                "]".repeat(depth)
            )
        };
        // The message and its params are two levels.
        assert!(parse(nested(MAX_DEPTH - 2).as_bytes()).is_ok());
        for depth in [MAX_DEPTH - 1, 100_000] {
            assert!(
                matches!(parse(nested(depth).as_bytes()), Err(BodyError::Invalid(_))),
                "{depth}"
            );
        }
        // Brackets inside strings are text, escaped quotes included.
        let text = format!(
            r#"{{"id":1,"method":"ping","params":{{"t":"\"{}"}}}}"#,
            "[".repeat(500)
        );
        assert!(parse(text.as_bytes()).is_ok());
    }

    #[test]
    fn a_batch_is_read_entry_by_entry_and_bounded() {
        let Body::Batch(messages) = parse(
            br#"[{"id":1,"method":"tools/call","params":{"name":"a"}},{"method":"notifications/initialized"}]"#,
        )
        .unwrap() else {
            panic!("not a batch")
        };
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].target.as_deref(), Some("a"));
        let long = format!("[{}]", vec![r#"{"method":"ping"}"#; 65].join(","));
        assert!(matches!(parse(long.as_bytes()), Err(BodyError::Invalid(_))));
    }

    #[test]
    fn headers_are_read_plain_or_base64() {
        let plain = HeaderValue::from_static("getWeather");
        assert_eq!(header_text(&plain).unwrap(), "getWeather");
        // "café" in UTF-8, Base64.
        let encoded = HeaderValue::from_static("=?base64?Y2Fmw6k=?=");
        assert_eq!(header_text(&encoded).unwrap(), "café");
        for bad in ["=?base64?***?=", "=?base64?/w==?="] {
            assert!(
                header_text(&HeaderValue::from_static(bad)).is_err(),
                "{bad}"
            );
        }
        let opaque = HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap();
        assert!(header_text(&opaque).is_err());
        // Without the exact wrapper, the text is literal.
        let literal = HeaderValue::from_static("=?base64?abc");
        assert_eq!(header_text(&literal).unwrap(), "=?base64?abc");
    }
}
