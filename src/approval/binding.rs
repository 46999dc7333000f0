//! What an approval is bound to: the request it admits, summed up.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::principal::TokenId;

/// What an approval is bound to, summed up: the SHA-256 of the token, capability, method, path,
/// canonical details and binding message. Two requests with the same binding ask for the same
/// thing, worded the same.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ApprovalBinding(String);

impl ApprovalBinding {
    /// The binding of a request: these fields, each length-prefixed so that no two different
    /// requests run together into one text.
    pub fn new(
        token: &TokenId,
        capability: &str,
        method: &str,
        path: &str,
        details: Option<&Value>,
        message: &str,
    ) -> Self {
        let details = details.map(canonical_json).unwrap_or_default();
        let mut hash = Sha256::new();
        for field in [
            token.as_str(),
            capability,
            method,
            path,
            details.as_str(),
            message,
        ] {
            hash.update((field.len() as u64).to_be_bytes());
            hash.update(field.as_bytes());
        }
        Self(hex::encode(hash.finalize()))
    }

    /// The binding as 64 lowercase hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A binding as a store kept it ([`ApprovalBinding::as_str`]).
    pub fn from_stored(hex: impl Into<String>) -> Self {
        Self(hex.into())
    }
}

/// `value` as canonical JSON: object keys sorted, no whitespace. The same details give the
/// same text whatever order the handler built them in.
pub fn canonical_json(value: &Value) -> String {
    fn write(value: &Value, out: &mut String) {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, key) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(key.clone()).to_string());
                    out.push(':');
                    write(&map[key], out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            scalar => out.push_str(&scalar.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}
