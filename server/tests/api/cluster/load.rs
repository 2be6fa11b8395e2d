//! A workload: loops of calls running at once, every call timed and kept.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::harness::{Answer, Failure};

/// One call of a workload.
pub struct Call {
    /// Which loop made it, and its number in that loop.
    pub loop_index: usize,
    pub n: usize,
    pub what: &'static str,
    /// When it was sent and answered, since the workload began.
    pub start: Duration,
    pub end: Duration,
    pub outcome: Result<Answer, Failure>,
}

impl Call {
    /// The result, if the call succeeded.
    pub fn result(&self) -> Option<&Value> {
        self.outcome.as_ref().ok()?.as_ref().ok()
    }

    pub fn succeeded(&self) -> bool {
        self.result().is_some()
    }
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let outcome = match &self.outcome {
            Ok(Ok(_)) => "ok".to_owned(),
            Ok(Err(e)) => format!("error {e}"),
            Err(failure) => failure.clone(),
        };
        write!(f, "{} #{}.{} {:?}..{:?}: {outcome}", self.what, self.loop_index, self.n, self.start, self.end)
    }
}

/// Runs `loops` loops at once until `length` after `began`; each calls
/// `step(loop, n)` for n = 0, 1, … at most once every `every`. Returns every
/// call made.
pub async fn run<F, Fut>(began: Instant, loops: usize, length: Duration, every: Duration, step: F) -> Vec<Call>
where
    F: Fn(usize, usize) -> Fut,
    Fut: Future<Output = (&'static str, Result<Answer, Failure>)>,
{
    let step = &step;
    let one_loop = |loop_index| async move {
        let mut calls = Vec::new();
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        for n in 0.. {
            tick.tick().await;
            let start = began.elapsed();
            if start >= length {
                break;
            }
            let (what, outcome) = step(loop_index, n).await;
            calls.push(Call { loop_index, n, what, start, end: began.elapsed(), outcome });
        }
        calls
    };
    futures::future::join_all((0..loops).map(one_loop)).await.into_iter().flatten().collect()
}
