//! Form parameters of the back-channel endpoints (`application/x-www-form-urlencoded`), read
//! strictly: a parameter sent twice is refused (RFC 6749 §3.1, §3.2).

use std::collections::BTreeMap;

use http::HeaderMap;
use http::header::CONTENT_TYPE;

use super::error::OAuthError;

/// The most bytes a form body may have.
pub(crate) const MAX_FORM: usize = 16 * 1024;

/// The parameters of a form request, each at most once. Empty values count as absent
/// (RFC 6749 §3.1).
#[derive(Clone, Default)]
pub struct Params(BTreeMap<String, String>);

impl std::fmt::Debug for Params {
    /// Names only: values may be codes, verifiers, secrets or tokens.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Params {
    /// Parses a form body. `invalid_request` for a repeated parameter.
    pub fn parse(body: &[u8]) -> Result<Self, OAuthError> {
        Self::parse_with_list(body, None).map(|(params, _)| params)
    }

    /// Parses a form body in which the parameter `list` may repeat: its values apart, in
    /// order (a form's checkboxes).
    pub(crate) fn parse_with_list(
        body: &[u8],
        list: Option<&str>,
    ) -> Result<(Self, Vec<String>), OAuthError> {
        let mut map = BTreeMap::new();
        let mut listed = Vec::new();
        for (name, value) in url::form_urlencoded::parse(body) {
            if Some(&*name) == list {
                listed.push(value.into_owned());
                continue;
            }
            if value.is_empty() {
                continue;
            }
            if map.insert(name.to_string(), value.into_owned()).is_some() {
                return Err(OAuthError::invalid_request(format!(
                    "the parameter {:?} is repeated",
                    crate::text::shortened(&name)
                )));
            }
        }
        Ok((Self(map), listed))
    }

    /// Parses the body of a request that must be a form: `invalid_request` for another content
    /// type or a body over [`MAX_FORM`].
    pub(crate) fn from_form(headers: &HeaderMap, body: &[u8]) -> Result<Self, OAuthError> {
        Self::check_form(headers, body)?;
        Self::parse(body)
    }

    /// `invalid_request` unless the body is a form of at most [`MAX_FORM`] bytes.
    pub(crate) fn check_form(headers: &HeaderMap, body: &[u8]) -> Result<(), OAuthError> {
        let is_form = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !is_form {
            return Err(OAuthError::invalid_request(
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        if body.len() > MAX_FORM {
            return Err(OAuthError::invalid_request("the body is too large"));
        }
        Ok(())
    }

    /// With `name` set to `value`.
    pub(crate) fn with(mut self, name: &str, value: &str) -> Self {
        self.0.insert(name.to_owned(), value.to_owned());
        self
    }

    /// Without `name`.
    pub(crate) fn without(mut self, name: &str) -> Self {
        self.0.remove(name);
        self
    }

    /// A parameter's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The parameters, to write them out again.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// A parameter that must be present: `invalid_request` if it is not.
    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("{name} is required")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_refused_and_empties_ignored() {
        let params = Params::parse(b"a=1&b=&c=x%20y+z").unwrap();
        assert_eq!(params.get("a"), Some("1"));
        assert_eq!(params.get("b"), None);
        assert_eq!(params.get("c"), Some("x y z"));
        let error = Params::parse(b"a=1&a=2").unwrap_err();
        assert_eq!(error.code(), super::super::error::ErrorCode::InvalidRequest);
        assert_eq!(format!("{params:?}"), r#"{"a", "c"}"#);
    }

    #[test]
    fn only_forms_are_read() {
        let mut headers = HeaderMap::new();
        assert!(Params::from_form(&headers, b"a=1").is_err());
        headers.insert(
            CONTENT_TYPE,
            "application/x-www-form-urlencoded; charset=UTF-8"
                .parse()
                .unwrap(),
        );
        assert!(Params::from_form(&headers, b"a=1").is_ok());
        assert!(Params::from_form(&headers, &vec![b'a'; MAX_FORM + 1]).is_err());
    }
}
