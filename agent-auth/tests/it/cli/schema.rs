//! The schema: only `migrate` creates or upgrades it; an application's database needs the user
//! table; a previous release's database is upgraded and then logs user changes.

use super::*;

/// A database whose schema is the library's first version (agents and tokens), as an earlier
/// build left it.
fn version_1(db: &Db) {
    use sha2::{Digest, Sha256};
    let v1 = if db.url.starts_with("postgres") {
        include_str!("../../../../migrations/postgres/0001_agents_and_tokens.sql")
    } else {
        include_str!("../../../../migrations/sqlite/0001_agents_and_tokens.sql")
    };
    let checksum = hex::encode(Sha256::digest(v1.as_bytes()));
    db_sql(
        db,
        &format!(
            "{v1};\nCREATE TABLE agent_auth_schema_migrations (version BIGINT PRIMARY KEY, \
             description TEXT NOT NULL, checksum TEXT NOT NULL, applied_at BIGINT NOT NULL);\n\
             INSERT INTO agent_auth_schema_migrations VALUES (1, 'agents and tokens', \
             '{checksum}', 0)"
        ),
    );
}

/// Only `migrate` (and `serve`) create or upgrade the schema: every other command on a
/// database without it, with an older or a newer one, fails in one line and changes nothing.
fn only_migrate_creates_the_schema(db: &Db) {
    let commands: &[&[&str]] = &[
        &["agent", "list"],
        &["user", "list"],
        &["user", "add", "alice"],
        &["token", "list", "writer"],
        &["--json", "audit", "writer"],
    ];
    for command in commands {
        let run = cli(db, command);
        assert!(
            run.stderr.contains("`agent-auth migrate`"),
            "{}",
            run.stderr
        );
        run.fails_with("error: no agent-auth schema in database ");
    }
    assert_eq!(table_count(db), 0, "a command created tables");

    version_1(db);
    let tables = table_count(db);
    let run = cli(db, &["agent", "list"]);
    assert!(
        run.stderr.contains("(version 1, this build's is "),
        "{}",
        run.stderr
    );
    run.fails_with("is older than this agent-auth");
    let run = cli(db, &["agent", "list"]);
    assert!(
        run.stderr
            .trim_end()
            .ends_with("); upgrade it with `agent-auth migrate`"),
        "{}",
        run.stderr
    );
    assert_eq!(table_count(db), tables, "a command upgraded the schema");

    cli(db, &["migrate"]).ok();
    assert_eq!(cli(db, &["agent", "list"]).ok().stdout, "(none)\n");
    db_sql(
        db,
        "INSERT INTO agent_auth_schema_migrations VALUES (99, 'future', 'x', 0)",
    );
    cli(db, &["agent", "list"]).fails_with("is newer than this agent-auth (version 99");
    cli(db, &["migrate"]).fails_with("newer than this build");
}

on_each_database!(only_migrate_creates_the_schema("schema"), empty);

/// The library's tables without the CLI's user table (an application created them): the CLI
/// says what is missing instead of failing on a query.
fn an_application_database_needs_the_user_table(db: &Db) {
    let url = db.url.clone();
    std::thread::spawn(move || {
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            use tower_agent_auth::store::{MemoryUserDirectory, PgStore, SqliteStore, StoreConfig};
            let config = StoreConfig::new(
                tower_agent_auth::token::TokenFormat::new("agent").unwrap(),
                MemoryUserDirectory::new(),
            );
            if url.starts_with("postgres") {
                PgStore::connect(&url, config).await.unwrap();
            } else {
                SqliteStore::open(&url, config).await.unwrap();
            }
        })
    })
    .join()
    .unwrap();
    cli(db, &["agent", "list"]).fails_with("no agent-auth user table in database");
    cli(db, &["migrate"]).ok();
    cli(db, &["user", "add", "alice"]).ok();
}

on_each_database!(an_application_database_needs_the_user_table("appdb"));

/// The database as the previous release left it: the library's schema 10 and the user table's
/// version 2, with a user `bob`.
fn previous_release(db: &Db) {
    use sha2::{Digest, Sha256};
    let dir = if db.url.starts_with("postgres") {
        "postgres"
    } else {
        "sqlite"
    };
    // The library's migrations, and this package's own (the user table).
    let package = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = package.join("../migrations");
    let record = |table: &str, version: usize, text: &str| {
        format!(
            "INSERT INTO {table} VALUES ({version}, 'm', '{}', 0);\n",
            hex::encode(Sha256::digest(text.as_bytes()))
        )
    };
    let create = |table: &str| {
        format!(
            "CREATE TABLE {table} (version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
             checksum TEXT NOT NULL, applied_at BIGINT NOT NULL);\n"
        )
    };
    let mut sql = create("agent_auth_schema_migrations") + &create("agent_auth_server_migrations");
    let mut library: Vec<_> = std::fs::read_dir(root.join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    library.sort();
    for (n, file) in library.iter().take(10).enumerate() {
        let text = std::fs::read_to_string(file).unwrap();
        sql += &format!("{text};\n");
        sql += &record("agent_auth_schema_migrations", n + 1, &text);
    }
    for (n, file) in ["0001_users.sql", "0002_user_ids_unique_ignoring_case.sql"]
        .iter()
        .enumerate()
    {
        let text = std::fs::read_to_string(package.join("migrations").join(file)).unwrap();
        sql += &format!("{text};\n");
        sql += &record("agent_auth_server_migrations", n + 1, &text);
    }
    sql += "INSERT INTO agent_auth_users (id, capabilities, active, created_at) \
            VALUES ('bob', NULL, 1, 0)";
    db_sql(db, &sql);
}

/// Users deactivated, given another role or deleted through the CLI are logged in the change
/// feed (by the user table's triggers), as are agents disabled; a database of the previous
/// release is refused until migrated, and then logs them too.
fn user_changes_reach_the_change_feed(db: &Db) {
    previous_release(db);
    // The newest version, whichever it is (versions may skip a number).
    let newest = tower_agent_auth::store::SqliteStore::SCHEMA_VERSION;
    cli(db, &["user", "list"]).fails_with(&format!("(version 10, this build's is {newest})"));
    cli(db, &["migrate"]).ok();
    let logged = |kind: &str, id: &str| {
        db_sql(
            db,
            &format!(
                "SELECT COUNT(*) FROM agent_auth_changes WHERE kind = '{kind}' AND id = '{id}'"
            ),
        )
        .unwrap()
    };
    cli(db, &["user", "disable", "bob"]).ok();
    assert_eq!(logged("user", "bob"), 1);
    cli(
        db,
        &["user", "set-role", "bob", "--capabilities", "posts:read"],
    )
    .ok();
    assert_eq!(logged("user", "bob"), 2);
    cli(db, &["user", "add", "carol"]).ok();
    assert_eq!(logged("user", "carol"), 0, "adding narrows nothing");
    cli(db, &["user", "delete", "bob"]).ok();
    assert_eq!(logged("user", "bob"), 3);
    cli(db, &["agent", "create", "writer", "--owner", "carol"]).ok();
    cli(db, &["agent", "disable", "writer"]).ok();
    assert_eq!(
        db_sql(
            db,
            "SELECT COUNT(*) FROM agent_auth_changes WHERE kind = 'agent'"
        )
        .unwrap(),
        1
    );
    assert_eq!(
        db_sql(db, "SELECT MAX(epoch) FROM agent_auth_change_epoch").unwrap(),
        4,
        "one epoch per change"
    );
}

on_each_database!(user_changes_reach_the_change_feed("feed"), empty);
