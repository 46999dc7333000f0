//! Scale: what each store operation costs with 1 000 and with 100 000 tokens stored (issue 23).
//!
//! `cargo bench --bench scale --features sqlite,postgres,approval [-- memory sqlite postgres]`
//! (PostgreSQL runs when `AGENT_AUTH_TEST_POSTGRES_URL` is set; each store lives in a schema of
//! its own, dropped at the end. Without arguments every store runs.)
//!
//! For each store, two stores are built side by side: one holding 1 000 tokens, one holding
//! 100 000, both spread over 1 000 agents of one owner, with as many pending approvals as
//! tokens. Twenty of the agents hold exactly ten tokens in both (the agents whose tokens are
//! listed: a listing costs what it returns, so it is compared at equal size); the rest are
//! spread round-robin over the other 980. Setting up goes through the store's API, several
//! mints at a time on the SQL stores.
//!
//! Then rounds alternate between the two sizes (which one goes first alternates too), so that
//! a slow spell of this shared machine slows both alike. Each round times, one call at a time
//! and each call on its own, through the public API:
//!
//! * `create`: `Store::create_token` for an agent taken in turn;
//! * `resolve`: parsing a stored token drawn at random (checksum, SHA-256) and
//!   `TokenResolver::resolve`, with nothing in front: no verdict cache, so the store's own
//!   resolution every time. (`MemoryStore` keeps no verdicts of its own: its `resolve` runs the
//!   pipeline over its maps on every call; reusing verdicts is `MemoryStore::verdict_cache`'s,
//!   which is not used here.)
//! * `list`: `Store::list_tokens` of one of the twenty agents with ten tokens;
//! * `revoke`: `Store::revoke_token` of a token created in the same round;
//! * `approve`: `Managed::approve` (the owner approving a pending approval, as the REST API
//!   and the pages do).
//!
//! Each round ends by purging the tokens it created and revoked, so both stores keep their
//! size. The figure per operation is the median of every timed call; the ratio is the 100k
//! median over the 1k median (target: at most 1.5).
//!
//! Last, on the 100k store: the p99 of resolutions timed while another task mints tokens
//! without pause, against the p99 of resolutions on the quiet store, in alternating phases
//! (target: within 2×).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod common;

use tower_agent_auth::TokenLookup;
use tower_agent_auth::TokenResolver;
use tower_agent_auth::approval::{ApprovalBounds, ApprovalId, CriticalAction, NewApproval};
use tower_agent_auth::principal::{AgentId, TokenId};
use tower_agent_auth::store::{
    Backend, Managed, MemoryStore, NewAgent, NewToken, SqliteStore, Store,
};
use tower_agent_auth::token::RawToken;

const AGENTS: usize = 1_000;
/// The agents whose listings are timed, and how many tokens each holds at every size.
const LISTED_AGENTS: usize = 20;
const LISTED_TOKENS: usize = 10;
const SIZES: [usize; 2] = [1_000, 100_000];
const ROUNDS: usize = 10;
/// Long enough for the whole run: the timed approvals must still be pending.
const APPROVAL_LIFETIME: Duration = Duration::from_secs(6 * 3600);

/// How many calls of each operation a round times, per size.
#[derive(Clone, Copy)]
struct Plan {
    batch: usize,
    /// Concurrent mints while setting up.
    setup_workers: usize,
    /// Resolutions per phase of the concurrent-creation comparison, and phases of each kind.
    p99_samples: usize,
    p99_phases: usize,
}

const IN_MEMORY: Plan = Plan {
    batch: 80,
    setup_workers: 1,
    p99_samples: 20_000,
    p99_phases: 3,
};
const IN_SQL: Plan = Plan {
    batch: 40,
    setup_workers: 4,
    p99_samples: 2_000,
    p99_phases: 3,
};

/// A small xorshift: which stored token to resolve next, cheaply and the same every run.
struct Pick(u64);

impl Pick {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// One store of one size, and what its operations act on.
struct Fixture<B: Backend> {
    size: usize,
    store: Store<B>,
    agents: Vec<AgentId>,
    /// Every token minted while setting up (none is revoked).
    tokens: Vec<RawToken>,
    /// Pending approvals, each approved once: taken from the end.
    approvals: Vec<ApprovalId>,
    pick: Pick,
    next_agent: usize,
}

/// The timed calls of one operation at one size.
#[derive(Default)]
struct Samples(Vec<Duration>);

impl Samples {
    fn quantile(&self, q: f64) -> Duration {
        let mut sorted = self.0.clone();
        sorted.sort();
        sorted[((sorted.len() - 1) as f64 * q).round() as usize]
    }
}

const OPS: [&str; 5] = ["create", "resolve", "list", "revoke", "approve"];

async fn resolve<B: Backend>(store: &Store<B>, raw: &RawToken) -> Duration {
    let started = Instant::now();
    let parsed = store.token_format().parse(raw.expose_secret()).unwrap();
    let lookup = TokenLookup::new(parsed.hash(), parsed.slug(), false);
    store.resolve(&lookup).await.expect("a live token");
    started.elapsed()
}

/// Mints `count` tokens for each `(agent, count)` with `workers` mints at a time.
async fn mint<B: Backend + 'static>(
    store: &Store<B>,
    plan: Vec<(AgentId, usize)>,
    workers: usize,
) -> Vec<RawToken> {
    let jobs: Vec<AgentId> = plan
        .into_iter()
        .flat_map(|(agent, count)| std::iter::repeat_n(agent, count))
        .collect();
    let jobs = Arc::new(jobs);
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let (store, jobs, next) = (store.clone(), jobs.clone(), next.clone());
        tasks.spawn(async move {
            let mut minted = Vec::new();
            loop {
                let job = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(agent) = jobs.get(job) else {
                    return minted;
                };
                let issued = store
                    .create_token(agent, NewToken::new(format!("seed-{job}")))
                    .await
                    .unwrap();
                minted.push(issued.token);
            }
        });
    }
    let mut tokens = Vec::with_capacity(jobs.len());
    while let Some(minted) = tasks.join_next().await {
        tokens.extend(minted.unwrap());
    }
    tokens
}

async fn setup<B: Backend + 'static>(store: Store<B>, size: usize, plan: Plan) -> Fixture<B> {
    let started = Instant::now();
    let mut agents = Vec::with_capacity(AGENTS);
    for i in 0..AGENTS {
        let agent = store
            .create_agent(NewAgent::new(format!("agent-{i:04}"), "alice"))
            .await
            .unwrap();
        agents.push(agent.id);
    }
    // Ten tokens for each listed agent; the rest round-robin over the others.
    let mut counts = vec![0usize; AGENTS];
    for count in counts.iter_mut().take(LISTED_AGENTS) {
        *count = LISTED_TOKENS;
    }
    for i in 0..size - LISTED_AGENTS * LISTED_TOKENS {
        counts[LISTED_AGENTS + i % (AGENTS - LISTED_AGENTS)] += 1;
    }
    let per_agent: Vec<(AgentId, usize)> = agents.iter().cloned().zip(counts).collect();
    let tokens = mint(&store, per_agent, plan.setup_workers).await;
    assert_eq!(tokens.len(), size);

    // One principal per agent holding a token (resolved once), then approvals round-robin.
    let mut principals = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for raw in &tokens {
        let parsed = store.token_format().parse(raw.expose_secret()).unwrap();
        if seen.insert(parsed.slug().to_owned()) {
            let lookup = TokenLookup::new(parsed.hash(), parsed.slug(), false);
            principals.push(store.resolve(&lookup).await.unwrap());
        }
    }
    let approvals = Arc::new(AtomicU64::new(0));
    let principals = Arc::new(principals);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..plan.setup_workers {
        let (store, next, principals) = (store.clone(), approvals.clone(), principals.clone());
        tasks.spawn(async move {
            let mut ids = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= size {
                    return ids;
                }
                let action = CriticalAction::new("payments:send", &http::Method::POST, "/payments")
                    .message(format!("Pay invoice {i}"));
                let principal = &principals[i % principals.len()];
                let new = NewApproval::new(principal, &action, APPROVAL_LIFETIME).unwrap();
                ids.push(store.create_approval(new).await.unwrap().id);
            }
        });
    }
    let mut approval_ids = Vec::with_capacity(size);
    while let Some(ids) = tasks.join_next().await {
        approval_ids.extend(ids.unwrap());
    }
    println!(
        "  set up {size} tokens and {} approvals over {AGENTS} agents in {:.1} s",
        approval_ids.len(),
        started.elapsed().as_secs_f64()
    );
    Fixture {
        size,
        store,
        agents,
        tokens,
        approvals: approval_ids,
        pick: Pick(0x9e37_79b9_7f4a_7c15),
        next_agent: 0,
    }
}

impl<B: Backend + 'static> Fixture<B> {
    fn next_agent(&mut self) -> AgentId {
        // Past the listed agents, so that their listings keep their size.
        self.next_agent = (self.next_agent + 1) % (AGENTS - LISTED_AGENTS);
        self.agents[LISTED_AGENTS + self.next_agent].clone()
    }

    /// One round of every operation, `batch` timed calls each, into `samples` (by [`OPS`]).
    async fn round(&mut self, batch: usize, samples: &mut [Samples; 5]) {
        let mut created: Vec<(AgentId, TokenId)> = Vec::with_capacity(batch);
        for i in 0..batch {
            let agent = self.next_agent();
            let started = Instant::now();
            let issued = self
                .store
                .create_token(&agent, NewToken::new(format!("timed-{i}")))
                .await
                .unwrap();
            samples[0].0.push(started.elapsed());
            created.push((agent, issued.info.id));
        }
        for _ in 0..batch {
            let raw = &self.tokens[self.pick.below(self.tokens.len())];
            samples[1].0.push(resolve(&self.store, raw).await);
        }
        for i in 0..batch {
            let agent = &self.agents[i % LISTED_AGENTS];
            let started = Instant::now();
            let listed = self.store.list_tokens(agent).await.unwrap();
            samples[2].0.push(started.elapsed());
            assert_eq!(listed.len(), LISTED_TOKENS);
        }
        for (agent, token) in &created {
            let started = Instant::now();
            self.store.revoke_token(agent, token).await.unwrap();
            samples[3].0.push(started.elapsed());
        }
        let owner = Managed::new(&self.store, "alice");
        for _ in 0..batch {
            let id = self.approvals.pop().expect("enough pending approvals");
            let started = Instant::now();
            owner.approve(&id, ApprovalBounds::default()).await.unwrap();
            samples[4].0.push(started.elapsed());
        }
        // Back to the size it had: what this round created, it revoked; purge deletes those.
        tokio::time::sleep(Duration::from_millis(2)).await;
        let purged = self.store.purge(Duration::ZERO).await.unwrap();
        assert_eq!(purged, batch);
    }
}

fn ms(d: Duration) -> String {
    let micros = d.as_secs_f64() * 1e6;
    if micros >= 1000.0 {
        format!("{:.2} ms", micros / 1000.0)
    } else {
        format!("{micros:.1} µs")
    }
}

/// Resolution p99 on the quiet store against while a task mints tokens without pause, in
/// alternating phases.
async fn p99_under_creation<B: Backend + 'static>(fixture: &mut Fixture<B>, plan: Plan) {
    let mut quiet = Samples::default();
    let mut busy = Samples::default();
    let mut minted_per_second = Vec::new();
    for _ in 0..plan.p99_phases {
        for _ in 0..plan.p99_samples {
            let raw = &fixture.tokens[fixture.pick.below(fixture.tokens.len())];
            quiet.0.push(resolve(&fixture.store, raw).await);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let minted = Arc::new(AtomicU64::new(0));
        let creator = {
            let (store, stop, minted) = (fixture.store.clone(), stop.clone(), minted.clone());
            let agents: Vec<AgentId> = fixture.agents[LISTED_AGENTS..].to_vec();
            tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let agent = &agents[i % agents.len()];
                    store
                        .create_token(agent, NewToken::new(format!("busy-{i}")))
                        .await
                        .unwrap();
                    minted.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                    // The memory store's futures are always ready: let the worker breathe.
                    tokio::task::yield_now().await;
                }
            })
        };
        // The creator is running before the first timed resolution.
        while minted.load(Ordering::Relaxed) == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let started = Instant::now();
        let before = minted.load(Ordering::Relaxed);
        for _ in 0..plan.p99_samples {
            let raw = &fixture.tokens[fixture.pick.below(fixture.tokens.len())];
            busy.0.push(resolve(&fixture.store, raw).await);
        }
        let rate =
            (minted.load(Ordering::Relaxed) - before) as f64 / started.elapsed().as_secs_f64();
        minted_per_second.push(rate);
        stop.store(true, Ordering::Relaxed);
        creator.await.unwrap();
    }
    let (quiet_p99, busy_p99) = (quiet.quantile(0.99), busy.quantile(0.99));
    minted_per_second.sort_by(f64::total_cmp);
    println!(
        "  resolve while minting ({} tokens stored): quiet p50 {} p99 {}; minting p50 {} p99 {} \
         ({:.0} mints/s); p99 ratio {:.2}",
        fixture.size,
        ms(quiet.quantile(0.5)),
        ms(quiet_p99),
        ms(busy.quantile(0.5)),
        ms(busy_p99),
        minted_per_second[minted_per_second.len() / 2],
        busy_p99.as_secs_f64() / quiet_p99.as_secs_f64()
    );
}

/// Every operation at both sizes, in alternating rounds; then the p99 under creation.
async fn run<B: Backend + 'static>(name: &str, small: Store<B>, large: Store<B>, plan: Plan) {
    println!("{name}:");
    let mut small = setup(small, SIZES[0], plan).await;
    let mut large = setup(large, SIZES[1], plan).await;
    let mut samples: [[Samples; 5]; 2] = Default::default();
    // One round each, untimed in effect, to warm pools and caches.
    let mut warm: [Samples; 5] = Default::default();
    small.round(plan.batch, &mut warm).await;
    large.round(plan.batch, &mut warm).await;
    for round in 0..ROUNDS {
        let [first, second] = &mut samples;
        if round % 2 == 0 {
            small.round(plan.batch, first).await;
            large.round(plan.batch, second).await;
        } else {
            large.round(plan.batch, second).await;
            small.round(plan.batch, first).await;
        }
    }
    println!(
        "  {:<8} {:>12} {:>12} {:>7}   (median of {} calls; p90 1k / 100k)",
        "op",
        "1k",
        "100k",
        "ratio",
        plan.batch * ROUNDS
    );
    for (op, name) in OPS.iter().enumerate() {
        let (a, b) = (&samples[0][op], &samples[1][op]);
        let (ma, mb) = (a.quantile(0.5), b.quantile(0.5));
        println!(
            "  {name:<8} {:>12} {:>12} {:>6.2}×   ({} / {})",
            ms(ma),
            ms(mb),
            mb.as_secs_f64() / ma.as_secs_f64(),
            ms(a.quantile(0.9)),
            ms(b.quantile(0.9)),
        );
    }
    p99_under_creation(&mut large, plan).await;
}

fn wanted(name: &str) -> bool {
    let named: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    named.is_empty() || named.iter().any(|n| n == name)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        if wanted("memory") {
            let small = MemoryStore::with_config(common::config());
            let large = MemoryStore::with_config(common::config());
            run("memory", small, large, IN_MEMORY).await;
        }
        if wanted("sqlite") {
            let dir = tempfile::tempdir().unwrap();
            let open = |file: &str| {
                let path = dir.path().join(file).display().to_string();
                async move { SqliteStore::open(&path, common::config()).await.unwrap() }
            };
            let (small, large) = (open("small.db").await, open("large.db").await);
            run("sqlite (file, WAL)", small, large, IN_SQL).await;
        }
        if wanted("postgres") {
            let Ok(url) = std::env::var("AGENT_AUTH_TEST_POSTGRES_URL") else {
                println!("postgres: skipped, set AGENT_AUTH_TEST_POSTGRES_URL");
                return;
            };
            let pid = std::process::id();
            let (small_schema, large_schema) = (
                format!("agent_auth_scale_1k_{pid}"),
                format!("agent_auth_scale_100k_{pid}"),
            );
            let (small, admin) = common::pg_store_in_schema(&url, &small_schema).await;
            let (large, _) = common::pg_store_in_schema(&url, &large_schema).await;
            run("postgres", small.clone(), large.clone(), IN_SQL).await;
            common::drop_schema(small, &admin, &small_schema).await;
            common::drop_schema(large, &admin, &large_schema).await;
        }
    });
}
