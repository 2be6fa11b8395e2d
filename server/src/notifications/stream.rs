//! `notifications.subscribe`: the notifications after the cursor from the
//! database, then each new one as its wake-up comes, read by number, so
//! nothing is skipped or sent twice whatever the wake-ups do.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use trellis_schema::ids::UserId;
use trellis_schema::notifications::{Notification, Subscribe, SubscribeParams, SubscribeReason};

use super::hub::{Hub, Watch};
use super::store;
use crate::access::UserCtx;
use crate::db::models::{NotificationRow, now};
use crate::db::{Db, DbError};
use crate::rpc::error::HandlerError;
use crate::rpc::registry::{Items, Streamer};

/// Read at most this many notifications at once.
const READ: i64 = 100;
/// A subscriber reads again after this long without a wake-up, whatever
/// the sweep does.
const FALLBACK: Duration = Duration::from_secs(30);

impl Streamer for Subscribe {
    async fn subscribe(
        ctx: UserCtx,
        p: SubscribeParams,
    ) -> Result<Items<Notification, SubscribeReason>, HandlerError<SubscribeReason>> {
        let user = ctx.caller.user_id;
        let db = ctx.state.db.clone();
        // Watch before reading the cursor: a notification committed in
        // between is read by number, and its wake-up is not lost.
        let watch = ctx.state.events.hub.watch(user);
        let cursor = match p.after {
            Some(id) => store::seq_of(&db, user, id).await?.ok_or_else(|| HandlerError::Reason {
                reason: SubscribeReason::NotFound,
                message: Some(
                    "`after` is not one of your notifications (or it was deleted): subscribe without it".into(),
                ),
                data: serde_json::Map::new(),
            })?,
            None => store::newest_seq(&db, user).await?,
        };
        let feed = Feed { db, user, cursor, ready: VecDeque::new(), watch };
        Ok(futures::stream::unfold(feed, Feed::next).boxed())
    }
}

struct Feed {
    db: Arc<Db>,
    user: UserId,
    /// The number of the last notification handed out.
    cursor: i64,
    ready: VecDeque<NotificationRow>,
    watch: Watch,
}

impl Feed {
    async fn next(mut self) -> Option<(Result<Notification, HandlerError<SubscribeReason>>, Self)> {
        loop {
            if let Some(row) = self.ready.pop_front() {
                self.cursor = row.seq;
                match row.to_api() {
                    Some(n) => return Some((Ok(n), self)),
                    None => continue,
                }
            }
            // Wake-ups from here on are for what the read below may miss.
            self.watch.rx.borrow_and_update();
            match self.watch.recent.after(&self.db, self.user, self.cursor, READ).await {
                Ok(rows) if !rows.is_empty() => {
                    self.ready.extend(rows);
                    continue;
                }
                Ok(_) => {}
                // The database is away: the subscription stays, and reads
                // again once it is back.
                Err(DbError::Unavailable(_)) => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                Err(e) => return Some((Err(e.into()), self)),
            }
            tokio::select! {
                _ = self.watch.rx.changed() => {}
                () = tokio::time::sleep(FALLBACK) => {}
            }
        }
    }
}

/// While anyone subscribes here, wakes every `poll` the users with
/// notifications newer than their last wake-up (one query for all): a
/// wake-up lost on the way (Redis away, a notice dropped) costs at most
/// `poll`.
pub(crate) fn spawn_sweeper(db: Arc<Db>, hub: Arc<Hub>, poll: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if hub.users().is_empty() {
                continue;
            }
            let since = now() - chrono::Duration::seconds(60);
            match store::recent(&db, since).await {
                Ok(newest) => {
                    for (user, seq) in newest {
                        hub.wake(user, seq);
                    }
                }
                Err(e) => tracing::debug!(error = %e, "notification sweep failed"),
            }
        }
    })
}
