//! Running behind a load balancer and for a long time: client addresses from
//! trusted proxies only, CORS for listed origins only, safe response headers,
//! one signing secret for all replicas, revocations that no clock skew loses,
//! and retention of the outbox and the audit trail.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{Backend, PASSWORD, TestApp, assert_error, try_spawn};

/// A failed sign-in sent through a proxy that says the client is `client`.
async fn login_via(app: &TestApp, client: &str, n: usize) -> Value {
    let body = json!({"jsonrpc": "2.0", "method": "auth.login",
        "params": {"email": format!("nobody{n}@example.com"), "password": "wrong password"}, "id": 1});
    let resp =
        app.http.post(&app.url).header("x-forwarded-for", client).json(&body).send().await.expect("request sent");
    resp.json().await.expect("JSON answer")
}

fn reason(answer: &Value) -> &str {
    answer["error"]["data"]["reason"].as_str().unwrap_or("none")
}

crate::db_test_with! {
    async fn limits_follow_the_client_a_trusted_proxy_names(app) where |c| {
        c.auth_rate_per_ip = 3;
        c.trusted_proxies = trellis_server::net::parse_list("127.0.0.1/32").expect("blocks");
    } {
        // Three failures from one client use up its minute...
        for n in 0..3 {
            assert_eq!(reason(&login_via(app, "203.0.113.7", n).await), "INVALID_CREDENTIALS");
        }
        assert_eq!(reason(&login_via(app, "203.0.113.7", 3).await), "RATE_LIMITED");
        // ...and only its own: another client behind the same balancer is not
        // affected, and neither is one that forged an entry before the real one.
        assert_eq!(reason(&login_via(app, "203.0.113.8", 4).await), "INVALID_CREDENTIALS");
        assert_eq!(reason(&login_via(app, "203.0.113.7, 203.0.113.9", 5).await), "INVALID_CREDENTIALS");
        // IPv6 clients count per /64: rotating the host part gains nothing.
        for n in 0..3 {
            let addr = format!("2001:db8:1:2::{:x}", n + 1);
            assert_eq!(reason(&login_via(app, &addr, 10 + n).await), "INVALID_CREDENTIALS");
        }
        assert_eq!(reason(&login_via(app, "2001:db8:1:2:ffff::1", 20).await), "RATE_LIMITED");
        assert_eq!(reason(&login_via(app, "2001:db8:1:3::1", 21).await), "INVALID_CREDENTIALS");

        // Sessions and audit events record the derived address.
        app.register("proxied@example.com", PASSWORD).await;
        let body = json!({"jsonrpc": "2.0", "method": "auth.login",
            "params": {"email": "proxied@example.com", "password": PASSWORD}, "id": 1});
        let resp = app.http.post(&app.url).header("forwarded", "for=198.51.100.23;proto=https")
            .json(&body).send().await.expect("sent");
        let tokens: Value = resp.json().await.expect("JSON");
        let access = tokens["result"]["accessToken"].as_str().expect("signed in");
        let sessions = app.call("sessions.list", json!({}), Some(access)).await.expect("sessions");
        assert_eq!(sessions["items"][0]["ip"], "198.51.100.23", "{sessions}");
        let activity = app.call("users.activity", json!({}), Some(access)).await.expect("activity");
        let login = activity["items"].as_array().expect("items").iter()
            .find(|e| e["action"] == "auth.login").expect("a sign-in event").clone();
        assert_eq!(login["ip"], "198.51.100.23", "{login}");
    }
}

crate::db_test_with! {
    async fn forwarded_headers_from_untrusted_peers_are_ignored(app) where |c| {
        c.auth_rate_per_ip = 3;
    } {
        // No proxy is trusted: every header value is the client's own word,
        // and rotating it changes nothing.
        for n in 0..3 {
            assert_eq!(reason(&login_via(app, &format!("198.51.100.{n}"), n).await), "INVALID_CREDENTIALS");
        }
        assert_eq!(reason(&login_via(app, "198.51.100.200", 9).await), "RATE_LIMITED");
    }
}

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.http
        .request(reqwest::Method::OPTIONS, &app.url)
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization, content-type")
        .send()
        .await
        .expect("sent")
}

async fn upgrade_status(app: &TestApp, origin: Option<&str>) -> u16 {
    let mut req = app
        .http
        .get(&app.url)
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    req.send().await.expect("sent").status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_answers_listed_origins_only() {
    let app =
        try_spawn(Backend::Sqlite, |c| c.cors_origins = vec!["https://app.example.test".into()]).await.expect("SQLite");
    let ok = preflight(&app, "https://app.example.test").await;
    assert_eq!(ok.status(), 204);
    assert_eq!(ok.headers()["access-control-allow-origin"], "https://app.example.test");
    let allowed = ok.headers()["access-control-allow-headers"].to_str().expect("text");
    assert!(allowed.contains("authorization") && allowed.contains("content-type"), "{allowed}");
    assert!(ok.headers()["access-control-allow-methods"].to_str().expect("text").contains("POST"));

    let refused = preflight(&app, "https://evil.example.test").await;
    assert_eq!(refused.status(), 403);
    assert!(refused.headers().get("access-control-allow-origin").is_none());

    let call = json!({"jsonrpc": "2.0", "method": "health.check", "id": 1});
    let from_app =
        app.http.post(&app.url).header("origin", "https://app.example.test").json(&call).send().await.expect("sent");
    assert_eq!(from_app.headers()["access-control-allow-origin"], "https://app.example.test");
    assert!(from_app.headers()["access-control-expose-headers"].to_str().expect("text").contains("x-request-id"));
    assert!(from_app.headers().get_all("vary").iter().any(|v| v.to_str().is_ok_and(|v| v.contains("origin"))));
    let from_other =
        app.http.post(&app.url).header("origin", "https://evil.example.test").json(&call).send().await.expect("sent");
    assert_eq!(from_other.status(), 200, "the server answers; the browser withholds it");
    assert!(from_other.headers().get("access-control-allow-origin").is_none());
    assert!(from_other.headers().get_all("access-control-allow-origin").iter().all(|v| v != "*"));

    // WebSocket upgrades from another page are refused; clients that are not
    // browsers send no Origin and are let through.
    assert_eq!(upgrade_status(&app, Some("https://evil.example.test")).await, 403);
    assert_eq!(upgrade_status(&app, Some("https://app.example.test")).await, 101);
    assert_eq!(upgrade_status(&app, None).await, 101);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_listed_origins_there_is_no_cors_and_answers_are_not_cached() {
    let app = try_spawn(Backend::Sqlite, |_| {}).await.expect("SQLite");
    let refused = preflight(&app, "https://app.example.test").await;
    assert_eq!(refused.status(), 403);
    assert!(refused.headers().get("access-control-allow-origin").is_none());
    // The upgrade's Origin is only checked when origins are listed.
    assert_eq!(upgrade_status(&app, Some("https://app.example.test")).await, 101);

    let call = json!({"jsonrpc": "2.0", "method": "health.check", "id": 1});
    let answer = app.http.post(&app.url).json(&call).send().await.expect("sent");
    assert_eq!(answer.headers()["x-content-type-options"], "nosniff");
    assert_eq!(answer.headers()["cache-control"], "no-store");
    assert!(answer.headers().get("access-control-allow-origin").is_none());
    let error = app.post("{").await;
    assert_eq!(error.headers()["x-content-type-options"], "nosniff");
    assert_eq!(error.headers()["cache-control"], "no-store");
    let base = app.url.trim_end_matches("/rpc");
    for path in ["/healthz", "/readyz", "/openrpc.json", "/nowhere"] {
        let r = app.http.get(format!("{base}{path}")).send().await.expect("sent");
        assert_eq!(r.headers()["x-content-type-options"], "nosniff", "{path}");
        assert!(r.headers().contains_key("cache-control"), "{path}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "PostgreSQL: TEST_DATABASE_URL not set when the tests were built")]
async fn postgres_needs_one_signing_secret_for_all_replicas() {
    let Ok(url) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!("TEST_DATABASE_URL not set: PostgreSQL run skipped");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = trellis_server::Config::ephemeral(dir.path());
    config.database_url = Some(url);
    config.jwt_secret = None;
    let err = match trellis_server::Application::build(config).await {
        Ok(_) => panic!("a PostgreSQL server started without TRELLIS_JWT_SECRET"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("TRELLIS_JWT_SECRET") && err.contains("every replica"), "{err}");
    assert!(std::fs::read_dir(dir.path()).expect("dir").next().is_none(), "no secret was generated");

    // SQLite keeps generating one into its data directory.
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = trellis_server::Config::ephemeral(dir.path());
    config.jwt_secret = None;
    let app = trellis_server::Application::build(config).await.expect("SQLite starts without the setting");
    drop(app);
    assert!(dir.path().join("jwt-secret").exists());
}

/// Two servers on one database. A session ended with a time far in the past,
/// as a replica whose clock is an hour behind would write it, is still
/// refused by both: replicas follow the database's numbering of ends, not
/// timestamps.
async fn ends_written_with_a_skewed_clock_reach_every_replica(backend: Backend) {
    let Some(a) = try_spawn(backend, |c| c.session_sync_ms = 100).await else {
        eprintln!("TEST_DATABASE_URL not set: PostgreSQL run skipped");
        return;
    };
    let shared = a.config.database_url();
    let b = try_spawn(backend, move |c| {
        c.session_sync_ms = 100;
        c.database_url = Some(shared);
    })
    .await
    .expect("second replica");
    let tokens = a.signed_in("skew@example.com").await;
    let access = tokens["accessToken"].as_str().expect("token");
    b.call("auth.me", json!({}), Some(access)).await.expect("B accepts the token");
    let sessions = a.call("sessions.list", json!({}), Some(access)).await.expect("sessions");
    let sid = sessions["items"][0]["id"].as_str().expect("session id");

    // Wait past the old 10-second look-back, so that a timestamp window could
    // not find this end even with a correct clock.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let changed = a
        .sql(&format!(
            "UPDATE sessions SET revoked_at = '2026-01-01 00:00:00', revoked_reason = 'logout' WHERE id = '{sid}'"
        ))
        .await;
    assert_eq!(changed, 1);
    for app in [&a, &b] {
        let start = Instant::now();
        loop {
            match app.call("auth.me", json!({}), Some(access)).await {
                Err(e) => {
                    assert_error(&e, -32001, "TOKEN_INVALID");
                    break;
                }
                Ok(_) => {
                    assert!(start.elapsed() < Duration::from_secs(10), "a replica never learned the session ended");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    assert_eq!(a.sql_count(&format!("SELECT count(*) AS n FROM session_ends WHERE session_id = '{sid}'")).await, 1);
    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ends_written_with_a_skewed_clock_reach_every_replica_sqlite() {
    ends_written_with_a_skewed_clock_reach_every_replica(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "PostgreSQL: TEST_DATABASE_URL not set when the tests were built")]
async fn ends_written_with_a_skewed_clock_reach_every_replica_postgres() {
    ends_written_with_a_skewed_clock_reach_every_replica(Backend::Postgres).await;
}

const OUTBOX_COLUMNS: &str = "id, dedupe_key, recipient, subject, text_body, html_body, created_at, attempts, next_attempt_at, sent_at, failed_at";

/// Old sent and given-up mail and old audit events are deleted by a server
/// starting on the database; recent ones stay. A mail that fails for the last
/// time loses its body (it may hold a live link).
async fn retention_prunes_the_outbox_and_the_audit_trail(backend: Backend) {
    // Mail goes to a port where nothing listens: every attempt fails.
    let Some(a) = try_spawn(backend, |c| {
        c.smtp_url = Some("smtp://127.0.0.1:9".into());
        c.mail_poll_ms = 50;
    })
    .await
    else {
        eprintln!("TEST_DATABASE_URL not set: PostgreSQL run skipped");
        return;
    };
    let old = "2020-01-01 00:00:00";
    let recent = chrono::Utc::now().naive_utc().format("%Y-%m-%d %H:%M:%S").to_string();
    a.sql(&format!(
        "INSERT INTO outbox ({OUTBOX_COLUMNS}) VALUES \
         ('00000000-0000-7000-8000-000000000001', 'old-sent', 'a@example.com', 's', '', '', '{old}', 1, '{old}', '{old}', NULL), \
         ('00000000-0000-7000-8000-000000000002', 'old-failed', 'a@example.com', 's', '', '', '{old}', 20, '{old}', NULL, '{old}'), \
         ('00000000-0000-7000-8000-000000000003', 'recent-sent', 'a@example.com', 's', '', '', '{recent}', 1, '{recent}', '{recent}', NULL), \
         ('00000000-0000-7000-8000-000000000004', 'last-try', 'b@example.com', 's', 'link: secret-token', '<a>secret-token</a>', '{recent}', 19, '{old}', NULL, NULL)"
    ))
    .await;
    a.sql(&format!(
        "INSERT INTO audit_events (id, at, actor_kind, action, outcome) VALUES \
         ('00000000-0000-7000-8000-000000000011', '{old}', 'system', 'old.event', 'success'), \
         ('00000000-0000-7000-8000-000000000012', '{recent}', 'system', 'recent.event', 'success')"
    ))
    .await;

    // The mail on its twentieth attempt fails, is given up, and drops its body.
    let start = Instant::now();
    while a.sql_count("SELECT count(*) AS n FROM outbox WHERE dedupe_key = 'last-try' AND failed_at IS NOT NULL").await
        == 0
    {
        assert!(start.elapsed() < Duration::from_secs(10), "the last attempt never ran");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        a.sql_count(
            "SELECT count(*) AS n FROM outbox WHERE dedupe_key = 'last-try' AND attempts = 20 \
             AND text_body = '' AND html_body = ''"
        )
        .await,
        1,
        "a given-up mail keeps no body"
    );

    // A replica starting on the database prunes what is past retention.
    let shared = a.config.database_url();
    let b = try_spawn(backend, move |c| c.database_url = Some(shared)).await.expect("second server");
    let start = Instant::now();
    while a.sql_count("SELECT count(*) AS n FROM outbox WHERE dedupe_key LIKE 'old-%'").await > 0 {
        assert!(start.elapsed() < Duration::from_secs(10), "old mail was never pruned");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let start = Instant::now();
    while a.sql_count("SELECT count(*) AS n FROM audit_events WHERE action = 'old.event'").await > 0 {
        assert!(start.elapsed() < Duration::from_secs(10), "old audit events were never pruned");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        a.sql_count("SELECT count(*) AS n FROM outbox WHERE dedupe_key IN ('recent-sent', 'last-try')").await,
        2
    );
    assert_eq!(a.sql_count("SELECT count(*) AS n FROM audit_events WHERE action = 'recent.event'").await, 1);
    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_prunes_the_outbox_and_the_audit_trail_sqlite() {
    retention_prunes_the_outbox_and_the_audit_trail(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "PostgreSQL: TEST_DATABASE_URL not set when the tests were built")]
async fn retention_prunes_the_outbox_and_the_audit_trail_postgres() {
    retention_prunes_the_outbox_and_the_audit_trail(Backend::Postgres).await;
}

/// A load balancer carries many clients' connections: a trusted proxy is
/// not held to the per-address connection cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_proxies_are_exempt_from_the_per_address_connection_cap() {
    let app = try_spawn(Backend::Sqlite, |c| {
        c.max_connections_per_ip = 2;
        c.trusted_proxies = trellis_server::net::parse_list("127.0.0.1").expect("blocks");
    })
    .await
    .expect("SQLite");
    // Five connections at once, each with a call: all answered.
    let clients: Vec<reqwest::Client> =
        (0..5).map(|_| reqwest::Client::builder().pool_max_idle_per_host(1).build().expect("client")).collect();
    let first = futures::future::join_all(
        clients
            .iter()
            .map(|c| c.post(&app.url).json(&json!({"jsonrpc": "2.0", "method": "health.check", "id": 1})).send()),
    )
    .await;
    // The connections stay open (kept alive by each client) while a second
    // round goes over them.
    let second = futures::future::join_all(
        clients
            .iter()
            .map(|c| c.post(&app.url).json(&json!({"jsonrpc": "2.0", "method": "health.check", "id": 2})).send()),
    )
    .await;
    for r in first.into_iter().chain(second) {
        assert_eq!(r.expect("answered").status(), 200);
    }
    app.stop().await;
}
