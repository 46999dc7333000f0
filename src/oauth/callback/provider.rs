//! [`Provider`]: another service whose authorize flow this application is a client of — its
//! endpoints, this application's client id and secret there, the scopes to ask for, and the
//! redirect URI registered with it (where the receiver listens) — given in code or read from a
//! JSON file ([`Provider::from_json`]).

use serde::Deserialize;
use url::Url;
use zeroize::Zeroizing;

/// How the client secret reaches the provider's token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SecretIn {
    /// HTTP Basic (`client_secret_basic`, RFC 6749 §2.3.1): the default.
    #[default]
    Basic,
    /// The form body (`client_secret_post`).
    Body,
}

/// A provider: see the [module docs](super). `Debug` shows no secret.
#[derive(Clone)]
pub struct Provider {
    pub(crate) name: String,
    pub(crate) authorize_url: Url,
    pub(crate) token_url: Url,
    pub(crate) client_id: String,
    pub(crate) client_secret: Option<Zeroizing<String>>,
    pub(crate) secret_in: SecretIn,
    pub(crate) scopes: Vec<String>,
    pub(crate) redirect_uri: Url,
    pub(crate) issuer: Option<String>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.name)
            .field("authorize_url", &self.authorize_url.as_str())
            .field("token_url", &self.token_url.as_str())
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "…"))
            .field("scopes", &self.scopes)
            .field("redirect_uri", &self.redirect_uri.as_str())
            .finish_non_exhaustive()
    }
}

/// A provider that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("provider {provider:?}: {message}")]
pub struct ProviderError {
    provider: String,
    message: String,
}

impl ProviderError {
    pub(crate) fn new(provider: &str, message: impl Into<String>) -> Self {
        Self {
            provider: provider.chars().take(60).collect(),
            message: message.into(),
        }
    }
}

/// Whether `url` is a loopback address (where plain `http` is allowed, for local providers and
/// tests).
fn loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// An endpoint: an absolute `https` URL (or `http` on loopback), no credentials in it, no
/// fragment.
fn endpoint(provider: &str, what: &str, text: &str) -> Result<Url, ProviderError> {
    let url = Url::parse(text)
        .map_err(|error| ProviderError::new(provider, format!("{what}: {error}")))?;
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && loopback(&url));
    if !scheme_ok {
        return Err(ProviderError::new(
            provider,
            format!("{what}: https (plain http only on a loopback address)"),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err(ProviderError::new(
            provider,
            format!("{what}: no user, password or fragment"),
        ));
    }
    Ok(url)
}

impl Provider {
    /// A provider named `name` (1 to 40 of `a-z`, `0-9`, `-`: it is in paths and records),
    /// its authorization and token endpoints, this application's `client_id` there, and the
    /// redirect URI registered with it — the receiver answers the callback at its path. Every
    /// URL is `https`, or `http` on a loopback address.
    pub fn new(
        name: &str,
        authorize_url: &str,
        token_url: &str,
        client_id: &str,
        redirect_uri: &str,
    ) -> Result<Self, ProviderError> {
        let valid = (1..=40).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid {
            return Err(ProviderError::new(
                name,
                "a name is 1 to 40 of a-z, 0-9 and -",
            ));
        }
        if client_id.is_empty() || client_id.chars().any(char::is_control) {
            return Err(ProviderError::new(
                name,
                "client_id: not empty, no control characters",
            ));
        }
        let redirect_uri = endpoint(name, "redirect_uri", redirect_uri)?;
        if redirect_uri.query().is_some() {
            return Err(ProviderError::new(name, "redirect_uri: no query"));
        }
        Ok(Self {
            name: name.to_owned(),
            authorize_url: endpoint(name, "authorize_url", authorize_url)?,
            token_url: endpoint(name, "token_url", token_url)?,
            client_id: client_id.to_owned(),
            client_secret: None,
            secret_in: SecretIn::Basic,
            scopes: Vec::new(),
            redirect_uri,
            issuer: None,
        })
    }

    /// This application's client secret at the provider (a confidential client); sent to the
    /// token endpoint only, never in a URL.
    pub fn client_secret(mut self, secret: impl Into<String>) -> Self {
        self.client_secret = Some(Zeroizing::new(secret.into()));
        self
    }

    /// How the secret is sent ([`SecretIn::Basic`] by default).
    pub fn secret_in(mut self, how: SecretIn) -> Self {
        self.secret_in = how;
        self
    }

    /// The scopes to ask for.
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// The provider's issuer (RFC 9207): a callback whose `iss` differs, or lacks one, is
    /// refused — against a mix-up between providers.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The scopes it asks for.
    pub fn scopes_asked(&self) -> &[String] {
        &self.scopes
    }

    /// The redirect URI registered with it.
    pub fn redirect_uri(&self) -> &str {
        self.redirect_uri.as_str()
    }

    /// Providers from a JSON array, each an object of `name`, `authorize_url`, `token_url`,
    /// `client_id`, `redirect_uri`, and optionally `client_secret` (or `client_secret_env`, the
    /// environment variable holding it — better than a secret in a file), `scopes` (an
    /// array), `issuer` and `token_endpoint_auth_method` (`client_secret_basic`, the default,
    /// or `client_secret_post`). Unknown fields are refused.
    ///
    /// ```
    /// use tower_agent_auth::oauth::callback::Provider;
    ///
    /// let providers = Provider::from_json(r#"[{
    ///     "name": "github",
    ///     "authorize_url": "https://github.com/login/oauth/authorize",
    ///     "token_url": "https://github.com/login/oauth/access_token",
    ///     "client_id": "Iv1.0123456789",
    ///     "client_secret_env": "DOC_EXAMPLE_UNSET_SECRET",
    ///     "scopes": ["repo"],
    ///     "redirect_uri": "https://app.example.com/connect/github/callback"
    /// }]"#);
    /// // Without the variable set, the secret is missing: a clear error, naming it.
    /// assert!(providers.unwrap_err().to_string().contains("DOC_EXAMPLE_UNSET_SECRET"));
    /// ```
    pub fn from_json(text: &str) -> Result<Vec<Self>, ProviderError> {
        let read: Vec<ProviderFile> = serde_json::from_str(text)
            .map_err(|error| ProviderError::new("(file)", error.to_string()))?;
        read.into_iter().map(ProviderFile::provider).collect()
    }
}

/// One provider as a JSON file writes it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderFile {
    name: String,
    authorize_url: String,
    token_url: String,
    client_id: String,
    client_secret: Option<String>,
    client_secret_env: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
    redirect_uri: String,
    issuer: Option<String>,
    token_endpoint_auth_method: Option<String>,
}

impl ProviderFile {
    fn provider(self) -> Result<Provider, ProviderError> {
        let name = self.name;
        let mut provider = Provider::new(
            &name,
            &self.authorize_url,
            &self.token_url,
            &self.client_id,
            &self.redirect_uri,
        )?
        .scopes(self.scopes);
        let secret = match (self.client_secret, self.client_secret_env) {
            (Some(_), Some(_)) => {
                return Err(ProviderError::new(
                    &name,
                    "client_secret or client_secret_env, not both",
                ));
            }
            (Some(secret), None) => Some(secret),
            (None, Some(variable)) => Some(std::env::var(&variable).map_err(|_| {
                ProviderError::new(&name, format!("client_secret_env: {variable} is not set"))
            })?),
            (None, None) => None,
        };
        if let Some(secret) = secret {
            provider = provider.client_secret(secret);
        }
        provider.secret_in = match self.token_endpoint_auth_method.as_deref() {
            None | Some("client_secret_basic") => SecretIn::Basic,
            Some("client_secret_post") => SecretIn::Body,
            Some(other) => {
                return Err(ProviderError::new(
                    &name,
                    format!(
                        "token_endpoint_auth_method {other:?}: client_secret_basic or client_secret_post"
                    ),
                ));
            }
        };
        if let Some(issuer) = self.issuer {
            provider = provider.issuer(issuer);
        }
        Ok(provider)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "https://p.example/authorize";
    const T: &str = "https://p.example/token";
    const R: &str = "https://app.example/connect/p/callback";

    #[test]
    fn endpoints_are_https_or_loopback() {
        assert!(Provider::new("p", A, T, "id", R).is_ok());
        assert!(
            Provider::new(
                "p",
                "http://127.0.0.1:9/a",
                "http://[::1]:9/t",
                "id",
                "http://localhost/cb"
            )
            .is_ok()
        );
        for (a, t, r) in [
            ("http://p.example/a", T, R),
            (A, "http://10.0.0.1/t", R),
            (A, T, "http://app.example/cb"),
            (A, T, "https://u:p@app.example/cb"),
            (A, T, "https://app.example/cb#x"),
            (A, T, "https://app.example/cb?x=1"),
            ("not a url", T, R),
            ("javascript:alert(1)", T, R),
        ] {
            assert!(Provider::new("p", a, t, "id", r).is_err(), "{a} {t} {r}");
        }
        for name in ["", "GitHub", "a/b", &"x".repeat(41)] {
            assert!(Provider::new(name, A, T, "id", R).is_err(), "{name}");
        }
        assert!(Provider::new("p", A, T, "", R).is_err());
    }

    #[test]
    fn debug_shows_no_secret() {
        let p = Provider::new("p", A, T, "id", R)
            .unwrap()
            .client_secret("s3cr3t-value");
        let debug = format!("{p:?}");
        assert!(!debug.contains("s3cr3t"), "{debug}");
    }

    #[test]
    fn a_file_names_every_field_it_knows() {
        let providers = Provider::from_json(&format!(
            r#"[{{"name":"p","authorize_url":"{A}","token_url":"{T}","client_id":"id",
                "client_secret":"s","redirect_uri":"{R}","scopes":["a","b"],
                "token_endpoint_auth_method":"client_secret_post","issuer":"https://p.example"}}]"#
        ))
        .unwrap();
        assert_eq!(providers[0].scopes, ["a", "b"]);
        assert_eq!(providers[0].secret_in, SecretIn::Body);
        let unknown = Provider::from_json(&format!(
            r#"[{{"name":"p","authorize_url":"{A}","token_url":"{T}","client_id":"id",
                "redirect_uri":"{R}","secret":"s"}}]"#
        ));
        assert!(unknown.unwrap_err().to_string().contains("unknown field"));
    }
}
