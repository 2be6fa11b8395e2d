//! Each key's own `rateLimitPerMinute`, enforced per call (a batch of 50
//! costs 50), in process. A generic cell rate algorithm per key: the full
//! period's allowance may be spent at once, and it refills evenly. The same
//! limiter, keyed otherwise, limits failed key lookups per client IP and
//! invitations.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const MINUTE: Duration = Duration::from_secs(60);

pub(crate) struct KeyLimiter<K = trellis_schema::ids::ApiKeyId> {
    /// Per key: the theoretical arrival time of the next call.
    tat: Mutex<HashMap<K, Instant>>,
}

impl<K> Default for KeyLimiter<K> {
    fn default() -> Self {
        Self { tat: Mutex::new(HashMap::new()) }
    }
}

/// A refused call: when to try again.
pub(crate) struct Limited {
    pub retry_after: Duration,
}

impl Limited {
    pub(crate) fn retry_after_ms(&self) -> u64 {
        u64::try_from(self.retry_after.as_millis()).unwrap_or(u64::MAX).max(1)
    }
}

/// `n` per `period`: the spacing of calls and the burst.
fn shape(n: u32, period: Duration) -> (Duration, Duration) {
    let n = n.max(1);
    let interval = period / n;
    (interval, interval * n)
}

impl<K: Hash + Eq + Clone> KeyLimiter<K> {
    /// Takes one call from `key`'s allowance of `per_minute`.
    pub(crate) fn check(&self, key: K, per_minute: u32) -> Result<u32, Limited> {
        self.check_per(&key, per_minute, MINUTE)
    }

    /// Takes one call from `key`'s allowance of `n` per `period`; returns
    /// the calls left now.
    pub(crate) fn check_per(&self, key: &K, n: u32, period: Duration) -> Result<u32, Limited> {
        let (interval, burst) = shape(n, period);
        let now = Instant::now();
        let mut map = self.tat.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() > 100_000 {
            map.retain(|_, tat| *tat > now);
        }
        let tat = map.get(key).copied().filter(|t| *t > now).unwrap_or(now);
        let next = tat + interval;
        if next > now + burst {
            return Err(Limited { retry_after: next - burst - now });
        }
        map.insert(key.clone(), next);
        // Calls left now, without waiting.
        let used = (next - now).as_nanos() / interval.as_nanos().max(1);
        Ok(n.max(1).saturating_sub(u32::try_from(used).unwrap_or(u32::MAX)))
    }

    /// Whether [`KeyLimiter::check_per`] would let a call through now,
    /// without taking it.
    pub(crate) fn peek_per(&self, key: &K, n: u32, period: Duration) -> Result<(), Limited> {
        let (interval, burst) = shape(n, period);
        let now = Instant::now();
        let map = self.tat.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let tat = map.get(key).copied().filter(|t| *t > now).unwrap_or(now);
        let next = tat + interval;
        if next > now + burst {
            return Err(Limited { retry_after: next - burst - now });
        }
        Ok(())
    }

    /// Calls `key` could make now without being refused.
    pub(crate) fn remaining(&self, key: K, per_minute: u32) -> u32 {
        let per_minute = per_minute.max(1);
        let interval = MINUTE / per_minute;
        let now = Instant::now();
        let map = self.tat.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(tat) = map.get(&key).copied().filter(|t| *t > now) else { return per_minute };
        let used = (tat - now).as_nanos().div_ceil(interval.as_nanos().max(1));
        per_minute.saturating_sub(u32::try_from(used).unwrap_or(u32::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minute_allowance_is_spent_then_refused() {
        let l = KeyLimiter::default();
        let k = trellis_schema::ids::ApiKeyId::new();
        for _ in 0..60 {
            assert!(l.check(k, 60).is_ok());
        }
        let refused = l.check(k, 60).expect_err("61st refused");
        assert!(refused.retry_after <= Duration::from_secs(1) && refused.retry_after > Duration::ZERO);
        assert!(l.check(trellis_schema::ids::ApiKeyId::new(), 60).is_ok(), "another key has its own allowance");
        assert_eq!(l.remaining(k, 60), 0);
    }

    #[test]
    fn peeking_takes_nothing() {
        let l: KeyLimiter<String> = KeyLimiter::default();
        let day = Duration::from_secs(86_400);
        let k = "a@example.com".to_owned();
        for _ in 0..10 {
            assert!(l.peek_per(&k, 3, day).is_ok());
        }
        for _ in 0..3 {
            assert!(l.check_per(&k, 3, day).is_ok());
        }
        let refused = l.peek_per(&k, 3, day).expect_err("spent");
        assert!(refused.retry_after > Duration::from_secs(3600));
        assert!(l.check_per(&k, 3, day).is_err());
    }
}
