//! [`DocumentError`]: why a metadata document was not accepted, in detail for the log and the
//! operator, and as the OAuth error the client reads.

use std::net::IpAddr;
use std::time::Duration;

use super::address::AddressKind;
use crate::oauth::error::{ErrorCode, OAuthError};

/// Why a Client ID Metadata Document was not accepted.
///
/// Its `Display` is for the log: it may name the address a host resolved to. What the client
/// and the person at the browser are told is [`DocumentError::oauth_error`], which does not
/// (a host that resolves to a private address reads like one that does not resolve: this
/// server's resolver is not an oracle of the inside network).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DocumentError {
    /// The `client_id` is not a URL a document may be at: https, a host, a path other than
    /// `/`, no query, fragment or userinfo, in canonical form.
    #[error("the client_id is not a metadata document URL: {0}")]
    Url(String),
    /// The host did not resolve.
    #[error("{host} did not resolve: {reason}")]
    Unresolved {
        /// The host.
        host: String,
        /// The resolver's reason.
        reason: String,
    },
    /// The host is, or resolves to, an address no document is fetched from.
    #[error("{host} is at {address}, a {kind} address")]
    Forbidden {
        /// The host.
        host: String,
        /// The address refused.
        address: IpAddr,
        /// What kind of address it is.
        kind: AddressKind,
    },
    /// No connection could be made to any of the host's addresses, or TLS failed (an
    /// untrusted or mismatched certificate, a protocol error).
    #[error("{0}")]
    Unreachable(String),
    /// The document did not arrive whole within the time allowed.
    #[error("the document took longer than {0:?}")]
    Timeout(Duration),
    /// The answer was a redirect: none is followed.
    #[error("the answer was a redirect ({0}); redirects are not followed")]
    Redirect(u16),
    /// The answer was neither 200 nor a redirect.
    #[error("the answer was HTTP {0}, not 200")]
    Status(u16),
    /// The document is larger than [`MAX_SIZE`](super::MAX_SIZE).
    #[error("the document is larger than {} bytes", super::limits::MAX_SIZE)]
    TooLarge,
    /// The answer is not a JSON object (or not served as JSON).
    #[error("the document is not a JSON object: {0}")]
    NotJson(String),
    /// The document's `client_id` is not exactly the URL it was fetched from.
    #[error("the document's client_id is not the URL it was fetched from")]
    ClientIdMismatch,
    /// A redirect URI of the document is refused (the rules of
    /// [`RedirectUri`](crate::oauth::redirect::RedirectUri)).
    #[error("a redirect URI is refused: {0}")]
    RedirectUri(String),
    /// The document names a secret or a `token_endpoint_auth_method` other than `none`.
    #[error("{0}")]
    AuthMethod(String),
    /// Another field of the document is refused.
    #[error("{0}")]
    Metadata(String),
    /// Too many documents are being fetched at once.
    #[error("too many metadata documents are being fetched at once")]
    Busy,
}

impl DocumentError {
    /// The OAuth error code: `invalid_request` for a `client_id` that is not a document URL,
    /// `temporarily_unavailable` when too many fetches run at once, `invalid_client`
    /// otherwise (the client cannot be known from its document).
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Url(_) => ErrorCode::InvalidRequest,
            Self::Busy => ErrorCode::TemporarilyUnavailable,
            _ => ErrorCode::InvalidClient,
        }
    }

    /// What the client and the person are told: the reason, without the addresses.
    pub fn description(&self) -> String {
        let what = match self {
            Self::Url(reason) => {
                return format!("the client_id is not a metadata document URL: {reason}");
            }
            Self::Unresolved { .. } | Self::Forbidden { .. } => {
                "its host has no public address this server fetches from".to_owned()
            }
            Self::Unreachable(_) => "it could not be fetched over HTTPS".to_owned(),
            other => other.to_string(),
        };
        format!("the client's metadata document was refused: {what}")
    }

    /// The error as the token endpoint answers it.
    pub fn oauth_error(&self) -> OAuthError {
        OAuthError::new(self.code(), self.description())
    }
}
