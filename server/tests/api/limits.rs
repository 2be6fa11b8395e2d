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

/// Retries a plain call until the server takes it (slots freed by closed
/// connections come back as the server notices).
async fn served_again(app: &TestApp) {
    for _ in 0..100 {
        let body = r#"{"jsonrpc":"2.0","method":"health.check","id":1}"#;
        let sent = app.http.post(&app.url).header("content-type", "application/json").body(body).send().await;
        // Turned away: a 503, or the connection closed under the request.
        if sent.is_ok_and(|r| r.status() == 200) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the server never took calls again");
}

/// Waits for the server to close `socket` (or reset it); what it sent before.
async fn closed_by_server(socket: &mut TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), async {
        let mut chunk = [0u8; 4096];
        while let Ok(n @ 1..) = socket.read(&mut chunk).await {
            buf.extend_from_slice(&chunk[..n]);
        }
    })
    .await;
    read.expect("the server closed the connection");
    buf
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_reclaimed_and_do_not_lock_others_out() {
    let mut app = try_spawn(Backend::Sqlite, |c| {
        c.max_connections = 10;
        c.first_byte_timeout_ms = 300;
    })
    .await
    .expect("SQLite");
    app.http = reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("client");
    let mut silent = Vec::new();
    for _ in 0..12 {
        silent.push(TcpStream::connect(app.addr).await.expect("connect"));
    }
    // Beyond the limit: 503 at once; within it: closed once the first-byte time is up.
    let mut turned_away = 0;
    for s in &mut silent {
        if String::from_utf8_lossy(&closed_by_server(s).await).starts_with("HTTP/1.1 503") {
            turned_away += 1;
        }
    }
    assert_eq!(turned_away, 2);
    served_again(&app).await;
    still_serving(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_address_are_capped() {
    let mut app = try_spawn(Backend::Sqlite, |c| c.max_connections_per_ip = 3).await.expect("SQLite");
    app.http = reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("client");
    let held: Vec<TcpStream> = futures::future::join_all((0..3).map(|_| TcpStream::connect(app.addr)))
        .await
        .into_iter()
        .map(|s| s.expect("connect"))
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut fourth = TcpStream::connect(app.addr).await.expect("connect");
    let answer = closed_by_server(&mut fourth).await;
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 503"), "{}", String::from_utf8_lossy(&answer));
    drop(held);
    served_again(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_http2_connections_are_reclaimed() {
    use http_body_util::Full;
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let app = try_spawn(Backend::Sqlite, |c| c.idle_timeout_ms = 300).await.expect("SQLite");
    // HTTP/2 with prior knowledge: one call, then silence.
    let stream = TcpStream::connect(app.addr).await.expect("connect");
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.expect("h2c");
    let driver = tokio::spawn(conn);
    let req = http::Request::post(format!("http://{}/rpc", app.addr))
        .header("content-type", "application/json")
        .body(Full::new(bytes::Bytes::from_static(br#"{"jsonrpc":"2.0","method":"health.check","id":1}"#)))
        .expect("request");
    let resp = send.send_request(req).await.expect("answered");
    assert_eq!((resp.status(), resp.version()), (http::StatusCode::OK, http::Version::HTTP_2));
    let closed = tokio::time::timeout(Duration::from_secs(15), driver).await;
    assert!(closed.is_ok(), "the server kept an idle HTTP/2 connection open");

    // A connection that sends the preface and nothing else is reclaimed too.
    let stream = TcpStream::connect(app.addr).await.expect("connect");
    let (_send, conn) =
        hyper::client::conn::http2::handshake::<_, _, Full<bytes::Bytes>>(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2c");
    let closed = tokio::time::timeout(Duration::from_secs(15), conn).await;
    assert!(closed.is_ok(), "the server kept a silent HTTP/2 connection open");
    still_serving(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_that_does_not_answer_pings_is_closed() {
    let app = try_spawn(Backend::Sqlite, |c| {
        c.ws_ping_interval_ms = 100;
        c.ws_idle_timeout_ms = 400;
    })
    .await
    .expect("SQLite");
    let mut s = TcpStream::connect(app.addr).await.expect("connect");
    s.write_all(
        b"GET /rpc HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .expect("upgrade sent");
    // The client never reads a frame nor answers a ping.
    let buf = closed_by_server(&mut s).await;
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 101"), "{text}");
    assert!(text.to_ascii_lowercase().contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="), "{text}");
    let frames = &buf[buf.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4..];
    assert_eq!(&frames[..2], &[0x89, 0x00], "pinged first");
    let close = frames.iter().position(|b| *b == 0x88).expect("a close frame");
    assert_eq!(&frames[close + 2..close + 4], &1001u16.to_be_bytes());
    assert_eq!(&frames[close + 4..], b"no answer to pings");
    still_serving(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_connection_that_does_not_answer_pings_is_closed() {
    // Idle time alone would take a minute: the pings close it first.
    let app = try_spawn(Backend::Sqlite, |c| {
        c.h2_keep_alive_interval_ms = 100;
        c.h2_keep_alive_timeout_ms = 200;
    })
    .await
    .expect("SQLite");
    let mut s = TcpStream::connect(app.addr).await.expect("connect");
    // The HTTP/2 preface and an empty SETTINGS frame; then nothing, not even PING acks.
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00").await.expect("preface");
    let buf = closed_by_server(&mut s).await;
    let mut types = Vec::new();
    let mut at = 0;
    while at + 9 <= buf.len() {
        let len = usize::from(buf[at]) << 16 | usize::from(buf[at + 1]) << 8 | usize::from(buf[at + 2]);
        types.push(buf[at + 3]);
        at += 9 + len;
    }
    assert!(types.contains(&0x6), "the server pinged: frame types {types:?}");

    // A connection that stops in the middle of the preface is closed at its first-byte deadline.
    let app2 = try_spawn(Backend::Sqlite, |c| c.first_byte_timeout_ms = 300).await.expect("SQLite");
    let mut s = TcpStream::connect(app2.addr).await.expect("connect");
    s.write_all(b"PRI * HTTP/2").await.expect("part of a preface");
    closed_by_server(&mut s).await;
    still_serving(&app2).await;
    app2.stop().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_http1_keep_alive_connections_are_reclaimed() {
    // The header timeout is long here: the idle timer is what closes the connection.
    let app = try_spawn(Backend::Sqlite, |c| {
        c.header_read_timeout_ms = 60_000;
        c.idle_timeout_ms = 300;
    })
    .await
    .expect("SQLite");
    let mut s = TcpStream::connect(app.addr).await.expect("connect");
    let body = r#"{"jsonrpc":"2.0","method":"health.check","id":1}"#;
    let request = format!(
        "POST /rpc HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).await.expect("request sent");
    // Answered, kept alive, then closed once idle.
    let answer = closed_by_server(&mut s).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains(r#""status":"ok""#), "{text}");
    still_serving(&app).await;
    app.stop().await;
}
