//! Probes the database every second in the background, so `health.check`
//! answers from memory: a flood of health checks never becomes a flood of
//! database queries, and the answer is at most a second old. The cache's
//! state is its own (kept by its heartbeat, and by every command to it).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use trellis_schema::health::{CacheCheck, Checks, DependencyCheck};

use crate::cache::Cache;
use crate::db::Db;

const PROBE_EVERY: Duration = Duration::from_secs(1);

pub(crate) struct HealthMonitor {
    latest: RwLock<DependencyCheck>,
    cache: Arc<Cache>,
}

impl HealthMonitor {
    pub(crate) async fn start(db: Arc<Db>, cache: Arc<Cache>) -> Arc<Self> {
        let monitor = Arc::new(Self { latest: RwLock::new(probe(&db).await), cache });
        let weak = Arc::downgrade(&monitor);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PROBE_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(monitor) = weak.upgrade() else { break };
                let checks = probe(&db).await;
                *monitor.latest.write().unwrap_or_else(std::sync::PoisonError::into_inner) = checks;
            }
        });
        monitor
    }

    pub(crate) fn latest(&self) -> Checks {
        let database = self.latest.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        Checks { database, cache: self.cache() }
    }

    /// The cache's state now.
    pub(crate) fn cache(&self) -> CacheCheck {
        self.cache.check()
    }
}

async fn probe(db: &Db) -> DependencyCheck {
    match tokio::time::timeout(Duration::from_secs(2), db.ping()).await {
        Ok(Ok(latency)) => DependencyCheck { ok: true, latency_ms: latency.as_secs_f64() * 1000.0 },
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "database probe failed");
            DependencyCheck { ok: false, latency_ms: 0.0 }
        }
        Err(_) => {
            tracing::warn!("database probe timed out");
            DependencyCheck { ok: false, latency_ms: 2000.0 }
        }
    }
}
