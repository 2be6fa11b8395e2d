//! Rate limits as steps of a generic cell rate algorithm (GCRA): `n` calls
//! per `period`, the whole allowance may be spent at once and it refills
//! evenly. One pass runs several steps in order (the limits of one call, or
//! one step for every call of a batch) and stops at the first step that lets
//! nothing through. The same pass runs in Redis (`gcra.lua`, shared by every
//! replica) or here in process ([`LocalLimits`]), with the same answers.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a step does with its bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Takes the whole cost, or nothing.
    All,
    /// Takes as much of the cost as fits (the calls of a batch: the first
    /// ones that fit go through).
    UpTo,
    /// Looks whether the cost would fit, taking nothing.
    Peek,
}

/// One limit applied to one bucket.
#[derive(Debug, Clone)]
pub(crate) struct Step {
    /// What is limited (`key`, `ip`, `account`, …): a bucket's namespace.
    pub kind: &'static str,
    /// Whose allowance: the bucket within its kind.
    pub id: String,
    /// `n` per `period`.
    pub n: u32,
    pub period: Duration,
    pub cost: u32,
    pub mode: Mode,
}

impl Step {
    pub(crate) fn new(kind: &'static str, id: impl ToString, n: u32, period: Duration) -> Self {
        Self { kind, id: id.to_string(), n, period, cost: 1, mode: Mode::All }
    }

    pub(crate) fn cost(mut self, cost: u32, mode: Mode) -> Self {
        self.cost = cost;
        self.mode = mode;
        self
    }

    /// The spacing of calls and the burst.
    pub(crate) fn shape(&self) -> (Duration, Duration) {
        let n = self.n.max(1);
        let interval = self.period / n;
        (interval, interval * n)
    }
}

/// What a step let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// Calls let through (of the step's cost).
    pub allowed: u32,
    /// When the next call could go (zero while there is room): for a step
    /// that let nothing through, when its whole cost could.
    pub retry_after: Duration,
    /// Calls that could still go now, after this step.
    pub remaining: u32,
}

impl Outcome {
    /// Whether the whole cost went through.
    pub(crate) fn passed(&self, step: &Step) -> bool {
        self.allowed >= step.cost
    }

    pub(crate) fn retry_after_ms(&self) -> u64 {
        retry_after_ms(self.retry_after)
    }
}

/// A wait as `retryAfterMs` says it: whole milliseconds, at least 1.
pub(crate) fn retry_after_ms(wait: Duration) -> u64 {
    u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// The answers of one pass: one per step run (`None` for the steps after the
/// first that let nothing through, which did not run).
pub(crate) type Outcomes = Vec<Option<Outcome>>;

/// The limits of this process alone: without Redis, or while it is away.
#[derive(Default)]
pub(crate) struct LocalLimits {
    /// Per bucket (`kind:id`): the theoretical arrival time of the next call.
    tat: Mutex<HashMap<String, Instant>>,
}

const MAX_BUCKETS: usize = 200_000;

impl LocalLimits {
    /// Runs the steps in order; with `atomic`, a step that lets nothing
    /// through undoes the steps before it.
    pub(crate) fn run(&self, steps: &[Step], atomic: bool) -> Outcomes {
        let now = Instant::now();
        let mut map = self.tat.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() > MAX_BUCKETS {
            map.retain(|_, tat| *tat > now);
        }
        let mut out = vec![None; steps.len()];
        let mut writes: Vec<(String, Instant)> = Vec::with_capacity(steps.len());
        for (i, step) in steps.iter().enumerate() {
            let (interval, burst) = step.shape();
            let bucket = format!("{}:{}", step.kind, step.id);
            let tat = map.get(&bucket).copied().filter(|t| *t > now).unwrap_or(now);
            let room_time = (now + burst).saturating_duration_since(tat);
            let room = u32::try_from(room_time.as_nanos() / interval.as_nanos().max(1)).unwrap_or(u32::MAX);
            let mut allowed = room.min(step.cost);
            if step.mode == Mode::All && allowed < step.cost {
                allowed = 0;
            }
            let mut after = tat;
            let mut remaining = room;
            if step.mode != Mode::Peek {
                after = tat + interval * allowed;
                remaining = room - allowed;
                if allowed > 0 {
                    writes.push((bucket, after));
                }
            }
            let need = if step.mode == Mode::All && allowed == 0 { step.cost } else { 1 };
            let retry_after = (after + interval * need).saturating_duration_since(now + burst);
            out[i] = Some(Outcome { allowed, retry_after, remaining });
            if allowed == 0 && step.cost > 0 {
                if atomic {
                    writes.clear();
                }
                break;
            }
        }
        for (bucket, tat) in writes {
            map.insert(bucket, tat);
        }
        out
    }

    /// Drops buckets that are full again (nothing to remember).
    pub(crate) fn housekeep(&self) {
        let now = Instant::now();
        self.tat.lock().unwrap_or_else(std::sync::PoisonError::into_inner).retain(|_, tat| *tat > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn a_minute_allowance_is_spent_then_refused() {
        let l = LocalLimits::default();
        let step = Step::new("key", "a", 60, MINUTE);
        for _ in 0..60 {
            assert!(l.run(std::slice::from_ref(&step), false)[0].expect("ran").passed(&step));
        }
        let refused = l.run(std::slice::from_ref(&step), false)[0].expect("ran");
        assert_eq!(refused.allowed, 0);
        assert!(refused.retry_after <= Duration::from_secs(1) && refused.retry_after > Duration::ZERO);
        let other = Step::new("key", "b", 60, MINUTE);
        assert!(l.run(std::slice::from_ref(&other), false)[0].expect("ran").passed(&other), "another bucket");
    }

    #[test]
    fn a_batch_takes_what_fits() {
        let l = LocalLimits::default();
        let step = Step::new("key", "a", 60, MINUTE).cost(50, Mode::UpTo);
        assert_eq!(l.run(std::slice::from_ref(&step), false)[0].expect("ran").allowed, 50);
        let second = l.run(std::slice::from_ref(&step), false)[0].expect("ran");
        assert_eq!(second.allowed, 10);
        assert_eq!(second.remaining, 0);
        assert!(second.retry_after > Duration::ZERO);
    }

    #[test]
    fn peeking_takes_nothing_and_atomic_passes_undo() {
        let l = LocalLimits::default();
        let day = Duration::from_secs(86_400);
        let peek = Step::new("mail", "a@example.com", 3, day).cost(1, Mode::Peek);
        for _ in 0..10 {
            assert!(l.run(std::slice::from_ref(&peek), false)[0].expect("ran").passed(&peek));
        }
        let one = Step::new("inviter", "u", 5, day);
        let spent = Step::new("mail", "a@example.com", 3, day);
        for _ in 0..3 {
            assert!(l.run(std::slice::from_ref(&spent), false)[0].expect("ran").passed(&spent));
        }
        let out = l.run(&[one.clone(), spent.clone()], true);
        assert!(out[0].expect("ran").passed(&one));
        assert_eq!(out[1].expect("ran").allowed, 0);
        assert!(out[1].expect("ran").retry_after > Duration::from_secs(3600));
        // The first step was undone: its whole allowance is left.
        let look = l.run(&[Step::new("inviter", "u", 5, day).cost(5, Mode::Peek)], false);
        assert_eq!(look[0].expect("ran").allowed, 5);
    }

    #[test]
    fn a_refused_step_stops_the_pass() {
        let l = LocalLimits::default();
        let ip = Step::new("ip", "127.0.0.1", 1, MINUTE);
        let account = Step::new("account", "a", 10, MINUTE);
        l.run(std::slice::from_ref(&ip), false);
        let out = l.run(&[ip, account], false);
        assert_eq!(out[0].expect("ran").allowed, 0);
        assert_eq!(out[1], None);
    }
}
