//! Retention: rows that have served their purpose are deleted, in batches,
//! soon after start and then every hour: mail sent or given up
//! (`TRELLIS_OUTBOX_RETENTION_DAYS`), events dispatched (the same days),
//! notifications (`TRELLIS_NOTIFICATION_RETENTION_DAYS`, each user's newest
//! kept), audit events (`TRELLIS_AUDIT_RETENTION_DAYS`; 0 keeps either
//! forever), and webhook deliveries done (delivered or given up) for
//! [`DELIVERY_DAYS`].

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;

use crate::db::Db;
use crate::db::models::now;

/// How often the tables are pruned.
const EVERY: Duration = Duration::from_secs(3600);
/// Days a webhook delivery that is done stays listed in `webhooks.deliveries`.
pub(crate) const DELIVERY_DAYS: u32 = 30;

/// How long each kind of row is kept, in days.
#[derive(Clone, Copy)]
pub(crate) struct Retention {
    pub outbox_days: u32,
    pub notification_days: u32,
    pub audit_days: u32,
    /// Per-minute call latency (`TRELLIS_PERF_MINUTE_RETENTION_DAYS`).
    pub perf_minute_days: u32,
    /// Hourly call latency (`TRELLIS_PERF_HOUR_RETENTION_DAYS`).
    pub perf_hour_days: u32,
}

pub(crate) fn spawn(db: Arc<Db>, keep: Retention) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // The first pass waits a moment, so start-up is not slowed by it.
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + Duration::from_millis(200), EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            prune_once(&db, keep).await;
        }
    })
}

async fn prune_once(db: &Db, keep: Retention) {
    let Retention { outbox_days, notification_days, audit_days, perf_minute_days, perf_hour_days } = keep;
    let cutoff = |days: u32| now() - TimeDelta::days(i64::from(days));
    match crate::mail::outbox::prune(db, cutoff(outbox_days)).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(rows = n, "pruned old mail from the outbox"),
        Err(e) => tracing::warn!(error = %e, "outbox not pruned this round"),
    }
    match crate::webhooks::store::prune(db, cutoff(DELIVERY_DAYS)).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(rows = n, "pruned old webhook deliveries"),
        Err(e) => tracing::warn!(error = %e, "webhook deliveries not pruned this round"),
    }
    match crate::notifications::prune_events(db, cutoff(outbox_days)).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(rows = n, "pruned dispatched events"),
        Err(e) => tracing::warn!(error = %e, "events not pruned this round"),
    }
    if notification_days > 0 {
        match crate::notifications::prune(db, cutoff(notification_days)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(rows = n, "pruned notifications past their retention"),
            Err(e) => tracing::warn!(error = %e, "notifications not pruned this round"),
        }
    }
    match crate::performance::prune(db, cutoff(perf_minute_days)).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(rows = n, "pruned old call latency"),
        Err(e) => tracing::warn!(error = %e, "call latency not pruned this round"),
    }
    match crate::performance::prune_hours(db, cutoff(perf_hour_days)).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(rows = n, "pruned old hourly call latency"),
        Err(e) => tracing::warn!(error = %e, "hourly call latency not pruned this round"),
    }
    if audit_days > 0 {
        match crate::audit::store::prune(db, cutoff(audit_days)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(rows = n, "pruned audit events past their retention"),
            Err(e) => tracing::warn!(error = %e, "audit events not pruned this round"),
        }
    }
}
