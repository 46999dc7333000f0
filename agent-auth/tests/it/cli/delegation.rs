//! An orchestrated task: delegated, completed and audited.

use super::*;

/// An orchestrator's task token for a worker, the worker's delegation over
/// `POST /api/delegations` to a sub-agent, the sub-agent's requests through the real server
/// (its principal shows the chain and the task), a wider delegation refused by name, the task
/// completed on the CLI (both tokens refused), a subtree revoked with `--tree`, and the trail.
fn an_orchestrated_task_is_delegated_completed_and_audited(db: &Db) {
    cli(db, &["migrate"]).ok();
    cli(db, &["user", "add", "alice", "--capabilities", "posts:*"]).ok();
    cli(
        db,
        &[
            "user",
            "add",
            "carol",
            "--capabilities",
            "posts:read,posts:write",
        ],
    )
    .ok();
    let conductor = cli(
        db,
        &[
            "--json",
            "agent",
            "create",
            "conductor",
            "--owner",
            "alice",
            "--orchestrator",
        ],
    )
    .ok()
    .json();
    assert_eq!(conductor["is_orchestrator"], true, "{conductor}");
    cli(db, &["agent", "create", "worker", "--owner", "alice"]).ok();
    cli(db, &["agent", "create", "helper", "--owner", "alice"]).ok();
    let agent_id = |slug: &str| {
        cli(db, &["--json", "agent", "show", slug]).ok().json()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (conductor_id, worker_id) = (agent_id("conductor"), agent_id("worker"));
    // carol answers for the worker: task tokens are minted on behalf of its owner or a grantee.
    cli(db, &["grant", "add", "worker", "carol", "viewer"]).ok();

    // The orchestrator mints the worker's task token on behalf of carol.
    cli(
        db,
        &[
            "token",
            "create",
            "worker",
            "--label",
            "t",
            "--delegated-by",
            "carol",
        ],
    )
    .fails_with("--orchestrator");
    let task = cli(
        db,
        &[
            "--json",
            "token",
            "create",
            "worker",
            "--label",
            "launch",
            "--orchestrator",
            "conductor",
            "--delegated-by",
            "carol",
            "--task-id",
            "launch-1",
            "--environment",
            "staging",
            "--capabilities",
            "posts:read,posts:write",
            "--max-operations",
            "20",
        ],
    )
    .ok()
    .json();
    let worker_token = task["token"].as_str().unwrap().to_owned();
    let worker_token_id = task["info"]["id"].as_str().unwrap().to_owned();
    assert_eq!(task["info"]["orchestrator"], conductor_id.as_str());
    assert_eq!(task["info"]["delegated_by"], "carol");
    assert_eq!(task["info"]["environment"], "staging");
    cli(
        db,
        &[
            "token",
            "create",
            "worker",
            "--label",
            "wide",
            "--orchestrator",
            "conductor",
            "--delegated-by",
            "carol",
            "--capabilities",
            "posts:delete",
        ],
    )
    .fails_with("capabilities outside the orchestrator's policy or the delegating user's role: posts:delete");
    let listed = cli(db, &["token", "list", "worker"]).ok().stdout;
    assert!(
        listed.contains("conductor") && listed.contains("carol") && listed.contains("staging"),
        "{listed}"
    );

    let (mut server, address, _stdout) = serve(db, &[]);
    // The worker delegates, narrower, to the helper, with its own bearer token.
    let (status, head, child) = post_json(
        &address,
        "/api/delegations",
        &worker_token,
        r#"{"agent": "helper", "label": "sub", "capabilities": ["posts:read"], "max_operations": 3}"#,
    );
    assert_eq!(status, 201, "{child}");
    assert_eq!(header(&head, "cache-control"), Some("no-store"));
    assert_eq!(child["delegation_depth"], 1);
    assert_eq!(child["task_id"], "launch-1");
    let helper_token = child["token"].as_str().unwrap().to_owned();
    assert_eq!(get(&address, "/demo/posts", &helper_token), 200);
    let (status, me) = get_json(&address, "/demo/me", &helper_token);
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["agent"], "helper");
    assert_eq!(me["auth_source"], "delegated");
    assert_eq!(me["delegation_chain"], serde_json::json!(["worker"]));
    assert_eq!(me["task"]["task_id"], "launch-1");
    assert_eq!(me["task"]["environment"], "staging");
    assert_eq!(me["task"]["delegated_by"], "carol");
    assert_eq!(me["may_write_posts"], false, "narrowed");

    // Wider than the parent: refused, naming what exceeds; over HTTP and on the CLI.
    let (status, _, wider) = post_json(
        &address,
        "/api/delegations",
        &worker_token,
        r#"{"agent": "helper", "label": "wide", "capabilities": ["posts:delete"]}"#,
    );
    assert_eq!(status, 403, "{wider}");
    assert_eq!(wider["error"], "exceeds_parent");
    assert_eq!(
        wider["message"],
        "capabilities outside the parent token's ceiling: posts:delete"
    );
    let (status, _, unknown) = post_json(
        &address,
        "/api/delegations",
        &worker_token,
        r#"{"agent": "helper", "label": "x", "capabilites": ["posts:read"]}"#,
    );
    assert_eq!(status, 422, "unknown fields are refused: {unknown}");
    cli_with_token(
        db,
        &[
            "token",
            "delegate",
            "helper",
            "--label",
            "wide",
            "--capabilities",
            "posts:delete",
        ],
        &worker_token,
    )
    .fails_with("capabilities outside the parent token's ceiling: posts:delete");
    cli(db, &["token", "delegate", "helper", "--label", "x"]).fails_with("no parent token");
    let by_env = cli_with_token(
        db,
        &[
            "token",
            "delegate",
            "helper",
            "--label",
            "cli",
            "--expires-in",
            "15m",
        ],
        &worker_token,
    )
    .ok();
    assert!(by_env.stdout.contains("depth: 1"), "{}", by_env.stdout);
    assert!(by_env.stderr.contains("shown once"), "{}", by_env.stderr);
    let by_stdin = cli_with_stdin(
        db,
        &[
            "--json",
            "token",
            "delegate",
            "helper",
            "--label",
            "stdin",
            "--token-stdin",
        ],
        &format!("{worker_token}\n"),
    )
    .ok()
    .json();
    assert_eq!(
        by_stdin["info"]["delegation_parent"],
        worker_token_id.as_str()
    );
    let helper_tokens = cli(db, &["--json", "token", "list", "helper"]).ok().json();
    let sub = &helper_tokens.as_array().unwrap()[0];
    assert_eq!(
        (
            sub["delegation_depth"].as_u64(),
            sub["delegation_parent"].as_str(),
            sub["task_id"].as_str(),
            sub["environment"].as_str(),
            sub["delegated_by"].as_str()
        ),
        (
            Some(1),
            Some(worker_token_id.as_str()),
            Some("launch-1"),
            Some("staging"),
            Some("carol")
        )
    );
    let shown = cli(
        db,
        &["token", "show", "helper", sub["id"].as_str().unwrap()],
    )
    .ok()
    .stdout;
    assert!(
        shown.contains("depth: 1") && shown.contains("task: launch-1"),
        "{shown}"
    );

    // Completing the task ends the worker's token and everything delegated from it.
    let completed = cli(db, &["task", "complete", "launch-1"]).ok().stdout;
    assert!(
        completed.contains("task launch-1 completed: 4 tokens ended"),
        "{completed}"
    );
    refused_within_the_bound(&address, "/demo/posts", &worker_token);
    refused_within_the_bound(&address, "/demo/posts", &helper_token);
    // `token list` shows them ended, not live: the status column says why.
    let listed = cli(db, &["--json", "token", "list", "worker"]).ok().json();
    let statuses: Vec<_> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["status"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        !statuses.is_empty() && statuses.iter().all(|s| s == "completed"),
        "{listed}"
    );
    let table = cli(db, &["token", "list", "worker"]).ok().stdout;
    assert!(
        table.contains("STATUS") && table.contains("completed") && !table.contains("live"),
        "{table}"
    );

    // Another chain, two levels deep; revoking its root with --tree refuses all of it.
    let root = cli(db, &["token", "create", "worker", "--label", "other"]).ok();
    let root_token = root.stdout.lines().next().unwrap().to_owned();
    let root_id = cli(db, &["--json", "token", "list", "worker"])
        .ok()
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["label"] == "other")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _, first) = post_json(
        &address,
        "/api/delegations",
        &root_token,
        r#"{"agent": "helper", "label": "level-1", "expires_in": "10m"}"#,
    );
    assert_eq!(status, 201, "{first}");
    let first = first["token"].as_str().unwrap().to_owned();
    let (status, _, second) = post_json(
        &address,
        "/api/delegations",
        &first,
        r#"{"agent": "helper", "label": "level-2", "expires_in": 60}"#,
    );
    assert_eq!(
        (status, second["delegation_depth"].as_u64()),
        (201, Some(2)),
        "{second}"
    );
    let second = second["token"].as_str().unwrap().to_owned();
    assert_eq!(get(&address, "/demo/posts", &second), 200);
    let revoked = cli(db, &["token", "revoke", "worker", &root_id, "--tree"])
        .ok()
        .stdout;
    assert!(
        revoked.contains(&format!(
            "token {root_id} of worker revoked with 2 delegated tokens"
        )),
        "{revoked}"
    );
    for token in [&root_token, &first, &second] {
        refused_within_the_bound(&address, "/demo/posts", token);
    }

    // The trail: the delegations issued, the requests with their chain, the completion.
    #[cfg(unix)]
    {
        let _ = Command::new("kill")
            .args(["-TERM", &server.id().to_string()])
            .status();
        assert!(server.wait().unwrap().success());
        let trail = cli(db, &["--json", "audit", "helper"]).ok().json();
        let trail = trail.as_array().unwrap();
        let chain = serde_json::json!([worker_id]);
        assert!(
            trail.iter().any(|e| e["action"] == "request"
                && e["outcome"] == "success"
                && e["delegation_chain"] == chain
                && e["task_id"] == "launch-1"),
            "a request with its chain: {trail:?}"
        );
        assert!(
            trail.iter().any(|e| e["action"] == "token_issued"
                && e["outcome"] == "success"
                && e["delegation_chain"] == chain
                && e["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains(&worker_token_id))),
            "the delegation with its parent token: {trail:?}"
        );
        assert!(
            !trail
                .iter()
                .any(|e| e["action"] == "token_issued" && e["outcome"] == "denied"),
            "a refusal is on the parent's side, not the target's: {trail:?}"
        );
        let worker_trail = cli(db, &["--json", "audit", "worker"]).ok().json();
        let worker_trail = worker_trail.as_array().unwrap();
        assert!(
            worker_trail.iter().any(|e| e["action"] == "token_issued"
                && e["outcome"] == "denied"
                && e["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("posts:delete") && d.contains("(target helper)"))),
            "the refused delegation, under the parent token's agent: {worker_trail:?}"
        );
        assert!(
            worker_trail.iter().any(|e| e["action"] == "task_completed"
                && e["actor"] == "alice"
                && e["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("4 tokens ended"))),
            "{worker_trail:?}"
        );
        assert!(
            worker_trail.iter().any(|e| e["action"] == "token_revoked"
                && e["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("with 2 delegated tokens"))),
            "{worker_trail:?}"
        );
        let table = cli(db, &["audit", "helper"]).ok().stdout;
        assert!(table.contains("GET /demo/posts 200"), "{table}");
    }
    let _ = server.kill();
    let _ = server.wait();
}

on_each_database!(an_orchestrated_task_is_delegated_completed_and_audited(
    "delegation"
));
