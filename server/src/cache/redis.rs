//! The link to Redis: one bb8 pool of multiplexed connections (a broken
//! connection is dropped and a new one made on the next use), every command
//! bounded by a timeout, and the Lua script of the limits, sent by its hash
//! (`EVALSHA`; loaded on first use and after a Redis restart).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use tokio::sync::oneshot;

use super::limits::{Mode, Outcome, Outcomes, Step};

/// A Redis fault: unreachable, too slow, or an unexpected answer.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Fault(String);

impl Fault {
    fn from(e: impl std::fmt::Display) -> Self {
        Self(e.to_string())
    }
}

/// bb8-redis's manager, with a connection marked broken after a failed
/// command so the pool replaces it (a multiplexed connection does not
/// reconnect by itself).
struct Manager(bb8_redis::RedisConnectionManager);

pub(crate) struct Conn {
    inner: MultiplexedConnection,
    broken: bool,
}

impl bb8::ManageConnection for Manager {
    type Connection = Conn;
    type Error = redis::RedisError;

    async fn connect(&self) -> Result<Conn, redis::RedisError> {
        Ok(Conn { inner: self.0.connect().await?, broken: false })
    }

    async fn is_valid(&self, conn: &mut Conn) -> Result<(), redis::RedisError> {
        self.0.is_valid(&mut conn.inner).await
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.broken
    }
}

/// A pass of limit steps waiting for a round trip.
struct Pass {
    steps: Vec<Step>,
    atomic: bool,
}

type Reply = oneshot::Sender<Result<Outcomes, Fault>>;

#[derive(Default)]
struct Queue {
    waiting: Vec<(Pass, Reply)>,
    /// Whether a task is sending passes (it takes the ones that arrive).
    flushing: bool,
}

/// The passes sent for the passes waiting: every pass that takes one call
/// from one bucket (a single call with an API key, say) is merged with the
/// others on that bucket into one step taking as many calls as fit, so a
/// thousand calls on one key cost the script one step; each pass's own
/// answer is then worked out from the merged one, exactly as if the passes
/// had run one after another.
struct Merged {
    wire: Vec<Pass>,
    /// Per pass waiting: its pass on the wire, and its place among the
    /// passes merged there (`None`: sent as it is).
    place: Vec<(usize, Option<u32>)>,
}

impl Merged {
    fn of(passes: &[Pass]) -> Self {
        let mut wire: Vec<Pass> = Vec::with_capacity(passes.len());
        let mut place = Vec::with_capacity(passes.len());
        let mut runs: HashMap<(&'static str, &str, u32, Duration), usize> = HashMap::new();
        for pass in passes {
            match &pass.steps[..] {
                [step] if step.cost == 1 && step.mode != Mode::Peek => {
                    let at = *runs.entry((step.kind, step.id.as_str(), step.n, step.period)).or_insert_with(|| {
                        wire.push(Pass { steps: vec![step.clone().cost(0, Mode::UpTo)], atomic: false });
                        wire.len() - 1
                    });
                    let run = &mut wire[at].steps[0];
                    place.push((at, Some(run.cost)));
                    run.cost += 1;
                }
                _ => {
                    wire.push(Pass { steps: pass.steps.clone(), atomic: pass.atomic });
                    place.push((wire.len() - 1, None));
                }
            }
        }
        Self { wire, place }
    }

    /// Each waiting pass's answer, from the answers of the wire.
    fn split(&self, outcomes: &[Outcomes]) -> Vec<Outcomes> {
        self.place
            .iter()
            .map(|&(at, place)| {
                let out = outcomes.get(at).cloned().unwrap_or_default();
                let Some(j) = place else { return out };
                let (Some(run), Some(Some(o))) = (self.wire[at].steps.first(), out.first().copied()) else {
                    return vec![None];
                };
                vec![Some(one_of_run(o, j, run.shape().0))]
            })
            .collect()
    }
}

/// The answer to the `j`th call of a merged run, from the run's answer:
/// the first `allowed` calls went through, one after another.
fn one_of_run(run: Outcome, j: u32, interval: Duration) -> Outcome {
    if j < run.allowed {
        // Calls taken after this one push the next free time later.
        let later = interval * (run.allowed - j - 1);
        Outcome {
            allowed: 1,
            retry_after: run.retry_after.saturating_sub(later),
            remaining: run.remaining + (run.allowed - j - 1),
        }
    } else {
        Outcome { allowed: 0, retry_after: run.retry_after, remaining: 0 }
    }
}

/// Most passes in one script call (a bound on how long Redis runs it).
const MAX_PASSES: usize = 256;

pub(crate) struct RedisLink {
    pool: bb8::Pool<Manager>,
    /// Limit passes waiting for the next round trip.
    queue: Mutex<Queue>,
    /// For the subscription, which needs a connection of its own.
    client: redis::Client,
    prefix: String,
    gcra: redis::Script,
    timeout: Duration,
    /// This process, among the replicas that report to Redis.
    replica: String,
}

/// Replicas that reported within this window count as alive.
const ALIVE_WINDOW_MS: u64 = 3_000;

impl RedisLink {
    /// Prepares the link; no connection is made until the first command, so
    /// the server starts while Redis is away.
    pub(crate) fn open(url: &str, prefix: &str, timeout: Duration) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).map_err(|e| anyhow::anyhow!("REDIS_URL is not usable: {e}"))?;
        let manager = Manager(bb8_redis::RedisConnectionManager::new(url)?);
        let pool = bb8::Pool::builder()
            .max_size(4)
            .min_idle(None)
            .connection_timeout(timeout)
            // A pooled connection is checked by use: a PING on every
            // checkout would double the round trips.
            .test_on_check_out(false)
            .retry_connection(false)
            .build_unchecked(manager);
        Ok(Self {
            pool,
            queue: Mutex::default(),
            client,
            prefix: prefix.to_owned(),
            gcra: redis::Script::new(include_str!("gcra.lua")),
            timeout,
            replica: uuid::Uuid::now_v7().simple().to_string(),
        })
    }

    pub(crate) fn client(&self) -> &redis::Client {
        &self.client
    }

    pub(crate) fn replica(&self) -> &str {
        &self.replica
    }

    /// The channel of change notices.
    pub(crate) fn channel(&self) -> String {
        format!("{}:changes", self.prefix)
    }

    /// Runs a command on a pooled connection, within the timeout; a
    /// connection whose command failed is replaced.
    async fn run<T, F>(&self, command: F) -> Result<T, Fault>
    where
        F: AsyncFnOnce(&mut MultiplexedConnection) -> redis::RedisResult<T>,
    {
        let mut conn = self.pool.get().await.map_err(Fault::from)?;
        crate::observe::redis_round_trip();
        match tokio::time::timeout(self.timeout, command(&mut conn.inner)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                conn.broken = true;
                Err(Fault::from(e))
            }
            Err(_) => {
                conn.broken = true;
                Err(Fault(format!("no answer within {} ms", self.timeout.as_millis())))
            }
        }
    }

    /// Runs a pass of limit steps. Passes asked for while a round trip is
    /// under way go together in the next one: one script call carries every
    /// pass waiting (up to [`MAX_PASSES`]), so a loaded replica makes far
    /// fewer round trips than calls, and an idle one adds no wait.
    pub(crate) async fn limits(self: &Arc<Self>, steps: &[Step], atomic: bool) -> Result<Outcomes, Fault> {
        let (tx, rx) = oneshot::channel();
        let lead = {
            let mut queue = self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            queue.waiting.push((Pass { steps: steps.to_vec(), atomic }, tx));
            !std::mem::replace(&mut queue.flushing, true)
        };
        if lead {
            tokio::spawn(self.clone().flush());
        }
        rx.await.unwrap_or_else(|_| Err(Fault("the limit pass was dropped".into())))
    }

    /// Sends the waiting passes, a round trip at a time, until none wait.
    async fn flush(self: Arc<Self>) {
        loop {
            let batch: Vec<(Pass, Reply)> = {
                let mut queue = self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if queue.waiting.is_empty() {
                    queue.flushing = false;
                    return;
                }
                let n = queue.waiting.len().min(MAX_PASSES);
                queue.waiting.drain(..n).collect()
            };
            let (passes, replies): (Vec<Pass>, Vec<Reply>) = batch.into_iter().unzip();
            let merged = Merged::of(&passes);
            match self.passes(&merged.wire).await {
                Ok(outcomes) => {
                    for (reply, outcome) in replies.into_iter().zip(merged.split(&outcomes)) {
                        let _ = reply.send(Ok(outcome));
                    }
                }
                Err(e) => {
                    for reply in replies {
                        let _ = reply.send(Err(Fault(e.0.clone())));
                    }
                }
            }
        }
    }

    /// Passes of limit steps in one script call: one round trip.
    async fn passes(&self, passes: &[Pass]) -> Result<Vec<Outcomes>, Fault> {
        let mut call = self.gcra.prepare_invoke();
        call.arg(passes.len());
        // Each bucket is sent once (the calls waiting together often share one).
        let mut buckets: HashMap<(&'static str, &str), usize> = HashMap::new();
        for pass in passes {
            call.arg(u8::from(pass.atomic)).arg(pass.steps.len());
            for step in &pass.steps {
                let next = buckets.len() + 1;
                let index = *buckets.entry((step.kind, step.id.as_str())).or_insert_with(|| {
                    call.key(format!("{}:rl:{}:{}", self.prefix, step.kind, bucket_name(&step.id)));
                    next
                });
                let (interval, burst) = step.shape();
                let mode = match step.mode {
                    Mode::All => 0,
                    Mode::UpTo => 1,
                    Mode::Peek => 2,
                };
                call.arg(index).arg(micros(interval).max(1)).arg(micros(burst)).arg(step.cost).arg(mode);
            }
        }
        let flat: Vec<i64> = self.run(async |c| call.invoke_async(c).await).await?;
        let mut values = flat.into_iter();
        let mut all = Vec::with_capacity(passes.len());
        let short = || Fault("the limit script answered too few values".into());
        for pass in passes {
            let ran = usize::try_from(values.next().ok_or_else(short)?).unwrap_or(0);
            let mut out: Outcomes = vec![None; pass.steps.len()];
            for slot in out.iter_mut().take(ran) {
                let (allowed, retry_us, remaining) = (
                    values.next().ok_or_else(short)?,
                    values.next().ok_or_else(short)?,
                    values.next().ok_or_else(short)?,
                );
                *slot = Some(Outcome {
                    allowed: u32::try_from(allowed).unwrap_or(0),
                    retry_after: Duration::from_micros(u64::try_from(retry_us).unwrap_or(0)),
                    remaining: u32::try_from(remaining).unwrap_or(0),
                });
            }
            all.push(out);
        }
        Ok(all)
    }

    /// Reports this replica alive and counts the replicas alive: one round
    /// trip, which is also the health probe. Returns its time and the count.
    pub(crate) async fn heartbeat(&self) -> Result<(Duration, u32), Fault> {
        let set = format!("{}:replicas", self.prefix);
        let now_ms = u64::try_from(
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis(),
        )
        .unwrap_or(0);
        let mut pipe = redis::pipe();
        pipe.zadd(&set, &self.replica, now_ms)
            .ignore()
            .zrembyscore(&set, 0, now_ms.saturating_sub(ALIVE_WINDOW_MS))
            .ignore()
            .pexpire(&set, 60_000)
            .ignore()
            .zcard(&set);
        let start = Instant::now();
        let (alive,): (u32,) = self.run(async |c| pipe.query_async(c).await).await?;
        Ok((start.elapsed(), alive.max(1)))
    }

    /// Publishes a change notice to every replica.
    pub(crate) async fn publish(&self, message: &str) -> Result<(), Fault> {
        let channel = self.channel();
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(&channel).arg(message);
        self.run(async |c| cmd.query_async::<i64>(c).await).await.map(drop)
    }
}

/// A bucket's name in Redis: a digest of its id, so no address (e-mail or
/// IP) is stored in Redis as it is.
fn bucket_name(id: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    let digest = sha2::Sha256::digest(id.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..18])
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::limits::LocalLimits;

    /// Merged passes answer exactly as the same passes run one by one, in
    /// the order of the wire (a run where its first call was).
    #[test]
    fn a_merged_run_answers_each_call_as_if_alone() {
        const MINUTE: Duration = Duration::from_secs(60);
        let one = |id: &str| Pass { steps: vec![Step::new("key", id, 5, MINUTE).cost(1, Mode::UpTo)], atomic: false };
        let batch = Pass { steps: vec![Step::new("key", "a", 5, MINUTE).cost(2, Mode::UpTo)], atomic: false };
        let passes = vec![one("a"), one("b"), batch, one("a"), one("a"), one("a"), one("a"), one("a")];

        let merged = Merged::of(&passes);
        assert_eq!(merged.wire.len(), 3, "the calls on `a` in one step, `b`, and the batch");
        let wire = LocalLimits::default();
        let outcomes: Vec<Outcomes> = merged.wire.iter().map(|p| wire.run(&p.steps, p.atomic)).collect();
        let got = merged.split(&outcomes);

        let mut order: Vec<usize> = (0..passes.len()).collect();
        order.sort_by_key(|&i| (merged.place[i].0, merged.place[i].1));
        let alone = LocalLimits::default();
        let mut expected = vec![Vec::new(); passes.len()];
        for i in order {
            expected[i] = alone.run(&passes[i].steps, passes[i].atomic);
        }
        let allowed = |o: &[Outcomes]| -> Vec<u32> { o.iter().map(|x| x[0].map_or(0, |o| o.allowed)).collect() };
        assert_eq!(allowed(&got), vec![1, 1, 0, 1, 1, 1, 1, 0]);
        for (g, e) in got.iter().zip(&expected) {
            let (g, e) = (g[0].expect("ran"), e[0].expect("ran"));
            assert_eq!((g.allowed, g.remaining), (e.allowed, e.remaining));
            // Times are read at two instants: equal within a millisecond.
            assert!(g.retry_after.abs_diff(e.retry_after) < Duration::from_millis(1), "{g:?} {e:?}");
        }
    }
}
