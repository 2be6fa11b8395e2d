//! Prometheus metrics on their own listener: what the counters show after
//! some calls, that the text passes `promtool check metrics`, that a real
//! Prometheus scrapes it, and that the public port does not serve it.

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{Backend, PASSWORD, TestApp, assert_error, http_client, try_spawn};

async fn spawn_with_metrics() -> TestApp {
    try_spawn(Backend::Sqlite, |c| c.metrics_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0))))
        .await
        .expect("SQLite always works")
}

async fn scrape(app: &TestApp) -> String {
    let addr = app.metrics_addr.expect("the metrics listener is on");
    let resp = http_client().get(format!("http://{addr}/metrics")).send().await.expect("scraped");
    assert_eq!(resp.status(), 200);
    let kind = resp.headers()["content-type"].to_str().expect("ascii").to_owned();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    resp.text().await.expect("text")
}

/// The value of the sample whose name and labels are `series` exactly
/// (labels in the order the server writes them).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

#[track_caller]
fn at_least(text: &str, series: &str, n: f64) {
    let v = value(text, series).unwrap_or_else(|| panic!("no sample {series} in:\n{text}"));
    assert!(v >= n, "{series} is {v}, expected at least {n}");
}

/// Whether `text` holds a UUID (the shape of every id the server makes).
fn has_uuid(text: &str) -> bool {
    let b = text.as_bytes();
    b.windows(36).any(|w| {
        w.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_show_calls_by_method_outcome_and_reason_without_ids() {
    let app = spawn_with_metrics().await;
    let email = "metrics-owner@example.com";
    let registered = app.register(email, PASSWORD).await;
    let tokens = app.login(email, PASSWORD).await;
    let wrong = app.call("auth.login", json!({"email": email, "password": "not the password at all"}), None).await;
    let wrong = wrong.expect_err("a wrong password fails");
    assert_error(&wrong, -32001, "INVALID_CREDENTIALS");
    let unknown = app.call("no.such.method", json!({}), None).await.expect_err("no such method");
    assert_error(&unknown, -32601, "METHOD_NOT_FOUND");
    let (status, batch) = app
        .post_json(
            r#"[{"jsonrpc":"2.0","method":"health.check","id":1},{"jsonrpc":"2.0","method":"health.check","id":2}]"#,
        )
        .await;
    assert_eq!(status, 200, "{batch}");
    // Refused before any call: not JSON, and a batch entry that is no request.
    let (_, parse) = app.post_json("{not json").await;
    assert_eq!(parse["error"]["code"], -32700, "{parse}");
    let (_, invalid) = app.post_json(r#"[1, {"jsonrpc":"2.0","method":"health.check","id":3}]"#).await;
    assert_eq!(invalid[0]["error"]["code"], -32600, "{invalid}");

    let text = scrape(&app).await;
    at_least(&text, r#"trellis_rpc_refused_total{reason="PARSE_ERROR"}"#, 1.0);
    at_least(&text, r#"trellis_rpc_refused_total{reason="INVALID_REQUEST"}"#, 1.0);
    at_least(&text, r#"trellis_rpc_calls_total{method="auth.login",outcome="ok"}"#, 1.0);
    at_least(&text, r#"trellis_rpc_calls_total{method="auth.login",outcome="error"}"#, 1.0);
    at_least(&text, r#"trellis_rpc_calls_total{method="auth.register",outcome="ok"}"#, 1.0);
    at_least(&text, r#"trellis_rpc_calls_total{method="health.check",outcome="ok"}"#, 2.0);
    at_least(
        &text,
        r#"trellis_rpc_errors_total{method="auth.login",code="UNAUTHENTICATED",reason="INVALID_CREDENTIALS"}"#,
        1.0,
    );
    at_least(&text, r#"trellis_rpc_calls_total{method="unknown",outcome="error"}"#, 1.0);
    at_least(
        &text,
        r#"trellis_rpc_errors_total{method="unknown",code="METHOD_NOT_FOUND",reason="METHOD_NOT_FOUND"}"#,
        1.0,
    );
    at_least(&text, r#"trellis_rpc_duration_seconds_count{method="auth.login"}"#, 2.0);
    at_least(&text, r#"trellis_rpc_duration_seconds_bucket{method="auth.login",le="+Inf"}"#, 2.0);
    at_least(&text, "trellis_rpc_batch_size_count", 1.0);
    at_least(&text, r#"trellis_signins_total{outcome="ok"}"#, 1.0);
    at_least(&text, r#"trellis_signins_total{outcome="error"}"#, 1.0);
    at_least(&text, r#"trellis_db_pool_connections{state="size"}"#, 1.0);
    at_least(&text, r#"trellis_db_query_duration_seconds_count{operation="write"}"#, 1.0);
    at_least(&text, "trellis_outbox_depth", 0.0);
    at_least(&text, "trellis_uptime_seconds", 0.0);
    at_least(&text, &format!(r#"trellis_build_info{{version="{}"}}"#, env!("CARGO_PKG_VERSION")), 1.0);
    assert!(text.contains("trellis_rpc_in_flight"), "{text}");

    assert!(!text.contains("no.such.method"), "an unknown method name is a label value:\n{text}");
    assert!(!text.contains(email), "an e-mail address is in the metrics");
    for id in [&wrong["data"]["requestId"], &unknown["data"]["requestId"], &registered["userId"], &tokens["sessionId"]]
    {
        if let Some(id) = id.as_str() {
            assert!(!text.contains(id), "{id} is in the metrics");
        }
    }
    assert!(!has_uuid(&text), "an id is in the metrics:\n{text}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_websocket_connections_subscriptions_and_batches() {
    let app = spawn_with_metrics().await;
    let tokens = app.signed_in("metrics-ws@example.com").await;
    let token = tokens["accessToken"].as_str().expect("token");
    let (mut tx, mut rx) = crate::ws::connect(app.addr, Some(token)).await;
    let sub = crate::notifications::subscribe(&mut tx, &mut rx, json!({})).await;
    let batch = json!([
        {"jsonrpc": "2.0", "method": "health.check", "id": 1},
        {"jsonrpc": "2.0", "method": "auth.me", "id": 2},
    ]);
    let answers = crate::ws::exchange(&mut tx, &mut rx, batch).await;
    assert_eq!(answers.as_array().map(Vec::len), Some(2), "{answers}");

    let text = scrape(&app).await;
    // Other tests of this process may hold sockets too: at least ours.
    at_least(&text, "trellis_ws_connections", 1.0);
    at_least(&text, "trellis_ws_subscriptions", 1.0);
    at_least(&text, "trellis_rpc_batch_size_count", 1.0);
    at_least(&text, r#"trellis_rpc_calls_total{method="auth.me",outcome="ok"}"#, 1.0);
    at_least(&text, r#"trellis_rpc_calls_total{method="notifications.subscribe",outcome="ok"}"#, 1.0);
    at_least(&text, r#"trellis_rpc_duration_seconds_count{method="notifications.subscribe"}"#, 1.0);
    assert!(!text.contains(&sub), "a subscription id is in the metrics");
    assert!(!has_uuid(&text), "an id is in the metrics:\n{text}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_are_not_served_on_the_public_port() {
    let app = spawn_with_metrics().await;
    let resp = app.http.get(format!("http://{}/metrics", app.addr)).send().await.expect("sent");
    assert_eq!(resp.status(), 404);
    let body = resp.text().await.expect("body");
    assert!(!body.contains("trellis_"), "{body}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_are_off_unless_a_listener_is_set() {
    let app = try_spawn(Backend::Sqlite, |_| {}).await.expect("SQLite always works");
    assert_eq!(app.metrics_addr, None);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_text_passes_promtool() {
    let app = spawn_with_metrics().await;
    app.register("promtool@example.com", PASSWORD).await;
    let _ = app.call("no.such.method", json!({}), None).await;
    let text = scrape(&app).await;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (Debian package `prometheus`; .ci/run installs it)");
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("text written");
    let out = child.wait_with_output().expect("promtool ends");
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    app.stop().await;
}

/// A child process killed when dropped (also when the test fails).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bound").local_addr().expect("addr").port()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_prometheus_server_scrapes_the_metrics_listener() {
    let app = spawn_with_metrics().await;
    let target = app.metrics_addr.expect("the metrics listener is on");
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: trellis\n    \
             static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .expect("config written");
    let port = free_port();
    let _prometheus = Killed(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus runs (Debian package `prometheus`; .ci/run installs it)"),
    );
    let http = http_client();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = Value::Null;
    loop {
        if let Ok(resp) = http.get(format!("http://127.0.0.1:{port}/api/v1/targets")).send().await
            && let Ok(body) = resp.json::<Value>().await
        {
            let up = body["data"]["activeTargets"].as_array().is_some_and(|targets| {
                targets.iter().any(|t| t["scrapeUrl"] == format!("http://{target}/metrics") && t["health"] == "up")
            });
            if up {
                break;
            }
            last = body;
        }
        assert!(Instant::now() < deadline, "the target never came up: {last}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    app.stop().await;
}
