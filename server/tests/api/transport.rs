//! Request ids, the plain HTTP routes, and graceful shutdown.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, spawn_sqlite};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_are_echoed_and_carried_in_errors() {
    let app = spawn_sqlite().await;
    let resp = app
        .http
        .post(&app.url)
        .header("x-request-id", "client-chosen-id.42")
        .json(&json!({"jsonrpc": "2.0", "method": "auth.me", "id": 1}))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.headers()["x-request-id"], "client-chosen-id.42");
    let body: Value = resp.json().await.expect("JSON");
    assert_eq!(body["error"]["data"]["requestId"], "client-chosen-id.42");

    // Without one (or with one unfit for logs), the server makes one.
    for header in [None, Some("has spaces and \u{7f}"), Some(&*"x".repeat(200))] {
        let mut req = app.http.post(&app.url).json(&json!({"jsonrpc": "2.0", "method": "nope", "id": 1}));
        if let Some(Ok(v)) = header.map(reqwest::header::HeaderValue::from_str) {
            req = req.header("x-request-id", v);
        }
        let resp = req.send().await.expect("sent");
        let id = resp.headers()["x-request-id"].to_str().expect("ascii").to_owned();
        assert_eq!(uuid::Uuid::parse_str(&id).expect("a UUID").get_version_num(), 7);
        let body: Value = resp.json().await.expect("JSON");
        assert_eq!(body["error"]["data"]["requestId"], id.as_str());
    }

    // A traceparent is accepted alongside.
    let resp = app
        .http
        .post(&app.url)
        .header("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        .json(&json!({"jsonrpc": "2.0", "method": "health.check", "id": 1}))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_the_openrpc_document() {
    let app = spawn_sqlite().await;
    let base = format!("http://{}", app.addr);
    let r = app.http.get(format!("{base}/healthz")).send().await.expect("sent");
    assert_eq!(r.status(), 200);
    let r = app.http.get(format!("{base}/readyz")).send().await.expect("sent");
    assert_eq!(r.status(), 200);
    let ready: Value = r.json().await.expect("JSON");
    assert_eq!(ready["database"]["ok"], true);

    let doc: Value =
        app.http.get(format!("{base}/openrpc.json")).send().await.expect("sent").json().await.expect("JSON");
    let discovered = app.call("rpc.discover", json!({}), None).await.expect("discover");
    assert_eq!(doc, discovered);
    let names: Vec<&str> =
        doc["methods"].as_array().expect("methods").iter().filter_map(|m| m["name"].as_str()).collect();
    for expected in
        ["health.check", "rpc.discover", "auth.register", "auth.login", "auth.refresh", "auth.logout", "auth.me"]
    {
        assert!(names.contains(&expected), "{expected} missing from {names:?}");
    }

    let health = app.call("health.check", json!({}), None).await.expect("health");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["checks"]["database"]["ok"], true);
    assert_eq!(health["checks"]["cache"]["backend"], "memory");
    assert!(health["version"].is_string() && health["uptimeSecs"].is_u64());

    let r = app.http.get(format!("{base}/nowhere")).send().await.expect("sent");
    assert_eq!(r.status(), 404);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_in_flight_calls_finish() {
    let app = spawn_sqlite().await;
    // Registrations hash passwords: a batch of them is in flight for a while.
    let batch: Vec<Value> = (0..24)
        .map(|i| {
            json!({"jsonrpc": "2.0", "method": "auth.register",
                   "params": {"email": format!("s{i}@example.com"), "password": PASSWORD}, "id": i})
        })
        .collect();
    let http = app.http.clone();
    let url = app.url.clone();
    let in_flight = tokio::spawn(async move {
        http.post(url).json(&batch).send().await.expect("sent").json::<Value>().await.expect("JSON")
    });
    // Long enough for the batch to arrive, short of 24 hashes two at a time.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let addr = app.addr;
    app.stop().await;
    let answers = in_flight.await.expect("task");
    let answers = answers.as_array().expect("array");
    assert_eq!(answers.len(), 24);
    assert!(answers.iter().all(|a| a["result"]["userId"].is_string()), "{answers:?}");
    // And the port no longer takes connections.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
