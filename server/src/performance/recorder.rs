//! The hot path: one call's duration into the histogram of its minute,
//! method and organization. The map is split into shards, one per thread
//! (in turn), each behind its own `Mutex`, so concurrent calls rarely wait
//! on one lock (no global lock, no new dependency); a flush swaps each
//! shard's map out and merges them.

use std::cell::Cell;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use trellis_schema::ids::OrgId;

use chrono::NaiveDateTime;

use super::sample::{Entry, HIGHEST_US, Key};
use super::store;
use crate::db::Db;
use crate::db::models::now as now_utc;

const SHARDS: usize = 16;

/// FxHash (rustc's): keys are the registry's method names and organization
/// ids, not a client's input, and SipHash cost more than the rest of a
/// record.
#[derive(Default, Clone, Copy)]
struct KeyHasher(u64);

impl KeyHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]));
        }
        let mut last = [0u8; 8];
        last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        self.add(u64::from_le_bytes(last));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type Shard = HashMap<Key, Entry, BuildHasherDefault<KeyHasher>>;

fn shard_of(key: &Key) -> usize {
    // The high bits: the multiply mixes into them.
    (BuildHasherDefault::<KeyHasher>::default().hash_one(key) >> 40) as usize % SHARDS
}

/// The shard a thread records into: its own (threads are numbered in turn
/// as they first record), so two threads answering the same method do not
/// wait on one lock; a flush merges the shards.
fn shard_of_thread() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    SHARD.with(|s| *s)
}

pub(crate) struct Recorder {
    shards: Vec<Mutex<Shard>>,
    /// This process's id in `perf_minutes.replica`: each replica writes only
    /// its own rows, so replicas never conflict.
    replica: String,
    /// `TRELLIS_PERF_RECORDING`: off, no call is recorded (so none is written).
    enabled: bool,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new(true)
    }
}

/// The start of the minute `now` is in. The wall clock is read and the date
/// converted once a minute per thread; in between, the monotonic `now` the
/// call was timed with tells whether the minute is over.
fn minute_at(now: Instant) -> NaiveDateTime {
    thread_local! {
        static CURRENT: Cell<Option<(Instant, NaiveDateTime)>> = const { Cell::new(None) };
    }
    CURRENT.with(|current| match current.get() {
        Some((until, minute)) if now < until => minute,
        _ => {
            let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
            let secs = wall.as_secs() as i64;
            let start = secs - secs.rem_euclid(60);
            let minute = chrono::DateTime::from_timestamp(start, 0).map_or_else(now_utc, |d| d.naive_utc());
            let left = Duration::from_secs((start + 60 - secs) as u64)
                .saturating_sub(Duration::from_nanos(u64::from(wall.subsec_nanos())));
            current.set(Some((now + left, minute)));
            minute
        }
    })
}

/// Records one call that started at `started` and ended at `ended` (the
/// pipeline's one call into this module).
pub(crate) fn record(
    recorder: &Recorder,
    method: &'static str,
    org: Option<OrgId>,
    ok: bool,
    started: Instant,
    ended: Instant,
) {
    if !recorder.enabled {
        return;
    }
    recorder.record((minute_at(ended), method, org), ok, ended.saturating_duration_since(started));
}

impl Recorder {
    pub(crate) fn new(enabled: bool) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            replica: uuid::Uuid::now_v7().simple().to_string(),
            enabled,
        }
    }

    fn record(&self, key: Key, ok: bool, elapsed: Duration) {
        let shard = &self.shards[shard_of_thread()];
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
                    let shard = &self.shards[shard_of(&k)];
                    let mut map = shard.lock().unwrap_or_else(PoisonError::into_inner);
                    map.entry(k).or_insert_with(Entry::new).merge(&e);
                }
                Err(e)
            }
        }
    }

    /// Brings the hour and day rollups up to date every `every` (the hours
    /// flushed since, and their days), on one replica at a time: the
    /// `perf_rollup` lease, which lapses after three rounds missed.
    pub(crate) fn spawn_rollup(db: Arc<Db>, every: Duration) -> tokio::task::JoinHandle<()> {
        let holder = uuid::Uuid::now_v7().simple().to_string();
        let ttl = chrono::TimeDelta::from_std(every * 3)
            .unwrap_or(chrono::TimeDelta::seconds(60))
            .max(chrono::TimeDelta::seconds(2));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match super::alerts::take_lease(&db, "perf_rollup", &holder, ttl).await {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "call latency not rolled up this round");
                        continue;
                    }
                }
                match store::roll_up(&db).await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(rows = n, "call latency rolled up by hour and day"),
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
