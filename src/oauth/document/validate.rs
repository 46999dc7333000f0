//! A fetched document, checked and read as the [`Client`] it describes (draft §4.1): a JSON
//! object whose `client_id` is exactly its URL, with well-formed redirect URIs, no secret and
//! no secret-based (or unsupported) `token_endpoint_auth_method`.

use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;

use super::DocumentError;
use super::url::DocumentUrl;
use crate::oauth::client::{Client, ClientAuth, ClientKind, MAX_REDIRECT_URIS};
use crate::oauth::name::clean_name;
use crate::oauth::redirect::RedirectUri;
use crate::oauth::scope;

/// The fields read (RFC 7591 §2 names); others are ignored.
#[derive(Deserialize)]
struct Document {
    client_id: Option<String>,
    client_name: Option<String>,
    redirect_uris: Option<Vec<String>>,
    token_endpoint_auth_method: Option<String>,
    grant_types: Option<Vec<String>>,
    response_types: Option<Vec<String>>,
    scope: Option<String>,
    client_secret: Option<Value>,
    client_secret_expires_at: Option<Value>,
}

/// The client `body`, fetched from `url` at `now`, describes.
pub(crate) fn client(
    url: &DocumentUrl,
    body: &[u8],
    now: OffsetDateTime,
) -> Result<Client, DocumentError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|error| DocumentError::NotJson(error.to_string()))?;
    if !value.is_object() {
        return Err(DocumentError::NotJson("not an object".into()));
    }
    let document: Document = serde_json::from_value(value)
        .map_err(|error| DocumentError::Metadata(format!("a field has the wrong type: {error}")))?;
    // Simple string comparison (RFC 3986 §6.2.1), as the draft asks.
    if document.client_id.as_deref() != Some(url.as_str()) {
        return Err(DocumentError::ClientIdMismatch);
    }
    if document.client_secret.is_some() || document.client_secret_expires_at.is_some() {
        return Err(DocumentError::AuthMethod(
            "a metadata document may not hold a client secret".into(),
        ));
    }
    // No shared secret can exist with a document's client: `none`, or nothing (read as
    // `none`). `private_key_jwt` is allowed by the draft but not supported here.
    match document.token_endpoint_auth_method.as_deref() {
        None | Some("none") => {}
        Some(method) if method.starts_with("client_secret") => {
            return Err(DocumentError::AuthMethod(format!(
                "token_endpoint_auth_method {method} needs a shared secret, which a metadata document's client cannot have"
            )));
        }
        Some(method) => {
            return Err(DocumentError::AuthMethod(format!(
                "token_endpoint_auth_method {method} is not supported (only none)"
            )));
        }
    }
    let uris = document.redirect_uris.unwrap_or_default();
    if uris.is_empty() || uris.len() > MAX_REDIRECT_URIS {
        return Err(DocumentError::RedirectUri(format!(
            "redirect_uris must list 1 to {MAX_REDIRECT_URIS} URIs"
        )));
    }
    for uri in &uris {
        RedirectUri::parse(uri)
            .map_err(|error| DocumentError::RedirectUri(format!("{uri:?}: {error}")))?;
    }
    let grant_types = document.grant_types.unwrap_or_default();
    if let Some(other) = grant_types
        .iter()
        .find(|g| !matches!(g.as_str(), "authorization_code" | "refresh_token"))
    {
        return Err(DocumentError::Metadata(format!(
            "grant_types may hold authorization_code and refresh_token, not {other}"
        )));
    }
    if (document.response_types.unwrap_or_default().iter()).any(|r| r != "code") {
        return Err(DocumentError::Metadata(
            "response_types may hold code only".into(),
        ));
    }
    let scope = match document.scope.as_deref().map(scope::parse) {
        Some(Ok(Some(set))) => Some(scope::to_scope(&set)),
        Some(Ok(None)) | None => None,
        Some(Err(error)) => return Err(DocumentError::Metadata(error.to_string())),
    };
    // Without a name, the host: the consent page shows the host in any case.
    let name = clean_name(Some(
        document.client_name.as_deref().unwrap_or(&url.authority()),
    ));
    let mut client = Client::new(url.as_str(), ClientKind::MetadataDocument, name, now);
    client.redirect_uris = uris;
    client.auth = ClientAuth::None;
    client.scope = scope;
    Ok(client)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const URL: &str = "https://app.example.com/client.json";

    fn read(document: Value) -> Result<Client, DocumentError> {
        let url = DocumentUrl::parse(URL).unwrap();
        client(
            &url,
            document.to_string().as_bytes(),
            OffsetDateTime::UNIX_EPOCH,
        )
    }

    fn good() -> Value {
        json!({
            "client_id": URL,
            "client_name": "Docs\u{202e} search",
            "redirect_uris": ["http://127.0.0.1/callback", "https://app.example.com/cb"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "scope": "notes:read",
            "logo_uri": "https://app.example.com/logo.png",
        })
    }

    #[test]
    fn a_document_is_read_as_a_public_client_of_that_url() {
        let client = read(good()).unwrap();
        assert_eq!(client.id, URL);
        assert_eq!(client.kind, ClientKind::MetadataDocument);
        assert_eq!(client.name, "Docs search");
        assert_eq!(client.auth, ClientAuth::None);
        assert_eq!(client.redirect_uris.len(), 2);
        assert_eq!(client.scope.as_deref(), Some("notes:read"));
        let mut unnamed = good();
        unnamed.as_object_mut().unwrap().remove("client_name");
        unnamed
            .as_object_mut()
            .unwrap()
            .remove("token_endpoint_auth_method");
        let client = read(unnamed).unwrap();
        assert_eq!(client.name, "app.example.com");
        assert_eq!(client.auth, ClientAuth::None);
    }

    #[test]
    fn the_client_id_must_be_the_url_exactly() {
        for other in [
            json!("https://app.example.com/other.json"),
            json!("https://APP.example.com/client.json"),
            json!("https://app.example.com/client.json/"),
            json!(null),
        ] {
            let mut document = good();
            document["client_id"] = other.clone();
            assert_eq!(
                read(document).unwrap_err(),
                DocumentError::ClientIdMismatch,
                "{other}"
            );
        }
        let mut document = good();
        document.as_object_mut().unwrap().remove("client_id");
        assert_eq!(read(document).unwrap_err(), DocumentError::ClientIdMismatch);
    }

    #[test]
    fn no_secret_and_no_secret_based_method() {
        for method in [
            "client_secret_basic",
            "client_secret_post",
            "client_secret_jwt",
        ] {
            let mut document = good();
            document["token_endpoint_auth_method"] = json!(method);
            assert!(
                matches!(read(document), Err(DocumentError::AuthMethod(_))),
                "{method}"
            );
        }
        let mut document = good();
        document["token_endpoint_auth_method"] = json!("private_key_jwt");
        assert!(matches!(read(document), Err(DocumentError::AuthMethod(_))));
        let mut document = good();
        document["client_secret"] = json!("s3cret");
        assert!(matches!(read(document), Err(DocumentError::AuthMethod(_))));
    }

    #[test]
    fn redirect_uris_follow_the_redirect_rules() {
        for uris in [
            json!([]),
            json!(["https://app.example.com/cb#x"]),
            json!(["http://app.example.com/cb"]),
            json!(["https://user@app.example.com/cb"]),
            json!(["https://app.example.com/a/../cb"]),
            json!(["javascript:alert(1)"]),
        ] {
            let mut document = good();
            document["redirect_uris"] = uris.clone();
            assert!(
                matches!(read(document), Err(DocumentError::RedirectUri(_))),
                "{uris}"
            );
        }
        let mut document = good();
        document.as_object_mut().unwrap().remove("redirect_uris");
        assert!(matches!(read(document), Err(DocumentError::RedirectUri(_))));
        let mut document = good();
        document["redirect_uris"] = json!("https://app.example.com/cb");
        assert!(matches!(read(document), Err(DocumentError::Metadata(_))));
    }

    #[test]
    fn other_fields_and_shapes() {
        assert!(matches!(read(json!([URL])), Err(DocumentError::NotJson(_))));
        let url = DocumentUrl::parse(URL).unwrap();
        assert!(matches!(
            client(&url, b"<html>", OffsetDateTime::UNIX_EPOCH),
            Err(DocumentError::NotJson(_))
        ));
        let mut document = good();
        document["grant_types"] = json!(["client_credentials"]);
        assert!(matches!(read(document), Err(DocumentError::Metadata(_))));
        let mut document = good();
        document["response_types"] = json!(["token"]);
        assert!(matches!(read(document), Err(DocumentError::Metadata(_))));
        let mut document = good();
        document["scope"] = json!("Not A Scope");
        assert!(matches!(read(document), Err(DocumentError::Metadata(_))));
    }
}
