//! The grants for agents on two nodes: two `agent-auth serve` processes on one PostgreSQL, one
//! issuer; agents and secrets set up with the CLI.
//!
//! - a task token minted at `/oauth/agent-token` on A with 6 operations admits exactly 6 of
//!   30 concurrent requests spread over A and B, and B's introspection counts A's uses;
//! - a token from client credentials on B, exchanged on A for a sub-agent's narrower child,
//!   is that child on B too (200 on the narrower route, 403 on the wider, `act` in B's
//!   introspection), and revoking its parent with the CLI refuses the child on both nodes
//!   within the cache's bound; a new client secret refuses the old one on the other node at
//!   once, and a disabled agent obtains nothing on either.
//!
//! Needs `AGENT_AUTH_TEST_POSTGRES_URL` (see [`cluster`](super::cluster)).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use url::form_urlencoded;

use crate::cluster::{Answer, Database, Node, postgres_url, request, seed};
use crate::support::cli;

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
/// How long a revocation may take to reach a node's verdict cache (its bound is 1 s), with
/// room for a loaded machine.
const REFUSED_WITHIN: Duration = Duration::from_secs(3);

/// Two nodes on one database and one issuer; alice's agents `planner` (with a client
/// secret), `writer` (with a CLI token), the orchestrator `conductor` (with a client secret)
/// and `worker`, and a resource server allowed to introspect.
struct Cluster {
    a: Node,
    b: Node,
    url: String,
    planner_secret: String,
    conductor_secret: String,
    writer_token: String,
    introspector: (String, String),
    /// Declared last, so dropped after the nodes that use it.
    _database: Database,
}

fn cli_json(database: &str, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&cli(database, &all)).unwrap()
}

fn secret(registered: &Value) -> String {
    registered["client_secret"].as_str().unwrap().to_owned()
}

impl Cluster {
    async fn start(test: &str) -> Option<Self> {
        let base = postgres_url()?;
        let database = Database::create(&base, test).await;
        let url = database.url.clone();
        seed(&url);
        cli(&url, &["agent", "create", "planner", "--owner", "alice"]);
        cli(&url, &["agent", "create", "worker", "--owner", "alice"]);
        let orchestrator = [
            "agent",
            "create",
            "conductor",
            "--owner",
            "alice",
            "--orchestrator",
        ];
        cli(&url, &orchestrator);
        let planner = cli_json(&url, &["client", "register", "--agent", "planner"]);
        let conductor = cli_json(&url, &["client", "register", "--agent", "conductor"]);
        let rs = cli_json(
            &url,
            &["client", "register", "--name", "rs", "--introspect"],
        );
        let writer = cli_json(&url, &["token", "create", "writer", "--label", "sub-agent"]);
        let a = Node::start(&url, &[]);
        let issuer = format!("http://{}", a.address);
        let b = Node::start(&url, &["--issuer", &issuer]);
        Some(Self {
            a,
            b,
            planner_secret: secret(&planner),
            conductor_secret: secret(&conductor),
            writer_token: writer["token"].as_str().unwrap().to_owned(),
            introspector: (rs["client_id"].as_str().unwrap().to_owned(), secret(&rs)),
            url,
            _database: database,
        })
    }
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        form.append_pair(name, value);
    }
    form.finish()
}

async fn post(node: &Node, path: &str, pairs: &[(&str, &str)]) -> Answer {
    let headers = [("Content-Type", "application/x-www-form-urlencoded")];
    request(&node.address, "POST", path, &headers, &form(pairs)).await
}

/// `GET` or `POST /demo/posts` with a bearer token: the status.
async fn posts(node: &Node, method: &str, token: &str) -> u16 {
    let bearer = format!("Bearer {token}");
    let headers = [("Authorization", bearer.as_str())];
    request(&node.address, method, "/demo/posts", &headers, "")
        .await
        .status
}

async fn introspect(cluster: &Cluster, node: &Node, token: &str) -> Value {
    let (id, secret) = &cluster.introspector;
    let pairs = [
        ("token", token),
        ("client_id", id),
        ("client_secret", secret),
    ];
    let answer = post(node, "/oauth/introspect", &pairs).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json()
}

fn access_token(answer: &Answer) -> String {
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json()["access_token"].as_str().unwrap().to_owned()
}

fn assert_error(answer: &Answer, status: u16, error: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(answer.json()["error"], error, "{}", answer.body);
}

/// Polls `GET /demo/posts` on `node` until `token` is refused; panics past [`REFUSED_WITHIN`].
async fn refused_soon(node: &Node, token: &str, what: &str) {
    let since = Instant::now();
    loop {
        match posts(node, "GET", token).await {
            401 => return,
            200 if since.elapsed() < REFUSED_WITHIN => {}
            status => panic!("{what}: still {status} after {:?}", since.elapsed()),
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_task_token_admits_exactly_its_operations_over_both_nodes() {
    let Some(cluster) = Cluster::start("grants_task").await else {
        return;
    };
    let minted = post(
        &cluster.a,
        "/oauth/agent-token",
        &[
            ("client_id", "conductor"),
            ("client_secret", &cluster.conductor_secret),
            ("delegated_by_user_id", "alice"),
            ("agent", "worker"),
            ("scope", "posts:read"),
            ("task_id", "cluster-task"),
            ("max_operations", "6"),
            ("expires_on_completion", "true"),
        ],
    )
    .await;
    let token = access_token(&minted);
    assert_eq!(minted.json()["max_operations"], 6);
    // One use on A, counted in B's introspection.
    assert_eq!(posts(&cluster.a, "GET", &token).await, 200);
    let seen = introspect(&cluster, &cluster.b, &token).await;
    assert_eq!(seen["operations_remaining"], 5, "{seen}");
    assert_eq!(seen["task_id"], "cluster-task");
    // 30 at once over both nodes: the 5 left, no more.
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..30 {
        let node = if i % 2 == 0 { &cluster.a } else { &cluster.b };
        let (address, bearer) = (node.address.clone(), format!("Bearer {token}"));
        requests.spawn(async move {
            let headers = [("Authorization", bearer.as_str())];
            request(&address, "GET", "/demo/posts", &headers, "")
                .await
                .status
        });
    }
    let statuses = requests.join_all().await;
    let admitted = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(admitted, 5, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| matches!(s, 200 | 401)),
        "{statuses:?}"
    );
    for node in [&cluster.a, &cluster.b] {
        assert_eq!(
            introspect(&cluster, node, &token).await,
            json!({"active": false})
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_exchanged_token_is_the_same_child_on_both_nodes_and_ends_with_its_parent() {
    let Some(cluster) = Cluster::start("grants_exchange").await else {
        return;
    };
    let (a, b) = (&cluster.a, &cluster.b);
    let planner = ("client_id", "planner");
    let first = ("client_secret", cluster.planner_secret.as_str());
    let credentials = [("grant_type", "client_credentials"), planner, first];
    let subject = access_token(&post(b, "/oauth/token", &credentials).await);
    let exchange = [
        ("grant_type", EXCHANGE),
        planner,
        first,
        ("subject_token", subject.as_str()),
        ("subject_token_type", ACCESS),
        ("actor_token", cluster.writer_token.as_str()),
        ("actor_token_type", ACCESS),
        ("scope", "posts:read"),
    ];
    let exchanged = post(a, "/oauth/token", &exchange).await;
    assert_eq!(exchanged.json()["issued_token_type"], ACCESS);
    let child = access_token(&exchanged);
    for node in [a, b] {
        assert_eq!(posts(node, "GET", &child).await, 200);
        assert_eq!(posts(node, "POST", &child).await, 403);
    }
    let seen = introspect(&cluster, b, &child).await;
    assert_eq!(seen["act"]["sub"], seen["agent_id"], "{seen}");
    assert_eq!(
        seen["act"]["act"]["sub"], seen["delegation_chain"][0],
        "{seen}"
    );

    // The parent revoked with the CLI: the child ends on both nodes.
    let parent = introspect(&cluster, a, &subject).await;
    let parent = parent["jti"].as_str().unwrap();
    cli(&cluster.url, &["token", "revoke", "planner", parent]);
    for node in [a, b] {
        refused_soon(node, &child, "the child of a revoked parent").await;
    }
    assert_error(
        &post(b, "/oauth/token", &exchange).await,
        400,
        "invalid_request",
    );

    // A new secret: the old one refused on the other node at once.
    let renewed = cli_json(&cluster.url, &["client", "register", "--agent", "planner"]);
    assert_error(
        &post(a, "/oauth/token", &credentials).await,
        401,
        "invalid_client",
    );
    let renewed = secret(&renewed);
    let renewed = [
        ("grant_type", "client_credentials"),
        planner,
        ("client_secret", renewed.as_str()),
    ];
    let token = access_token(&post(a, "/oauth/token", &renewed).await);
    // A disabled agent obtains nothing on either node, and its token ends on both.
    cli(&cluster.url, &["agent", "disable", "planner"]);
    for node in [a, b] {
        assert_error(
            &post(node, "/oauth/token", &renewed).await,
            400,
            "invalid_grant",
        );
        refused_soon(node, &token, "a disabled agent's token").await;
    }
}
