//! Every setting: a flag, a `TRELLIS_*` (or standard) environment variable,
//! and a default that works on a fresh machine.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (the default).
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

/// A character class a legacy composition rule can require.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CharClass {
    Upper,
    Lower,
    Digit,
    Special,
}

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address the HTTP and WebSocket listener binds.
    #[arg(long, env = "TRELLIS_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Address of the separate listener that serves Prometheus metrics at
    /// `GET /metrics` (e.g. `127.0.0.1:9464`). Unset: no metrics served.
    /// Never the public port.
    #[arg(long, env = "TRELLIS_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Directory for the embedded database and generated secrets.
    #[arg(long, env = "TRELLIS_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// `postgres://…` for PostgreSQL; unset for a SQLite file in the data dir.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,

    /// Redis shared by every replica: rate limits and the bus of change
    /// notices (optional; unset: both in process, for a single server).
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,

    /// Prefix of every Redis key and channel, so several deployments (or
    /// test runs) can share one Redis.
    #[arg(long, env = "TRELLIS_REDIS_PREFIX", default_value = "trellis")]
    pub redis_prefix: String,

    /// Longest wait for a Redis command, in milliseconds; past it the call
    /// goes on with the in-process fallback.
    #[arg(long, env = "TRELLIS_REDIS_TIMEOUT_MS", default_value_t = 250)]
    pub redis_timeout_ms: u64,

    /// Secret that signs access tokens (at least 32 bytes). Unset: generated
    /// once and kept in `<data dir>/jwt-secret`.
    #[arg(long, env = "TRELLIS_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Log format.
    #[arg(long, env = "TRELLIS_LOG_FORMAT", value_enum, default_value = "pretty")]
    pub log_format: LogFormat,

    /// Access token lifetime, in seconds.
    #[arg(long, env = "TRELLIS_ACCESS_TOKEN_TTL_SECS", default_value_t = 900)]
    pub access_token_ttl_secs: u64,

    /// Refresh token lifetime, in days (each refresh issues a new one).
    #[arg(long, env = "TRELLIS_REFRESH_TOKEN_TTL_DAYS", default_value_t = 30)]
    pub refresh_token_ttl_days: u64,

    /// Largest request body accepted, in bytes.
    #[arg(long, env = "TRELLIS_MAX_BODY_BYTES", default_value_t = 1 << 20)]
    pub max_body_bytes: usize,

    /// Largest response body sent, in bytes.
    #[arg(long, env = "TRELLIS_MAX_RESPONSE_BYTES", default_value_t = 10 << 20)]
    pub max_response_bytes: usize,

    /// Most calls in one batch.
    #[arg(long, env = "TRELLIS_MAX_BATCH", default_value_t = 100)]
    pub max_batch: usize,

    /// Deepest nesting of arrays and objects in a request (at most 120).
    #[arg(long, env = "TRELLIS_MAX_JSON_DEPTH", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(2..=120))]
    pub max_json_depth: u32,

    /// Most open connections; further ones are answered 503 and closed.
    #[arg(long, env = "TRELLIS_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Time a client has to send its request headers, in milliseconds.
    #[arg(long, env = "TRELLIS_HEADER_READ_TIMEOUT_MS", default_value_t = 10_000)]
    pub header_read_timeout_ms: u64,

    /// Time a client has to send its request body, in milliseconds.
    #[arg(long, env = "TRELLIS_BODY_READ_TIMEOUT_MS", default_value_t = 30_000)]
    pub body_read_timeout_ms: u64,

    /// Most live subscriptions on one WebSocket connection.
    #[arg(long, env = "TRELLIS_MAX_SUBSCRIPTIONS_PER_CONNECTION", default_value_t = 64)]
    pub max_subscriptions_per_connection: u32,

    /// Most live subscriptions of one user on this replica, over all their
    /// connections.
    #[arg(long, env = "TRELLIS_MAX_SUBSCRIPTIONS_PER_USER", default_value_t = 32)]
    pub max_subscriptions_per_user: u32,

    /// Items of one subscription sent but not yet written to the socket; a
    /// subscriber that falls this far behind gets a last item saying it
    /// lagged (SUBSCRIPTION_LAGGED) and resubscribes from its cursor.
    #[arg(long, env = "TRELLIS_SUBSCRIPTION_BUFFER", default_value_t = 256)]
    pub subscription_buffer: u32,

    /// The kernel's send buffer of each connection, in bytes; unset: the
    /// system's own sizing (which grows to megabytes for a client that
    /// stops reading).
    #[arg(long, env = "TRELLIS_SOCKET_SEND_BUFFER_BYTES")]
    pub socket_send_buffer_bytes: Option<usize>,

    /// How often a subscriber checks the database for notifications whose
    /// wake-up it missed, in milliseconds.
    #[arg(long, env = "TRELLIS_NOTIFICATION_POLL_MS", default_value_t = 1000)]
    pub notification_poll_ms: u64,

    /// Database connections in the pool.
    #[arg(long, env = "TRELLIS_DB_POOL_SIZE", default_value_t = 16)]
    pub db_pool_size: u32,

    /// Password hashes computed at once (each takes 19 MiB and one core).
    #[arg(long, env = "TRELLIS_HASH_CONCURRENCY")]
    pub hash_concurrency: Option<usize>,

    /// Time in-flight calls get to finish on shutdown, in milliseconds.
    #[arg(long, env = "TRELLIS_SHUTDOWN_GRACE_MS", default_value_t = 30_000)]
    pub shutdown_grace_ms: u64,

    /// Base URL of the web app that handles the links in e-mails
    /// (`/verify-email`, `/reset-password`). Links never use the request's
    /// Host header.
    #[arg(long, env = "TRELLIS_PUBLIC_URL", default_value = "http://localhost:8080")]
    pub public_url: String,

    /// SMTP server for outgoing mail: `smtp://host:port` (plain),
    /// `smtp://host:587?tls=required` (STARTTLS) or `smtps://user:pass@host`.
    /// Unset: mail is written to the log.
    #[arg(long, env = "TRELLIS_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// Sender of outgoing mail.
    #[arg(long, env = "TRELLIS_MAIL_FROM", default_value = "Trellis <no-reply@localhost>")]
    pub mail_from: String,

    /// How often the outbox is checked for mail due, in milliseconds (new
    /// mail also wakes the sender at once).
    #[arg(long, env = "TRELLIS_MAIL_POLL_MS", default_value_t = 1_000)]
    pub mail_poll_ms: u64,

    /// Whether webhooks may post to plain `http` URLs and to private,
    /// loopback, link-local and other reserved addresses (for development
    /// and tests only). Off: such URLs are refused when a webhook is made or
    /// changed, and every address is checked again when a delivery connects.
    #[arg(long, env = "TRELLIS_WEBHOOKS_ALLOW_PRIVATE", default_value_t = false, action = clap::ArgAction::Set)]
    pub webhooks_allow_private: bool,

    /// The first retry delay of a webhook delivery, in milliseconds; the
    /// later ones are multiples of it (6, 24, 120, 360, 720, 1440, 2880,
    /// 5760 and 5760 times: with the default of 5 s, 30 s, 2 min, 10 min,
    /// 30 min, 1 h, 2 h, 4 h, 8 h and 8 h, about a day in all), with ±20%
    /// jitter.
    #[arg(long, env = "TRELLIS_WEBHOOK_RETRY_BASE_MS", default_value_t = 5_000)]
    pub webhook_retry_base_ms: u64,

    /// Attempts of one webhook delivery before it is given up (11: the
    /// last about a day after the first, with the default base).
    #[arg(long, env = "TRELLIS_WEBHOOK_MAX_ATTEMPTS", default_value_t = 11)]
    pub webhook_max_attempts: u32,

    /// Deliveries of one webhook given up in a row (every attempt failed,
    /// none delivered in between) after which the webhook is disabled and
    /// its organization's owners and admins are notified.
    #[arg(long, env = "TRELLIS_WEBHOOK_DISABLE_AFTER", default_value_t = 5)]
    pub webhook_disable_after: u32,

    /// How long one webhook attempt may take (connecting included), in
    /// milliseconds.
    #[arg(long, env = "TRELLIS_WEBHOOK_TIMEOUT_MS", default_value_t = 10_000)]
    pub webhook_timeout_ms: u64,

    /// How often the webhook workers look for new events and deliveries due,
    /// in milliseconds (a new event also wakes them at once).
    #[arg(long, env = "TRELLIS_WEBHOOK_POLL_MS", default_value_t = 1_000)]
    pub webhook_poll_ms: u64,

    /// Whether sign-in needs a verified e-mail address. Default: on when
    /// `TRELLIS_SMTP_URL` is set, off otherwise.
    #[arg(long, env = "TRELLIS_REQUIRE_VERIFIED_EMAIL")]
    pub require_verified_email: Option<bool>,

    /// Failed sign-ins in a row that lock an account (0: never lock).
    #[arg(long, env = "TRELLIS_LOCKOUT_THRESHOLD", default_value_t = 5)]
    pub lockout_threshold: u32,

    /// How long a locked account stays locked, in minutes.
    #[arg(long, env = "TRELLIS_LOCKOUT_MINUTES", default_value_t = 30)]
    pub lockout_minutes: u32,

    /// Shortest password, in Unicode characters (8 to 128).
    #[arg(long, env = "TRELLIS_PASSWORD_MIN_CHARS", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(8..=128))]
    pub password_min_chars: u32,

    /// How many previous passwords of an account a new one may not repeat.
    #[arg(long, env = "TRELLIS_PASSWORD_HISTORY", default_value_t = 5)]
    pub password_history: u32,

    /// Legacy: character classes every new password must contain
    /// (comma-separated: upper,lower,digit,special). Off by default: NIST SP
    /// 800-63B advises against composition rules.
    #[arg(long, env = "TRELLIS_PASSWORD_COMPOSITION", value_enum, value_delimiter = ',')]
    pub password_composition: Vec<CharClass>,

    /// Legacy: days after which a password expires and sign-in answers
    /// PASSWORD_EXPIRED until it is reset (0: never). Off by default: NIST SP
    /// 800-63B advises against periodic changes.
    #[arg(long, env = "TRELLIS_PASSWORD_MAX_AGE_DAYS", default_value_t = 0)]
    pub password_max_age_days: u32,

    /// Sign-in, code and verification attempts allowed per client IP per minute.
    #[arg(long, env = "TRELLIS_AUTH_RATE_PER_IP", default_value_t = 30)]
    pub auth_rate_per_ip: u32,

    /// Sign-in, code and verification attempts allowed per account (e-mail
    /// address) per minute, whatever the IP.
    #[arg(long, env = "TRELLIS_AUTH_RATE_PER_ACCOUNT", default_value_t = 10)]
    pub auth_rate_per_account: u32,

    /// How often sessions ended on other replicas are picked up, in
    /// milliseconds (their access tokens are refused here from then on).
    #[arg(long, env = "TRELLIS_SESSION_SYNC_MS", default_value_t = 1_000)]
    pub session_sync_ms: u64,

    /// How often API key usage counted in memory is written, in milliseconds.
    #[arg(long, env = "TRELLIS_USAGE_FLUSH_MS", default_value_t = 5_000)]
    pub usage_flush_ms: u64,

    /// Whether each call's duration is recorded for `performance.report`.
    /// Off: this replica records no call and writes no latency (reports
    /// still read what other replicas write).
    #[arg(long, env = "TRELLIS_PERF_RECORDING", default_value_t = true, action = clap::ArgAction::Set)]
    pub perf_recording: bool,

    /// How often call latency recorded in memory is written, in
    /// milliseconds (`performance.report` lags by at most this).
    #[arg(long, env = "TRELLIS_PERF_FLUSH_MS", default_value_t = 5_000)]
    pub perf_flush_ms: u64,

    /// Days per-minute call latency is kept.
    #[arg(long, env = "TRELLIS_PERF_MINUTE_RETENTION_DAYS", default_value_t = 7)]
    pub perf_minute_retention_days: u32,

    /// Days hourly call latency is kept.
    #[arg(long, env = "TRELLIS_PERF_HOUR_RETENTION_DAYS", default_value_t = 90)]
    pub perf_hour_retention_days: u32,

    /// How often the hours flushed since the last round are rolled up by
    /// hour, then by quarter of a day and by day, in milliseconds (a report
    /// over 6 hours reads those, so it lags by up to this much).
    #[arg(long, env = "TRELLIS_PERF_ROLLUP_MS", default_value_t = 60_000)]
    pub perf_rollup_ms: u64,

    /// Trade desk changes (lots, trades, offers, moves, approvals,
    /// cancellations) one organization may make per minute. 0: no limit.
    #[arg(long, env = "TRELLIS_TRADE_WRITES_PER_ORG_MINUTE", default_value_t = 600)]
    pub trade_writes_per_org_minute: u32,

    /// How often trades and offers past their time are expired, in
    /// milliseconds.
    #[arg(long, env = "TRELLIS_TRADE_SWEEP_MS", default_value_t = 10_000)]
    pub trade_sweep_ms: u64,

    /// How often performance alert rules are evaluated, in milliseconds (by
    /// one replica at a time).
    #[arg(long, env = "TRELLIS_ALERT_EVAL_MS", default_value_t = 15_000)]
    pub alert_eval_ms: u64,

    /// Days API key usage is kept.
    #[arg(long, env = "TRELLIS_USAGE_RETENTION_DAYS", default_value_t = 90)]
    pub usage_retention_days: u32,

    /// Mails (verification, reset, sign-in code) that may be requested per
    /// address per hour.
    #[arg(long, env = "TRELLIS_MAIL_RATE_PER_ACCOUNT", default_value_t = 10)]
    pub mail_rate_per_account: u32,

    /// Proxies (load balancers) whose word on the client's address is taken:
    /// comma-separated addresses or CIDR blocks. Only from these peers is the
    /// client read from `Forwarded` / `X-Forwarded-For`. Empty by default: the
    /// client is the connection's peer.
    #[arg(long, env = "TRELLIS_TRUSTED_PROXIES", value_delimiter = ',',
          value_parser = clap::value_parser!(crate::net::Cidr))]
    pub trusted_proxies: Vec<crate::net::Cidr>,

    /// Web origins (exact, like `https://app.example.com`) allowed to call the
    /// API from a browser: preflights are answered and CORS headers set for
    /// these only, and WebSocket upgrades carrying another `Origin` are
    /// refused. Empty by default (no cross-origin browser access).
    #[arg(long, env = "TRELLIS_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// Days a sent or given-up mail stays in the outbox (its bodies are
    /// cleared as soon as it is sent or given up).
    #[arg(long, env = "TRELLIS_OUTBOX_RETENTION_DAYS", default_value_t = 7)]
    pub outbox_retention_days: u32,

    /// Days notifications are kept (0: forever); each user's newest is kept
    /// whatever its age.
    #[arg(long, env = "TRELLIS_NOTIFICATION_RETENTION_DAYS", default_value_t = 90)]
    pub notification_retention_days: u32,

    /// Days audit events are kept (0: forever).
    #[arg(long, env = "TRELLIS_AUDIT_RETENTION_DAYS", default_value_t = 365)]
    pub audit_retention_days: u32,
    /// Well-formed API keys that match no key, allowed per client IP per
    /// minute; over it, keys not recently seen answer RATE_LIMITED without a
    /// database lookup. 0: no limit.
    #[arg(long, env = "TRELLIS_API_KEY_FAILURES_PER_IP", default_value_t = 60)]
    pub api_key_failures_per_ip: u32,

    /// Invitations one member may send per hour (across organizations; a
    /// key's invitations count for its holder). 0: no limit.
    #[arg(long, env = "TRELLIS_INVITE_RATE_PER_INVITER", default_value_t = 20)]
    pub invite_rate_per_inviter: u32,

    /// Invitations one organization may send per day. 0: no limit.
    #[arg(long, env = "TRELLIS_INVITE_RATE_PER_ORG", default_value_t = 100)]
    pub invite_rate_per_org: u32,

    /// Invitations one address may receive per day, from all organizations
    /// together. 0: no limit.
    #[arg(long, env = "TRELLIS_INVITE_RATE_PER_RECIPIENT", default_value_t = 3)]
    pub invite_rate_per_recipient: u32,
    /// Time a new connection has to send its first bytes, in milliseconds
    /// (enough of them to tell HTTP/1 from HTTP/2); a silent one is closed.
    #[arg(long, env = "TRELLIS_FIRST_BYTE_TIMEOUT_MS", default_value_t = 10_000)]
    pub first_byte_timeout_ms: u64,

    /// A connection with no request in flight for this long is closed, in
    /// milliseconds (HTTP/2, and HTTP/1 keep-alive, where the header read
    /// timeout, when shorter, already closes it).
    #[arg(long, env = "TRELLIS_IDLE_TIMEOUT_MS", default_value_t = 60_000)]
    pub idle_timeout_ms: u64,

    /// HTTP/2: how often the server pings a connection, in milliseconds.
    #[arg(long, env = "TRELLIS_H2_KEEP_ALIVE_INTERVAL_MS", default_value_t = 20_000)]
    pub h2_keep_alive_interval_ms: u64,

    /// HTTP/2: time a ping has to be answered before the connection is
    /// closed, in milliseconds.
    #[arg(long, env = "TRELLIS_H2_KEEP_ALIVE_TIMEOUT_MS", default_value_t = 10_000)]
    pub h2_keep_alive_timeout_ms: u64,

    /// WebSocket: how often the server pings each socket, in milliseconds.
    #[arg(long, env = "TRELLIS_WS_PING_INTERVAL_MS", default_value_t = 30_000)]
    pub ws_ping_interval_ms: u64,

    /// WebSocket: a socket the server has heard nothing from (no message, no
    /// pong) for this long is closed (code 1001), in milliseconds.
    #[arg(long, env = "TRELLIS_WS_IDLE_TIMEOUT_MS", default_value_t = 75_000)]
    pub ws_idle_timeout_ms: u64,

    /// Most open connections from one client address (an IPv6 /64 counts as
    /// one address); further ones are answered 503 and closed. 0: no limit.
    /// The address is the connection's peer: behind a load balancer that
    /// is the balancer, so raise this there (or set 0).
    #[arg(long, env = "TRELLIS_MAX_CONNECTIONS_PER_IP", default_value_t = 256)]
    pub max_connections_per_ip: usize,
    /// Failed `auth.refresh` calls (unknown, expired or reused tokens)
    /// allowed per client IP per minute (0: no limit); over it refreshes from
    /// that IP answer RATE_LIMITED until the limit refills.
    #[arg(long, env = "TRELLIS_REFRESH_FAILURES_PER_IP", default_value_t = 30)]
    pub refresh_failures_per_ip: u32,

    /// How long after signing in (the session's start, not a refresh) a user
    /// may turn MFA on or off and create API keys without giving the
    /// password again, in seconds.
    #[arg(long, env = "TRELLIS_STEP_UP_SECS", default_value_t = 300)]
    pub step_up_secs: u64,

    /// Keys that encrypt secrets stored readable (TOTP secrets): a comma
    /// list of `id:base64key` (32 bytes each; ids of letters, digits, `-`
    /// and `_`). The first encrypts, every one decrypts, so a key is rotated
    /// by putting a new one first and keeping the old one after it. Unset:
    /// one key, id `k0`, derived from the server secret.
    #[arg(long, env = "TRELLIS_ENCRYPTION_KEYS", hide_env_values = true)]
    pub encryption_keys: Option<String>,
}

impl Config {
    /// The settings with no flags given: the defaults, as overridden by
    /// `TRELLIS_*` variables, but never a database, cache or secret taken from
    /// the environment (so tools and tests cannot touch a real deployment's).
    pub fn defaults() -> Self {
        #[derive(clap::Parser)]
        struct Bare {
            #[command(flatten)]
            config: Config,
        }
        let mut c = <Bare as clap::Parser>::parse_from(["trellis"]).config;
        // `parse_from` reads the environment too; these must come from
        // the caller.
        c.database_url = None;
        c.redis_url = None;
        c.jwt_secret = None;
        c.smtp_url = None;
        c.encryption_keys = None;
        c
    }

    /// Settings for a throwaway server (tests, tools): loopback on a port the
    /// system picks, `data_dir` for its files, small pools, high account
    /// rate limits.
    pub fn ephemeral(data_dir: &std::path::Path) -> Self {
        let mut c = Self::defaults();
        c.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        c.metrics_listen = None;
        c.data_dir = data_dir.to_path_buf();
        c.db_pool_size = 4;
        c.hash_concurrency = Some(2);
        // One client makes every call from one IP: the account limits are
        // raised far above what a test suite does (tests of the limits set
        // their own).
        c.auth_rate_per_ip = 100_000;
        c.auth_rate_per_account = 10_000;
        c.mail_rate_per_account = 10_000;
        c.api_key_failures_per_ip = 10_000;
        c.invite_rate_per_inviter = 10_000;
        c.invite_rate_per_org = 10_000;
        c.invite_rate_per_recipient = 10_000;
        c.refresh_failures_per_ip = 100_000;
        c
    }

    pub fn require_verified_email(&self) -> bool {
        self.require_verified_email.unwrap_or(self.smtp_url.is_some())
    }

    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| self.data_dir.join("trellis.db").to_string_lossy().into_owned())
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }

    pub fn body_read_timeout(&self) -> Duration {
        Duration::from_millis(self.body_read_timeout_ms)
    }

    pub fn hash_concurrency(&self) -> usize {
        self.hash_concurrency.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())).max(1)
    }
}
