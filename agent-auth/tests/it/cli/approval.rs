//! A supervised agent's payment waits for an approval given on the CLI.

use super::*;

/// A supervised agent's payment through the real server waits for a person: refused with an
/// approval id, listed by the CLI with its details, approved there by an admin (not the owner),
/// admitted once, then asked for anew; the trail has every step in order.
fn a_supervised_agents_payment_waits_for_an_approval_given_on_the_cli(db: &Db) {
    cli(db, &["migrate"]).ok();
    for user in ["olga", "adam", "vera"] {
        cli(db, &["user", "add", user]).ok();
    }
    cli(
        db,
        &[
            "agent",
            "create",
            "payer",
            "--owner",
            "olga",
            "--type",
            "supervised",
        ],
    )
    .ok();
    cli(db, &["grant", "add", "payer", "adam", "admin"]).ok();
    cli(db, &["grant", "add", "payer", "vera", "operator"]).ok();
    let token = cli(db, &["token", "create", "payer", "--label", "e2e"]).ok();
    let token = token.stdout.lines().next().unwrap().to_owned();
    let (mut server, address, _stdout) = serve(db, &[]);
    let payment = r#"{"amount": 50, "currency": "EUR", "to": "ACME"}"#;

    let (status, head, body) = post_json(&address, "/demo/payments", &token, payment);
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "approval_required");
    assert_eq!(body["binding_message"], "Pay 50 EUR to ACME");
    let id = body["approval_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("apr_"), "{id}");
    assert_eq!(header(&head, "approval-id"), Some(id.as_str()));
    assert_eq!(
        header(&head, "www-authenticate"),
        Some(format!("bearer error=\"approval_required\", approval_id=\"{id}\"").as_str())
    );
    let (status, _, again) = post_json(&address, "/demo/payments", &token, payment);
    assert_eq!(
        (status, again["approval_id"].as_str()),
        (403, Some(id.as_str())),
        "no duplicate"
    );

    let listed = cli(db, &["--json", "approval", "list", "--status", "pending"])
        .ok()
        .json();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["agent"], "payer");
    assert_eq!(listed[0]["capability"], "payments:send");
    assert_eq!(listed[0]["details"]["amount"], 50);
    assert_eq!(listed[0]["details"]["to"], "ACME");
    let table = cli(db, &["approval", "list", "--agent", "payer"])
        .ok()
        .stdout;
    assert!(
        table.contains(&id) && table.contains("Pay 50 EUR to ACME"),
        "{table}"
    );

    cli(db, &["approval", "approve", &id, "--as", "vera"]).fails_with("may not decide approvals");
    let approved = cli(db, &["approval", "approve", &id, "--as", "adam"])
        .ok()
        .stdout;
    assert!(
        approved.contains(&format!("approval {id} approved: 1 use")),
        "{approved}"
    );

    let (status, _, paid) = post_json(&address, "/demo/payments", &token, payment);
    assert_eq!(status, 201, "{paid}");
    assert_eq!(paid["paid"]["to"], "ACME");
    let (status, _, next) = post_json(&address, "/demo/payments", &token, payment);
    assert_eq!(status, 403, "{next}");
    assert_eq!(next["error"], "approval_required");
    assert_ne!(
        next["approval_id"].as_str(),
        Some(id.as_str()),
        "spent: a new approval"
    );
    let second = next["approval_id"].as_str().unwrap().to_owned();
    let shown = cli(db, &["--json", "approval", "show", &second])
        .ok()
        .json();
    assert_eq!(
        (
            shown["status"].as_str(),
            shown["details"]["currency"].as_str()
        ),
        (Some("pending"), Some("EUR"))
    );
    // The task and orchestrator of the asking token are shown (none for this token).
    let fields = shown.as_object().unwrap();
    assert!(
        fields.contains_key("task_id") && fields.contains_key("orchestrator"),
        "{shown}"
    );
    let table = cli(db, &["approval", "show", &second]).ok().stdout;
    assert!(
        table.contains("\ntask_id:") && table.contains("\norchestrator:"),
        "{table}"
    );
    let denied = cli(db, &["approval", "deny", &second, "--as", "adam"])
        .ok()
        .stdout;
    assert!(
        denied.contains(&format!("approval {second} denied")),
        "{denied}"
    );
    let (status, _, refused) = post_json(&address, "/demo/payments", &token, payment);
    assert_eq!(
        (status, refused["error"].as_str()),
        (403, Some("approval_denied"))
    );
    cli(db, &["approval", "approve", &second, "--as", "adam"]).fails_with("is denied, not pending");
    cli(db, &["approval", "deny", "apr_0000"]).fails_with("unknown approval");
    cli(db, &["approval", "list", "--status", "waiting"]).fails_with("invalid status");
    // A stranger learns nothing from an id: unknown, as for one that names none.
    cli(db, &["user", "add", "stan"]).ok();
    let hidden = cli(db, &["approval", "show", &id, "--as", "stan"]);
    assert!(!hidden.stderr.contains("payer"), "{}", hidden.stderr);
    hidden.fails_with("unknown approval");
    cli(db, &["approval", "revoke", &second, "--as", "adam"]).fails_with("not approved");
    cli(db, &["approval", "list", "--last", "1001"]).fails_with("at most 1000");
    // The example given lies within an approval's bounds (not 30d, 2w).
    let bad_window = cli(db, &["approval", "approve", &second, "--for", "xyz"]);
    assert!(!bad_window.stderr.contains("2w"), "{}", bad_window.stderr);
    bad_window.fails_with("12h or 1d (at most 1d)");
    let purged = cli(db, &["approval", "purge", "--older-than", "30d"]).ok();
    assert!(
        purged.stdout.contains("0 approvals purged"),
        "{}",
        purged.stdout
    );

    // A graceful stop flushes the server's audit events.
    #[cfg(unix)]
    {
        let _ = Command::new("kill")
            .args(["-TERM", &server.id().to_string()])
            .status();
        assert!(server.wait().unwrap().success());
        let trail = cli(db, &["--json", "audit", "payer"]).ok().json();
        let steps: Vec<(String, String)> = trail
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| {
                e["action"].as_str().unwrap().starts_with("approval_") && e["outcome"] == "success"
            })
            .map(|e| {
                (
                    e["action"].as_str().unwrap().to_owned(),
                    e["actor"].as_str().unwrap_or("-").to_owned(),
                )
            })
            .collect();
        let step = |action: &str, actor: &str| (action.to_owned(), actor.to_owned());
        assert_eq!(
            steps,
            [
                step("approval_requested", "olga"),
                step("approval_granted", "adam"),
                step("approval_used", "olga"),
                step("approval_requested", "olga"),
                step("approval_denied", "adam"),
            ]
        );
        assert!(
            trail
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["action"] == "approval_granted"
                    && e["outcome"] == "denied"
                    && e["actor"] == "vera"),
            "the refused attempt is recorded"
        );
    }
    let _ = server.kill();
    let _ = server.wait();
}

on_each_database!(a_supervised_agents_payment_waits_for_an_approval_given_on_the_cli("approval"));
