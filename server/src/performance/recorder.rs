//! The hot path: one call's duration into the histogram of its minute,
//! method and organization. The map is split into shards by the key's hash,
//! each behind its own `Mutex`, so concurrent calls rarely wait on one lock
//! (no global lock, no new dependency); a flush swaps each shard's map out.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use trellis_schema::ids::OrgId;

use chrono::NaiveDateTime;

use super::sample::{Entry, HIGHEST_US, Key};
use super::store;
use crate::db::Db;
use crate::db::models::now;

const SHARDS: usize = 16;
pub(crate) struct Recorder {
    shards: Vec<Mutex<HashMap<Key, Entry>>>,
    /// This process's id in `perf_minutes.replica`: each replica writes only
    /// its own rows, so replicas never conflict.
    replica: String,
}

impl Default for Recorder {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            replica: uuid::Uuid::now_v7().simple().to_string(),
        }
    }
}

fn minute_of(t: NaiveDateTime) -> NaiveDateTime {
    let secs = t.and_utc().timestamp();
    chrono::DateTime::from_timestamp(secs - secs.rem_euclid(60), 0).map_or(t, |d| d.naive_utc())
}

/// Records one call (the pipeline's one call into this module).
pub(crate) fn record(recorder: &Recorder, method: &'static str, org: Option<OrgId>, ok: bool, elapsed: Duration) {
    recorder.record((minute_of(now()), method, org), ok, elapsed);
}

impl Recorder {
    fn record(&self, key: Key, ok: bool, elapsed: Duration) {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        let shard = &self.shards[(h.finish() as usize) % SHARDS];
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX).clamp(1, HIGHEST_US);
        let mut map = shard.lock().unwrap_or_else(PoisonError::into_inner);
        let e = map.entry(key).or_insert_with(Entry::new);
        e.hist.saturating_record(us);
        e.calls += 1;
        if !ok {
            e.errors += 1;
        }
        e.max_us = e.max_us.max(us as i64);
    }

    fn take(&self) -> HashMap<Key, Entry> {
        let mut all: HashMap<Key, Entry> = HashMap::new();
        for shard in &self.shards {
            let map = std::mem::take(&mut *shard.lock().unwrap_or_else(PoisonError::into_inner));
            for (k, e) in map {
                match all.get_mut(&k) {
                    Some(a) => a.merge(&e),
                    None => {
                        all.insert(k, e);
                    }
                }
            }
        }
        all
    }

    /// Writes what was recorded since the last flush; on failure it goes
    /// back, to be written next time.
    pub(crate) async fn flush(&self, db: &Db) -> anyhow::Result<usize> {
        let batch = self.take();
        if batch.is_empty() {
            return Ok(0);
        }
        match store::merge_into(db, &self.replica, &batch).await {
            Ok(n) => Ok(n),
            Err(e) => {
                for (k, e) in batch {
                    let shard = {
                        let mut h = DefaultHasher::new();
                        k.hash(&mut h);
                        &self.shards[(h.finish() as usize) % SHARDS]
                    };
                    let mut map = shard.lock().unwrap_or_else(PoisonError::into_inner);
                    map.entry(k).or_insert_with(Entry::new).merge(&e);
                }
                Err(e)
            }
        }
    }

    /// Rolls minute rows up into hour rows every `every`, for the hours
    /// that ended over two hours ago (long since flushed by every replica).
    pub(crate) fn spawn_rollup(db: Arc<Db>, every: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match store::roll_up(&db, now() - chrono::TimeDelta::hours(2)).await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(rows = n, "call latency rolled up by hour"),
                    Err(e) => tracing::warn!(error = %e, "call latency not rolled up this round"),
                }
            }
        })
    }

    /// Flushes every `every`.
    pub(crate) fn spawn(this: Arc<Self>, db: Arc<Db>, every: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = this.flush(&db).await {
                    tracing::warn!(error = %e, "call latency not written this round");
                }
            }
        })
    }
}
