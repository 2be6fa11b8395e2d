//! This replica's state for a report: uptime, memory, CPU, the database
//! pool, the API key cache. Linux `/proc` only (zeros elsewhere); assumes the
//! usual 4 KiB pages and 100 clock ticks a second.

use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Instant;

use trellis_schema::performance::{CacheStats, DbPool, SystemStats};

use crate::state::State;

const PAGE_BYTES: u64 = 4096;
const TICKS_PER_SEC: f64 = 100.0;

/// The CPU time (ticks) at the previous report, and when.
static PREVIOUS: Mutex<Option<(Instant, u64)>> = Mutex::new(None);

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()))
        .map_or(0, |pages| pages * PAGE_BYTES)
}

/// utime + stime, in clock ticks.
fn cpu_ticks() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces: count fields after its ')'.
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of the line are the 12th and 13th after the name.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn cpu_percent(started_at: Instant) -> f64 {
    let Some(ticks) = cpu_ticks() else { return 0.0 };
    let now = Instant::now();
    let mut prev = PREVIOUS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let (since, before) = prev.unwrap_or((started_at, 0));
    *prev = Some((now, ticks));
    let wall = now.duration_since(since).as_secs_f64();
    if wall <= 0.0 {
        return 0.0;
    }
    (ticks.saturating_sub(before) as f64 / TICKS_PER_SEC) / wall * 100.0
}

pub(super) fn stats(state: &State) -> SystemStats {
    let (size, idle) = state.db.pool_state();
    let hits = state.keys.cache.hits.load(Ordering::Relaxed);
    let misses = state.keys.cache.misses.load(Ordering::Relaxed);
    let lookups = hits + misses;
    SystemStats {
        uptime_secs: state.started_at.elapsed().as_secs(),
        rss_bytes: rss_bytes(),
        cpu_percent: cpu_percent(state.started_at),
        db_pool: DbPool { size, idle, in_use: size.saturating_sub(idle) },
        cache: CacheStats { hits, misses, hit_rate: if lookups == 0 { 0.0 } else { hits as f64 / lookups as f64 } },
    }
}
