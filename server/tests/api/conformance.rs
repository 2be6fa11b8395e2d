//! JSON-RPC 2.0 conformance: every example of the specification's Examples
//! section (§7), with Trellis methods standing in for `subtract`, `sum`,
//! `get_data` and the rest, and the rules of §4–6 besides. Each case runs
//! over both transports: an HTTP POST per request, and text messages on one
//! WebSocket (`name::http`, `name::websocket`).

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, assert_error, spawn_sqlite};
use crate::ws::{Receiver, Sender, connect};

/// Finds the answer with `id` in a batch answer.
fn by_id<'a>(answers: &'a Value, id: &Value) -> &'a Value {
    answers.as_array().expect("array").iter().find(|a| &a["id"] == id).unwrap_or_else(|| panic!("no answer for {id}"))
}

/// How a case sends its raw requests.
enum Wire {
    /// One POST per request.
    Http,
    /// Text messages on one socket (messages run concurrently, so each case
    /// waits for one answer before it sends the next request).
    Ws(Box<(Sender, Receiver)>),
}

/// How long a request that must get no answer is watched.
const SILENCE: Duration = Duration::from_millis(300);

impl Wire {
    async fn open(app: &TestApp, websocket: bool) -> Self {
        if websocket { Self::Ws(Box::new(connect(app.addr, None).await)) } else { Self::Http }
    }

    /// Sends `body`; its answer, as sent (the HTTP status must be 200).
    async fn text(&mut self, app: &TestApp, body: &str) -> String {
        match self {
            Self::Http => {
                let resp = app.post(body).await;
                assert_eq!(resp.status(), 200, "{body}");
                resp.text().await.expect("body")
            }
            Self::Ws(socket) => {
                let (tx, rx) = &mut **socket;
                tx.send_text(body).await.expect("send");
                tx.flush().await.expect("flush");
                let mut data = Vec::new();
                rx.receive_data(&mut data).await.expect("an answer");
                String::from_utf8(data).expect("UTF-8")
            }
        }
    }

    /// Sends `body`; its answer, parsed.
    async fn answer(&mut self, app: &TestApp, body: &str) -> Value {
        let text = self.text(app, body).await;
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }

    /// Sends `body`, which must get no answer at all: over HTTP a 204 with
    /// an empty body; over WebSocket no message, while the socket still
    /// answers the next call.
    async fn silent(&mut self, app: &TestApp, body: &str) {
        match self {
            Self::Http => {
                let resp = app.post(body).await;
                assert_eq!(resp.status(), 204, "{body}");
                assert_eq!(resp.text().await.expect("body"), "", "{body}");
            }
            Self::Ws(socket) => {
                let (tx, _) = &mut **socket;
                tx.send_text(body).await.expect("send");
                tx.flush().await.expect("flush");
                // An answer would be sent by now, so it would come before
                // the probe's.
                tokio::time::sleep(SILENCE).await;
                let probe = self.answer(app, r#"{"jsonrpc":"2.0","method":"health.check","id":"probe"}"#).await;
                assert_eq!(probe["id"], "probe", "{body} was answered: {probe}");
            }
        }
    }
}

/// Runs a case over HTTP (`name::http`) and over WebSocket (`name::websocket`).
macro_rules! both_wires {
    ($(#[$meta:meta])* async fn $name:ident($app:ident, $wire:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($app: &TestApp, $wire: &mut Wire) $body

            async fn over(websocket: bool) {
                let app = spawn_sqlite().await;
                let mut wire = Wire::open(&app, websocket).await;
                run(&app, &mut wire).await;
                drop(wire);
                app.stop().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn http() {
                over(false).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn websocket() {
                over(true).await;
            }
        }
    };
}

both_wires! {
    async fn positional_and_named_params_mean_the_same(app, wire) {
        app.register("pos@example.com", PASSWORD).await;
        let by_position = wire
            .answer(app, &format!(
                r#"{{"jsonrpc":"2.0","method":"auth.login","params":["pos@example.com","{PASSWORD}"],"id":1}}"#
            ))
            .await;
        let by_name = wire
            .answer(app, &format!(
                r#"{{"jsonrpc":"2.0","method":"auth.login","params":{{"password":"{PASSWORD}","email":"pos@example.com"}},"id":2}}"#
            ))
            .await;
        assert_eq!(by_position["id"], 1);
        assert_eq!(by_name["id"], 2);
        assert_eq!(by_position["result"]["user"]["id"], by_name["result"]["user"]["id"]);
        assert!(by_position["result"]["accessToken"].is_string());
    }
}

both_wires! {
    async fn notifications_get_no_answer_but_are_carried_out(app, wire) {
        wire.silent(app, r#"{"jsonrpc":"2.0","method":"health.check","params":[]}"#).await;
        // No answer even for an unknown method.
        wire.silent(app, r#"{"jsonrpc":"2.0","method":"foobar"}"#).await;
        // A notification runs: the account it registers can sign in.
        wire.silent(app, &format!(
            r#"{{"jsonrpc":"2.0","method":"auth.register","params":{{"email":"quiet@example.com","password":"{PASSWORD}"}}}}"#
        ))
        .await;
        app.login("quiet@example.com", PASSWORD).await;
    }
}

both_wires! {
    async fn the_specification_error_examples(app, wire) {
        // rpc call of non-existent method
        let r = wire.answer(app, r#"{"jsonrpc": "2.0", "method": "foobar", "id": "1"}"#).await;
        assert_eq!(r["id"], "1");
        assert_eq!(r["jsonrpc"], "2.0");
        assert_error(&r["error"], -32601, "METHOD_NOT_FOUND");
        assert_eq!(r["error"]["message"], "Method not found");
        assert!(r.get("result").is_none());

        // rpc call with invalid JSON
        let r = wire.answer(app, r#"{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]"#).await;
        assert_error(&r["error"], -32700, "PARSE_ERROR");
        assert_eq!(r["id"], Value::Null);
        assert_eq!(r["error"]["message"], "Parse error");

        // rpc call with invalid Request object
        let r = wire.answer(app, r#"{"jsonrpc": "2.0", "method": 1, "params": "bar"}"#).await;
        assert_error(&r["error"], -32600, "INVALID_REQUEST");
        assert_eq!(r["id"], Value::Null);
        assert_eq!(r["error"]["message"], "Invalid Request");

        // rpc call Batch, invalid JSON
        let r = wire
            .answer(app, "[\n  {\"jsonrpc\": \"2.0\", \"method\": \"sum\", \"params\": [1,2,4], \"id\": \"1\"},\n  {\"jsonrpc\": \"2.0\", \"method\"\n]")
            .await;
        assert!(r.is_object(), "a single answer, not an array: {r}");
        assert_error(&r["error"], -32700, "PARSE_ERROR");
        assert_eq!(r["id"], Value::Null);

        // rpc call with an empty Array
        let r = wire.answer(app, "[]").await;
        assert!(r.is_object(), "a single answer, not an array: {r}");
        assert_error(&r["error"], -32600, "INVALID_REQUEST");
        assert_eq!(r["id"], Value::Null);

        // rpc call with an invalid Batch (but not empty)
        let r = wire.answer(app, "[1]").await;
        let list = r.as_array().expect("array");
        assert_eq!(list.len(), 1);
        assert_error(&list[0]["error"], -32600, "INVALID_REQUEST");
        assert_eq!(list[0]["id"], Value::Null);

        // rpc call with invalid Batch
        let r = wire.answer(app, "[1,2,3]").await;
        let list = r.as_array().expect("array");
        assert_eq!(list.len(), 3);
        for a in list {
            assert_error(&a["error"], -32600, "INVALID_REQUEST");
            assert_eq!(a["id"], Value::Null);
        }
    }
}

both_wires! {
    async fn the_specification_batch_example(app, wire) {
        // sum → health.check, notify_hello → a notification, subtract →
        // rpc.discover, {"foo": "boo"} → invalid, foo.get → unknown method,
        // get_data → health.check.
        let r = wire
            .answer(
                app,
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
        let list = r.as_array().expect("array");
        assert_eq!(list.len(), 5, "no answer for the notification: {r}");
        assert_eq!(by_id(&r, &json!("1"))["result"]["status"], "ok");
        assert_eq!(by_id(&r, &json!("2"))["result"]["openrpc"], "1.3.2");
        assert_error(&by_id(&r, &json!("5"))["error"], -32601, "METHOD_NOT_FOUND");
        assert_eq!(by_id(&r, &json!("9"))["result"]["status"], "ok");
        assert_error(&by_id(&r, &Value::Null)["error"], -32600, "INVALID_REQUEST");
    }
}

both_wires! {
    async fn an_all_notification_batch_gets_nothing_at_all(app, wire) {
        wire.silent(
            app,
            r#"[{"jsonrpc": "2.0", "method": "health.check", "params": [1,2,4]},{"jsonrpc": "2.0", "method": "health.check", "params": [7]}]"#,
        )
        .await;
    }
}

both_wires! {
    async fn ids_are_echoed_with_their_type(app, wire) {
        for id in [r#""abc""#, "1", "-7", "0", "9007199254740991", "1.5", r#""""#, r#""ü\"x""#] {
            let text = wire.text(app, &format!(r#"{{"jsonrpc":"2.0","method":"health.check","id":{id}}}"#)).await;
            assert!(text.ends_with(&format!(",\"id\":{id}}}")), "id {id} not echoed as sent: {text}");
        }
        // A null id is a call, not a notification: it is answered, with id null.
        let r = wire.answer(app, r#"{"jsonrpc":"2.0","method":"health.check","id":null}"#).await;
        assert_eq!(r["id"], Value::Null);
        assert_eq!(r["result"]["status"], "ok");
    }
}

both_wires! {
    async fn malformed_requests_are_invalid_requests(app, wire) {
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
            let r = wire.answer(app, body).await;
            assert_error(&r["error"], -32600, "INVALID_REQUEST");
            assert_eq!(r["id"], id, "{body}");
        }
    }
}

both_wires! {
    async fn failures_inside_a_batch_stay_with_their_call(app, wire) {
        let r = wire
            .answer(
                app,
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
    }
}

both_wires! {
    async fn params_are_validated_field_by_field(app, wire) {
        let call = |method: &str, params: Value| json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1}).to_string();
        let r = wire.answer(app, &call("auth.register", json!({"email": "a@example.com", "password": "short"}))).await;
        let e = &r["error"];
        assert_error(e, -32602, "VALIDATION");
        assert_eq!(e["data"]["fields"][0]["path"], "password");
        assert!(e["data"]["fields"][0]["message"].as_str().expect("message").contains("at least 8"));

        let r = wire.answer(app, &call("auth.login", json!({"email": "a@example.com", "passwrod": "x"}))).await;
        assert_error(&r["error"], -32602, "VALIDATION");
        assert!(r["error"]["data"]["fields"][0]["message"].as_str().expect("message").contains("passwrod"), "{r}");

        let r = wire.answer(app, &call("auth.login", json!({"email": "a@example.com"}))).await;
        assert!(r["error"]["data"]["fields"][0]["message"].as_str().expect("message").contains("password"), "{r}");

        let r = wire.answer(app, &call("health.check", json!({"unexpected": true}))).await;
        assert_error(&r["error"], -32602, "VALIDATION");
    }
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
