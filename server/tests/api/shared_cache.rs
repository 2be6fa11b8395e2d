//! Limits and change notices shared through Redis (the machine's, each test
//! under a prefix of its own), by two servers on one database as replicas:
//! a key's limit, the account limits and lockout hold across both; a batch
//! with a key costs one Redis round trip; a logout or a revoked key reaches
//! the other server through the bus, well before the database sync; and with
//! Redis unreachable the server is degraded, never down.

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};

use crate::api_keys::make_key;
use crate::helpers::{Backend, PASSWORD, TestApp, assert_error, try_spawn};
use crate::orgs::{create_org, user};

/// The Redis the tests share (`TEST_REDIS_URL`, else the local one).
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Two servers on one database and one Redis prefix (fresh per call); the
/// database sync of ended sessions slowed to a minute, so only the bus can
/// explain a quick refusal.
async fn pair(backend: Backend, tweak: fn(&mut trellis_server::Config)) -> (TestApp, TestApp) {
    let prefix = format!("trellis-test-{}", uuid::Uuid::now_v7().simple());
    let settings = move |c: &mut trellis_server::Config| {
        c.redis_url = Some(redis_url());
        c.redis_prefix = prefix.clone();
        c.session_sync_ms = 60_000;
        c.require_verified_email = Some(false);
        tweak(c);
    };
    let a = try_spawn(backend, settings.clone()).await.expect(crate::helpers::POSTGRES_NOT_BUILT);
    let shared = a.config.database_url();
    let b = try_spawn(backend, move |c| {
        settings(c);
        c.database_url = Some(shared);
    })
    .await
    .expect("second server");
    for app in [&a, &b] {
        wait_for_cache(app, "ok").await;
    }
    (a, b)
}

/// Waits (up to 3 s) until `health.check` reports the cache `ok` or `degraded`.
async fn wait_for_cache(app: &TestApp, status: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..60 {
        last = app.call("health.check", json!({}), None).await.expect("health");
        if last["status"] == status {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("health.check never said {status}: {last}");
}

async fn post_batch(app: &TestApp, key: &str, calls: usize, params: &Value) -> Vec<Value> {
    let body: Vec<Value> =
        (0..calls).map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "orgs.get", "params": params})).collect();
    let resp = app
        .http
        .post(&app.url)
        .header("x-api-key", key)
        .header("content-type", "application/json")
        .body(Value::Array(body).to_string())
        .send()
        .await
        .expect("sent");
    resp.json::<Value>().await.expect("json").as_array().expect("batch").clone()
}

fn passed(answers: &[Value]) -> usize {
    answers.iter().filter(|a| a.get("result").is_some()).count()
}

/// The limit scripts Redis runs under `prefix`, as `MONITOR` sees them.
struct ScriptWatch(tokio::task::JoinHandle<()>, std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl ScriptWatch {
    async fn start(prefix: String) -> Self {
        let client = redis::Client::open(redis_url()).expect("redis url");
        let monitor = client.get_async_monitor().await.expect("MONITOR");
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = seen.clone();
        let task = tokio::spawn(async move {
            let mut lines = monitor.into_on_message::<String>();
            while let Some(line) = lines.next().await {
                let lower = line.to_ascii_lowercase();
                if (lower.contains("\"evalsha\"") || lower.contains("\"eval\"")) && line.contains(&prefix) {
                    count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
        });
        Self(task, seen)
    }

    /// Scripts seen so far, once Redis had time to report the last ones.
    async fn count(&self) -> usize {
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.1.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for ScriptWatch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn shared_limits(backend: Backend) {
    let (a, b) = pair(backend, |c| {
        c.auth_rate_per_account = 4;
        c.lockout_threshold = 100;
    })
    .await;
    let owner = user(&a, "owner@shared.example").await;
    let org = create_org(&a, &owner, "shared").await;
    let (key, _) = make_key(&a, &owner, &org, &["org:read"], json!({"rateLimitPerMinute": 60})).await;
    let get = json!({"orgId": org});

    // A batch of 50 on A is one round trip; the next 50, on B, get the 10 left.
    let watch = ScriptWatch::start(a.config.redis_prefix.clone()).await;
    let before = watch.count().await;
    assert_eq!(passed(&post_batch(&a, &key, 50, &get).await), 50);
    assert_eq!(watch.count().await - before, 1, "a batch of 50 calls with a key is one Redis round trip");
    let second = post_batch(&b, &key, 50, &get).await;
    assert_eq!(passed(&second), 10, "the other server sees the 50 already taken");
    let refused = second.iter().find(|r| r.get("error").is_some()).expect("a refusal");
    assert_error(&refused["error"], -32029, "RATE_LIMITED");
    assert!(refused["error"]["data"]["retryAfterMs"].as_u64().is_some_and(|ms| ms > 0 && ms <= 1000));
    let e = a.call_with_key("orgs.get", get.clone(), &key).await.expect_err("spent on both");
    assert_error(&e, -32029, "RATE_LIMITED");
    let verify = b.call("apiKeys.verify", json!({"orgId": org, "key": key}), Some(&owner)).await.expect("verify");
    assert_eq!(verify["remainingThisMinute"], 0);

    // Four failed sign-ins for one account, alternating servers: the fifth is
    // refused by the limit, on either.
    a.register("victim@shared.example", PASSWORD).await;
    for i in 0..4 {
        let app = if i % 2 == 0 { &a } else { &b };
        let e = app
            .call("auth.login", json!({"email": "victim@shared.example", "password": "wrong password 1"}), None)
            .await
            .expect_err("wrong password");
        assert_ne!(e["data"]["reason"], "RATE_LIMITED", "attempt {i}");
    }
    for app in [&a, &b] {
        let e = app
            .call("auth.login", json!({"email": "victim@shared.example", "password": PASSWORD}), None)
            .await
            .expect_err("limited");
        assert_error(&e, -32029, "RATE_LIMITED");
    }
    drop(watch);
    b.stop().await;
    a.stop().await;
}

async fn changes_reach_the_other_server_at_once(backend: Backend) {
    let (a, b) = pair(backend, |_| {}).await;
    let owner = user(&a, "owner@bus.example").await;
    let org = create_org(&a, &owner, "bus").await;
    let (key, record) = make_key(&a, &owner, &org, &["org:read"], json!({})).await;
    let get = json!({"orgId": org});
    b.call_with_key("orgs.get", get.clone(), &key).await.expect("B has the key cached");
    let me = b.call("auth.me", json!({}), Some(&owner)).await.expect("B accepts the token");
    assert!(me.get("id").is_some() || me.get("user").is_some());

    a.call("apiKeys.revoke", json!({"id": record["id"]}), Some(&owner)).await.expect("revoked on A");
    let start = Instant::now();
    loop {
        match b.call_with_key("orgs.get", get.clone(), &key).await {
            Err(e) => {
                assert_error(&e, -32001, "API_KEY_REVOKED");
                break;
            }
            Ok(_) => assert!(start.elapsed() < Duration::from_millis(100), "B still takes the revoked key"),
        }
    }
    a.call("auth.logout", json!({}), Some(&owner)).await.expect("signed out on A");
    let start = Instant::now();
    loop {
        match b.call("auth.me", json!({}), Some(&owner)).await {
            Err(e) => {
                assert_eq!(e["data"]["reason"], "TOKEN_INVALID", "{e}");
                break;
            }
            Ok(_) => assert!(start.elapsed() < Duration::from_millis(100), "B still takes the ended session"),
        }
    }
    b.stop().await;
    a.stop().await;
}

/// A subscriber on B hears of a notification caused by a call on A within
/// 100 ms of A's answer: by the bus (the sweep for lost wake-ups is slowed
/// to a minute, so only the bus can explain it).
async fn notifications_reach_a_subscriber_on_the_other_server(backend: Backend) {
    let (a, b) = pair(backend, |c| c.notification_poll_ms = 60_000).await;
    let owner = user(&a, "owner@bus.example").await;
    let org = create_org(&a, &owner, "bus").await;
    let (mut tx, mut rx) = crate::ws::connect(b.addr, Some(&owner)).await;
    crate::notifications::subscribe(&mut tx, &mut rx, json!({})).await;
    let mut latencies = Vec::new();
    for i in 0..5 {
        let made = a
            .call("apiKeys.create", json!({"orgId": org, "name": format!("k{i}"), "scopes": ["org:read"]}), Some(&owner))
            .await
            .expect("key made on A");
        let answered = Instant::now();
        let item = crate::notifications::next(&mut rx, 5).await;
        latencies.push(answered.elapsed());
        assert_eq!(item["params"]["result"]["data"]["apiKeyId"], made["apiKey"]["id"], "{item}");
    }
    latencies.sort();
    eprintln!("A's answer -> B's subscriber: {latencies:?}");
    assert!(latencies[2] < Duration::from_millis(100), "median {:?}", latencies[2]);
    b.stop().await;
    a.stop().await;
}

/// Redis unreachable (a port nobody listens on): the server starts, every
/// call works, limits hold per server, and it says `degraded`.
async fn redis_away_is_degraded(backend: Backend) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let app = try_spawn(backend, move |c| {
        c.redis_url = Some(format!("redis://127.0.0.1:{port}"));
        c.redis_timeout_ms = 100;
    })
    .await
    .expect(crate::helpers::POSTGRES_NOT_BUILT);
    let health = wait_for_cache(&app, "degraded").await;
    assert_eq!(health["checks"]["cache"]["ok"], false);
    assert_eq!(health["checks"]["cache"]["backend"], "redis");
    assert_eq!(health["checks"]["database"]["ok"], true);
    let ready = app.http.get(format!("http://{}/readyz", app.addr)).send().await.expect("readyz");
    assert_eq!(ready.status(), 200, "a degraded replica still serves");
    assert_eq!(ready.json::<Value>().await.expect("json")["status"], "degraded");

    let owner = user(&app, "owner@away.example").await;
    let org = create_org(&app, &owner, "away").await;
    let (key, _) = make_key(&app, &owner, &org, &["org:read"], json!({"rateLimitPerMinute": 5})).await;
    let get = json!({"orgId": org});
    for _ in 0..5 {
        app.call_with_key("orgs.get", get.clone(), &key).await.expect("within the limit");
    }
    let e = app.call_with_key("orgs.get", get.clone(), &key).await.expect_err("the limit holds in process");
    assert_error(&e, -32029, "RATE_LIMITED");
    let health = app.call("health.check", json!({}), None).await.expect("health");
    assert!(health["checks"]["cache"]["fallbacks"].as_u64().is_some_and(|n| n >= 6), "{health}");
    app.stop().await;
}

macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(crate::helpers::Backend::Sqlite).await;
            }

            $crate::postgres_variant! {{
                super::$name(crate::helpers::Backend::Postgres).await;
            }}
        }
    };
}

both!(shared_limits);
both!(changes_reach_the_other_server_at_once);
both!(redis_away_is_degraded);
both!(notifications_reach_a_subscriber_on_the_other_server);
