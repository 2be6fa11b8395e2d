//! A cluster of real processes: three `trellis` replicas on one fresh
//! PostgreSQL database and one `redis-server`, behind HAProxy running the
//! repository's `deploy/haproxy.cfg`. Every child is killed when the cluster
//! is dropped, a failing test's too, and then its database is dropped.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{JWT_SECRET, POSTGRES_NOT_BUILT, create_pg_database, http_client, pg_admin, postgres_admin_url};
use crate::process::{Running, free_port, trellis};

const HAPROXY_CFG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/haproxy.cfg");

pub const REPLICAS: usize = 3;

/// Settings of every replica, before the test's own. The account limits are
/// raised as in `Config::ephemeral` (every call of a test comes from one
/// address); the tests of those limits set their own.
const BASE_ENV: &[(&str, &str)] = &[
    ("TRELLIS_JWT_SECRET", JWT_SECRET),
    ("TRELLIS_TRUSTED_PROXIES", "127.0.0.1"),
    ("TRELLIS_REQUIRE_VERIFIED_EMAIL", "false"),
    ("TRELLIS_DB_POOL_SIZE", "4"),
    ("TRELLIS_HASH_CONCURRENCY", "2"),
    ("TRELLIS_MAX_CONNECTIONS_PER_IP", "0"),
    ("TRELLIS_AUTH_RATE_PER_IP", "100000"),
    ("TRELLIS_AUTH_RATE_PER_ACCOUNT", "10000"),
    ("TRELLIS_MAIL_RATE_PER_ACCOUNT", "10000"),
    ("TRELLIS_API_KEY_FAILURES_PER_IP", "10000"),
    ("TRELLIS_REFRESH_FAILURES_PER_IP", "100000"),
];

/// One cluster at a time in this process: each is five processes timed to
/// the millisecond on a machine that may have two cores.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Credentials of a call.
#[derive(Debug, Clone, Copy)]
pub enum Auth<'a> {
    Anonymous,
    /// An access token, as `Authorization: Bearer`.
    Token(&'a str),
    /// An API key, as `X-Api-Key`.
    Key(&'a str),
}

/// A JSON-RPC answer: the result, or the error object.
pub type Answer = Result<Value, Value>;

/// A call that got no JSON-RPC answer: a transport error, or an HTTP error
/// from the balancer (502, 503).
pub type Failure = String;

pub struct Cluster {
    /// `http://…/rpc` of the balancer.
    pub balancer: String,
    http: reqwest::Client,
    // Dropped in this order: the balancer, the replicas, Redis, the database.
    _haproxy: Running,
    replicas: Vec<Replica>,
    redis: Mutex<Running>,
    redis_port: u16,
    _database: Database,
    logs: tempfile::TempDir,
    _one_at_a_time: tokio::sync::MutexGuard<'static, ()>,
}

struct Replica {
    /// `http://127.0.0.1:<port>`.
    base: String,
    /// `<base>/rpc`.
    url: String,
    process: Mutex<Running>,
    log: PathBuf,
    _data_dir: tempfile::TempDir,
}

/// The test's PostgreSQL database, dropped with the cluster.
struct Database {
    admin_url: String,
    name: String,
}

impl Drop for Database {
    fn drop(&mut self) {
        let (admin, sql) = (self.admin_url.clone(), format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        // Drop cannot await, and may run inside the test's runtime.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(pg_admin(&admin, &sql));
        })
        .join();
    }
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Starts `program`, failing the test with `hint` when it is not installed:
/// CI installs it, and a cluster test never passes without having run.
fn spawn(cmd: &mut Command, program: &str, hint: &str, log: &Path) -> Running {
    let out = File::create(log).expect("log file");
    let err = out.try_clone().expect("log file");
    match cmd.stdout(Stdio::from(out)).stderr(Stdio::from(err)).spawn() {
        Ok(child) => Running(child),
        Err(e) => panic!("cannot start `{program}` ({e}): the cluster tests need it; {hint}"),
    }
}

fn redis_server(port: u16, log: &Path) -> Running {
    let mut cmd = Command::new("redis-server");
    cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
    spawn(&mut cmd, "redis-server", "install it with `apt-get install -y redis-server`", log)
}

/// Whether Redis on `port` answers PING.
fn redis_pong(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = [0u8; 7];
    s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

/// The last lines of a log file, for a failure message.
fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Checks `ready` every `every` for up to `limit`: how long it took to
/// hold, or `None` if it never did.
pub async fn poll<F: Future<Output = bool>>(
    every: Duration,
    limit: Duration,
    mut ready: impl FnMut() -> F,
) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if ready().await {
            return Some(start.elapsed());
        }
        tokio::time::sleep(every).await;
    }
    None
}

async fn wait_until<F: Future<Output = bool>>(limit: Duration, ready: impl FnMut() -> F) -> bool {
    poll(Duration::from_millis(50), limit, ready).await.is_some()
}

impl Cluster {
    /// A new cluster; `env` adds to or overrides every replica's settings.
    pub async fn start(env: &[(&str, &str)]) -> Cluster {
        let one_at_a_time = ONE_AT_A_TIME.lock().await;
        let admin_url = postgres_admin_url().expect(POSTGRES_NOT_BUILT);
        let (name, database_url) = create_pg_database(&admin_url).await;
        let database = Database { admin_url, name };
        let logs = tempfile::tempdir().expect("temp dir");
        let http = http_client();

        let redis_port = free_port();
        let redis = redis_server(redis_port, &logs.path().join("redis.log"));
        assert!(
            wait_until(Duration::from_secs(10), move || async move { redis_pong(redis_port) }).await,
            "redis-server did not answer PING:\n{}",
            tail(&logs.path().join("redis.log"), 20)
        );

        let redis_url = format!("redis://127.0.0.1:{redis_port}");
        let shared = [("DATABASE_URL", database_url.as_str()), ("REDIS_URL", redis_url.as_str())];
        let start_replica = |n: usize| {
            let data_dir = tempfile::tempdir().expect("temp dir");
            let port = free_port();
            let log = logs.path().join(format!("replica{n}.log"));
            let mut cmd = trellis(data_dir.path());
            cmd.env("TRELLIS_LISTEN", format!("127.0.0.1:{port}"));
            cmd.envs(shared.iter().chain(BASE_ENV).chain(env).copied());
            let process = Mutex::new(spawn(&mut cmd, "trellis", "it is this crate's binary", &log));
            let base = format!("http://127.0.0.1:{port}");
            Replica { url: format!("{base}/rpc"), base, process, log, _data_dir: data_dir }
        };
        // The first one migrates the database; the others start on it together.
        let mut replicas = vec![start_replica(1)];
        wait_ready(&http, &replicas[0]).await;
        replicas.extend((2..=REPLICAS).map(start_replica));
        futures::future::join_all(replicas[1..].iter().map(|r| wait_ready(&http, r))).await;

        assert!(Path::new(HAPROXY_CFG).exists(), "{HAPROXY_CFG} is missing: the cluster runs the repository's own");
        let lb_port = free_port();
        let mut cmd = Command::new("haproxy");
        cmd.args(["-f", HAPROXY_CFG, "-db"]).env("TRELLIS_LB_BIND", format!("127.0.0.1:{lb_port}"));
        for (i, r) in replicas.iter().enumerate() {
            cmd.env(format!("TRELLIS_REPLICA_{}", i + 1), r.base.trim_start_matches("http://"));
        }
        let haproxy_log = logs.path().join("haproxy.log");
        let haproxy = spawn(&mut cmd, "haproxy", "install it with `apt-get install -y haproxy`", &haproxy_log);
        let lb = format!("http://127.0.0.1:{lb_port}");
        // Every backend is up once two full rounds of round-robin calls in a
        // row are answered.
        let (mut in_a_row, deadline) = (0, Instant::now() + Duration::from_secs(10));
        while in_a_row < 2 * REPLICAS {
            assert!(Instant::now() < deadline, "the balancer did not come up:\n{}", tail(&haproxy_log, 30));
            if http.get(format!("{lb}/readyz")).send().await.is_ok_and(|r| r.status() == 200) {
                in_a_row += 1;
            } else {
                in_a_row = 0;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }

        Cluster {
            balancer: format!("{lb}/rpc"),
            http,
            _haproxy: haproxy,
            replicas,
            redis: Mutex::new(redis),
            redis_port,
            _database: database,
            logs,
            _one_at_a_time: one_at_a_time,
        }
    }

    /// `http://…/rpc` of replica `n` (1, 2 or 3), bypassing the balancer.
    pub fn replica(&self, n: usize) -> &str {
        &self.replicas[n - 1].url
    }

    /// Every replica's `/rpc`, in order.
    pub fn replica_urls(&self) -> impl Iterator<Item = &str> {
        self.replicas.iter().map(|r| r.url.as_str())
    }

    /// Kills replica `n` with SIGKILL.
    pub fn kill_replica(&self, n: usize) {
        locked(&self.replicas[n - 1].process).kill();
    }

    /// Kills Redis with SIGKILL.
    pub fn kill_redis(&self) {
        locked(&self.redis).kill();
    }

    /// Starts Redis again on its port, empty, and waits until it answers.
    pub async fn restart_redis(&self) {
        self.kill_redis();
        *locked(&self.redis) = redis_server(self.redis_port, &self.logs.path().join("redis-restarted.log"));
        let port = self.redis_port;
        assert!(
            wait_until(Duration::from_secs(10), move || async move { redis_pong(port) }).await,
            "Redis did not restart"
        );
    }

    /// A call's request, to be sent with [`Cluster::answer`] (after adding
    /// headers, if need be).
    pub fn request(&self, url: &str, method: &str, params: Value, auth: Auth<'_>) -> reqwest::RequestBuilder {
        let req = self
            .http
            .post(url)
            .timeout(Duration::from_secs(10))
            .json(&json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1}));
        match auth {
            Auth::Anonymous => req,
            Auth::Token(t) => req.bearer_auth(t),
            Auth::Key(k) => req.header("x-api-key", k),
        }
    }

    /// Sends a request; its JSON-RPC answer, or why none came.
    pub async fn answer(&self, req: reqwest::RequestBuilder) -> Result<Answer, Failure> {
        let resp = req.send().await.map_err(|e| format!("transport: {}", chain(&e)))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| format!("HTTP {status}, body lost: {e}"))?;
        let mut body: Value = match serde_json::from_str(&text) {
            Ok(v) if status == 200 => v,
            _ => return Err(format!("HTTP {status}: {}", text.chars().take(200).collect::<String>())),
        };
        Ok(match body.get_mut("error") {
            Some(e) => Err(e.take()),
            None => Ok(body["result"].take()),
        })
    }

    /// One call; fails the test when no JSON-RPC answer comes.
    pub async fn call(&self, url: &str, method: &str, params: Value, token: Option<&str>) -> Answer {
        let auth = token.map_or(Auth::Anonymous, Auth::Token);
        self.answer(self.request(url, method, params, auth)).await.unwrap_or_else(|e| panic!("{method} at {url}: {e}"))
    }

    /// One call with an API key; fails the test when no JSON-RPC answer comes.
    pub async fn call_with_key(&self, url: &str, method: &str, params: Value, key: &str) -> Answer {
        self.answer(self.request(url, method, params, Auth::Key(key)))
            .await
            .unwrap_or_else(|e| panic!("{method} at {url}: {e}"))
    }

    /// `health.check` at replica `n`.
    pub async fn health(&self, n: usize) -> Value {
        self.call(self.replica(n), "health.check", json!({}), None).await.expect("health.check answers")
    }

    /// `GET /readyz` at replica `n`: the status and the body.
    pub async fn readyz(&self, n: usize) -> (u16, Value) {
        let resp = self.http.get(format!("{}/readyz", self.replicas[n - 1].base)).send().await.expect("readyz");
        (resp.status().as_u16(), resp.json().await.expect("readyz JSON"))
    }
}

/// An error and its causes, on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text = format!("{text}: {c}");
        cause = c.source();
    }
    text
}

async fn wait_ready(http: &reqwest::Client, r: &Replica) {
    let up = wait_until(Duration::from_secs(30), move || {
        let readyz = http.get(format!("{}/readyz", r.base)).send();
        async move { readyz.await.is_ok_and(|resp| resp.status() == 200) || has_exited(r) }
    })
    .await;
    assert!(up && !has_exited(r), "replica at {} did not become ready:\n{}", r.base, tail(&r.log, 30));
}

fn has_exited(r: &Replica) -> bool {
    !matches!(locked(&r.process).0.try_wait(), Ok(None))
}

impl Drop for Cluster {
    /// A failed test shows what the processes said last.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for (i, r) in self.replicas.iter().enumerate() {
            eprintln!("--- replica {} ({}), last lines:\n{}", i + 1, r.base, tail(&r.log, 40));
        }
        eprintln!("--- haproxy, last lines:\n{}", tail(&self.logs.path().join("haproxy.log"), 20));
    }
}
