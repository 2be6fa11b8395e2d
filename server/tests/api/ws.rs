//! The same procedures over WebSocket, on the same port and path.

use futures::io::{BufReader, BufWriter};
use serde_json::{Value, json};
use soketto::handshake::{Client, ServerResponse};
use tokio_util::compat::TokioAsyncReadCompatExt;

use crate::helpers::{assert_error, spawn_sqlite};

pub type Sender = soketto::Sender<BufReader<BufWriter<tokio_util::compat::Compat<tokio::net::TcpStream>>>>;
pub type Receiver = soketto::Receiver<BufReader<BufWriter<tokio_util::compat::Compat<tokio::net::TcpStream>>>>;

pub async fn connect(addr: std::net::SocketAddr, token: Option<&str>) -> (Sender, Receiver) {
    connect_to(addr, "/rpc", token).await
}

pub async fn connect_to(addr: std::net::SocketAddr, path: &str, token: Option<&str>) -> (Sender, Receiver) {
    let value = token.map(|t| format!("Bearer {t}"));
    connect_with(addr, path, value.as_ref().map(|v| ("Authorization", v.as_str()))).await
}

/// Opens a socket with one extra header on the upgrade.
pub async fn connect_with(addr: std::net::SocketAddr, path: &str, header: Option<(&str, &str)>) -> (Sender, Receiver) {
    let socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
    upgrade(socket, addr, path, header).await
}

/// Upgrades a connection made by the caller (with socket options of its own).
pub async fn connect_stream(socket: tokio::net::TcpStream, addr: std::net::SocketAddr, token: Option<&str>) -> (Sender, Receiver) {
    let value = token.map(|t| format!("Bearer {t}"));
    upgrade(socket, addr, "/rpc", value.as_ref().map(|v| ("Authorization", v.as_str()))).await
}

async fn upgrade(
    socket: tokio::net::TcpStream,
    addr: std::net::SocketAddr,
    path: &str,
    header: Option<(&str, &str)>,
) -> (Sender, Receiver) {
    let host = addr.to_string();
    let mut client = Client::new(BufReader::new(BufWriter::new(socket.compat())), &host, path);
    let headers: Vec<soketto::handshake::client::Header<'_>> = header
        .iter()
        .map(|(name, value)| soketto::handshake::client::Header { name, value: value.as_bytes() })
        .collect();
    client.set_headers(&headers);
    match client.handshake().await.expect("handshake") {
        ServerResponse::Accepted { .. } => {}
        other => panic!("upgrade refused: {other:?}"),
    }
    client.into_builder().finish()
}

pub async fn exchange(tx: &mut Sender, rx: &mut Receiver, msg: Value) -> Value {
    tx.send_text(msg.to_string()).await.expect("send");
    tx.flush().await.expect("flush");
    let mut data = Vec::new();
    rx.receive_data(&mut data).await.expect("receive");
    serde_json::from_slice(&data).expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_and_batches_over_websocket() {
    let app = spawn_sqlite().await;
    let tokens = app.signed_in("ws@example.com").await;

    let (mut tx, mut rx) = connect(app.addr, Some(tokens["accessToken"].as_str().expect("token"))).await;
    let r = exchange(&mut tx, &mut rx, json!({"jsonrpc": "2.0", "method": "health.check", "id": 1})).await;
    assert_eq!(r["result"]["status"], "ok");
    let r = exchange(&mut tx, &mut rx, json!({"jsonrpc": "2.0", "method": "auth.me", "id": 2})).await;
    assert_eq!(r["result"]["user"]["email"], "ws@example.com");
    let r = exchange(
        &mut tx,
        &mut rx,
        json!([
            {"jsonrpc": "2.0", "method": "health.check", "id": 3},
            {"jsonrpc": "2.0", "method": "nope", "id": 4},
        ]),
    )
    .await;
    let answers = r.as_array().expect("array");
    assert_eq!(answers.len(), 2);
    assert!(answers.iter().any(|a| a["id"] == 3 && a["result"]["status"] == "ok"));
    assert!(answers.iter().any(|a| a["id"] == 4 && a["error"]["code"] == -32601));

    // Without credentials, signed-in procedures are refused the same way.
    let (mut tx, mut rx) = connect(app.addr, None).await;
    let r = exchange(&mut tx, &mut rx, json!({"jsonrpc": "2.0", "method": "auth.me", "id": 1})).await;
    assert_error(&r["error"], -32001, "CREDENTIALS_MISSING");
    app.stop().await;
}

/// Browsers cannot set headers on an upgrade: the token may come in the URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_in_the_upgrade_url() {
    let app = spawn_sqlite().await;
    let tokens = app.signed_in("ws-url@example.com").await;
    let token = tokens["accessToken"].as_str().expect("token");
    let (mut tx, mut rx) = connect_to(app.addr, &format!("/rpc?access_token={token}"), None).await;
    let r = exchange(&mut tx, &mut rx, json!({"jsonrpc": "2.0", "method": "auth.me", "id": 1})).await;
    assert_eq!(r["result"]["user"]["email"], "ws-url@example.com");

    let (mut tx, mut rx) = connect_to(app.addr, "/rpc?access_token=forged", None).await;
    let r = exchange(&mut tx, &mut rx, json!({"jsonrpc": "2.0", "method": "auth.me", "id": 1})).await;
    assert_error(&r["error"], -32001, "TOKEN_INVALID");
    app.stop().await;
}

/// WebSocket messages take the HTTP path's framing: ids echoed as sent,
/// notifications run unanswered, malformed messages answered per the spec.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_framing_matches_http() {
    let app = spawn_sqlite().await;
    let (mut tx, mut rx) = connect(app.addr, None).await;
    async fn raw(tx: &mut Sender, rx: &mut Receiver, text: &str) -> String {
        tx.send_text(text).await.expect("send");
        tx.flush().await.expect("flush");
        let mut data = Vec::new();
        rx.receive_data(&mut data).await.expect("receive");
        String::from_utf8(data).expect("text")
    }
    let answer = raw(&mut tx, &mut rx, r#"{"jsonrpc":"2.0","method":"health.check","id":-1.50}"#).await;
    assert!(answer.ends_with(r#","id":-1.50}"#), "{answer}");
    // A notification and a call in one batch: one answer, for the call.
    let answer = raw(
        &mut tx,
        &mut rx,
        r#"[{"jsonrpc":"2.0","method":"health.check"},{"jsonrpc":"2.0","method":"health.check","id":"x"}]"#,
    )
    .await;
    let answers: Value = serde_json::from_str(&answer).expect("JSON");
    assert_eq!(answers.as_array().map(Vec::len), Some(1), "{answer}");
    assert_eq!(answers[0]["id"], "x");
    let answer: Value = serde_json::from_str(&raw(&mut tx, &mut rx, "{not json").await).expect("JSON");
    assert_error(&answer["error"], -32700, "PARSE_ERROR");
    let answer: Value =
        serde_json::from_str(&raw(&mut tx, &mut rx, r#"{"jsonrpc":"2.0","method":"rpc.authenticate","id":1}"#).await)
            .expect("JSON");
    assert_error(&answer["error"], -32602, "VALIDATION");
    app.stop().await;
}
