//! The change feed of the SQL stores: the epoch and change log that migration 11's triggers
//! keep (every writer's narrowing changes, the CLI's and manual SQL's included), read by
//! [`ChangeFeed::changes_since`](crate::cache::ChangeFeed::changes_since), and on PostgreSQL the
//! notices the triggers send, heard by a [`Subscription`].

use super::Core;
use super::dialect::{Driver, sql};
use super::error::store_error;
use crate::cache::{Change, Changes, Notice};
use crate::error::ChangeFeedError;
use crate::error::StoreError;
use crate::principal::UserId;

/// How many of the latest epochs the change log keeps (the triggers of migration 11 prune to
/// the same number): a reader polling every quarter second misses none unless more than this
/// many changes commit in between, and is then told its picture is incomplete.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) const CHANGES_KEPT: i64 = 10_000;

/// The store's change epoch and the logged changes after `$1`, oldest first, at most `$2`, read
/// in one statement so that both come from one snapshot: no change logged is past the epoch
/// read. Without changes after `$1`, one row with the epoch and empty change columns.
const CHANGES_SINCE: &str = "SELECT e.epoch AS current_epoch, c.epoch AS epoch, \
    c.kind AS kind, c.id AS id FROM agent_auth_change_epoch e \
    LEFT JOIN (SELECT epoch, kind, id FROM agent_auth_changes WHERE epoch > $1 \
    ORDER BY epoch LIMIT $2) c ON 1 = 1 ORDER BY c.epoch";

/// The change a logged `kind` and `id` stand for: one it cannot read is every change.
pub(crate) fn change_of(kind: &str, id: &str) -> Change {
    if id.is_empty() {
        return Change::All;
    }
    match kind {
        "token" => Change::Token(id.into()),
        "agent" => Change::Agent(id.into()),
        "user" => Change::User(id.into()),
        _ => Change::All,
    }
}

/// The notice of a payload `<epoch> <kind> <id>` as the triggers send it (an id may hold
/// spaces: it is the rest of the payload).
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn parse_notice(payload: &str) -> Result<Notice, ChangeFeedError> {
    let mut parts = payload.splitn(3, ' ');
    let epoch = parts
        .next()
        .and_then(|epoch| epoch.parse::<u64>().ok())
        .filter(|epoch| *epoch > 0)
        .ok_or_else(|| ChangeFeedError::Malformed(payload.chars().take(64).collect()))?;
    let change = match (parts.next(), parts.next()) {
        (Some(kind), Some(id)) => change_of(kind, id),
        _ => Change::All,
    };
    Ok(Notice { epoch, change })
}

impl<B: Driver> Core<B> {
    /// See [`ChangeFeed::changes_since`](crate::cache::ChangeFeed::changes_since). A store
    /// whose epoch is behind `epoch` (restored from a backup, or another database) answers
    /// `complete: false` too: what the reader holds may not match it.
    pub(crate) async fn changes_since(
        &self,
        epoch: u64,
        limit: usize,
    ) -> Result<Changes, ChangeFeedError> {
        let after = i64::try_from(epoch).unwrap_or(i64::MAX);
        // One more than asked, at least one: whether the log still holds `epoch + 1` is known
        // even when `limit` is 0.
        let fetch = i64::try_from(limit).unwrap_or(i64::MAX - 1).max(1);
        let rows = sql(CHANGES_SINCE)
            .bind(after)
            .bind(fetch)
            .fetch_all(&self.pool)
            .await
            .map_err(ChangeFeedError::Database)?;
        let malformed = |what: &str| ChangeFeedError::Malformed(what.to_owned());
        let current = match rows.first() {
            Some(row) => B::int(row, "current_epoch").map_err(ChangeFeedError::Database)?,
            None => return Err(malformed("the change epoch row is missing")),
        };
        let current = u64::try_from(current).map_err(|_| malformed("a negative change epoch"))?;
        let mut notices = Vec::with_capacity(rows.len());
        for row in &rows {
            let Some(logged) = B::opt_int(row, "epoch").map_err(ChangeFeedError::Database)? else {
                continue;
            };
            let logged = u64::try_from(logged).map_err(|_| malformed("a negative epoch"))?;
            let kind = B::opt_text(row, "kind").map_err(ChangeFeedError::Database)?;
            let id = B::opt_text(row, "id").map_err(ChangeFeedError::Database)?;
            let change = change_of(
                kind.as_deref().unwrap_or_default(),
                id.as_deref().unwrap_or_default(),
            );
            notices.push(Notice {
                epoch: logged,
                change,
            });
        }
        let complete = match current.cmp(&epoch) {
            std::cmp::Ordering::Equal => true,
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Greater => {
                notices.first().map(|n| n.epoch) == Some(epoch.saturating_add(1))
            }
        };
        notices.truncate(limit);
        Ok(Changes {
            notices,
            epoch: current,
            complete,
        })
    }

    /// Logs that the user `user` changed; see the public stores' `user_changed`.
    pub(crate) async fn user_changed(&self, user: &UserId) -> Result<u64, StoreError> {
        let epoch = B::log_change(&self.pool, "user", user.as_str())
            .await
            .map_err(store_error)?;
        Ok(u64::try_from(epoch).unwrap_or_default())
    }
}

#[cfg(feature = "postgres")]
pub(crate) use self::postgres::subscribe;

#[cfg(feature = "postgres")]
mod postgres {
    use sqlx::postgres::{PgListener, PgPoolOptions};

    use super::{ChangeFeedError, parse_notice};
    use crate::cache::{Notice, Subscription};
    use crate::error::BoxError;

    /// The application name of the listening connection, so an operator (or a test) can tell
    /// it in `pg_stat_activity`.
    pub(crate) const LISTENER_APPLICATION: &str = "agent-auth change feed";

    /// Listens on the channel of `pool`'s change log, on a connection of its own (the store's
    /// pool keeps all of its connections for requests), made as `pool` makes them.
    pub(crate) async fn subscribe(pool: &sqlx::PgPool) -> Result<PgSubscription, ChangeFeedError> {
        // The channel is named by the database (per schema): ask it rather than guess.
        let channel: String = sqlx::query_scalar("SELECT agent_auth_change_channel()")
            .fetch_one(pool)
            .await
            .map_err(ChangeFeedError::Database)?;
        let options = (*pool.connect_options())
            .clone()
            .application_name(LISTENER_APPLICATION);
        let own = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(pool.options().get_acquire_timeout())
            .connect_lazy_with(options);
        let mut listener = PgListener::connect_with(&own)
            .await
            .map_err(ChangeFeedError::Database)?;
        // A lost connection is reported, not mended behind the reader's back.
        listener.eager_reconnect(false);
        listener
            .listen(&channel)
            .await
            .map_err(ChangeFeedError::Database)?;
        Ok(PgSubscription {
            listener,
            broken: false,
        })
    }

    /// Notices from PostgreSQL's `LISTEN`, in commit (and so epoch) order.
    pub(crate) struct PgSubscription {
        listener: PgListener,
        /// Once the connection was lost, notices may be missing: every later call fails too.
        broken: bool,
    }

    #[async_trait::async_trait]
    impl Subscription for PgSubscription {
        async fn next(&mut self) -> Result<Notice, BoxError> {
            if self.broken {
                return Err(ChangeFeedError::ConnectionLost.into());
            }
            // `try_recv`, not `recv`: `recv` reconnects silently, and the notices sent while
            // the connection was down would be lost unseen.
            match self.listener.try_recv().await {
                Ok(Some(notification)) => Ok(parse_notice(notification.payload())?),
                Ok(None) => {
                    self.broken = true;
                    Err(ChangeFeedError::ConnectionLost.into())
                }
                Err(error) => {
                    self.broken = true;
                    Err(ChangeFeedError::Database(error).into())
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_parse_and_what_does_not_read_is_every_change() {
        assert_eq!(
            parse_notice("7 token tok_1").unwrap(),
            Notice {
                epoch: 7,
                change: Change::Token("tok_1".into())
            }
        );
        assert_eq!(
            parse_notice("8 user a b").unwrap().change,
            Change::User("a b".into())
        );
        assert_eq!(parse_notice("9 all").unwrap().change, Change::All);
        assert_eq!(parse_notice("9 thing x").unwrap().change, Change::All);
        assert_eq!(parse_notice("9 agent ").unwrap().change, Change::All);
        assert!(parse_notice("x token t").is_err());
        assert!(parse_notice("0 token t").is_err());
        assert!(parse_notice("").is_err());
    }
}
