//! [`Resolve`]: how a document's host becomes addresses. The fetcher asks once per fetch,
//! checks every address it gets, and connects only to those: what the resolver answers later
//! (DNS rebinding) reaches no connection already checked.

use std::io;
use std::net::IpAddr;

/// Resolves a host name to its addresses. [`SystemResolver`] by default; tests plug in their
/// own, to answer with any address, or differently at each call.
///
/// ```
/// use std::net::IpAddr;
/// use tower_agent_auth::oauth::document::Resolve;
///
/// /// Every name is at one address.
/// struct Fixed(IpAddr);
///
/// #[async_trait::async_trait]
/// impl Resolve for Fixed {
///     async fn resolve(&self, _host: &str) -> std::io::Result<Vec<IpAddr>> {
///         Ok(vec![self.0])
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait Resolve: Send + Sync + 'static {
    /// The addresses of `host`, a DNS name (never an address literal). An empty list is an
    /// error to the caller, as is `Err`.
    async fn resolve(&self, host: &str) -> io::Result<Vec<IpAddr>>;
}

/// The system's resolver (`getaddrinfo`, through `tokio::net::lookup_host`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

#[async_trait::async_trait]
impl Resolve for SystemResolver {
    async fn resolve(&self, host: &str) -> io::Result<Vec<IpAddr>> {
        let addresses = tokio::net::lookup_host((host, 0)).await?;
        let mut found: Vec<IpAddr> = Vec::new();
        for address in addresses {
            if !found.contains(&address.ip()) {
                found.push(address.ip());
            }
        }
        Ok(found)
    }
}
