//! What `serve` takes: its flags, and the parsers of the ones clap does not know (rates,
//! proxies). Durations are parsed by clap ([`crate::duration`]), naming the flag on error.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use clap::Args;
use tower_agent_auth::limit::Rate;
use tower_agent_auth::principal::AgentType;

use crate::duration::{duration, positive};

#[derive(Args)]
pub struct ServeArgs {
    /// The address to listen on (port 0 picks a free one; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Mark the session cookie `Secure` (when served behind HTTPS).
    #[arg(long)]
    pub secure_cookies: bool,
    /// How long a sign-in lasts.
    #[arg(long, value_name = "DURATION", default_value = "12h", value_parser = duration)]
    pub session_lifetime: Duration,
    /// The authorization server's issuer and the base of the demo resource, exactly as clients
    /// reach this server (`https://auth.example.com`); default `http://` and the address
    /// listened on.
    #[arg(long, value_name = "URL")]
    pub issuer: Option<String>,
    /// The key consent forms are bound with: 64 hex digits, the same on every node (env
    /// `AGENT_AUTH_CONSENT_KEY`). Without it each node draws its own, and a consent page must
    /// be posted to the node that served it.
    #[arg(long, env = "AGENT_AUTH_CONSENT_KEY", value_name = "HEX", hide_env_values = true, value_parser = consent_key)]
    pub consent_key: Option<[u8; 32]>,
    /// The providers whose authorize flows agents may be connected to (the callback receiver:
    /// `POST /connect/{provider}` by an agent's owner or admin, the callback at each provider's
    /// redirect URI): a JSON file, an array of objects with `name`, `authorize_url`,
    /// `token_url`, `client_id`, `client_secret_env` (or `client_secret`), `scopes`,
    /// `redirect_uri` (env `AGENT_AUTH_CALLBACK_PROVIDERS`). Needs --callback-key.
    #[arg(long, env = "AGENT_AUTH_CALLBACK_PROVIDERS", value_name = "FILE")]
    pub callback_providers: Option<std::path::PathBuf>,
    /// The key the tokens received from providers are sealed with (XChaCha20-Poly1305): 64
    /// hex digits, the same on every node, kept secret (env `AGENT_AUTH_CALLBACK_KEY`). Lose it
    /// and the kept tokens cannot be opened: connect again.
    #[arg(long, env = "AGENT_AUTH_CALLBACK_KEY", value_name = "HEX", hide_env_values = true, value_parser = consent_key)]
    pub callback_key: Option<[u8; 32]>,
    /// Seed a demo user and agent on first run, mint a demo token on every run, and print it
    /// with ready curl lines.
    #[arg(long)]
    pub demo: bool,
    /// Close a connection whose request head has not fully arrived this long after the server
    /// began waiting for it (also how long a keep-alive connection may wait between requests).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = positive)]
    pub header_timeout: Duration,
    /// Close a connection on which nothing arrives or leaves for this long while a request is
    /// read, handled or answered (a stalled body, a client that stopped reading).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = positive)]
    pub idle_timeout: Duration,
    /// Answer 408 (and close the connection) when a request's body has not arrived in full this
    /// long after its head: a body trickled a byte at a time cannot hold a connection.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = positive)]
    pub body_timeout: Duration,
    /// Serve at most this many connections at once; more wait in the kernel's queue.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_connections: usize,
    /// Sign-in attempts allowed per account and client address in each --login-window (per
    /// address: 6 times this; per account from new addresses: 4 times this).
    #[arg(long, value_name = "N", default_value_t = NonZeroU32::new(5).unwrap_or(NonZeroU32::MIN))]
    pub login_attempts: NonZeroU32,
    /// The window the sign-in limits refill over.
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = positive)]
    pub login_window: Duration,
    /// A reverse proxy (address or CIDR, repeatable) whose X-Forwarded-For names the client
    /// the sign-in limits count; by default the header is never believed.
    #[arg(long = "trusted-proxy", value_name = "CIDR", value_parser = parse_proxy)]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// A capability (or pattern, `payments:*`) whose use by a supervised agent waits for a
    /// person's approval; repeatable. `payments:send` (what the demo's `POST /demo/payments`
    /// needs) is always critical: values given add to it, never replace it. The effective set
    /// is logged at startup.
    #[arg(long = "critical-capability", value_name = "CAP")]
    pub critical_capabilities: Vec<String>,
    /// How long an approval waits for a person's decision.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = positive)]
    pub approval_lifetime: Duration,
    /// How soon a change made anywhere (a token revoked through another node or by the CLI,
    /// an agent disabled, a user deactivated) is obeyed here. Verdicts are kept in memory and
    /// the database's change log is read four times per interval; on PostgreSQL its notices
    /// usually bring a change within milliseconds. Past the interval without an answer from
    /// the database, nothing is answered from memory.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = positive)]
    pub cache_bound: Duration,
    /// Identical successful requests of one token (same method, path and status) within this
    /// interval are one audit row that counts them, instead of a database write per request;
    /// 0 writes a row per request. Refusals are always counted so (one row a minute).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = duration)]
    pub audit_coalesce_requests: Duration,
    /// Refuse Client ID Metadata Documents: an https `client_id` is then an unknown client,
    /// and clients register instead. By default they are accepted (fetched over HTTPS from
    /// public addresses only; see the `oauth::document` docs).
    #[arg(long)]
    pub no_metadata_documents: bool,
    /// FOR TESTS ONLY, never in production: trust the CA in this PEM file for Client ID
    /// Metadata Documents, and fetch them from loopback addresses, so that a test's local TLS
    /// server can serve them (env `AGENT_AUTH_TEST_METADATA_DOCUMENT_CA`). Hidden from --help.
    #[arg(
        long,
        env = "AGENT_AUTH_TEST_METADATA_DOCUMENT_CA",
        value_name = "PEM",
        hide = true
    )]
    pub test_metadata_document_ca: Option<std::path::PathBuf>,
    /// Ask the database on every request instead of keeping verdicts in memory.
    #[arg(long)]
    pub no_cache: bool,
    /// Redis shared by the nodes (redis://host:port): the counters of the rate limits, exact
    /// across nodes, and a second-level verdict cache. Without it, rate limits count per node.
    #[arg(
        long,
        env = "AGENT_AUTH_REDIS_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub redis_url: Option<String>,
    /// The secret the nodes share to tag the verdicts they keep in Redis (at least 32
    /// characters; best from the environment): whoever can write to Redis without it cannot
    /// make a node admit a token. Without it, Redis counts rate limits only and verdicts are
    /// not shared. Give it in the environment: a command line is visible to every local user.
    #[arg(
        long,
        env = "AGENT_AUTH_REDIS_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub redis_secret: Option<String>,
    /// The prefix of every key written to Redis (one per application sharing a server).
    #[arg(long, value_name = "PREFIX", default_value = tower_agent_auth::cache::DEFAULT_PREFIX)]
    pub redis_prefix: String,
    /// Requests each token may make per window, e.g. 100/1m; more are answered 429 with
    /// Retry-After (and spend no use).
    #[arg(long, value_name = "N/DURATION", value_parser = parse_rate)]
    pub rate_limit_per_token: Option<Rate>,
    /// Requests each agent may make per window, all its tokens together, e.g. 1000/1h.
    #[arg(long, value_name = "N/DURATION", value_parser = parse_rate)]
    pub rate_limit_per_agent: Option<Rate>,
    /// The per-token limit for agents of one type, in place of --rate-limit-per-token:
    /// TYPE=N/DURATION (ephemeral=10/1s); repeatable.
    #[arg(long = "rate-limit-per-token-for", value_name = "TYPE=N/DURATION", value_parser = parse_typed_rate)]
    pub rate_limits_per_token_for: Vec<(AgentType, Rate)>,
    /// The per-agent limit for agents of one type, in place of --rate-limit-per-agent:
    /// TYPE=N/DURATION; repeatable.
    #[arg(long = "rate-limit-per-agent-for", value_name = "TYPE=N/DURATION", value_parser = parse_typed_rate)]
    pub rate_limits_per_agent_for: Vec<(AgentType, Rate)>,
}

/// `N/DURATION`: `100/1m`, `5/1s`.
fn parse_rate(text: &str) -> Result<Rate, String> {
    let (requests, window) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?}: requests per window, N/DURATION (100/1m)"))?;
    let requests: u64 = requests
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: {requests:?} is not a number of requests"))?;
    if requests == 0 {
        return Err(format!(
            "{text:?}: at least 1 request per window (to refuse an agent, disable it)"
        ));
    }
    let window = duration(window).map_err(|error| format!("{text:?}: {error}"))?;
    if window.is_zero() {
        return Err(format!("{text:?}: the window must be more than 0"));
    }
    Ok(Rate::new(requests, window))
}

/// `TYPE=N/DURATION`: `ephemeral=10/1s`.
fn parse_typed_rate(text: &str) -> Result<(AgentType, Rate), String> {
    let (agent_type, rate) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: TYPE=N/DURATION (ephemeral=10/1s)"))?;
    let agent_type = AgentType::parse(agent_type.trim())
        .ok_or_else(|| format!("{text:?}: {agent_type:?} is not an agent type"))?;
    Ok((agent_type, parse_rate(rate)?))
}

/// `10.0.0.0/8`, `2001:db8::/32`, or one address (`127.0.0.1`).
fn parse_proxy(text: &str) -> Result<ipnet::IpNet, String> {
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{text:?}: an address or a CIDR block (10.0.0.0/8)"))
}

/// A consent key: 64 hex digits.
fn consent_key(text: &str) -> Result<[u8; 32], String> {
    let bytes = hex::decode(text.trim()).map_err(|_| "64 hex digits (32 bytes)".to_owned())?;
    bytes
        .try_into()
        .map_err(|_| "64 hex digits (32 bytes)".to_owned())
}
