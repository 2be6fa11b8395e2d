//! Turns events into deliveries: the outbox `events` is read in id order,
//! and each event not yet hooked becomes, in one transaction, a delivery per
//! enabled webhook of its organization that takes its type (see
//! [`store::hook_event`]). Woken after a change that wrote an event, and
//! polling anyway (other replicas' events, a wake-up missed).

use std::sync::Arc;
use std::time::Duration;

use super::store;
use crate::db::Db;
use crate::mail::Wakeup;

/// Events read at a time.
const BATCH: i64 = 50;

pub(crate) struct Hooker {
    pub db: Arc<Db>,
    pub wakeup: Wakeup,
    /// Woken when deliveries were made.
    pub sender: Wakeup,
    pub poll: Duration,
}

impl Hooker {
    /// Runs until the task is aborted.
    pub(crate) fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                if self.drain().await > 0 {
                    self.sender.wake();
                }
                tokio::select! {
                    () = self.wakeup.notified() => {}
                    () = tokio::time::sleep(self.poll) => {}
                }
            }
        })
    }

    /// Hooks every event waiting; returns the deliveries made.
    pub(crate) async fn drain(&self) -> usize {
        let mut made = 0;
        loop {
            let batch = match store::unhooked_events(&self.db, BATCH).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "events not readable; webhooks wait");
                    return made;
                }
            };
            let full = batch.len() as i64 == BATCH;
            for ev in &batch {
                match store::hook_event(&self.db, ev).await {
                    Ok(n) => made += n,
                    Err(e) => {
                        tracing::warn!(event_id = %ev.id, error = %e, "event not hooked; will retry");
                        return made;
                    }
                }
            }
            if !full {
                return made;
            }
        }
    }
}
