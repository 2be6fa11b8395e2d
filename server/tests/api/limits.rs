//! Bounded inputs: each refused with a clear error, and the server keeps serving.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Backend, TestApp, assert_error, spawn_sqlite, try_spawn};

async fn still_serving(app: &TestApp) {
    let r = app.call("health.check", json!({}), None).await.expect("still serving");
    assert_eq!(r["status"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_is_refused() {
    let app = spawn_sqlite().await;
    let big =
        format!(r#"{{"jsonrpc":"2.0","method":"health.check","params":{{"pad":"{}"}},"id":1}}"#, "x".repeat(2 << 20));
    let resp = app.post(big).await;
    assert_eq!(resp.status(), 413);
    let body: Value = resp.json().await.expect("JSON");
    assert_error(&body["error"], -32600, "BODY_TOO_LARGE");
    assert_eq!(body["error"]["data"]["limit"], 1 << 20);
    still_serving(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_chunked_body_is_refused_while_streaming() {
    let mut app = spawn_sqlite().await;
    // The refused upload ends its connection; a pooled client could still be
    // writing to it, so this test keeps no connections between requests.
    app.http = reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("client");
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..40).map(|_| Ok(vec![b' '; 64 * 1024])).collect();
    let resp = app
        .http
        .post(&app.url)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 413);
    assert_eq!(resp.headers()["connection"], "close", "the unread body ends the connection");
    still_serving(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_call_batch_is_refused_and_a_hundred_is_served() {
    let app = spawn_sqlite().await;
    let batch = |n: usize| {
        Value::Array((0..n).map(|i| json!({"jsonrpc": "2.0", "method": "health.check", "id": i})).collect()).to_string()
    };
    let (status, r) = app.post_json(batch(1000)).await;
    assert_eq!(status, 200);
    assert!(r.is_object(), "one error for the whole batch: {r}");
    assert_error(&r["error"], -32600, "BATCH_TOO_LARGE");
    assert_eq!(r["error"]["data"]["limit"], 100);
    assert_eq!(r["id"], Value::Null);

    let (_, r) = app.post_json(batch(100)).await;
    let answers = r.as_array().expect("array");
    assert_eq!(answers.len(), 100);
    assert!(answers.iter().all(|a| a["result"]["status"] == "ok"));
    still_serving(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_nesting_is_refused() {
    let app = spawn_sqlite().await;
    let depth = 200_000;
    let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let (status, r) = app.post_json(deep).await;
    assert_eq!(status, 200);
    assert_error(&r["error"], -32600, "NESTING_TOO_DEEP");

    let nested = format!(
        r#"{{"jsonrpc":"2.0","method":"health.check","params":[{}1{}],"id":1}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let (_, r) = app.post_json(nested).await;
    assert_error(&r["error"], -32600, "NESTING_TOO_DEEP");
    still_serving(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_does_not_hold_up_others_and_is_cut_off() {
    let mut app = try_spawn(Backend::Sqlite, |c| c.header_read_timeout_ms = 300).await.expect("SQLite");
    // The header timeout also closes idle keep-alive connections after 300 ms;
    // a pooled connection could be reused just as the server closes it.
    app.http = reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("client");
    let mut slow = TcpStream::connect(app.addr).await.expect("connect");
    slow.write_all(b"POST /rpc HTTP/1.1\r\nhost: x\r\n").await.expect("partial headers");
    still_serving(&app).await;
    // The stalled connection is closed once its header time is up.
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the server kept a stalled connection open");
    still_serving(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_are_turned_away() {
    let app = try_spawn(Backend::Sqlite, |c| c.max_connections = 2).await.expect("SQLite");
    let _a = TcpStream::connect(app.addr).await.expect("connect");
    let _b = TcpStream::connect(app.addr).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut c = TcpStream::connect(app.addr).await.expect("connect");
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut buf)).await.expect("answered").expect("read");
    assert!(String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 503"), "{}", String::from_utf8_lossy(&buf));
    drop((_a, _b));
    app.stop().await;
}
