//! The background sender: drains the outbox when woken (a mail was written)
//! or every poll interval (retries that came due, other replicas' mail).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::outbox;
use super::sender::Sender;
use crate::db::Db;

/// Wakes a background worker (the mail sender, the webhook workers) after a
/// transaction that gave it work has committed.
#[derive(Clone, Default)]
pub(crate) struct Wakeup(Arc<Notify>);

impl Wakeup {
    pub(crate) fn wake(&self) {
        self.0.notify_one();
    }

    /// Completes at the next wake-up (at once if one came meanwhile).
    pub(crate) async fn notified(&self) {
        self.0.notified().await;
    }
}

pub(crate) struct MailWorker {
    pub db: Arc<Db>,
    pub sender: Sender,
    pub wakeup: Wakeup,
    pub poll: Duration,
}

impl MailWorker {
    /// Runs until the task is aborted.
    pub(crate) fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                self.drain().await;
                tokio::select! {
                    () = self.wakeup.0.notified() => {}
                    () = tokio::time::sleep(self.poll) => {}
                }
            }
        })
    }

    async fn drain(&self) {
        loop {
            let batch = match outbox::claim_due(&self.db, 20).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox not readable; mail waits");
                    return;
                }
            };
            if batch.is_empty() {
                return;
            }
            for mail in batch {
                let sent = self.sender.send(&mail).await;
                crate::observe::mail_sent(sent.is_ok());
                match sent {
                    Ok(()) => {
                        tracing::info!(mail_id = %mail.id, subject = %mail.subject, "mail sent");
                        if let Err(e) = outbox::mark_sent(&self.db, &mail.id).await {
                            tracing::warn!(mail_id = %mail.id, error = %e, "mail sent but not marked sent");
                        }
                    }
                    Err(e) => match outbox::mark_failed(&self.db, &mail, e.transient, &e.message).await {
                        Ok(true) => tracing::error!(mail_id = %mail.id, error = %e.message, "mail given up"),
                        Ok(false) => {
                            tracing::warn!(mail_id = %mail.id, error = %e.message, "mail not sent; will retry")
                        }
                        Err(db) => tracing::warn!(mail_id = %mail.id, error = %db, "mail failure not recorded"),
                    },
                }
            }
        }
    }
}
