//! JSON-RPC 2.0 conformance: every example of the specification's Examples
//! section (§7), with Trellis methods standing in for `subtract`, `sum`,
//! `get_data` and the rest, and the rules of §4–6 besides.

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, assert_error, spawn_sqlite};

/// Finds the answer with `id` in a batch answer.
fn by_id<'a>(answers: &'a Value, id: &Value) -> &'a Value {
    answers.as_array().expect("array").iter().find(|a| &a["id"] == id).unwrap_or_else(|| panic!("no answer for {id}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn positional_and_named_params_mean_the_same() {
    let app = spawn_sqlite().await;
    app.register("pos@example.com", PASSWORD).await;
    let (_, by_position) = app
        .post_json(format!(
            r#"{{"jsonrpc":"2.0","method":"auth.login","params":["pos@example.com","{PASSWORD}"],"id":1}}"#
        ))
        .await;
    let (_, by_name) = app
        .post_json(format!(
            r#"{{"jsonrpc":"2.0","method":"auth.login","params":{{"password":"{PASSWORD}","email":"pos@example.com"}},"id":2}}"#
        ))
        .await;
    assert_eq!(by_position["id"], 1);
    assert_eq!(by_name["id"], 2);
    assert_eq!(by_position["result"]["user"]["id"], by_name["result"]["user"]["id"]);
    assert!(by_position["result"]["accessToken"].is_string());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_get_no_answer_but_are_carried_out() {
    let app = spawn_sqlite().await;
    let resp = app.post(r#"{"jsonrpc":"2.0","method":"health.check","params":[]}"#).await;
    assert_eq!(resp.status(), 204);
    assert!(resp.text().await.expect("body").is_empty());
    let resp = app.post(r#"{"jsonrpc":"2.0","method":"foobar"}"#).await;
    assert_eq!(resp.status(), 204, "no answer even for an unknown method");
    assert!(resp.text().await.expect("body").is_empty());

    // A notification runs: the account it registers can sign in.
    let resp = app
        .post(format!(
            r#"{{"jsonrpc":"2.0","method":"auth.register","params":{{"email":"quiet@example.com","password":"{PASSWORD}"}}}}"#
        ))
        .await;
    assert_eq!(resp.status(), 204);
    app.login("quiet@example.com", PASSWORD).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_specification_error_examples() {
    let app = spawn_sqlite().await;

    // rpc call of non-existent method
    let (status, r) = app.post_json(r#"{"jsonrpc": "2.0", "method": "foobar", "id": "1"}"#).await;
    assert_eq!(status, 200);
    assert_eq!(r["id"], "1");
    assert_eq!(r["jsonrpc"], "2.0");
    assert_error(&r["error"], -32601, "METHOD_NOT_FOUND");
    assert_eq!(r["error"]["message"], "Method not found");
    assert!(r.get("result").is_none());

    // rpc call with invalid JSON
    let (_, r) = app.post_json(r#"{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]"#).await;
    assert_error(&r["error"], -32700, "PARSE_ERROR");
    assert_eq!(r["id"], Value::Null);
    assert_eq!(r["error"]["message"], "Parse error");

    // rpc call with invalid Request object
    let (_, r) = app.post_json(r#"{"jsonrpc": "2.0", "method": 1, "params": "bar"}"#).await;
    assert_error(&r["error"], -32600, "INVALID_REQUEST");
    assert_eq!(r["id"], Value::Null);
    assert_eq!(r["error"]["message"], "Invalid Request");

    // rpc call Batch, invalid JSON
    let (_, r) = app
        .post_json("[\n  {\"jsonrpc\": \"2.0\", \"method\": \"sum\", \"params\": [1,2,4], \"id\": \"1\"},\n  {\"jsonrpc\": \"2.0\", \"method\"\n]")
        .await;
    assert!(r.is_object(), "a single answer, not an array: {r}");
    assert_error(&r["error"], -32700, "PARSE_ERROR");
    assert_eq!(r["id"], Value::Null);

    // rpc call with an empty Array
    let (_, r) = app.post_json("[]").await;
    assert!(r.is_object(), "a single answer, not an array: {r}");
    assert_error(&r["error"], -32600, "INVALID_REQUEST");
    assert_eq!(r["id"], Value::Null);

    // rpc call with an invalid Batch (but not empty)
    let (_, r) = app.post_json("[1]").await;
    let list = r.as_array().expect("array");
    assert_eq!(list.len(), 1);
    assert_error(&list[0]["error"], -32600, "INVALID_REQUEST");
    assert_eq!(list[0]["id"], Value::Null);

    // rpc call with invalid Batch
    let (_, r) = app.post_json("[1,2,3]").await;
    let list = r.as_array().expect("array");
    assert_eq!(list.len(), 3);
    for a in list {
        assert_error(&a["error"], -32600, "INVALID_REQUEST");
        assert_eq!(a["id"], Value::Null);
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_specification_batch_example() {
    let app = spawn_sqlite().await;
    // sum → health.check, notify_hello → a notification, subtract →
    // rpc.discover, {"foo": "boo"} → invalid, foo.get → unknown method,
    // get_data → health.check.
    let (status, r) = app
        .post_json(
            r#"[
        {"jsonrpc": "2.0", "method": "health.check", "params": {}, "id": "1"},
        {"jsonrpc": "2.0", "method": "health.check", "params": [7]},
        {"jsonrpc": "2.0", "method": "rpc.discover", "params": [], "id": "2"},
        {"foo": "boo"},
        {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
        {"jsonrpc": "2.0", "method": "health.check", "id": "9"}
    ]"#,
        )
        .await;
    assert_eq!(status, 200);
    let list = r.as_array().expect("array");
    assert_eq!(list.len(), 5, "no answer for the notification: {r}");
    assert_eq!(by_id(&r, &json!("1"))["result"]["status"], "ok");
    assert_eq!(by_id(&r, &json!("2"))["result"]["openrpc"], "1.3.2");
    assert_error(&by_id(&r, &json!("5"))["error"], -32601, "METHOD_NOT_FOUND");
    assert_eq!(by_id(&r, &json!("9"))["result"]["status"], "ok");
    assert_error(&by_id(&r, &Value::Null)["error"], -32600, "INVALID_REQUEST");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_all_notification_batch_gets_nothing_at_all() {
    let app = spawn_sqlite().await;
    let resp = app
        .post(r#"[{"jsonrpc": "2.0", "method": "health.check", "params": [1,2,4]},{"jsonrpc": "2.0", "method": "health.check", "params": [7]}]"#)
        .await;
    assert_eq!(resp.status(), 204);
    assert_eq!(resp.text().await.expect("body"), "");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_are_echoed_with_their_type() {
    let app = spawn_sqlite().await;
    for id in [r#""abc""#, "1", "-7", "0", "9007199254740991", "1.5", r#""""#, r#""ü\"x""#] {
        let resp = app.post(format!(r#"{{"jsonrpc":"2.0","method":"health.check","id":{id}}}"#)).await;
        let text = resp.text().await.expect("body");
        assert!(text.ends_with(&format!(",\"id\":{id}}}")), "id {id} not echoed as sent: {text}");
    }
    // A null id is a call, not a notification: it is answered, with id null.
    let (status, r) = app.post_json(r#"{"jsonrpc":"2.0","method":"health.check","id":null}"#).await;
    assert_eq!(status, 200);
    assert_eq!(r["id"], Value::Null);
    assert_eq!(r["result"]["status"], "ok");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_are_invalid_requests() {
    let app = spawn_sqlite().await;
    let cases = [
        // jsonrpc other than exactly "2.0"
        (r#"{"jsonrpc":"1.0","method":"health.check","id":1}"#, json!(1)),
        (r#"{"jsonrpc":2.0,"method":"health.check","id":1}"#, json!(1)),
        (r#"{"method":"health.check","id":1}"#, json!(1)),
        // params neither array nor object
        (r#"{"jsonrpc":"2.0","method":"health.check","params":"s","id":2}"#, json!(2)),
        (r#"{"jsonrpc":"2.0","method":"health.check","params":3,"id":2}"#, json!(2)),
        // ids of a type the specification does not allow
        (r#"{"jsonrpc":"2.0","method":"health.check","id":{}}"#, Value::Null),
        (r#"{"jsonrpc":"2.0","method":"health.check","id":[1]}"#, Value::Null),
        (r#"{"jsonrpc":"2.0","method":"health.check","id":true}"#, Value::Null),
        // no method, or a method that is not a string
        (r#"{"jsonrpc":"2.0","id":3}"#, json!(3)),
        (r#"{"jsonrpc":"2.0","method":null,"id":3}"#, json!(3)),
        // top-level values that are not Request objects
        ("1", Value::Null),
        (r#""x""#, Value::Null),
        ("null", Value::Null),
        ("true", Value::Null),
    ];
    for (body, id) in cases {
        let (status, r) = app.post_json(body).await;
        assert_eq!(status, 200, "{body}");
        assert_error(&r["error"], -32600, "INVALID_REQUEST");
        assert_eq!(r["id"], id, "{body}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_inside_a_batch_stay_with_their_call() {
    let app = spawn_sqlite().await;
    let (_, r) = app
        .post_json(
            r#"[
        {"jsonrpc":"2.0","method":"auth.me","id":1},
        {"jsonrpc":"2.0","method":"auth.login","params":{"email":"not-an-address"},"id":2},
        {"jsonrpc":"2.0","method":"health.check","id":3},
        {"jsonrpc":"2.0","method":"auth.login","params":{"email":"nobody@example.com","password":"x"},"id":4}
    ]"#,
        )
        .await;
    assert_error(&by_id(&r, &json!(1))["error"], -32001, "CREDENTIALS_MISSING");
    let validation = &by_id(&r, &json!(2))["error"];
    assert_error(validation, -32602, "VALIDATION");
    assert_eq!(validation["data"]["fields"][0]["path"], "email");
    assert_eq!(by_id(&r, &json!(3))["result"]["status"], "ok");
    assert_error(&by_id(&r, &json!(4))["error"], -32001, "INVALID_CREDENTIALS");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn params_are_validated_field_by_field() {
    let app = spawn_sqlite().await;
    let e = app
        .call("auth.register", json!({"email": "a@example.com", "password": "short"}), None)
        .await
        .expect_err("short");
    assert_error(&e, -32602, "VALIDATION");
    assert_eq!(e["data"]["fields"][0]["path"], "password");
    assert!(e["data"]["fields"][0]["message"].as_str().expect("message").contains("at least 8"));

    let e = app.call("auth.login", json!({"email": "a@example.com", "passwrod": "x"}), None).await.expect_err("typo");
    assert_error(&e, -32602, "VALIDATION");
    assert!(e["data"]["fields"][0]["message"].as_str().expect("message").contains("passwrod"), "{e}");

    let e = app.call("auth.login", json!({"email": "a@example.com"}), None).await.expect_err("missing");
    assert!(e["data"]["fields"][0]["message"].as_str().expect("message").contains("password"), "{e}");

    let e = app.call("health.check", json!({"unexpected": true}), None).await.expect_err("unknown field");
    assert_error(&e, -32602, "VALIDATION");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_json_posts_are_json_rpc() {
    let app = spawn_sqlite().await;
    let resp = app
        .http
        .post(&app.url)
        .header("content-type", "text/plain")
        .body(r#"{"jsonrpc":"2.0","method":"health.check","id":1}"#)
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 415);
    let body: Value = resp.json().await.expect("JSON");
    assert_error(&body["error"], -32600, "INVALID_REQUEST");

    let resp = app
        .http
        .post(&app.url)
        .header("content-type", "application/json; charset=utf-8")
        .body(r#"{"jsonrpc":"2.0","method":"health.check","id":1}"#)
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 200);

    let resp = app.http.get(&app.url).send().await.expect("sent");
    assert_eq!(resp.status(), 405);
    app.stop().await;
}
