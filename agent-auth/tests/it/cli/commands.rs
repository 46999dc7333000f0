//! Every command on SQLite and PostgreSQL; errors (one line, non-zero exit, nothing changed),
//! `--help`, database URLs and prefixes.

use super::*;

fn every_command(db: &Db) {
    seed(db);
    let users = cli(db, &["--json", "user", "list"]).ok().json();
    assert_eq!(users[0]["id"], "alice");
    assert_eq!(users[0]["password"], true);
    assert_eq!(users[1]["capabilities"], "*");
    cli(db, &["user", "disable", "bob"]).ok();
    cli(db, &["user", "enable", "bob"]).ok();
    cli_with_stdin(db, &["user", "passwd", "bob"], "bob's\n").ok();
    cli(
        db,
        &["user", "set-role", "bob", "--capabilities", "posts:read"],
    )
    .ok();
    let users = cli(db, &["--json", "user", "list"]).ok().json();
    assert_eq!(users[1]["password"], true);
    assert_eq!(users[1]["capabilities"], serde_json::json!(["posts:read"]));
    cli(db, &["user", "set-role", "bob", "--unrestricted"]).ok();

    let shown = cli(db, &["--json", "agent", "show", "writer"]).ok().json();
    assert_eq!(shown["owner"], "alice");
    let listed = cli(db, &["agent", "list"]).ok().stdout;
    assert!(
        listed.starts_with("SLUG") && listed.contains("writer"),
        "{listed}"
    );

    let created = cli(
        db,
        &[
            "--json",
            "token",
            "create",
            "writer",
            "--label",
            "ci",
            "--expires-in",
            "30d",
            "--capabilities",
            "posts:read",
            "--max-operations",
            "5",
            "--task-id",
            "t-1",
            "--intent",
            "read posts",
        ],
    )
    .ok();
    assert!(created.stderr.contains("cannot be shown again"));
    let token = created.json();
    assert!(
        token["token"]
            .as_str()
            .unwrap()
            .starts_with("agent_writer_")
    );
    assert_eq!(token["info"]["max_operations"], 5);
    let human = cli(
        db,
        &[
            "token",
            "create",
            "writer",
            "--label",
            "laptop",
            "--expires-in",
            "3600",
        ],
    )
    .ok();
    assert!(
        human
            .stdout
            .lines()
            .next()
            .unwrap()
            .starts_with("agent_writer_")
    );
    let tokens = token_ids(db, "writer");
    assert_eq!(tokens.len(), 2);

    let rotated = cli(
        db,
        &[
            "--json",
            "credential",
            "rotate",
            "writer",
            &tokens[0].0,
            "--grace",
            "15m",
        ],
    )
    .ok()
    .json();
    assert_ne!(rotated["info"]["id"], tokens[0].0.as_str());
    cli(db, &["credential", "revoke", "writer", &tokens[1].0]).ok();
    cli(db, &["token", "revoke", "writer", &tokens[0].0]).ok();
    let after = token_ids(db, "writer");
    assert_eq!(after.len(), 3);
    assert!(
        after
            .iter()
            .filter(|(_, revoked)| !revoked.is_null())
            .count()
            == 2
    );
    let all = cli(db, &["token", "revoke-all", "writer"]).ok().stdout;
    assert_eq!(all, "1 token of writer revoked\n");

    cli(
        db,
        &[
            "identity",
            "create",
            "writer",
            "writer-thread-1",
            "--scopes",
            "ws:1",
        ],
    )
    .ok();
    let children = cli(db, &["--json", "child", "list", "writer"]).ok().json();
    assert_eq!(children[0]["slug"], "writer-thread-1");
    assert_eq!(children[0]["scopes"][0], "ws:1");
    cli(db, &["identity", "retire", "writer-thread-1"]).ok();
    assert_eq!(
        cli(db, &["--json", "identity", "list", "writer"])
            .ok()
            .json(),
        Value::Array(vec![])
    );

    cli(db, &["grant", "add", "writer", "bob", "operator"]).ok();
    let grants = cli(db, &["--json", "grant", "list", "writer"]).ok().json();
    assert_eq!(grants[0]["role"], "operator");
    // bob, an operator, may list but not issue.
    cli(db, &["token", "list", "writer", "--as", "bob"]).ok();
    cli(
        db,
        &["token", "create", "writer", "--label", "x", "--as", "bob"],
    )
    .fails_with("may not issue tokens");
    cli(db, &["grant", "remove", "writer", "bob"]).ok();

    cli(db, &["agent", "disable", "writer"]).ok();
    cli(db, &["agent", "enable", "writer"]).ok();
    let trail = cli(db, &["--json", "audit", "writer"]).ok().json();
    let actions: Vec<&str> = trail
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions[0], "agent_created");
    for action in [
        "token_issued",
        "token_rotated",
        "token_revoked",
        "grant_changed",
        "agent_disabled",
        "agent_enabled",
    ] {
        assert!(
            actions.contains(&action),
            "{action} missing from {actions:?}"
        );
    }
    assert!(
        trail
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["outcome"] == "denied" && e["actor"] == "bob"),
        "bob's refused attempt is in the trail"
    );
    let recent = cli(db, &["audit", "writer", "--since", "1h"]).ok().stdout;
    assert!(recent.starts_with("AT"), "{recent}");
    cli(db, &["agent", "delete", "writer"]).ok();
    cli(db, &["agent", "show", "writer"]).fails_with("unknown agent");
    cli(db, &["user", "delete", "bob"]).ok();
    let users = cli(db, &["--json", "user", "list"]).ok().json();
    assert_eq!(users.as_array().unwrap().len(), 1, "{users}");
}

fn errors_change_nothing(db: &Db) {
    seed(db);
    cli(db, &["agent", "create", "other", "--owner", "bob"]).ok();
    cli(db, &["token", "create", "other", "--label", "theirs"]).ok();
    let foreign = token_ids(db, "other")[0].0.clone();
    let before = (
        cli(db, &["--json", "agent", "list"]).ok().stdout,
        cli(db, &["--json", "token", "list", "other"]).ok().stdout,
        cli(db, &["--json", "token", "list", "writer"]).ok().stdout,
    );

    cli(db, &["token", "create", "ghost", "--label", "x"]).fails_with("unknown agent \"ghost\"");
    cli(
        db,
        &[
            "token",
            "create",
            "writer",
            "--label",
            "x",
            "--expires-in",
            "15x",
        ],
    )
    .fails_with("invalid duration \"15x\"");
    cli(db, &["token", "revoke", "writer", &foreign]).fails_with("has no token");
    cli(db, &["agent", "create", "writer", "--owner", "bob"]).fails_with("already exists");
    cli(db, &["agent", "create", "Bad_Slug", "--owner", "bob"]).fails_with("invalid agent slug");
    cli(db, &["agent", "create", "orphan", "--owner", "nobody"]).fails_with("unknown user");
    cli(db, &["grant", "add", "writer", "bob", "emperor"]).fails_with("invalid role");
    cli(db, &["identity", "retire", "writer"]).fails_with("not a child identity");
    cli(db, &["agent"]).fails_with("subcommand");
    cli(db, &["agent", "frobnicate"]).fails_with("unrecognized subcommand");

    let after = (
        cli(db, &["--json", "agent", "list"]).ok().stdout,
        cli(db, &["--json", "token", "list", "other"]).ok().stdout,
        cli(db, &["--json", "token", "list", "writer"]).ok().stdout,
    );
    assert_eq!(before, after, "a failed command changed something");
}

on_each_database!(every_command("every"));

on_each_database!(errors_are_one_line_and_change_nothing = errors_change_nothing("errors"));

#[test]
fn an_unreachable_database_is_one_line_and_a_failure() {
    let missing_dir = Db {
        url: "sqlite:///nonexistent-dir/agent-auth.db".into(),
        _dir: None,
        drop_pg: None,
    };
    cli(&missing_dir, &["migrate"]).fails_with("store unavailable");
    // Any command but migrate and serve refuses to create a database by mistake.
    let dir = tempfile::tempdir().unwrap();
    let typo = Db {
        url: format!("sqlite://{}", dir.path().join("tpyo.db").display()),
        _dir: None,
        drop_pg: None,
    };
    cli(&typo, &["agent", "list"]).fails_with("no database at");
    cli(&typo, &["user", "add", "alice"]).fails_with("no database at");
    assert!(!dir.path().join("tpyo.db").exists());
    let closed_port = Db {
        url: "postgres://postgres@127.0.0.1:1/test".into(),
        _dir: None,
        drop_pg: None,
    };
    cli(&closed_port, &["agent", "list"]).fails_with("store unavailable");
}

/// Every command's `--help` succeeds and documents every argument and option.
#[test]
fn help_is_complete() {
    let commands: &[&[&str]] = &[
        &[],
        &["migrate"],
        &["user"],
        &["user", "add"],
        &["user", "list"],
        &["user", "passwd"],
        &["user", "set-role"],
        &["user", "delete"],
        &["user", "disable"],
        &["user", "enable"],
        &["agent"],
        &["agent", "create"],
        &["agent", "list"],
        &["agent", "show"],
        &["agent", "disable"],
        &["agent", "enable"],
        &["agent", "set-policy"],
        &["agent", "delete"],
        &["token"],
        &["token", "create"],
        &["token", "list"],
        &["token", "revoke"],
        &["token", "revoke-all"],
        &["token", "rotate"],
        &["token", "delegate"],
        &["token", "show"],
        &["task"],
        &["task", "complete"],
        &["child"],
        &["child", "create"],
        &["child", "list"],
        &["child", "retire"],
        // The other words for the same things stay as aliases.
        &["identity", "create"],
        &["credential", "rotate"],
        &["credential", "revoke"],
        &["grant"],
        &["grant", "add"],
        &["grant", "remove"],
        &["grant", "list"],
        &["audit"],
        &["serve"],
    ];
    for command in commands {
        let output = Command::cargo_bin("agent-auth")
            .unwrap()
            .args(*command)
            .arg("--help")
            .output()
            .unwrap();
        assert!(output.status.success(), "{command:?} --help failed");
        let help = String::from_utf8(output.stdout).unwrap();
        assert!(help.contains("Usage: agent-auth"), "{command:?}: {help}");
        // Every entry of the Commands/Arguments/Options lists has a description beside it.
        let lines: Vec<&str> = help.lines().collect();
        let mut in_list = false;
        for (n, line) in lines.iter().enumerate() {
            if line.ends_with(':') && !line.starts_with(' ') {
                in_list = matches!(*line, "Commands:" | "Arguments:" | "Options:");
                continue;
            }
            let entry = line.trim_start();
            let indent = line.len() - entry.len();
            if in_list && !entry.is_empty() && indent < 8 {
                // The description is beside the entry, or on the next, deeper line.
                let beside = entry
                    .split_once("  ")
                    .is_some_and(|(_, d)| !d.trim().is_empty());
                let below = lines.get(n + 1).is_some_and(|next| {
                    let text = next.trim_start();
                    !text.is_empty() && next.len() - text.len() > indent
                });
                assert!(beside || below, "{command:?}: undocumented {entry:?}");
            }
        }
    }
}

/// The database named in an error never shows the URL's password.
#[test]
fn errors_name_the_postgres_database_without_its_password() {
    let Some(db) = Db::postgres("password") else {
        return;
    };
    let (scheme, rest) = db.url.split_once("://").unwrap();
    let (user, host) = rest
        .split_once('@')
        .expect("a user in AGENT_AUTH_TEST_POSTGRES_URL");
    let with_password = Db {
        url: format!(
            "{scheme}://{}:hunter2@{host}",
            user.split(':').next().unwrap()
        ),
        _dir: None,
        drop_pg: None,
    };
    let run = cli(&with_password, &["agent", "list"]);
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
    run.fails_with(&format!("no agent-auth schema in database {scheme}://"));
}

/// clap's errors stay on one line and keep what they say: the missing option, the suggestion.
#[test]
fn argument_errors_keep_their_content_on_one_line() {
    let db = Db::sqlite();
    let run = cli(&db, &["agent", "create", "x3"]);
    assert_eq!(run.code, 2);
    run.fails_with(
        "error: the following required arguments were not provided: --owner <OWNER> (see --help)",
    );
    cli(&db, &["tokn", "list"]).fails_with(
        "error: unrecognized subcommand 'tokn'; a similar subcommand exists: 'token' (see --help)",
    );
    cli(&db, &["token", "create", "w", "--lable", "x"])
        .fails_with("unexpected argument '--lable' found; a similar argument exists: '--label'");
    cli(&db, &["user", "set-role", "bob"]).fails_with("--capabilities <A,B>");
    cli(
        &db,
        &[
            "user",
            "set-role",
            "bob",
            "--unrestricted",
            "--capabilities",
            "a",
        ],
    )
    .fails_with("cannot be used with");
    cli(&db, &["user"]).fails_with(
        "error: a subcommand is required: add, list, passwd, set-role, delete, disable, enable (see --help)",
    );
    cli(&db, &[]).fails_with("subcommands: migrate, user, agent, token");
}

/// `--help` never shows the database URL from the environment (it may hold a password), and
/// says which commands create a database.
#[test]
fn help_hides_the_database_url_and_tells_the_truth() {
    for command in [&["--help"][..], &["agent", "list", "--help"]] {
        let output = Command::cargo_bin("agent-auth")
            .unwrap()
            .env(
                "AGENT_AUTH_DATABASE_URL",
                "postgres://u:s3cret@db.example/app",
            )
            .args(command)
            .output()
            .unwrap();
        assert!(output.status.success());
        let help = String::from_utf8(output.stdout).unwrap();
        assert!(!help.contains("s3cret"), "{command:?}: {help}");
        assert!(help.contains("[env: AGENT_AUTH_DATABASE_URL]"), "{help}");
        assert!(!help.contains("created if missing"), "{help}");
        assert!(help.contains("Only `migrate` and `serve` create"), "{help}");
    }
}

/// Output into a closed pipe (`| head`) ends the command quietly, not with a panic.
#[test]
fn a_closed_stdout_ends_quietly() {
    let db = Db::sqlite();
    seed(&db);
    for _ in 0..3 {
        cli(&db, &["token", "create", "writer", "--label", "many"]).ok();
    }
    let commands: &[&[&str]] = &[
        &["token", "list", "writer"],
        &["--json", "token", "list", "writer"],
        &["agent", "show", "writer"],
        &["user", "list"],
        &["audit", "writer"],
        &["token", "create", "writer", "--label", "piped"],
    ];
    for command in commands {
        let mut child = Command::cargo_bin("agent-auth")
            .unwrap()
            .env_remove("AGENT_AUTH_DATABASE_URL")
            .args(["--database-url", &db.url])
            .args(*command)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Closed before the command has opened the database, let alone printed.
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(output.status.code(), Some(0), "{command:?}: {stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("error"),
            "{command:?}: {stderr}"
        );
    }
    // The token minted into the closed pipe exists (and is in the trail): nothing was cut short.
    assert_eq!(token_ids(&db, "writer").len(), 4);
}

/// An empty list (`--capabilities ''`) or an empty item (`a,,b`) is refused, not taken for
/// "nothing".
fn empty_lists_are_refused(db: &Db) {
    seed(db);
    let before = (
        cli(db, &["--json", "agent", "list"]).ok().stdout,
        cli(db, &["--json", "user", "list"]).ok().stdout,
    );
    cli(
        db,
        &[
            "token",
            "create",
            "writer",
            "--label",
            "x",
            "--capabilities",
            "",
        ],
    )
    .fails_with("--capabilities is empty");
    cli(
        db,
        &[
            "token",
            "create",
            "writer",
            "--label",
            "x",
            "--capabilities",
            "posts:read,,posts:write",
        ],
    )
    .fails_with("--capabilities \"posts:read,,posts:write\" has an empty item");
    cli(
        db,
        &["agent", "create", "other", "--owner", "bob", "--deny", " "],
    )
    .fails_with("--deny is empty");
    cli(
        db,
        &[
            "agent", "create", "other", "--owner", "bob", "--scopes", "a,",
        ],
    )
    .fails_with("--scopes \"a,\" has an empty item");
    cli(
        db,
        &["child", "create", "writer", "writer-t", "--modes", ",x"],
    )
    .fails_with("--modes \",x\" has an empty item");
    cli(db, &["user", "add", "carol", "--capabilities", ""]).fails_with("--capabilities is empty");
    cli(db, &["user", "set-role", "bob", "--capabilities", ""])
        .fails_with("--capabilities is empty");
    assert!(token_ids(db, "writer").is_empty());
    let after = (
        cli(db, &["--json", "agent", "list"]).ok().stdout,
        cli(db, &["--json", "user", "list"]).ok().stdout,
    );
    assert_eq!(before, after, "a refused list changed something");
}

#[test]
fn empty_lists_are_refused_on_sqlite() {
    empty_lists_are_refused(&Db::sqlite());
}

/// An invalid token prefix is named in one line, before the database is touched.
#[test]
fn an_invalid_token_prefix_is_refused() {
    let db = Db::sqlite();
    cli(&db, &["migrate", "--token-prefix", "Bad_"])
        .fails_with("--token-prefix \"Bad_\" (or AGENT_AUTH_TOKEN_PREFIX): invalid token prefix");
    assert!(!std::path::Path::new(db.url.trim_start_matches("sqlite://")).exists());
}

/// A URL of a database this build does not support is refused, not taken for a file name.
#[test]
fn other_database_schemes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        "mysql://u:p@localhost/db",
        "mariadb://localhost/db",
        "redis://x",
    ] {
        let db = Db {
            url: url.into(),
            _dir: None,
            drop_pg: None,
        };
        let run = Command::cargo_bin("agent-auth")
            .unwrap()
            .current_dir(dir.path())
            .env_remove("AGENT_AUTH_DATABASE_URL")
            .args(["--database-url", &db.url, "migrate"])
            .output()
            .unwrap();
        let run = Run {
            code: run.status.code().unwrap_or(-1),
            stdout: String::from_utf8(run.stdout).unwrap(),
            stderr: String::from_utf8(run.stderr).unwrap(),
        };
        assert!(run.stderr.contains("postgres://"), "{}", run.stderr);
        run.fails_with("unsupported database URL scheme");
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "a file was created"
    );
}

/// A NUL byte in a name or a path is bad input (401, 404 or 422), never "the store is
/// unavailable" — PostgreSQL cannot hold one, and its refusal is not an outage.
#[test]
fn a_nul_byte_is_bad_input_not_an_outage() {
    let Some(db) = Db::postgres("nul") else {
        return;
    };
    seed(&db);
    let (mut server, address, _stdout) = serve(&db, &[]);
    assert_eq!(login(&address, "alice%00", "s3cret"), 401);
    let cookie = session_cookie(&address, "alice", "s3cret");
    for (method, path) in [
        ("GET", "/api/agents/%00"),
        ("DELETE", "/api/agents/writer/tokens/%00"),
        ("DELETE", "/api/agents/writer/grants/%00"),
    ] {
        let status = status_of(
            &address,
            &format!(
                "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nCookie: {cookie}\r\n\r\n"
            ),
        );
        assert!((400..500).contains(&status), "{method} {path}: {status}");
    }
    let _ = server.kill();
    let _ = server.wait();
}

/// `audit --last N` shows the newest N events, oldest first, and says that there may be more.
#[test]
fn the_audit_trail_is_read_a_page_at_a_time() {
    let db = Db::sqlite();
    seed(&db);
    for label in ["a", "b", "c"] {
        cli(&db, &["token", "create", "writer", "--label", label]).ok();
    }
    let all = cli(&db, &["--json", "audit", "writer"]).ok().json();
    let all = all.as_array().unwrap().clone();
    let run = cli(&db, &["--json", "audit", "writer", "--last", "2"]).ok();
    assert_eq!(run.json().as_array().unwrap()[..], all[all.len() - 2..]);
    assert!(run.stderr.contains("the newest 2 events"), "{}", run.stderr);
}
