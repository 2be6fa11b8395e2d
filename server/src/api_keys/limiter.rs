//! Each key's own `rateLimitPerMinute`, enforced per call (a batch of 50
//! costs 50), in process. A generic cell rate algorithm per key: the full
//! minute's allowance may be spent at once, and it refills evenly.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;

#[derive(Default)]
pub(crate) struct KeyLimiter {
    /// Per key: the theoretical arrival time of the next call.
    tat: Mutex<HashMap<Uuid, Instant>>,
}

/// A refused call: when to try again.
pub(crate) struct Limited {
    pub retry_after: Duration,
}

impl KeyLimiter {
    /// Takes one call from `key`'s allowance of `per_minute`.
    pub(crate) fn check(&self, key: Uuid, per_minute: u32) -> Result<u32, Limited> {
        let per_minute = per_minute.max(1);
        let interval = Duration::from_secs(60) / per_minute;
        let burst = interval * per_minute;
        let now = Instant::now();
        let mut map = self.tat.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() > 100_000 {
            map.retain(|_, tat| *tat > now);
        }
        let tat = map.get(&key).copied().filter(|t| *t > now).unwrap_or(now);
        let next = tat + interval;
        if next > now + burst {
            return Err(Limited { retry_after: next - burst - now });
        }
        map.insert(key, next);
        // Calls left now, without waiting.
        let used = (next - now).as_nanos() / interval.as_nanos().max(1);
        Ok(per_minute.saturating_sub(u32::try_from(used).unwrap_or(u32::MAX)))
    }

    /// Calls `key` could make now without being refused.
    pub(crate) fn remaining(&self, key: Uuid, per_minute: u32) -> u32 {
        let per_minute = per_minute.max(1);
        let interval = Duration::from_secs(60) / per_minute;
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
        let k = Uuid::now_v7();
        for _ in 0..60 {
            assert!(l.check(k, 60).is_ok());
        }
        let refused = l.check(k, 60).expect_err("61st refused");
        assert!(refused.retry_after <= Duration::from_secs(1) && refused.retry_after > Duration::ZERO);
        assert!(l.check(Uuid::now_v7(), 60).is_ok(), "another key has its own allowance");
        assert_eq!(l.remaining(k, 60), 0);
    }
}
