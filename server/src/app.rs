//! Builds the application from its settings and runs it until shutdown.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tokio::net::TcpListener;

use crate::access::keys::Keys;
use crate::auth::Auth;
use crate::auth::codes::CodeHasher;
use crate::auth::password::PasswordHasherPool;
use crate::auth::policy::PasswordPolicy;
use crate::auth::revocation::RevokedSessions;
use crate::auth::throttle::AuthThrottle;
use crate::auth::tokens::TokenKeys;
use crate::cache::{Cache, Change};
use crate::config::Config;
use crate::db::Db;
use crate::db::pool::{BackendKind, PoolOptions};
use crate::health::HealthMonitor;
use crate::mail::{MailWorker, Sender, Wakeup};
use crate::notifications::events::Events;
use crate::orgs::limits::InviteLimits;
use crate::rpc::http::Front;
use crate::rpc::registry::Registry;
use crate::rpc::server::{ServeOptions, serve};
use crate::rpc::ws::WsEndpoint;
use crate::state::State;
use crate::webhooks::hook::Hooker;
use crate::webhooks::send::Webhooks;
use crate::webhooks::send::{DeliverySender, RetryPolicy};

/// What a change notice from another replica drops here.
fn apply_notice(state: &Arc<State>) -> impl Fn(Change) + Send + Sync + 'static {
    let state = Arc::downgrade(state);
    move |change| {
        let Some(state) = state.upgrade() else { return };
        match change {
            Change::SessionEnded(id) => state.auth.revoked.revoke_here(id),
            Change::KeyChanged(id) => state.keys.cache.invalidate_here(id),
            Change::MembersChanged => state.keys.cache.clear_here(),
            Change::Notified(user, seq) => state.events.hub.wake(user, seq),
        }
    }
}

/// A built server: its port is bound, its database migrated.
pub struct Application {
    listener: TcpListener,
    front: Arc<Front>,
    opts: ServeOptions,
    /// Background work (mail sender, housekeeping), stopped with the server.
    background: Vec<tokio::task::JoinHandle<()>>,
    /// Where metrics are served, when `TRELLIS_METRICS_LISTEN` is set.
    metrics_addr: Option<SocketAddr>,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("failed to create the data directory {}", config.data_dir.display()))?;
        let secret = jwt_secret(&config, BackendKind::of_url(&config.database_url()))?;
        let db = Arc::new(connect_and_migrate(&config).await?);
        let (cache, notices) = match &config.redis_url {
            Some(url) => {
                let timeout = Duration::from_millis(config.redis_timeout_ms.max(1));
                let (cache, notices) = Cache::redis(url, &config.redis_prefix, timeout).await?;
                (cache, Some(notices))
            }
            None => (Cache::memory(), None),
        };
        let access_ttl = Duration::from_secs(config.access_token_ttl_secs);
        let revoked = RevokedSessions::new(access_ttl, cache.bus());
        let mut follower = crate::auth::session_ends::Follower::start(&db, access_ttl + Duration::from_secs(60))
            .await
            .context("failed to read the log of ended sessions")?;
        for sid in follower.poll(&db).await.context("failed to load ended sessions")? {
            revoked.revoke_here(sid);
        }
        let sender = Sender::from_config(config.smtp_url.as_deref(), &config.mail_from)?;
        let hasher = tokio::task::spawn_blocking({
            let n = config.hash_concurrency();
            move || PasswordHasherPool::new(n)
        })
        .await??;

        let secrets = crate::auth::sealed::SecretBox::from_setting(config.encryption_keys.as_deref(), &secret)?;
        let resealed = crate::auth::sealed::reseal_all(&db, &secrets).await.context("failed to seal TOTP secrets")?;
        if resealed > 0 {
            tracing::info!(resealed, key_id = secrets.current_id(), "TOTP secrets sealed under the current key");
        }
        let state = Arc::new(State {
            auth: Auth {
                tokens: TokenKeys::new(&secret, access_ttl),
                revoked: Arc::new(revoked),
                hasher,
                throttle: Arc::new(AuthThrottle::new(&config, cache.clone())),
                policy: PasswordPolicy::new(&config),
                codes: CodeHasher::new(&secret),
                secrets,
            },
            keys: Keys::new(cache.clone()),
            invites: InviteLimits::new(cache.clone()),
            trade_writes: crate::trades::limits::TradeLimits::new(cache.clone()),
            mail: Wakeup::default(),
            events: Events::default(),
            webhooks: Webhooks::default(),
            health: HealthMonitor::start(db.clone(), cache.clone()).await,
            db,
            perf: Arc::new(crate::performance::Recorder::new(config.perf_recording)),
            started_at: Instant::now(),
            openrpc: crate::rpc::discover::document(),
            config: config.clone(),
        });
        let webhook_timeout = Duration::from_millis(config.webhook_timeout_ms.max(100));
        let mut background = vec![
            MailWorker {
                db: state.db.clone(),
                sender,
                wakeup: state.mail.clone(),
                poll: Duration::from_millis(config.mail_poll_ms.max(10)),
            }
            .spawn(),
            state.events.spawn(
                state.db.clone(),
                cache.bus(),
                state.mail.clone(),
                config.public_url.clone(),
                Duration::from_millis(config.mail_poll_ms.max(10)),
            ),
            crate::notifications::spawn_sweeper(
                state.db.clone(),
                state.events.hub.clone(),
                Duration::from_millis(config.notification_poll_ms.max(10)),
            ),
            Hooker {
                db: state.db.clone(),
                wakeup: state.events.webhooks.clone(),
                sender: state.webhooks.sender.clone(),
                poll: Duration::from_millis(config.webhook_poll_ms.max(10)),
            }
            .spawn(),
            DeliverySender {
                db: state.db.clone(),
                secrets: crate::auth::sealed::SecretBox::from_setting(config.encryption_keys.as_deref(), &secret)?,
                client: crate::webhooks::send::client(webhook_timeout, config.webhooks_allow_private)
                    .context("failed to build the webhook client")?,
                wakeup: state.webhooks.sender.clone(),
                poll: Duration::from_millis(config.webhook_poll_ms.max(10)),
                policy: RetryPolicy {
                    base: Duration::from_millis(config.webhook_retry_base_ms.max(1)),
                    max_attempts: config.webhook_max_attempts.max(1),
                    disable_after: config.webhook_disable_after.max(1),
                },
                allow_private: config.webhooks_allow_private,
                timeout: webhook_timeout,
                events: state.events.clone(),
            }
            .spawn(),
            crate::auth::accounts::spawn_address_housekeeping(state.db.clone()),
            state.auth.revoked.clone().spawn_sync(
                state.db.clone(),
                Duration::from_millis(config.session_sync_ms.max(10)),
                follower,
            ),
            crate::retention::spawn(
                state.db.clone(),
                crate::retention::Retention {
                    outbox_days: config.outbox_retention_days,
                    notification_days: config.notification_retention_days,
                    audit_days: config.audit_retention_days,
                    perf_minute_days: config.perf_minute_retention_days,
                    perf_hour_days: config.perf_hour_retention_days,
                },
            ),
            crate::performance::Recorder::spawn(
                state.perf.clone(),
                state.db.clone(),
                Duration::from_millis(config.perf_flush_ms.max(10)),
            ),
            crate::trades::sweeper::spawn(
                state.db.clone(),
                state.events.clone(),
                Duration::from_millis(config.trade_sweep_ms.max(10)),
            ),
            crate::performance::spawn_alerts(
                state.db.clone(),
                state.events.clone(),
                Duration::from_millis(config.alert_eval_ms.max(10)),
            ),
            crate::performance::Recorder::spawn_rollup(
                state.db.clone(),
                Duration::from_millis(config.perf_rollup_ms.max(10)),
            ),
            crate::access::usage::UsageRecorder::spawn(
                state.keys.usage.clone(),
                state.db.clone(),
                Duration::from_millis(config.usage_flush_ms.max(10)),
                config.usage_retention_days,
            ),
        ];
        background.extend(cache.spawn(notices, apply_notice(&state), {
            let state = Arc::downgrade(&state);
            move || {
                if let Some(state) = state.upgrade() {
                    state.keys.cache.clear_here();
                    state.auth.revoked.resync();
                }
            }
        }));
        let registry = Arc::new(Registry::build());
        let ws = WsEndpoint::new(state.clone(), registry.clone());
        let listener =
            TcpListener::bind(config.listen).await.with_context(|| format!("failed to bind {}", config.listen))?;
        let metrics_addr = match config.metrics_listen {
            Some(addr) => {
                let metrics = crate::observe::MetricsListener::bind(addr).await?;
                let bound = metrics.local_addr();
                background.push(metrics.spawn(state.clone()));
                Some(bound)
            }
            None => None,
        };
        let ms = Duration::from_millis;
        let opts = ServeOptions {
            max_connections: config.max_connections,
            max_connections_per_ip: config.max_connections_per_ip,
            trusted_proxies: config.trusted_proxies.clone(),
            first_byte_timeout: ms(config.first_byte_timeout_ms),
            header_read_timeout: config.header_read_timeout(),
            idle_timeout: ms(config.idle_timeout_ms),
            h2_keep_alive_interval: ms(config.h2_keep_alive_interval_ms),
            h2_keep_alive_timeout: ms(config.h2_keep_alive_timeout_ms),
            shutdown_grace: ms(config.shutdown_grace_ms),
            send_buffer: config.socket_send_buffer_bytes,
        };
        Ok(Self { listener, front: Arc::new(Front { state, registry, ws }), opts, background, metrics_addr })
    }

    pub fn local_addr(&self) -> SocketAddr {
        #[allow(clippy::unwrap_used)] // a bound listener has an address
        self.listener.local_addr().unwrap()
    }

    /// The bound address of the metrics listener (`None`: metrics are off).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Counts the database checkouts of this server (for tests that prove a
    /// path makes no query).
    pub fn query_counter(&self) -> crate::db::pool::QueryCounter {
        self.front.state.db.query_counter()
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    /// Serves until `shutdown` completes, then lets in-flight calls finish.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let addr = self.local_addr();
        tracing::info!(%addr, "serving JSON-RPC on http://{addr}/rpc (WebSocket on the same path)");
        serve(self.listener, self.front.clone(), self.opts, shutdown, || {}).await;
        for task in self.background {
            task.abort();
        }
        // The calls of the last seconds are kept, not lost with the process.
        let state = &self.front.state;
        if let Err(e) = state.perf.flush(&state.db).await {
            tracing::warn!(error = %e, "call latency of the last seconds not written");
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// Connects to the configured database and applies pending migrations.
pub async fn connect_and_migrate(config: &Config) -> anyhow::Result<Db> {
    let url = config.database_url();
    let opts = PoolOptions { max_size: config.db_pool_size, connect_timeout: Duration::from_secs(3) };
    let db = Db::connect(&url, &opts).await?;
    let applied = db.migrate().await.context("failed to apply migrations")?;
    for m in &applied {
        tracing::info!(migration = %m, "applied migration");
    }
    tracing::info!(backend = ?db.kind(), "database ready");
    Ok(db)
}

/// The signing secret: the setting, else (SQLite only) the one kept in the
/// data dir, else a new one written there. On PostgreSQL the setting is
/// required: replicas share the database, and each generating its own secret
/// would silently refuse the others' tokens and API keys.
fn jwt_secret(config: &Config, backend: BackendKind) -> anyhow::Result<Vec<u8>> {
    if let Some(s) = &config.jwt_secret {
        anyhow::ensure!(s.len() >= 32, "TRELLIS_JWT_SECRET must be at least 32 bytes");
        return Ok(s.as_bytes().to_vec());
    }
    anyhow::ensure!(
        backend != BackendKind::Postgres,
        "TRELLIS_JWT_SECRET is not set. On PostgreSQL every replica must sign and check tokens and API keys \
         with the same secret, so it cannot be generated per process: set TRELLIS_JWT_SECRET to the same \
         random value (at least 32 bytes, e.g. `openssl rand -base64 48`) on every replica"
    );
    let path = config.data_dir.join("jwt-secret");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        return STANDARD.decode(existing.trim()).with_context(|| format!("{} is not valid base64", path.display()));
    }
    let secret: [u8; 64] = rand::random();
    write_private(&path, STANDARD.encode(secret).as_bytes())?;
    tracing::info!(path = %path.display(), "no TRELLIS_JWT_SECRET set: generated a signing secret and kept it in the data directory");
    Ok(secret.to_vec())
}

fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path).with_context(|| format!("failed to create {}", path.display()))?;
    f.write_all(contents)?;
    Ok(())
}
