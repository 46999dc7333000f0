//! The command line: every command, its arguments and options (clap's derive).
//!
//! Longer than most files: each flag's help sits beside its field, and `--help` shows a
//! command's flags together; the `serve` flags are in `serve/args.rs`.
//!
//! Durations are parsed by clap itself ([`crate::duration`]), so a bad one is refused before
//! anything runs, naming its flag.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::duration::{approval_window, duration, positive};
use crate::serve;

/// Manage agents and their tokens, and run the reference server.
///
/// Errors are one line on stderr and a non-zero exit; nothing is changed by a failed command.
#[derive(Parser)]
#[command(name = "agent-auth", version)]
pub struct Cli {
    /// The database: a SQLite file (PATH or sqlite://PATH) or a postgres:// URL. Only `migrate`
    /// and `serve` create a missing file or the schema; other commands refuse a database
    /// without it.
    #[arg(
        long,
        global = true,
        env = "AGENT_AUTH_DATABASE_URL",
        hide_env_values = true,
        default_value = "sqlite://agent-auth.db"
    )]
    pub database_url: String,
    /// The token prefix of the application whose tokens these are (tokens look like
    /// `{prefix}_{slug}_{64 hex}`); the same as the application's on a shared database.
    #[arg(
        long,
        global = true,
        env = "AGENT_AUTH_TOKEN_PREFIX",
        default_value = "agent"
    )]
    pub token_prefix: String,
    /// How long one database statement may run (waiting for locks included) before the
    /// request fails with 503 / the command with an error; a connection is waited for at most
    /// 3 s more.
    #[arg(
        long,
        global = true,
        env = "AGENT_AUTH_DATABASE_TIMEOUT",
        value_name = "DURATION",
        default_value = "5s",
        value_parser = positive
    )]
    pub database_timeout: Duration,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Create the database (a missing SQLite file) or upgrade it: the store's tables and the
    /// user table. Only `migrate` and `serve` create or upgrade the schema.
    Migrate,
    /// Users who own agents and sign in to the server.
    #[command(subcommand)]
    User(UserCommand),
    /// Agents: the machine identities that act for users.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// An agent's tokens: its credentials (alias: `credential`).
    #[command(subcommand, alias = "credential")]
    Token(TokenCommand),
    /// Thread-scoped child agents under an agent (alias: `identity`).
    #[command(subcommand, alias = "identity")]
    Child(ChildCommand),
    /// Who else may manage or see an agent.
    #[command(subcommand)]
    Grant(GrantCommand),
    /// What an agent did, and what was done to it (with its children), oldest first.
    Audit(AuditArgs),
    /// Approvals a supervised agent's critical requests wait for: list, approve, deny, revoke, purge.
    #[command(subcommand)]
    Approval(ApprovalCommand),
    /// Tasks: the work task tokens are minted for.
    #[command(subcommand)]
    Task(TaskCommand),
    /// OAuth clients of the authorization server: register (the secret shown once), list,
    /// show, revoke.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Connections: the clients people connected by consenting, each an agent of theirs.
    #[command(subcommand)]
    Connection(ConnectionCommand),
    /// Tokens other services issued to agents, kept sealed by the server's callback receiver:
    /// list (metadata, never a token), delete.
    #[command(subcommand)]
    ProviderToken(ProviderTokenCommand),
    /// Run the reference server: management API, login, and a demo protected API.
    // Boxed: its flags outweigh every other command's.
    Serve(Box<serve::ServeArgs>),
}

/// Acting as a user: the checks of the access rules apply, and changes are audited as theirs.
#[derive(Args, Clone, Default)]
pub struct Actor {
    /// Act as this user (default: the agent's owner).
    #[arg(long = "as", value_name = "USER")]
    pub acting_user: Option<String>,
}

impl Actor {
    /// The user a command acts as on `agent`: `--as`, or the agent's owner.
    pub fn user_for(
        &self,
        agent: &tower_agent_auth::store::Agent,
    ) -> tower_agent_auth::principal::UserId {
        self.acting_user
            .as_ref()
            .map_or_else(|| agent.owner.clone(), |u| u.as_str().into())
    }
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Add a user.
    Add {
        /// The user id.
        id: String,
        /// Their role: the capabilities they have (default: unrestricted).
        #[arg(long, value_name = "A,B")]
        capabilities: Option<String>,
        /// Read a password for signing in to the server from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List,
    /// Set or replace a user's password from the first line of stdin (also how a lost
    /// `serve --demo` password is reset).
    Passwd {
        /// The user id.
        id: String,
    },
    /// Change a user's role: the capabilities they have (their agents narrow at once).
    SetRole {
        /// The user id.
        id: String,
        /// The capabilities they have.
        #[arg(
            long,
            value_name = "A,B",
            required_unless_present = "unrestricted",
            conflicts_with = "unrestricted"
        )]
        capabilities: Option<String>,
        /// Every capability.
        #[arg(long)]
        unrestricted: bool,
    },
    /// Delete a user who owns no agents and holds no grants.
    Delete {
        /// The user id.
        id: String,
    },
    /// Deactivate a user: their agents' tokens are refused at once.
    Disable {
        /// The user id.
        id: String,
    },
    /// Reactivate a user.
    Enable {
        /// The user id.
        id: String,
    },
}

#[derive(Subcommand)]
pub enum AgentCommand {
    /// Create an agent.
    Create {
        /// Its slug: 1-64 of [a-z0-9-], part of its tokens.
        slug: String,
        /// The user it acts for.
        #[arg(long)]
        owner: String,
        /// autonomous, supervised or ephemeral (sets token lifetimes).
        #[arg(long = "type", default_value = "autonomous")]
        agent_type: String,
        /// Its policy: the capabilities it may use (default: its owner's).
        #[arg(long, value_name = "A,B")]
        capabilities: Option<String>,
        /// Capabilities it may never use.
        #[arg(long, value_name = "A,B")]
        deny: Option<String>,
        /// The resources it may act on.
        #[arg(long, value_name = "A,B")]
        scopes: Option<String>,
        /// The modes it may run in.
        #[arg(long, value_name = "A,B")]
        modes: Option<String>,
        /// It expires this long from now (15m, 3600, 30d).
        #[arg(long, value_name = "DURATION", value_parser = duration)]
        expires_in: Option<Duration>,
        /// An orchestrator: it may mint task tokens for its owner's other agents on behalf of
        /// a person (`token create WORKER --orchestrator SLUG --delegated-by USER`).
        #[arg(long)]
        orchestrator: bool,
        /// Where the agent, as an OAuth client (`client_id` = its slug), may be sent back:
        /// an exact URI, `https://host/path/*` (at or below the path) or a domain (`example.com`,
        /// https). Repeat for more.
        #[arg(long = "redirect-uri", value_name = "PATTERN")]
        redirect_uris: Vec<String>,
    },
    /// Replace an agent's redirect allowlist as an OAuth client (see `create --redirect-uri`).
    SetRedirects {
        /// The agent's slug.
        slug: String,
        /// An allowed redirect: exact URI, `https://host/path/*` or a domain. Repeat for more.
        #[arg(long = "redirect-uri", value_name = "PATTERN", required = true)]
        redirect_uris: Vec<String>,
    },
    /// List agents.
    List,
    /// Show one agent.
    Show {
        /// The agent's slug.
        slug: String,
    },
    /// Disable an agent: every token of it is refused until it is enabled.
    Disable {
        /// The agent's slug.
        slug: String,
        #[command(flatten)]
        actor: Actor,
    },
    /// Enable a disabled agent.
    Enable {
        /// The agent's slug.
        slug: String,
        #[command(flatten)]
        actor: Actor,
    },
    /// Replace an agent's policy; it applies to its (and its children's) next request.
    SetPolicy {
        /// The agent's slug.
        slug: String,
        /// The capabilities it may use.
        #[arg(
            long,
            value_name = "A,B",
            required_unless_present = "unrestricted",
            conflicts_with = "unrestricted"
        )]
        capabilities: Option<String>,
        /// Every capability its owner has.
        #[arg(long)]
        unrestricted: bool,
        /// Capabilities it may never use.
        #[arg(long, value_name = "A,B")]
        deny: Option<String>,
        #[command(flatten)]
        actor: Actor,
    },
    /// Delete an agent with its tokens and child agents.
    Delete {
        /// The agent's slug.
        slug: String,
        /// Also if it has child agents or live tokens (they are deleted with it).
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        actor: Actor,
    },
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Mint a token; it is printed once and cannot be shown again.
    Create {
        /// The agent's slug.
        slug: String,
        /// What it is for.
        #[arg(long)]
        label: String,
        /// It expires this long from now (15m, 3600, 30d; default: the agent type's; more than
        /// the type's maximum gets the maximum).
        #[arg(long, value_name = "DURATION", value_parser = duration)]
        expires_in: Option<Duration>,
        /// Narrow it to these capabilities.
        #[arg(long, value_name = "A,B")]
        capabilities: Option<String>,
        /// Admit exactly this many requests.
        #[arg(long, value_name = "N")]
        max_operations: Option<u64>,
        /// Expire with its last operation (needs --max-operations).
        #[arg(long)]
        expires_on_completion: bool,
        /// The task it is for.
        #[arg(long)]
        task_id: Option<String>,
        /// What it is meant to do.
        #[arg(long)]
        intent: Option<String>,
        /// Where its task runs (e.g. staging).
        #[arg(long)]
        environment: Option<String>,
        /// Mint it as a task token of this orchestrator agent (another agent of the same
        /// owner, created with `agent create --orchestrator`), on behalf of --delegated-by.
        #[arg(long, value_name = "SLUG", requires = "delegated_by")]
        orchestrator: Option<String>,
        /// The person the orchestrator's task token acts for: their role bounds it.
        #[arg(long, value_name = "USER", requires = "orchestrator")]
        delegated_by: Option<String>,
        #[command(flatten)]
        actor: Actor,
    },
    /// Delegate: as the holder of a token (the parent, read from the environment variable
    /// AGENT_AUTH_TOKEN or, with --token-stdin, from the first line of stdin; never from the
    /// command line), mint a child token for an agent of the same owner, never wider than the
    /// parent. It is printed once.
    Delegate {
        /// The slug of the agent the child token is for.
        slug: String,
        /// What it is for.
        #[arg(long)]
        label: String,
        /// Narrow it to these capabilities (within the parent's).
        #[arg(long, value_name = "A,B")]
        capabilities: Option<String>,
        /// It expires this long from now (not after the parent; default: the parent's expiry).
        #[arg(long, value_name = "DURATION", value_parser = duration)]
        expires_in: Option<Duration>,
        /// Admit at most this many requests (no more than the parent has left).
        #[arg(long, value_name = "N")]
        max_operations: Option<u64>,
        /// Expire with its last operation (needs --max-operations).
        #[arg(long)]
        expires_on_completion: bool,
        /// The task it serves (the parent's; or one for a parent without a task).
        #[arg(long)]
        task_id: Option<String>,
        /// What it is meant to do (default: the parent's).
        #[arg(long)]
        intent: Option<String>,
        /// Where its task runs (the parent's; or one for a parent without one).
        #[arg(long)]
        environment: Option<String>,
        /// Read the parent token from the first line of stdin instead of AGENT_AUTH_TOKEN.
        #[arg(long)]
        token_stdin: bool,
    },
    /// Show one token (metadata only), with its delegation and task.
    Show {
        /// The agent's slug.
        slug: String,
        /// The token id.
        token_id: String,
        #[command(flatten)]
        actor: Actor,
    },
    /// List an agent's tokens (metadata only).
    List {
        /// The agent's slug.
        slug: String,
        #[command(flatten)]
        actor: Actor,
    },
    /// Revoke one token of an agent.
    Revoke {
        /// The agent's slug.
        slug: String,
        /// The token id (from `token list`).
        token_id: String,
        /// Also every token delegated from it, below and below that.
        #[arg(long)]
        tree: bool,
        #[command(flatten)]
        actor: Actor,
    },
    /// Replace a token with a new one; the old one keeps working for the grace period.
    Rotate {
        /// The agent's slug.
        slug: String,
        /// The token id.
        token_id: String,
        /// How long the old token stays valid (0 revokes it now).
        #[arg(long, value_name = "DURATION", default_value = "0", value_parser = duration)]
        grace: Duration,
        #[command(flatten)]
        actor: Actor,
    },
    /// Revoke every token of an agent.
    RevokeAll {
        /// The agent's slug.
        slug: String,
        #[command(flatten)]
        actor: Actor,
    },
}

#[derive(Subcommand)]
pub enum ChildCommand {
    /// Create a thread-scoped child agent (e.g. codex-THREAD_ID) under an agent; it is never
    /// wider than its parent.
    Create {
        /// The parent agent's slug.
        parent: String,
        /// The child's slug.
        slug: String,
        /// Narrow its capabilities (within the parent's).
        #[arg(long, value_name = "A,B")]
        capabilities: Option<String>,
        /// Its resources (within the parent's; default: the parent's).
        #[arg(long, value_name = "A,B")]
        scopes: Option<String>,
        /// Its modes (within the parent's; default: the parent's).
        #[arg(long, value_name = "A,B")]
        modes: Option<String>,
        /// It expires this long from now (never after its parent).
        #[arg(long, value_name = "DURATION", value_parser = duration)]
        expires_in: Option<Duration>,
        #[command(flatten)]
        actor: Actor,
    },
    /// List an agent's children.
    List {
        /// The parent agent's slug.
        parent: String,
    },
    /// Retire a child agent: delete it with its tokens.
    Retire {
        /// The child's slug.
        slug: String,
        #[command(flatten)]
        actor: Actor,
    },
}

#[derive(Subcommand)]
pub enum GrantCommand {
    /// Give a user a role on an agent: admin, operator or viewer.
    Add {
        /// The agent's slug.
        slug: String,
        /// The user.
        user: String,
        /// admin, operator or viewer.
        role: String,
        #[command(flatten)]
        actor: Actor,
    },
    /// Withdraw a user's role on an agent.
    Remove {
        /// The agent's slug.
        slug: String,
        /// The user.
        user: String,
        #[command(flatten)]
        actor: Actor,
    },
    /// List an agent's grants.
    List {
        /// The agent's slug.
        slug: String,
    },
}

#[derive(Subcommand)]
pub enum ApprovalCommand {
    /// List approvals, newest first (with --as, only those of agents the user may see).
    List {
        /// Only this agent's.
        #[arg(long, value_name = "SLUG")]
        agent: Option<String>,
        /// Only those pending, approved, denied, used or expired.
        #[arg(long)]
        status: Option<String>,
        /// Only the newest N (at most 1000).
        #[arg(long, value_name = "N", default_value_t = 100)]
        last: usize,
        #[command(flatten)]
        actor: Actor,
    },
    /// Show one approval with its details.
    Show {
        /// The approval id (apr_…).
        id: String,
        #[command(flatten)]
        actor: Actor,
    },
    /// Approve a pending approval: the agent's retry of that very request is admitted.
    Approve {
        /// The approval id (apr_…).
        id: String,
        /// How many requests it admits.
        #[arg(long, value_name = "N", default_value_t = 1)]
        uses: u32,
        /// Usable for this long from now (15m, 3600, 1d) instead of until the pending
        /// approval would have expired.
        #[arg(long = "for", value_name = "DURATION", value_parser = approval_window)]
        valid_for: Option<Duration>,
        #[command(flatten)]
        actor: Actor,
    },
    /// Deny a pending approval: the agent's retries are refused until it expires.
    Deny {
        /// The approval id (apr_…).
        id: String,
        #[command(flatten)]
        actor: Actor,
    },
    /// Withdraw an approval given earlier: it admits nothing more (owner or admin).
    Revoke {
        /// The approval id (apr_…).
        id: String,
        #[command(flatten)]
        actor: Actor,
    },
    /// Delete approvals that expired longer than DURATION ago (pending, approved, denied and
    /// used alike; none still usable).
    Purge {
        /// How long an expired approval is kept (30d, 12h).
        #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = duration)]
        older_than: Duration,
    },
}

#[derive(Subcommand)]
pub enum TaskCommand {
    /// Complete a task: every live token minted for it, and every token delegated from one,
    /// ends (refused as expired). With --as, the tasks of that user's agents (and only theirs);
    /// without, of every owner whose agents serve it.
    Complete {
        /// The task id.
        task_id: String,
        #[command(flatten)]
        actor: Actor,
    },
}

#[derive(Args)]
pub struct AuditArgs {
    /// The agent's slug.
    pub slug: String,
    /// Only events of the last DURATION (15m, 3600, 30d).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub since: Option<Duration>,
    /// Only events of this token (alias: --credential).
    #[arg(long, value_name = "TOKEN_ID", alias = "credential")]
    pub token: Option<String>,
    /// Leave out the agent's child agents.
    #[arg(long)]
    pub without_children: bool,
    /// Only the newest N events (still oldest first).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub last: usize,
    #[command(flatten)]
    pub actor: Actor,
}

#[derive(Subcommand)]
pub enum ClientCommand {
    /// Register a client; a confidential one's secret is printed once. With --agent, give an
    /// agent a client secret instead (client_credentials; /oauth/agent-token for an
    /// orchestrator).
    Register {
        /// Its name, shown on the consent page.
        #[arg(long, required_unless_present = "agent")]
        name: Option<String>,
        /// Give this agent (its slug, the client id) a client secret, printed once: it may then
        /// use client_credentials, and an orchestrator /oauth/agent-token. Again: a new secret,
        /// the old one refused at once.
        #[arg(
            long,
            value_name = "SLUG",
            conflicts_with_all = ["name", "redirect_uris", "confidential", "introspect"]
        )]
        agent: Option<String>,
        /// A redirect URI it may be sent back to. Repeat for more.
        #[arg(long = "redirect-uri", value_name = "URI")]
        redirect_uris: Vec<String>,
        /// Give it a client secret (client_secret_basic or client_secret_post).
        #[arg(long)]
        confidential: bool,
        /// Let it call the introspection endpoint (a resource server); implies a secret.
        #[arg(long)]
        introspect: bool,
    },
    /// List clients.
    List,
    /// Show one client.
    Show {
        /// The client id.
        id: String,
    },
    /// Revoke a client: it obtains nothing more, and every connection to it ends.
    Revoke {
        /// The client id.
        id: String,
    },
}

#[derive(Subcommand)]
pub enum ConnectionCommand {
    /// List connections (a person's, with --user).
    List {
        /// Only this person's.
        #[arg(long)]
        user: Option<String>,
    },
    /// End a person's connection to a client: its agent is disabled, its tokens refused.
    Revoke {
        /// The person.
        #[arg(long)]
        user: String,
        /// The client id.
        client: String,
    },
}

#[derive(Subcommand)]
pub enum ProviderTokenCommand {
    /// List the provider tokens kept (an agent's, with --agent): provider, agent, who
    /// connected it, when, scopes, expiry. Never a token.
    List {
        /// Only this agent's.
        #[arg(long, value_name = "SLUG")]
        agent: Option<String>,
    },
    /// Delete a provider token (the agent is disconnected from that provider); audited.
    Delete {
        /// The token's id (`ptk_…`), from `provider-token list`.
        id: String,
        /// Who is deleting it, for the audit trail (default: the agent's owner).
        #[command(flatten)]
        actor: Actor,
    },
}
