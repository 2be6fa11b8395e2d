//! What replicas share: rate limits and the bus of change notices. A pass
//! of limits runs in one of two places with the same answers: in process
//! ([`LocalLimits`], without `REDIS_URL`: one replica) or in Redis
//! ([`RedisLink`], every replica shares the limits).
//!
//! Redis away is a degraded state, never an outage: a pass of limits that
//! cannot reach Redis runs in process with each limit divided by the
//! replicas last seen alive, change notices are left to the database sync,
//! `health.check` says `degraded`, and a log line (on each change of state)
//! and a counter (each fallback) record it. A heartbeat every second (every
//! half second while away) finds Redis again; the subscription then
//! reconnects and resyncs.

pub(crate) mod bus;
pub(crate) mod limits;
mod redis;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use trellis_schema::health::CacheCheck;

pub(crate) use self::bus::{Bus, Change};
use self::limits::{LocalLimits, Outcomes, Step};
use self::redis::Fault;
use self::redis::RedisLink;

pub(crate) struct Cache {
    local: LocalLimits,
    redis: Option<Arc<RedisLink>>,
    bus: Bus,
    /// Whether Redis answered the last command sent to it.
    up: AtomicBool,
    /// Whether this replica listens to the change notices.
    subscribed: AtomicBool,
    /// Passes of limits and change notices that fell back to this process
    /// (or to the database sync) because Redis was away.
    fallbacks: AtomicU64,
    /// Replicas last seen alive (at least 1).
    alive: AtomicU32,
    /// The last heartbeat's round trip, in microseconds.
    latency_us: AtomicU64,
    /// Told when Redis is found away, so the subscription is dropped and
    /// made again (then resynced) rather than waiting on a dead socket.
    lost: Notify,
    /// Told when Redis is found again, so the subscription is made at once
    /// rather than after its backoff.
    found: Notify,
}

/// Most replicas a limit is shared by when Redis is away.
const MAX_DIVISOR: u32 = 64;

impl Cache {
    /// Limits in process, no bus: a single server.
    pub(crate) fn memory() -> Arc<Self> {
        Arc::new(Self::with(None, Bus::default()))
    }

    fn with(redis: Option<Arc<RedisLink>>, bus: Bus) -> Self {
        Self {
            local: LocalLimits::default(),
            up: AtomicBool::new(redis.is_some()),
            redis,
            bus,
            subscribed: AtomicBool::new(false),
            fallbacks: AtomicU64::new(0),
            alive: AtomicU32::new(1),
            latency_us: AtomicU64::new(0),
            lost: Notify::new(),
            found: Notify::new(),
        }
    }

    /// Shared through Redis at `url`. Redis need not be up: the server starts
    /// degraded and finds it when it comes. Returns the notices to publish,
    /// for [`Cache::spawn`].
    pub(crate) async fn redis(
        url: &str,
        prefix: &str,
        timeout: Duration,
    ) -> anyhow::Result<(Arc<Self>, mpsc::Receiver<Change>)> {
        let link = Arc::new(RedisLink::open(url, prefix, timeout)?);
        let (tx, rx) = mpsc::channel(bus::QUEUE);
        let cache = Arc::new(Self::with(Some(link), Bus::new(tx)));
        cache.beat().await;
        if !cache.up.load(Ordering::Relaxed) {
            tracing::warn!("Redis is not reachable at start: limits per replica until it is");
        }
        Ok((cache, rx))
    }

    /// The bus to publish changes on.
    pub(crate) fn bus(&self) -> Bus {
        self.bus.clone()
    }

    /// Runs the steps (see [`LocalLimits::run`]): in Redis when it is
    /// configured and up (one round trip), else in process.
    pub(crate) async fn limits(&self, steps: &[Step], atomic: bool) -> Outcomes {
        if let Some(link) = &self.redis {
            if self.up.load(Ordering::Relaxed) {
                match link.limits(steps, atomic).await {
                    Ok(out) => return out,
                    Err(e) => self.went_away(&e),
                }
            }
            self.fallbacks.fetch_add(1, Ordering::Relaxed);
            crate::observe::cache_fallback();
            let alive = self.alive.load(Ordering::Relaxed).clamp(1, MAX_DIVISOR);
            if alive > 1 {
                let shared: Vec<Step> = steps.iter().map(|s| Step { n: s.n.div_ceil(alive), ..s.clone() }).collect();
                return self.local.run(&shared, atomic);
            }
        }
        self.local.run(steps, atomic)
    }

    /// The cache's state for `health.check`: with Redis, `ok` only while it
    /// answers and this replica listens to the change notices.
    pub(crate) fn check(&self) -> CacheCheck {
        match &self.redis {
            None => CacheCheck { ok: true, latency_ms: 0.0, backend: "memory".into(), fallbacks: 0 },
            Some(_) => CacheCheck {
                ok: self.up.load(Ordering::Relaxed) && self.subscribed.load(Ordering::Relaxed),
                latency_ms: self.latency_us.load(Ordering::Relaxed) as f64 / 1000.0,
                backend: "redis".into(),
                fallbacks: self.fallbacks.load(Ordering::Relaxed),
            },
        }
    }

    fn went_away(&self, e: &Fault) {
        if self.up.swap(false, Ordering::Relaxed) {
            tracing::warn!(error = %e, "Redis went away: limits per replica, changes through the database sync");
            self.lost.notify_waiters();
        }
    }

    /// A heartbeat: reports this replica, counts the live ones, and marks
    /// Redis up or away.
    async fn beat(&self) {
        let Some(link) = &self.redis else { return };
        match link.heartbeat().await {
            Ok((latency, alive)) => {
                self.alive.store(alive, Ordering::Relaxed);
                self.latency_us.store(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
                if !self.up.swap(true, Ordering::Relaxed) {
                    tracing::info!(replicas = alive, "Redis is back: limits shared again");
                    self.found.notify_one();
                }
            }
            Err(e) => self.went_away(&e),
        }
    }

    /// The background work: the heartbeat, the publisher of change notices,
    /// the subscription (`apply` runs for each notice from another replica,
    /// `resync` each time the subscription is made, since notices sent while
    /// it was down are lost), and the housekeeping of in-process limits.
    pub(crate) fn spawn(
        self: &Arc<Self>,
        notices: Option<mpsc::Receiver<Change>>,
        apply: impl Fn(Change) + Send + Sync + 'static,
        resync: impl Fn() + Send + Sync + 'static,
    ) -> Vec<JoinHandle<()>> {
        let mut tasks = vec![tokio::spawn({
            let cache = self.clone();
            async move {
                let mut tick = tokio::time::interval(Duration::from_secs(60));
                loop {
                    tick.tick().await;
                    cache.local.housekeep();
                }
            }
        })];
        let Some(link) = self.redis.clone() else { return tasks };
        tasks.push(tokio::spawn({
            let cache = self.clone();
            async move {
                loop {
                    let up = cache.up.load(Ordering::Relaxed);
                    tokio::time::sleep(if up { Duration::from_secs(1) } else { Duration::from_millis(500) }).await;
                    cache.beat().await;
                }
            }
        }));
        if let Some(mut notices) = notices {
            let (cache, link) = (self.clone(), link.clone());
            tasks.push(tokio::spawn(async move {
                while let Some(change) = notices.recv().await {
                    if !cache.up.load(Ordering::Relaxed) {
                        cache.fallbacks.fetch_add(1, Ordering::Relaxed);
                        crate::observe::cache_fallback();
                        continue;
                    }
                    if let Err(e) = link.publish(&change.encode(link.replica())).await {
                        cache.fallbacks.fetch_add(1, Ordering::Relaxed);
                        crate::observe::cache_fallback();
                        cache.went_away(&e);
                    }
                }
            }));
        }
        tasks.push(tokio::spawn(self.clone().subscribe(link, apply, resync)));
        tasks
    }

    /// Listens to the change notices for as long as the process runs,
    /// subscribing again (with backoff) whenever the subscription is lost.
    async fn subscribe(
        self: Arc<Self>,
        link: Arc<RedisLink>,
        apply: impl Fn(Change) + Send + Sync + 'static,
        resync: impl Fn() + Send + Sync + 'static,
    ) {
        const FIRST_WAIT: Duration = Duration::from_millis(100);
        let channel = link.channel();
        let mut wait = FIRST_WAIT;
        loop {
            let connect = async {
                let mut pubsub = link.client().get_async_pubsub().await?;
                pubsub.subscribe(&channel).await?;
                Ok::<_, ::redis::RedisError>(pubsub)
            };
            match tokio::time::timeout(Duration::from_secs(2), connect).await {
                Ok(Ok(pubsub)) => {
                    wait = FIRST_WAIT;
                    self.subscribed.store(true, Ordering::Relaxed);
                    resync();
                    tracing::info!("listening to change notices from other replicas");
                    let mut messages = pubsub.into_on_message();
                    loop {
                        tokio::select! {
                            message = messages.next() => {
                                let Some(message) = message else { break };
                                let Ok(text) = message.get_payload::<String>() else { continue };
                                match Change::decode(&text) {
                                    Some((from, change)) if from != link.replica() => apply(change),
                                    Some(_) => {}
                                    None => tracing::debug!(message = %text, "not a change notice"),
                                }
                            }
                            () = self.lost.notified() => break,
                        }
                    }
                    self.subscribed.store(false, Ordering::Relaxed);
                    tracing::warn!("change notices lost: resubscribing");
                }
                Ok(Err(e)) => tracing::debug!(error = %e, "subscription to change notices failed"),
                Err(_) => tracing::debug!("subscription to change notices timed out"),
            }
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.found.notified() => {}
            }
            wait = (wait * 2).min(Duration::from_secs(5));
        }
    }
}
