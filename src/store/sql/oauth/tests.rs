use super::*;

#[test]
fn every_statement_names_every_column() {
    let placeholders = |n: usize| {
        (1..=n)
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (columns, insert, n) in [
        (CLIENT_COLUMNS, INSERT_CLIENT, 13),
        (CODE_COLUMNS, INSERT_CODE, 13),
        (REFRESH_COLUMNS, INSERT_REFRESH, 12),
        (CONNECTION_COLUMNS, CONNECT, 4),
    ] {
        assert_eq!(columns.split(", ").count(), n);
        assert!(insert.contains(&format!("({columns}) VALUES ({})", placeholders(n))));
    }
    assert!(INSERT_CLIENT_UNDER_CAP.contains(&format!("({CLIENT_COLUMNS}) SELECT")));
    assert!(INSERT_CLIENT_UNDER_CAP.contains(&format!("SELECT {} WHERE", placeholders(13))));
    for statement in [CLIENT_BY_ID, CLIENTS] {
        assert!(statement.contains(CLIENT_COLUMNS), "{statement}");
    }
    for statement in [REDEEM_CODE, REPLAY_CODE, CODE_BY_HASH] {
        assert!(statement.contains(CODE_COLUMNS), "{statement}");
    }
    for statement in [REFRESH_BY_HASH, ROTATE_REFRESH] {
        assert!(statement.contains(REFRESH_COLUMNS), "{statement}");
    }
    for statement in [CONNECTION, CONNECTIONS, CONNECTIONS_OF_USER] {
        assert!(statement.contains(CONNECTION_COLUMNS), "{statement}");
    }
}

#[test]
fn the_cap_counts_what_a_client_is_live_by() {
    // `Client::is_live_at`: not revoked, and no expiry or one after now.
    assert!(INSERT_CLIENT_UNDER_CAP.contains(
        "kind = 'registered' AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $14)"
    ));
}
