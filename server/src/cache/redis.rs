//! The link to Redis: one bb8 pool of multiplexed connections (a broken
//! connection is dropped and a new one made on the next use), every command
//! bounded by a timeout, and the Lua script of the limits, sent by its hash
//! (`EVALSHA`; loaded on first use and after a Redis restart).

use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;

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

pub(crate) struct RedisLink {
    pool: bb8::Pool<Manager>,
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

    /// One pass of limit steps: one round trip.
    pub(crate) async fn limits(&self, steps: &[Step], atomic: bool) -> Result<Outcomes, Fault> {
        let mut call = self.gcra.prepare_invoke();
        call.arg(u8::from(atomic));
        for step in steps {
            let (interval, burst) = step.shape();
            let mode = match step.mode {
                Mode::All => 0,
                Mode::UpTo => 1,
                Mode::Peek => 2,
            };
            call.key(format!("{}:rl:{}:{}", self.prefix, step.kind, bucket_name(&step.id)));
            call.arg(micros(interval).max(1)).arg(micros(burst)).arg(step.cost).arg(mode);
        }
        let rows: Vec<Vec<i64>> = self.run(async |c| call.invoke_async(c).await).await?;
        let mut out: Outcomes = vec![None; steps.len()];
        for (slot, row) in out.iter_mut().zip(rows) {
            let [allowed, retry_us, remaining] = row[..] else {
                return Err(Fault(format!("the limit script answered {} values, not 3", row.len())));
            };
            *slot = Some(Outcome {
                allowed: u32::try_from(allowed).unwrap_or(0),
                retry_after: Duration::from_micros(u64::try_from(retry_us).unwrap_or(0)),
                remaining: u32::try_from(remaining).unwrap_or(0),
            });
        }
        Ok(out)
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
