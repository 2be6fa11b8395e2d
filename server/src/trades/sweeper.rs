//! Expires trades and offers past their time. Safe with several replicas:
//! each expiry is a conditional update in its own transaction (a row
//! another replica expired first is left alone), so running it twice, or
//! on every replica at once, expires each row once.

use std::sync::Arc;
use std::time::Duration;

use trellis_schema::trade_machine::TradeEvent;

use super::store::{self, TradeChange};
use crate::db::Db;
use crate::notifications::events::Events;

/// Expiries per round, of each kind.
const BATCH: i64 = 200;

/// One round: what is due now. Returns how many rows expired.
pub(crate) async fn sweep(db: &Db) -> anyhow::Result<usize> {
    let (trades, offers) = store::due(db, BATCH).await?;
    let mut n = 0;
    for trade in trades {
        let change = TradeChange { trade, org: None, event: TradeEvent::Expire, approver: None };
        if let Ok(Ok(_)) = store::change_trade(db, change, None).await {
            n += 1;
        }
    }
    for offer in offers {
        if store::expire_offer(db, offer).await? {
            n += 1;
        }
    }
    Ok(n)
}

/// Sweeps every `every`.
pub(crate) fn spawn(db: Arc<Db>, events: Events, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match sweep(&db).await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::debug!(expired = n, "trades and offers expired");
                    events.published();
                }
                Err(e) => tracing::warn!(error = %e, "trades and offers not swept this round"),
            }
        }
    })
}
