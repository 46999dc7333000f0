//! The authorization server on many nodes: two `agent-auth serve` processes on one PostgreSQL,
//! told the same issuer and consent key, one public client registered over HTTP; the person's
//! part (sign-in, consent) played with form posts and a session cookie.
//!
//! - a code issued through A and presented to A and B at once is redeemed once: one 200, one
//!   `invalid_grant`; redeemed on A and replayed on B, the replay revokes what the redemption
//!   issued, on both nodes (a replay racing the redemption does not yet: the ignored test);
//! - a refresh token rotated on A and presented again to B is `invalid_grant`, and its whole
//!   family ends: the newest refresh token fails on A, the access tokens are refused on both;
//! - a device code (RFC 8628) asked for on B and allowed on A is redeemed once across both
//!   nodes, a replay revoking what it issued; a poll too soon on A slows the device down on B;
//! - through `serve`: another resource is `invalid_target` (authorize and token) and a token
//!   bound to another resource is 401 at `/demo`, PKCE `plain` and a wrong verifier are
//!   refused, introspection without client authentication is 401, and a flood of
//!   registrations from one address meets 429.
//!
//! Needs `AGENT_AUTH_TEST_POSTGRES_URL` (see [`cluster`](super::cluster)).

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use url::Url;
use url::form_urlencoded;

use crate::cluster::{Answer, Database, Node, PASSWORD, me, postgres_url, request, seed};
use crate::support;

/// The consent key both nodes are given: a form shown by one may be posted to the other.
const CONSENT_KEY: &str = "3f1c2a9b8d7e6f5041322314a5b6c7d8e9f00112233445566778899aabbccdde";
/// Where the registered client wants its codes (nothing listens there: the redirect is read
/// from the `Location` header).
const REDIRECT_URI: &str = "http://127.0.0.1:1/callback";
const SCOPE: &str = "posts:read posts:write";
/// How long a revocation may take to reach a node's verdict cache (its bound is 1 s), with
/// room for a loaded machine.
const REFUSED_WITHIN: Duration = Duration::from_secs(3);

/// Two nodes on one database, one issuer, one consent key; a public client registered on A.
struct Cluster {
    a: Node,
    b: Node,
    issuer: String,
    client_id: String,
    /// Declared last, so dropped after the nodes that use it.
    database: Database,
}

impl Cluster {
    async fn start(test: &str) -> Option<Self> {
        let base = postgres_url()?;
        let database = Database::create(&base, test).await;
        seed(&database.url);
        let a = Node::start(&database.url, &["--consent-key", CONSENT_KEY]);
        // A's own default issuer, given to B as its issuer: one identifier for both.
        let issuer = format!("http://{}", a.address);
        let b = Node::start(
            &database.url,
            &["--consent-key", CONSENT_KEY, "--issuer", &issuer],
        );
        for node in [&a, &b] {
            let metadata = get_json(node, "/.well-known/oauth-authorization-server").await;
            assert_eq!(metadata["issuer"], issuer.as_str(), "{metadata}");
            assert_eq!(
                metadata["token_endpoint"],
                format!("{issuer}/oauth/token"),
                "{metadata}"
            );
            let resource = get_json(node, "/.well-known/oauth-protected-resource/demo").await;
            assert_eq!(resource["resource"], format!("{issuer}/demo"), "{resource}");
            assert_eq!(
                resource["authorization_servers"],
                json!([issuer.as_str()]),
                "{resource}"
            );
        }
        let registered = register(&a).await;
        assert_eq!(registered.status, 201, "{}", registered.body);
        let client_id = registered.json()["client_id"].as_str().unwrap().to_owned();
        Some(Self {
            a,
            b,
            issuer,
            client_id,
            database,
        })
    }

    fn resource(&self) -> String {
        format!("{}/demo", self.issuer)
    }
}

async fn get_json(node: &Node, path: &str) -> Value {
    let answer = request(&node.address, "GET", path, &[], "").await;
    assert_eq!(answer.status, 200, "GET {path}: {}", answer.body);
    answer.json()
}

/// `POST /oauth/register`: a public native client with the code and refresh grants.
async fn register(node: &Node) -> Answer {
    let metadata = json!({
        "redirect_uris": [REDIRECT_URI],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "client_name": "cluster test",
        "application_type": "native",
    });
    request(
        &node.address,
        "POST",
        "/oauth/register",
        &[("Content-Type", "application/json")],
        &metadata.to_string(),
    )
    .await
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        form.append_pair(name, value);
    }
    form.finish()
}

/// A PKCE verifier (43 base64url characters) and its S256 challenge.
fn pkce() -> (String, String) {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).unwrap();
    let verifier = URL_SAFE_NO_PAD.encode(bytes);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// The `Location` of a redirect as an absolute URL (the sign-in redirects are paths).
fn location(node: &Node, answer: &Answer) -> Url {
    let location = answer
        .header("location")
        .unwrap_or_else(|| panic!("no Location ({}): {}", answer.status, answer.body));
    Url::parse(&format!("http://{}", node.address))
        .unwrap()
        .join(location)
        .unwrap()
}

/// The path and query of `url`: the request target.
fn target(url: &Url) -> String {
    match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    }
}

fn query(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.into_owned())
}

/// Undoes the escaping of an attribute value of the server's pages (askama's entities).
fn unescape(text: &str) -> String {
    text.replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&#38;", "&")
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = tag[start..].find('"')? + start;
    Some(unescape(&tag[start..end]))
}

/// What a browser would post from the consent page: its hidden fields and its ticked boxes.
fn consent_fields(page: &str) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    for tag in page.split("<input").skip(1) {
        let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
        let (name, value) = (attribute(tag, "name"), attribute(tag, "value"));
        let (Some(name), Some(value)) = (name, value) else {
            continue;
        };
        match attribute(tag, "type").as_deref() {
            Some("hidden") => fields.push((name, value)),
            Some("checkbox") if tag.contains(" checked") => fields.push((name, value)),
            _ => {}
        }
    }
    fields
}

/// The person at the browser, signed in to one node (its session lives there).
struct Browser<'n> {
    node: &'n Node,
    origin: String,
    cookie: Option<String>,
}

impl<'n> Browser<'n> {
    fn on(node: &'n Node) -> Self {
        Self {
            origin: format!("http://{}", node.address),
            node,
            cookie: None,
        }
    }

    async fn get(&self, target: &str) -> Answer {
        let mut headers = Vec::new();
        if let Some(cookie) = &self.cookie {
            headers.push(("Cookie", cookie.as_str()));
        }
        request(&self.node.address, "GET", target, &headers, "").await
    }

    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let mut headers = vec![
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Origin", self.origin.as_str()),
        ];
        if let Some(cookie) = &self.cookie {
            headers.push(("Cookie", cookie.as_str()));
        }
        request(&self.node.address, "POST", path, &headers, &form(fields)).await
    }

    /// Signs alice in with the form the sign-in page posts, `return` and all.
    async fn sign_in(&mut self, back: &str) -> Answer {
        // The sign-in page first: its pre-session cookie and its form's token.
        let form = support::SignInForm::get(&self.node.address);
        self.cookie = Some(form.cookie.clone());
        let fields = [
            ("user", "alice"),
            ("password", PASSWORD),
            ("return", back),
            ("csrf", &form.csrf),
        ];
        let answer = self.post("/login", &fields).await;
        assert_eq!(answer.status, 303, "sign-in: {}", answer.body);
        let session = (answer.headers.iter())
            .filter(|(name, _)| name == "set-cookie")
            .filter_map(|(_, value)| value.split(';').next())
            .find(|pair| pair.starts_with("agent_auth_session="))
            .unwrap_or_else(|| panic!("no session cookie: {:?}", answer.headers));
        self.cookie = Some(session.to_owned());
        answer
    }

    /// Sends the authorization request `params`, signs in when sent to, and answers the
    /// consent page with `decision`: where the server redirects back to.
    async fn authorize(&mut self, params: &[(&str, &str)], decision: &str) -> Url {
        let path = format!("/oauth/authorize?{}", form(params));
        let mut answer = self.get(&path).await;
        if answer.status == 302 || answer.status == 303 {
            let sign_in = location(self.node, &answer);
            assert_eq!(sign_in.path(), "/login", "{sign_in}");
            let back = query(&sign_in, "return").expect("a way back from the sign-in page");
            let signed_in = self.sign_in(&back).await;
            let back = location(self.node, &signed_in);
            answer = self.get(&target(&back)).await;
        }
        assert_eq!(answer.status, 200, "the consent page: {}", answer.body);
        assert!(
            (answer.header("content-security-policy").unwrap_or_default())
                .contains("frame-ancestors 'none'"),
            "the consent page may be framed"
        );
        let mut fields = consent_fields(&answer.body);
        assert!(
            fields.iter().any(|(name, _)| name == "csrf"),
            "{}",
            answer.body
        );
        fields.push(("decision".into(), decision.into()));
        let fields: Vec<(&str, &str)> = (fields.iter())
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let answer = self.post("/oauth/authorize", &fields).await;
        assert_eq!(answer.status, 302, "the consent's answer: {}", answer.body);
        location(self.node, &answer)
    }
}

/// A code the person allowed through `browser`'s node for `cluster`'s client: (code, verifier).
async fn allowed_code(cluster: &Cluster, browser: &mut Browser<'_>) -> (String, String) {
    let (verifier, challenge) = pkce();
    let state = format!("s-{}", &challenge[..8]);
    let resource = cluster.resource();
    let back = browser
        .authorize(
            &[
                ("response_type", "code"),
                ("client_id", &cluster.client_id),
                ("redirect_uri", REDIRECT_URI),
                ("scope", SCOPE),
                ("state", &state),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
                ("resource", &resource),
            ],
            "allow",
        )
        .await;
    assert!(back.as_str().starts_with(REDIRECT_URI), "{back}");
    assert_eq!(query(&back, "state").as_deref(), Some(state.as_str()));
    assert_eq!(
        query(&back, "iss").as_deref(),
        Some(cluster.issuer.as_str())
    );
    let code = query(&back, "code").unwrap_or_else(|| panic!("no code: {back}"));
    (code, verifier)
}

/// `POST /oauth/token` on `node`.
async fn token(node: &Node, params: &[(&str, &str)]) -> Answer {
    let answer = request(
        &node.address,
        "POST",
        "/oauth/token",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &form(params),
    )
    .await;
    assert_eq!(
        answer.header("cache-control"),
        Some("no-store"),
        "{}",
        answer.body
    );
    answer
}

async fn redeem(cluster: &Cluster, node: &Node, code: &str, verifier: &str) -> Answer {
    let resource = cluster.resource();
    token(
        node,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &cluster.client_id),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier),
            ("resource", &resource),
        ],
    )
    .await
}

async fn refresh(cluster: &Cluster, node: &Node, refresh_token: &str) -> Answer {
    token(
        node,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &cluster.client_id),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

/// The tokens of a 200 answer: (access, refresh).
fn tokens(answer: &Answer) -> (String, String) {
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body = answer.json();
    // RFC 6749 §7.1: the type is case-insensitive.
    let kind = body["token_type"].as_str().unwrap_or_default();
    assert!(kind.eq_ignore_ascii_case("bearer"), "{body}");
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

fn assert_error(answer: &Answer, status: u16, error: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(answer.json()["error"], error, "{}", answer.body);
}

/// Polls `/demo/me` on `node` until `token` is refused; panics past [`REFUSED_WITHIN`].
async fn refused_soon(node: &Node, token: &str, what: &str) {
    let since = Instant::now();
    loop {
        match me(node, token).await {
            401 => return,
            200 if since.elapsed() < REFUSED_WITHIN => {}
            status => panic!(
                "{what}: still {status} {:?} on {}\n{}",
                since.elapsed(),
                node.address,
                node.log()
            ),
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Presents `code` to A and B at once: never two redemptions; the one that lost is
/// `invalid_grant`. The winner's answer, if one won: when the replay came while it was issuing,
/// the winner sees it and answers `invalid_grant` too (what it issued is revoked either way).
async fn race(cluster: &Cluster, code: &str, verifier: &str) -> Option<Answer> {
    let (at_a, at_b) = tokio::join!(
        redeem(cluster, &cluster.a, code, verifier),
        redeem(cluster, &cluster.b, code, verifier),
    );
    let (won, lost) = match (at_a.status, at_b.status) {
        (200, 200) => panic!("redeemed twice: {} / {}", at_a.body, at_b.body),
        (200, _) => (Some(at_a), at_b),
        (_, 200) => (Some(at_b), at_a),
        _ => {
            assert_error(&at_a, 400, "invalid_grant");
            (None, at_b)
        }
    };
    assert_error(&lost, 400, "invalid_grant");
    won
}

/// What a replay of a code ends: the access token it issued, refused on both nodes within
/// the bound, and its refresh token.
async fn revoked_by_the_replay(cluster: &Cluster, issued: &Answer) {
    let (access, refresh_token) = tokens(issued);
    refused_soon(&cluster.a, &access, "the replayed code's access token").await;
    refused_soon(&cluster.b, &access, "the replayed code's access token").await;
    assert_error(
        &refresh(cluster, &cluster.a, &refresh_token).await,
        400,
        "invalid_grant",
    );
}

/// A code issued through A is redeemed once across A and B: presented to both at once, never
/// two 200s, the loser `invalid_grant`, every time. Redeemed on A and replayed on B, the replay is
/// `invalid_grant` and revokes what the redemption issued, on both nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_code_is_redeemed_once_across_nodes_and_a_replay_revokes_what_it_issued() {
    let Some(cluster) = Cluster::start("oauth_code").await else {
        return;
    };
    let mut browser = Browser::on(&cluster.a);
    for _ in 0..10 {
        let (code, verifier) = allowed_code(&cluster, &mut browser).await;
        if let Some(won) = race(&cluster, &code, &verifier).await {
            tokens(&won);
        }
    }

    let (code, verifier) = allowed_code(&cluster, &mut browser).await;
    let issued = redeem(&cluster, &cluster.a, &code, &verifier).await;
    let (access, _) = tokens(&issued);
    assert_eq!(me(&cluster.b, &access).await, 200);
    assert_error(
        &redeem(&cluster, &cluster.b, &code, &verifier).await,
        400,
        "invalid_grant",
    );
    revoked_by_the_replay(&cluster, &issued).await;
}

/// A replay that races the redemption must revoke what the redemption issued too (issue #20:
/// "a replayed code gets `invalid_grant`, and the tokens issued from it are revoked").
///
/// The redemption sets the code's family in the same statement, a replay marks the code,
/// and the redeemer reads the mark once it has issued: whichever comes second sees the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replay_racing_the_redemption_revokes_what_it_issued() {
    let Some(cluster) = Cluster::start("oauth_race").await else {
        return;
    };
    let mut browser = Browser::on(&cluster.a);
    for _ in 0..5 {
        let (code, verifier) = allowed_code(&cluster, &mut browser).await;
        if let Some(won) = race(&cluster, &code, &verifier).await {
            revoked_by_the_replay(&cluster, &won).await;
        }
    }
}

/// Redeemed and rotated on A; the spent refresh token presented to B is a reuse: the family
/// ends, its newest refresh token fails on A and its access tokens are refused on both nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refresh_rotated_on_one_node_is_refused_as_reused_on_the_other() {
    let Some(cluster) = Cluster::start("oauth_refresh").await else {
        return;
    };
    let (a, b) = (&cluster.a, &cluster.b);
    let mut browser = Browser::on(a);
    let (code, verifier) = allowed_code(&cluster, &mut browser).await;
    let (first_access, spent) = tokens(&redeem(&cluster, a, &code, &verifier).await);
    // The issuer's resource is B's too: a token bound to it is admitted by both nodes.
    assert_eq!(me(a, &first_access).await, 200);
    assert_eq!(me(b, &first_access).await, 200);

    let (access, newest) = tokens(&refresh(&cluster, a, &spent).await);
    assert_ne!(newest, spent, "the refresh token did not rotate");
    assert_eq!(me(b, &access).await, 200);

    assert_error(&refresh(&cluster, b, &spent).await, 400, "invalid_grant");
    assert_error(&refresh(&cluster, a, &newest).await, 400, "invalid_grant");
    for node in [a, b] {
        refused_soon(node, &access, "the newest access token").await;
        refused_soon(node, &first_access, "the first access token").await;
    }
}

/// The refusals of the authorization server, through `serve` on PostgreSQL: another resource
/// (authorize, token, and a token bound to one at `/demo`), PKCE `plain`, a wrong verifier,
/// introspection without client authentication, a flood of registrations.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_refuses_bad_oauth_requests() {
    let Some(cluster) = Cluster::start("oauth_checks").await else {
        return;
    };
    let (a, b) = (&cluster.a, &cluster.b);
    let (verifier, challenge) = pkce();
    let resource = cluster.resource();
    let authorize = |overrides: &[(&'static str, String)]| {
        let mut params: Vec<(&str, String)> = vec![
            ("response_type", "code".into()),
            ("client_id", cluster.client_id.clone()),
            ("redirect_uri", REDIRECT_URI.into()),
            ("scope", SCOPE.into()),
            ("state", "s1".into()),
            ("code_challenge", challenge.clone()),
            ("code_challenge_method", "S256".into()),
            ("resource", resource.clone()),
        ];
        for (name, value) in overrides {
            params.retain(|(n, _)| n != name);
            params.push((name, value.clone()));
        }
        let pairs: Vec<(&str, &str)> = params.iter().map(|(n, v)| (*n, v.as_str())).collect();
        format!("/oauth/authorize?{}", form(&pairs))
    };
    // Errors after the client and redirect URI are checked go back to the client, with
    // `state` and `iss`, before anyone signs in.
    let refused_back = |answer: Answer, error: &str| {
        assert_eq!(answer.status, 302, "{}", answer.body);
        let back = Url::parse(answer.header("location").unwrap()).unwrap();
        assert!(back.as_str().starts_with(REDIRECT_URI), "{back}");
        assert_eq!(query(&back, "error").as_deref(), Some(error), "{back}");
        assert_eq!(query(&back, "state").as_deref(), Some("s1"));
        assert_eq!(
            query(&back, "iss").as_deref(),
            Some(cluster.issuer.as_str())
        );
    };

    // Another resource at the authorization endpoint.
    let other = [("resource", "https://elsewhere.example/api".to_owned())];
    refused_back(
        request(&a.address, "GET", &authorize(&other), &[], "").await,
        "invalid_target",
    );
    // PKCE `plain`: the verifier itself as the challenge.
    let plain = [
        ("code_challenge_method", "plain".to_owned()),
        ("code_challenge", verifier.clone()),
    ];
    refused_back(
        request(&b.address, "GET", &authorize(&plain), &[], "").await,
        "invalid_request",
    );

    let mut browser = Browser::on(a);
    // Another resource at the token endpoint: the code stays spent.
    let (code, verifier) = allowed_code(&cluster, &mut browser).await;
    let mut params = vec![
        ("grant_type", "authorization_code"),
        ("client_id", cluster.client_id.as_str()),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", verifier.as_str()),
        ("resource", "https://elsewhere.example/api"),
    ];
    assert_error(&token(b, &params).await, 400, "invalid_target");
    params.pop();
    assert_error(&token(b, &params).await, 400, "invalid_grant");

    // A wrong verifier (well formed), then the right one: the code is spent by the first.
    let (code, verifier) = allowed_code(&cluster, &mut browser).await;
    let (wrong, _) = pkce();
    assert_error(
        &redeem(&cluster, b, &code, &wrong).await,
        400,
        "invalid_grant",
    );
    assert_error(
        &redeem(&cluster, a, &code, &verifier).await,
        400,
        "invalid_grant",
    );

    // Introspection: without client authentication, or as a public client (no secret), 401.
    let (code, verifier) = allowed_code(&cluster, &mut browser).await;
    let (access, _) = tokens(&redeem(&cluster, a, &code, &verifier).await);
    for body in [
        form(&[("token", &access)]),
        form(&[("token", &access), ("client_id", &cluster.client_id)]),
    ] {
        let answer = request(
            &b.address,
            "POST",
            "/oauth/introspect",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            &body,
        )
        .await;
        assert_error(&answer, 401, "invalid_client");
        assert!(!answer.body.contains("\"active\""), "{}", answer.body);
    }

    // A token bound to another resource: node C, on the same database, issues for its own
    // (`https://elsewhere.example/demo`); A's demo API refuses what C issued.
    let elsewhere = "https://elsewhere.example";
    let c = Node::start(
        &cluster.database.url,
        &["--consent-key", CONSENT_KEY, "--issuer", elsewhere],
    );
    let mut at_c = Browser::on(&c);
    let (verifier, challenge) = pkce();
    let other_resource = format!("{elsewhere}/demo");
    let back = at_c
        .authorize(
            &[
                ("response_type", "code"),
                ("client_id", &cluster.client_id),
                ("redirect_uri", REDIRECT_URI),
                ("scope", SCOPE),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
                ("resource", &other_resource),
            ],
            "allow",
        )
        .await;
    assert_eq!(query(&back, "iss").as_deref(), Some(elsewhere));
    let code = query(&back, "code").unwrap_or_else(|| panic!("no code: {back}"));
    let answer = token(
        &c,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &cluster.client_id),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", &verifier),
            ("resource", &other_resource),
        ],
    )
    .await;
    let (foreign, _) = tokens(&answer);
    assert_eq!(me(&c, &foreign).await, 200, "C's own resource");
    for node in [a, b] {
        let answer = request(
            &node.address,
            "GET",
            "/demo/me",
            &[("Authorization", &format!("Bearer {foreign}"))],
            "",
        )
        .await;
        assert_eq!(answer.status, 401, "{}", answer.body);
        let challenge = answer.header("www-authenticate").unwrap_or_default();
        assert!(challenge.contains("invalid_token"), "{challenge}");
        assert!(challenge.contains("resource_metadata="), "{challenge}");
    }

    // Registrations flooded from one address: 429 with Retry-After before long, and then
    // nothing more is registered.
    let mut registered = 0;
    let mut limited = None;
    for n in 0..30 {
        let answer = register(b).await;
        match answer.status {
            201 => {
                assert!(limited.is_none(), "registered again after a 429");
                registered += 1;
            }
            429 => {
                assert!(
                    answer.header("retry-after").is_some(),
                    "{:?}",
                    answer.headers
                );
                limited.get_or_insert(n);
            }
            other => panic!("registration {n}: {other} {}", answer.body),
        }
    }
    let limited = limited.expect("30 registrations from one address, never a 429");
    assert!(
        registered <= 10,
        "{registered} registrations before the 429"
    );
    eprintln!("registrations: {registered} admitted, the first 429 at #{limited}");
}

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A device's request on `node` for the cluster's client: (device code, user code).
async fn device_code(cluster: &Cluster, node: &Node) -> (String, String) {
    let resource = cluster.resource();
    let fields = [
        ("client_id", cluster.client_id.as_str()),
        ("scope", SCOPE),
        ("resource", resource.as_str()),
    ];
    let answer = request(
        &node.address,
        "POST",
        "/oauth/device_authorization",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &form(&fields),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body = answer.json();
    let uri = format!("{}/oauth/device", cluster.issuer);
    assert_eq!(body["verification_uri"], uri.as_str(), "{body}");
    let code = |name: &str| body[name].as_str().unwrap().to_owned();
    (code("device_code"), code("user_code"))
}

/// One poll of `node`'s token endpoint with a device code.
async fn device_poll(cluster: &Cluster, node: &Node, device_code: &str) -> Answer {
    token(
        node,
        &[
            ("grant_type", DEVICE_GRANT),
            ("client_id", &cluster.client_id),
            ("device_code", device_code),
        ],
    )
    .await
}

impl Browser<'_> {
    /// Enters `user_code` on the device page (signing in when sent to) and allows it.
    async fn allow_device(&mut self, user_code: &str) {
        let mut page = self.get("/oauth/device").await;
        if page.status == 302 || page.status == 303 {
            let back = query(&location(self.node, &page), "return").expect("a way back");
            let signed_in = self.sign_in(&back).await;
            page = self.get(&target(&location(self.node, &signed_in))).await;
        }
        assert_eq!(page.status, 200, "the entry page: {}", page.body);
        let mut fields = consent_fields(&page.body);
        fields.push(("user_code".into(), user_code.to_lowercase()));
        let pairs: Vec<(&str, &str)> = fields
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let consent = self.post("/oauth/device", &pairs).await;
        assert_eq!(consent.status, 200, "the consent page: {}", consent.body);
        assert!(consent.body.contains(user_code), "{}", consent.body);
        let mut fields = consent_fields(&consent.body);
        fields.push(("decision".into(), "allow".into()));
        let pairs: Vec<(&str, &str)> = fields
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let done = self.post("/oauth/device", &pairs).await;
        assert_eq!(done.status, 200, "{}", done.body);
        assert!(done.body.contains("Device connected"), "{}", done.body);
    }
}

/// Device codes across nodes: a poll too soon on A slows the device down on B (the database
/// keeps the bookkeeping); a code asked for on B and allowed on A (alice's session lives there)
/// is redeemed on B, and replayed on A it is `invalid_grant` and revokes what B issued, on both
/// nodes; another, polled on A and B at once, is redeemed once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_device_code_allowed_on_one_node_is_redeemed_once_across_nodes() {
    let Some(cluster) = Cluster::start("oauth_device").await else {
        return;
    };
    let (a, b) = (&cluster.a, &cluster.b);
    let (slow, _) = device_code(&cluster, a).await;
    assert_error(&device_poll(&cluster, a, &slow).await, 400, "slow_down");
    assert_error(&device_poll(&cluster, b, &slow).await, 400, "slow_down");

    let asked = Instant::now();
    let (first, first_user_code) = device_code(&cluster, b).await;
    let (second, second_user_code) = device_code(&cluster, a).await;
    let mut browser = Browser::on(a);
    browser.allow_device(&first_user_code).await;
    browser.allow_device(&second_user_code).await;
    // Never polled: on time once the interval (5 s) has passed since the request.
    let interval = Duration::from_millis(5200);
    tokio::time::sleep(interval.saturating_sub(asked.elapsed())).await;

    let issued = device_poll(&cluster, b, &first).await;
    let (access, _) = tokens(&issued);
    assert_eq!(
        me(a, &access).await,
        200,
        "a token redeemed on B, read through A"
    );
    assert_error(
        &device_poll(&cluster, a, &first).await,
        400,
        "invalid_grant",
    );
    revoked_by_the_replay(&cluster, &issued).await;

    let (at_a, at_b) = tokio::join!(
        device_poll(&cluster, a, &second),
        device_poll(&cluster, b, &second),
    );
    let (won, lost) = match (at_a.status, at_b.status) {
        (200, 200) => panic!("redeemed twice: {} / {}", at_a.body, at_b.body),
        (200, _) => (Some(at_a), at_b),
        (_, 200) => (Some(at_b), at_a),
        // The replay came while the redemption was issuing: both refused, what it issued
        // revoked.
        _ => (None, at_b),
    };
    assert_error(&lost, 400, "invalid_grant");
    if let Some(won) = won {
        revoked_by_the_replay(&cluster, &won).await;
    }
}
