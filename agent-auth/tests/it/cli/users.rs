//! Users: passwords, roles, deletion, look-alike ids, duplicates ignoring case, and what
//! deleting and revoking say.

use super::*;

/// `user passwd` replaces the password the server checks (how a lost password is reset).
#[test]
fn user_passwd_replaces_the_password_the_server_checks() {
    let db = Db::sqlite();
    seed(&db);
    cli_with_stdin(&db, &["user", "passwd", "alice"], "n3w-pass\n").ok();
    cli_with_stdin(&db, &["user", "passwd", "nobody"], "x\n").fails_with("unknown user \"nobody\"");
    cli_with_stdin(&db, &["user", "passwd", "alice"], "\n")
        .fails_with("password on stdin is empty");
    let (mut server, address, _stdout) = serve(&db, &[]);
    assert_eq!(login(&address, "alice", "s3cret"), 401);
    assert_eq!(login(&address, "alice", "n3w-pass"), 303);
    let _ = server.kill();
    let _ = server.wait();
}

/// Users: a changed role narrows their agents, an unknown user is an error, and a user who owns
/// agents or holds grants is not deleted.
fn users_are_managed(db: &Db) {
    seed(db);
    for command in [
        &["user", "disable", "nobody"][..],
        &["user", "enable", "nobody"],
        &["user", "delete", "nobody"],
        &["user", "set-role", "nobody", "--unrestricted"],
    ] {
        cli(db, command).fails_with("unknown user \"nobody\"");
    }
    let token = cli(db, &["token", "create", "writer", "--label", "role"]).ok();
    let token = token.stdout.lines().next().unwrap().to_owned();
    cli(
        db,
        &["user", "set-role", "alice", "--capabilities", "posts:read"],
    )
    .ok();
    let users = cli(db, &["--json", "user", "list"]).ok().json();
    assert_eq!(users[0]["capabilities"], serde_json::json!(["posts:read"]));
    let (mut server, address, _stdout) = serve(db, &[]);
    assert_eq!(get(&address, "/demo/posts", &token), 200);
    cli(
        db,
        &[
            "user",
            "set-role",
            "alice",
            "--capabilities",
            "profile:read",
        ],
    )
    .ok();
    within_the_bound(&address, "/demo/posts", &token, 403);
    let _ = server.kill();
    let _ = server.wait();

    cli(db, &["user", "delete", "alice"]).fails_with("user alice owns 1 agent (writer)");
    cli(db, &["grant", "add", "writer", "bob", "viewer"]).ok();
    cli(db, &["user", "delete", "bob"]).fails_with("user bob has a role on 1 agent (writer)");
    assert_eq!(
        cli(db, &["--json", "user", "list"])
            .ok()
            .json()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    cli(db, &["grant", "remove", "writer", "bob"]).ok();
    cli(db, &["user", "delete", "bob"]).ok();
    cli(db, &["user", "delete", "bob"]).fails_with("unknown user \"bob\"");
}

on_each_database!(users_are_managed("users"));

/// Deleting an agent with child agents or live tokens needs `--yes`; counts are singular for
/// one; revoking twice says so; `--json token revoke-all` counts.
fn deleting_and_revoking_say_what_they_do(db: &Db) {
    seed(db);
    cli(db, &["token", "create", "writer", "--label", "a"]).ok();
    cli(db, &["child", "create", "writer", "writer-t1"]).ok();
    // Someone who may not delete it is told that first, and the attempt is in the trail.
    cli(db, &["agent", "delete", "writer", "--as", "bob"]).fails_with("may not manage");
    cli(db, &["agent", "delete", "writer"])
        .fails_with("writer has 1 child agent and 1 live token; pass --yes to delete it with them");
    cli(db, &["agent", "show", "writer"]).ok();
    cli(db, &["child", "create", "writer", "writer-t2"]).ok();
    cli(db, &["token", "create", "writer-t2", "--label", "b"]).ok();
    cli(db, &["agent", "delete", "writer"]).fails_with("2 child agents and 2 live tokens");

    let id = token_ids(db, "writer")[0].0.clone();
    let first = cli(db, &["token", "revoke", "writer", &id]).ok().stdout;
    assert_eq!(first, format!("token {id} of writer revoked\n"));
    let again = cli(db, &["token", "revoke", "writer", &id]).ok().stdout;
    assert!(
        again.starts_with(&format!("token {id} of writer was already revoked at 20")),
        "{again}"
    );
    let json = cli(db, &["--json", "token", "revoke", "writer", &id])
        .ok()
        .json();
    assert_eq!(json["already_revoked"], true);
    let revoked = cli(db, &["--json", "token", "revoke-all", "writer-t2"])
        .ok()
        .json();
    assert_eq!(revoked["revoked"], 1);
    let none = cli(db, &["token", "revoke-all", "writer-t2"]).ok().stdout;
    assert_eq!(none, "0 tokens of writer-t2 revoked\n");

    cli(db, &["agent", "delete", "writer"]).fails_with("writer has 2 child agents; pass --yes");
    cli(db, &["identity", "retire", "writer-t1"]).ok();
    cli(db, &["identity", "retire", "writer-t2"]).ok();
    // Only revoked tokens left: nothing live goes with it.
    cli(db, &["agent", "delete", "writer"]).ok();
    cli(db, &["agent", "create", "second", "--owner", "alice"]).ok();
    cli(db, &["token", "create", "second", "--label", "c"]).ok();
    cli(db, &["agent", "delete", "second", "--yes"]).ok();
    cli(db, &["agent", "show", "second"]).fails_with("unknown agent");
}

on_each_database!(deleting_and_revoking_say_what_they_do("delete"));

/// User ids are plain: no look-alike letters of another script, no invisible or bidi
/// characters, no spaces, and no second id differing only in case.
#[test]
fn user_ids_refuse_look_alikes_and_hidden_characters() {
    let db = Db::sqlite();
    seed(&db);
    for id in [
        "\u{430}lice", // Cyrillic а
        "alice\u{200b}",
        "\u{202e}ecila",
        "alice ",
        "ALICE",
        ".alice",
    ] {
        cli(&db, &["user", "add", id]).fails_with("user");
    }
    let users = cli(&db, &["--json", "user", "list"]).ok().json();
    assert_eq!(users.as_array().unwrap().len(), 2, "{users}");
    cli(&db, &["user", "add", "carol.o'hara"]).fails_with("A-Za-z0-9");
    cli(&db, &["user", "add", "carol@example.com"]).ok();
}

/// Two `user add` of ids differing only in case, at once: one of them is refused (the check
/// before the insert could not see the other; the database's index does).
#[test]
fn concurrent_case_only_duplicates_are_refused() {
    let db = Db::sqlite();
    seed(&db);
    for n in 0..5 {
        let (upper, lower) = (format!("Carol{n}"), format!("carol{n}"));
        let url = db.url.clone();
        let add = move |id: String| {
            let url = url.clone();
            std::thread::spawn(move || {
                Command::cargo_bin("agent-auth")
                    .unwrap()
                    .args(["--database-url", &url, "user", "add", &id])
                    .output()
                    .unwrap()
                    .status
                    .success()
            })
        };
        let (a, b) = (add(upper), add(lower));
        let added = [a.join().unwrap(), b.join().unwrap()];
        assert_eq!(
            added.iter().filter(|ok| **ok).count(),
            1,
            "round {n}: {added:?}"
        );
    }
}

/// A password reset signs out whoever signed in with the old password: the session's stamp no
/// longer matches the user's.
#[test]
fn a_password_reset_ends_the_sessions_of_the_old_password() {
    let db = Db::sqlite();
    seed(&db);
    let (mut server, address, _stdout) = serve(&db, &[]);
    let cookie = session_cookie(&address, "alice", "s3cret");
    let me = || {
        status_of(
            &address,
            &format!(
                "GET /api/me HTTP/1.1\r\nHost: {address}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
            ),
        )
    };
    assert_eq!(me(), 200);
    cli(
        &db,
        &["user", "set-role", "alice", "--capabilities", "posts:*"],
    )
    .ok();
    assert_eq!(me(), 200, "a role change keeps the session");
    cli_with_stdin(&db, &["user", "passwd", "alice"], "n3w-pass\n").ok();
    assert_eq!(me(), 401, "the old password's session is over");
    assert_eq!(login(&address, "alice", "n3w-pass"), 303);
    let _ = server.kill();
    let _ = server.wait();
}
