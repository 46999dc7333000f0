//! What a handler asks a person's approval for: [`CriticalAction`].

use serde_json::Value;

/// What a handler is about to do: the capability it needs, the request it serves, and what
/// exactly a person would approve.
#[derive(Debug, Clone, PartialEq)]
pub struct CriticalAction {
    capability: String,
    method: String,
    path: String,
    details: Option<Value>,
    message: Option<String>,
}

impl CriticalAction {
    /// Using `capability` to answer `method path` (the path without its query string).
    pub fn new(
        capability: impl Into<String>,
        method: &http::Method,
        path: impl Into<String>,
    ) -> Self {
        Self {
            capability: capability.into(),
            method: method.as_str().to_owned(),
            path: path.into(),
            details: None,
            message: None,
        }
    }

    /// What exactly would be approved, as a JSON object (`{"type": "payment", "amount": 50,
    /// "currency": "EUR"}`); part of the binding, so a retry with other details asks anew.
    /// They are stored, shown to the person, and written to the audit trail in words: put no
    /// secret in them (a card number, a password), only what the person must see to decide.
    pub fn details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// What the person reads, in a few words ("Pay 50 EUR to ACME"; at most
    /// [`MAX_MESSAGE`](super::MAX_MESSAGE) bytes, and readable as it is:
    /// [`check_readable`](super::check_readable)). Default: the method,
    /// path and capability. Like the details, it is stored and audited: no secrets in it.
    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    /// The capability.
    pub fn capability(&self) -> &str {
        &self.capability
    }

    /// The method.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The details, if any.
    pub fn details_value(&self) -> Option<&Value> {
        self.details.as_ref()
    }

    /// The message the person reads.
    pub fn binding_message(&self) -> String {
        self.message
            .clone()
            .unwrap_or_else(|| format!("{} {} ({})", self.method, self.path, self.capability))
    }
}
