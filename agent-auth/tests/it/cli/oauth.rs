//! OAuth clients from the command line: an agent given a client secret (`client register
//! --agent`), on SQLite and PostgreSQL.

use super::*;

on_each_database!(an_agent_is_given_a_client_secret("cli_agent_client"));

/// `client register --agent` makes the agent's client confidential, prints its secret once,
/// replaces it when run again and lifts a revocation; it refuses an unknown agent and the
/// options of another kind of client.
fn an_agent_is_given_a_client_secret(db: &Db) {
    seed(db);
    let first = cli(db, &["--json", "client", "register", "--agent", "writer"])
        .ok()
        .json();
    assert_eq!(first["client_id"], "writer");
    assert_eq!(first["kind"], "agent");
    assert_eq!(first["auth"], "client_secret_basic");
    assert_eq!(first["status"], "active");
    let secret = first["client_secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("cs_") && secret.len() > 40, "{secret}");
    // Shown once: never again, nor its hash.
    let shown = cli(db, &["--json", "client", "show", "writer"]).ok();
    assert!(!shown.stdout.contains(&secret), "{}", shown.stdout);
    assert!(shown.json().get("client_secret").is_none());
    let listed = cli(db, &["client", "list"]).ok();
    assert!(listed.stdout.contains("writer"), "{}", listed.stdout);
    // For a person, with a warning.
    let table = cli(db, &["client", "register", "--agent", "writer"]).ok();
    assert!(table.stderr.contains("shown once"), "{}", table.stderr);
    let again = cli(db, &["--json", "client", "register", "--agent", "writer"])
        .ok()
        .json();
    assert_ne!(again["client_secret"], first["client_secret"], "a new one");
    cli(db, &["client", "revoke", "writer"]).ok();
    let revived = cli(db, &["--json", "client", "register", "--agent", "writer"])
        .ok()
        .json();
    assert_eq!(revived["status"], "active");

    cli(db, &["client", "register", "--agent", "nobody"]).fails_with("unknown agent");
    cli(
        db,
        &["client", "register", "--agent", "writer", "--name", "x"],
    )
    .fails_with("cannot be used with");
    cli(db, &["client", "register"]).fails_with("--name <NAME>");
}
