//! The traits that turn credentials into principals: [`TokenResolver`] and [`SessionResolver`].

use std::sync::Arc;

use crate::error::ResolveError;
use crate::principal::{Principal, TokenId};
use crate::token::{TokenFormat, TokenHash};

/// The write that settles a use, for a resolver that settles through I/O.
pub type SettleFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// A presented token that passed the offline checks, as handed to a [`TokenResolver`].
///
/// It carries the hash, never the raw token.
#[derive(Clone, Copy)]
pub struct TokenLookup<'a> {
    hash: TokenHash,
    /// UTF-8: from a `&str`, or checked to be `[a-z0-9-]` by the token parser.
    slug: &'a [u8],
    legacy: bool,
}

impl std::fmt::Debug for TokenLookup<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenLookup")
            .field("hash", &self.hash)
            .field("slug", &self.slug())
            .field("legacy", &self.legacy)
            .finish()
    }
}

impl<'a> TokenLookup<'a> {
    /// A lookup for the token with this hash and embedded slug.
    pub fn new(hash: TokenHash, slug: &'a str, legacy: bool) -> Self {
        Self::from_parts(hash, slug.as_bytes(), legacy)
    }

    /// A lookup for a token that passed the format's checks.
    pub(crate) fn parsed(token: &crate::token::ParsedToken<'a>) -> Self {
        Self::from_parts(token.hash(), token.slug_bytes(), token.is_legacy())
    }

    /// `slug` must be UTF-8 (it is, when it comes from one of the above).
    pub(crate) fn from_parts(hash: TokenHash, slug: &'a [u8], legacy: bool) -> Self {
        Self { hash, slug, legacy }
    }

    /// SHA-256 of the presented token: the key to look up.
    pub fn hash(&self) -> &TokenHash {
        &self.hash
    }

    /// The agent slug embedded in the token. A resolver should refuse the token with
    /// [`InvalidReason::AgentMismatch`](crate::InvalidReason::AgentMismatch) when it is stored for an agent with another slug.
    pub fn slug(&self) -> &'a str {
        crate::bytes::ascii_str(self.slug)
    }

    /// The slug's bytes.
    pub(crate) fn slug_bytes(&self) -> &'a [u8] {
        self.slug
    }

    /// True for a checksum-less legacy token.
    pub fn is_legacy(&self) -> bool {
        self.legacy
    }
}

/// Turns an agent bearer token into a [`Principal`] (a shared
/// [`ExecutionPrincipal`](crate::ExecutionPrincipal)).
///
/// Implement it for your own store with [`#[tower_agent_auth::async_trait]`](crate::async_trait)
/// on the impl (the trait is object safe, so `Arc<dyn TokenResolver>` and `Box<dyn TokenResolver>`
/// work), or implement [`Backend`](crate::store::Backend) — only persistence — and use a
/// [`Store`](crate::store::Store) over it to get the crate's checks in their order.
/// The layer calls it only for tokens of [`TokenResolver::token_format`] that passed the offline
/// checks. An implementation validates that the token exists, is not revoked, expired or spent,
/// that its agent is active, and that the owner exists and is active; then builds the principal
/// with its ceiling. It returns [`ResolveError::Unavailable`] when it cannot decide.
///
/// The principal is returned behind an `Arc` so that a resolver may hand out one cached principal
/// per token instead of building one per request (the in-memory store does).
///
/// See `examples/custom_resolver.rs` for a complete implementation.
#[async_trait::async_trait]
pub trait TokenResolver: Send + Sync + 'static {
    /// The format of the tokens this resolver owns; others pass through the layer untouched.
    fn token_format(&self) -> &TokenFormat;

    /// Answers at once when the verdict is already at hand — an in-memory store, a warm cache —
    /// without allocating a future; `None` when it would have to wait. The layer asks this first
    /// and calls [`TokenResolver::resolve`] only on `None`. The default never answers.
    fn resolve_now(&self, token: &TokenLookup<'_>) -> Option<Result<Principal, ResolveError>> {
        let _ = token;
        None
    }

    /// Resolves a token that passed the offline checks.
    async fn resolve(&self, token: &TokenLookup<'_>) -> Result<Principal, ResolveError>;

    /// Settles the use that resolving a use-limited token reserved, once the application has
    /// answered: `spent` unless the application refused the request before acting on it (a
    /// `401`, a capability check's `403`, a `404`, `405` or `429`, or an answer marked
    /// [`NotActed`](crate::outcome::NotActed)), which releases it for another
    /// request. The layer calls it exactly once for every
    /// admitted request whose principal has [`max_operations`], and awaits the returned future
    /// (if any) before it answers, so the next request sees the use settled. A returned future
    /// that is dropped unfinished must still settle (in the background) or leave the use
    /// spent: never hand it out again. The default does nothing: a resolver that spends a use
    /// when it resolves needs no settling.
    ///
    /// [`max_operations`]: crate::ExecutionPrincipal::max_operations
    fn settle_use(&self, token: &TokenId, spent: bool) -> Option<SettleFuture> {
        let _ = (token, spent);
        None
    }

    /// A cache answered for this principal's token without asking the resolver: record the
    /// use (last used), as resolving it would have. Never called for a use-limited principal
    /// (a cache always asks the resolver for those). The default records nothing.
    fn touch(&self, principal: &Principal) {
        let _ = principal;
    }
}

macro_rules! forward_token_resolver {
    ($($pointer:ident),*) => {$(
        #[async_trait::async_trait]
        impl<T: TokenResolver + ?Sized> TokenResolver for $pointer<T> {
            fn token_format(&self) -> &TokenFormat {
                (**self).token_format()
            }

            fn resolve_now(&self, token: &TokenLookup<'_>) -> Option<Result<Principal, ResolveError>> {
                (**self).resolve_now(token)
            }

            async fn resolve(&self, token: &TokenLookup<'_>) -> Result<Principal, ResolveError> {
                (**self).resolve(token).await
            }

            fn settle_use(&self, token: &TokenId, spent: bool) -> Option<SettleFuture> {
                (**self).settle_use(token, spent)
            }

            fn touch(&self, principal: &Principal) {
                (**self).touch(principal)
            }
        }
    )*};
}

forward_token_resolver!(Arc, Box);

/// Resolves requests signed in by an ordinary user session (a cookie, a session id) into a
/// principal with [`AuthSource::Session`](crate::principal::AuthSource::Session) (see
/// [`UserRecord::session_principal`](crate::store::UserRecord::session_principal)).
///
/// The layer asks it only when the request carries no `Authorization` header. Return `Ok(None)`
/// when there is no valid session.
#[async_trait::async_trait]
pub trait SessionResolver: Send + Sync + 'static {
    /// Looks at the request (headers, extensions set by a session layer) for a signed-in user.
    async fn resolve_session(
        &self,
        request: &http::request::Parts,
    ) -> Result<Option<Principal>, ResolveError>;
}

#[async_trait::async_trait]
impl<T: SessionResolver + ?Sized> SessionResolver for Arc<T> {
    async fn resolve_session(
        &self,
        request: &http::request::Parts,
    ) -> Result<Option<Principal>, ResolveError> {
        (**self).resolve_session(request).await
    }
}
