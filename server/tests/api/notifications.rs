//! Notifications through the real server: events become notifications for
//! the right people, listed, marked read, muted by preference; streamed over
//! WebSocket with replay after a cursor then live items, no gap and no
//! duplicate; bounded per connection and per subscription (a subscriber that
//! does not read gets the lag item), ended with a reason when the session ends.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, try_spawn};
use crate::orgs::create_org;
use crate::ws::{Receiver, Sender, connect};
use crate::{db_test, db_test_with};

fn token(t: &Value) -> &str {
    t["accessToken"].as_str().expect("token")
}

/// Makes `n` API keys in `org` (each notifies the org's owners and admins), in batches.
pub async fn make_keys(app: &TestApp, owner: &str, org: &str, n: usize) {
    let mut made = 0;
    while made < n {
        let batch: Vec<Value> = (made..n.min(made + 50))
            .map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "apiKeys.create", "params": {"orgId": org, "name": format!("k{i}"), "scopes": ["org:read"]}}))
            .collect();
        made += batch.len();
        let r = crate::helpers::http_client()
            .post(format!("http://{}/rpc", app.addr))
            .bearer_auth(owner)
            .json(&batch)
            .send()
            .await
            .expect("batch sent");
        let answers: Vec<Value> = r.json().await.expect("answers");
        assert!(answers.iter().all(|a| a.get("result").is_some()), "{answers:?}");
    }
}

/// The next message on a socket, within `secs`.
pub async fn next(rx: &mut Receiver, secs: u64) -> Value {
    let mut data = Vec::new();
    tokio::time::timeout(Duration::from_secs(secs), rx.receive_data(&mut data))
        .await
        .expect("a message in time")
        .expect("received");
    serde_json::from_slice(&data).expect("JSON")
}

pub async fn send(tx: &mut Sender, msg: Value) {
    tx.send_text(msg.to_string()).await.expect("send");
    tx.flush().await.expect("flush");
}

/// Subscribes on the socket; returns the subscription id.
pub async fn subscribe(tx: &mut Sender, rx: &mut Receiver, params: Value) -> String {
    send(tx, json!({"jsonrpc": "2.0", "id": "sub", "method": "notifications.subscribe", "params": params})).await;
    let r = next(rx, 10).await;
    assert_eq!(r["id"], "sub", "{r}");
    r["result"].as_str().unwrap_or_else(|| panic!("a subscription id: {r}")).to_owned()
}

db_test! {
    async fn api_key_events_reach_the_admins_live_and_in_the_list(app) {
        let owner = app.signed_in("owner@example.com").await;
        let org = create_org(app, token(&owner), "acme").await;
        let (mut tx, mut rx) = connect(app.addr, Some(token(&owner))).await;
        let sub = subscribe(&mut tx, &mut rx, json!({})).await;

        make_keys(app, token(&owner), &org, 1).await;
        let item = next(&mut rx, 10).await;
        assert_eq!(item["method"], "notifications.subscribe");
        assert_eq!(item["params"]["subscription"], sub.as_str());
        let n = &item["params"]["result"];
        assert_eq!(n["type"], "apiKey.created");
        assert_eq!(n["data"]["orgId"], org.as_str());
        assert_eq!(n["data"]["name"], "k0");
        assert!(n["readAt"].is_null());

        let list = app.call("notifications.list", json!({}), Some(token(&owner))).await.expect("list");
        assert_eq!(list["items"][0]["id"], n["id"]);
        let r = app.call("notifications.markRead", json!({"ids": [n["id"]]}), Some(token(&owner))).await.expect("marked");
        assert_eq!(r["updated"], 1);
        let r = app.call("notifications.markRead", json!({"all": true}), Some(token(&owner))).await.expect("marked");
        assert_eq!(r["updated"], 0);
        let unread = app.call("notifications.list", json!({"unreadOnly": true}), Some(token(&owner))).await.expect("list");
        assert_eq!(unread["items"], json!([]));
        let e = app.call("notifications.markRead", json!({}), Some(token(&owner))).await.expect_err("neither");
        assert_error(&e, -32602, "VALIDATION");

        // Another user sees none of it, and cannot mark it read.
        let other = app.signed_in("other@example.com").await;
        let list = app.call("notifications.list", json!({}), Some(token(&other))).await.expect("list");
        assert_eq!(list["items"], json!([]));
        let r = app.call("notifications.markRead", json!({"ids": [n["id"]]}), Some(token(&other))).await.expect("ok");
        assert_eq!(r["updated"], 0);
        // ... nor resume from it.
        let (mut tx2, mut rx2) = connect(app.addr, Some(token(&other))).await;
        send(&mut tx2, json!({"jsonrpc": "2.0", "id": 1, "method": "notifications.subscribe", "params": {"after": n["id"]}})).await;
        assert_error(&next(&mut rx2, 10).await["error"], -32004, "NOT_FOUND");

        // Unsubscribing ends the stream: no further items.
        send(&mut tx, json!({"jsonrpc": "2.0", "id": "u", "method": "notifications.unsubscribe", "params": [sub]})).await;
        assert_eq!(next(&mut rx, 10).await, json!({"jsonrpc": "2.0", "id": "u", "result": true}));
        send(&mut tx, json!({"jsonrpc": "2.0", "id": "u2", "method": "notifications.unsubscribe", "params": {"subscription": sub}})).await;
        assert_eq!(next(&mut rx, 10).await["result"], false);
        make_keys(app, token(&owner), &org, 1).await;
        send(&mut tx, json!({"jsonrpc": "2.0", "id": "h", "method": "health.check"})).await;
        assert_eq!(next(&mut rx, 10).await["id"], "h", "nothing came between");
    }
}

db_test! {
    async fn resuming_replays_what_came_after_the_cursor_then_goes_live(app) {
        let owner = app.signed_in("owner@example.com").await;
        let org = create_org(app, token(&owner), "acme").await;
        make_keys(app, token(&owner), &org, 5).await;
        // Wait for the five to be dispatched.
        let mut listed = Value::Null;
        for _ in 0..100 {
            listed = app.call("notifications.list", json!({}), Some(token(&owner))).await.expect("list");
            if listed["items"].as_array().is_some_and(|a| a.len() == 5) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let items = listed["items"].as_array().expect("items").clone();
        assert_eq!(items.len(), 5);
        // Newest first; resume after the second oldest: the three newer ones, oldest first, then live.
        let (mut tx, mut rx) = connect(app.addr, Some(token(&owner))).await;
        subscribe(&mut tx, &mut rx, json!({"after": items[3]["id"]})).await;
        for expected in [&items[2], &items[1], &items[0]] {
            assert_eq!(next(&mut rx, 10).await["params"]["result"]["id"], expected["id"]);
        }
        make_keys(app, token(&owner), &org, 1).await;
        let live = next(&mut rx, 10).await;
        assert_eq!(live["params"]["result"]["data"]["name"], "k0");

        // Over HTTP a subscription is refused with a clear error.
        let e = app.call("notifications.subscribe", json!({}), Some(token(&owner))).await.expect_err("HTTP");
        assert_error(&e, -32600, "INVALID_REQUEST");
        let e = app.call("notifications.unsubscribe", json!({"subscription": "x"}), Some(token(&owner))).await.expect_err("HTTP");
        assert_error(&e, -32600, "INVALID_REQUEST");
        // Without credentials: refused at subscribe time, as a call would be.
        let (mut tx, mut rx) = connect(app.addr, None).await;
        send(&mut tx, json!({"jsonrpc": "2.0", "id": 1, "method": "notifications.subscribe"})).await;
        assert_error(&next(&mut rx, 10).await["error"], -32001, "CREDENTIALS_MISSING");
    }
}

db_test! {
    async fn preferences_mute_an_event_type_and_are_changed_in_part(app) {
        let owner = app.signed_in("owner@example.com").await;
        let t = token(&owner);
        let p = app.call("notifications.getPreferences", json!({}), Some(t)).await.expect("prefs");
        assert_eq!(p, json!({"channels": {"inApp": true, "email": false, "webhook": true}, "muted": []}));
        let p = app
            .call("notifications.updatePreferences", json!({"muted": ["apiKey.created"]}), Some(t))
            .await
            .expect("updated");
        assert_eq!(p["muted"], json!(["apiKey.created"]));
        let p = app
            .call("notifications.updatePreferences", json!({"channels": {"email": true}}), Some(t))
            .await
            .expect("updated");
        assert_eq!(p, json!({"channels": {"inApp": true, "email": true, "webhook": true}, "muted": ["apiKey.created"]}));
        let e = app.call("notifications.updatePreferences", json!({"muted": ["nope"]}), Some(t)).await.expect_err("bad");
        assert_error(&e, -32602, "VALIDATION");

        let org = create_org(app, t, "acme").await;
        make_keys(app, t, &org, 1).await;
        // Once the event is dispatched, still nothing: it was muted.
        for _ in 0..200 {
            if app.sql_count("SELECT count(*) AS n FROM events WHERE kind = 'apiKey.created' AND notified_at IS NOT NULL").await == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(app.sql_count("SELECT count(*) AS n FROM events WHERE kind = 'apiKey.created' AND notified_at IS NOT NULL").await, 1);
        let list = app.call("notifications.list", json!({}), Some(t)).await.expect("list");
        assert_eq!(list["items"], json!([]), "muted");
    }
}

db_test_with! {
    async fn caps_and_the_lag_item_bound_what_a_subscriber_holds(app) where |c| {
        c.max_subscriptions_per_connection = 2;
        c.subscription_buffer = 4;
        c.socket_send_buffer_bytes = Some(4096);
    } {
        let owner = app.signed_in("owner@example.com").await;
        let t = token(&owner);
        let org = create_org(app, t, "acme").await;
        let (mut tx, mut rx) = connect(app.addr, Some(t)).await;
        subscribe(&mut tx, &mut rx, json!({})).await;
        subscribe(&mut tx, &mut rx, json!({})).await;
        send(&mut tx, json!({"jsonrpc": "2.0", "id": 3, "method": "notifications.subscribe"})).await;
        let e = next(&mut rx, 10).await;
        assert_error(&e["error"], -32029, "TOO_MANY_SUBSCRIPTIONS");
        assert_eq!(e["error"]["data"]["limit"], 2);
        drop((tx, rx));

        // A subscriber that does not read: a tiny receive window, and many items.
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(2048).expect("buffer");
        let stream = socket.connect(app.addr).await.expect("connect");
        let (mut tx, mut rx) = crate::ws::connect_stream(stream, app.addr, Some(t)).await;
        let sub = subscribe(&mut tx, &mut rx, json!({})).await;
        make_keys(app, t, &org, 600).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        // Now read: some items, then the last one says it lagged, and nothing after it.
        let mut items = 0;
        loop {
            let mut data = Vec::new();
            tokio::time::timeout(Duration::from_secs(20), rx.receive_data(&mut data))
                .await
                .unwrap_or_else(|_| panic!("no lag item after {items} items"))
                .expect("received");
            let m: Value = serde_json::from_slice(&data).expect("JSON");
            assert_eq!(m["params"]["subscription"], sub.as_str());
            if let Some(e) = m["params"].get("error") {
                assert_error(e, -32050, "SUBSCRIPTION_LAGGED");
                break;
            }
            items += 1;
        }
        assert!(items < 600, "the server stopped queueing for a subscriber that did not read ({items} items)");
        send(&mut tx, json!({"jsonrpc": "2.0", "id": "h", "method": "health.check"})).await;
        loop {
            let m = next(&mut rx, 10).await;
            assert!(m.get("method").is_none(), "no item after the lag item: {m}");
            if m["id"] == "h" {
                break;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_ends_with_session_ended_when_its_session_ends() {
    let app = try_spawn(crate::helpers::Backend::Sqlite, |_| {}).await.expect("SQLite");
    let owner = app.signed_in("owner@example.com").await;
    let (mut tx, mut rx) = connect(app.addr, Some(token(&owner))).await;
    let sub = subscribe(&mut tx, &mut rx, json!({})).await;
    app.call("auth.logout", json!({}), Some(token(&owner))).await.expect("logged out");
    let last = next(&mut rx, 10).await;
    assert_eq!(last["params"]["subscription"], sub.as_str());
    assert_error(&last["params"]["error"], -32001, "SESSION_ENDED");
    app.stop().await;
}

/// Waits until `user` has `n` notifications listed; returns them (newest first).
async fn listed(app: &TestApp, user: &str, n: usize) -> Vec<Value> {
    for _ in 0..200 {
        let list = app.call("notifications.list", json!({}), Some(user)).await.expect("list");
        let items = list["items"].as_array().cloned().unwrap_or_default();
        if items.len() == n {
            return items;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{n} notifications never listed");
}

/// Old notifications are deleted by a server starting on the database, but
/// each user's newest stays: numbering goes on after it, and a subscriber
/// resuming from it misses nothing.
async fn retention_keeps_each_users_newest(backend: crate::helpers::Backend) {
    let Some(a) = try_spawn(backend, |_| {}).await else {
        eprintln!("TEST_DATABASE_URL not set: PostgreSQL run skipped");
        return;
    };
    let owner = a.signed_in("owner@example.com").await;
    let t = token(&owner);
    let org = create_org(&a, t, "acme").await;
    make_keys(&a, t, &org, 3).await;
    let items = listed(&a, t, 3).await;
    a.sql("UPDATE notifications SET created_at = '2020-01-01 00:00:00'").await;

    let shared = a.config.database_url();
    let b = try_spawn(backend, move |c| c.database_url = Some(shared)).await.expect("second server");
    let kept = listed(&a, t, 1).await;
    assert_eq!(kept[0]["id"], items[0]["id"], "the newest is kept");

    let (mut tx, mut rx) = connect(a.addr, Some(t)).await;
    subscribe(&mut tx, &mut rx, json!({"after": items[0]["id"]})).await;
    make_keys(&a, t, &org, 1).await;
    let next_item = next(&mut rx, 10).await;
    assert_eq!(next_item["params"]["result"]["data"]["name"], "k0");
    b.stop().await;
    a.stop().await;
}

mod retention_keeps_each_users_newest {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::retention_keeps_each_users_newest(crate::helpers::Backend::Sqlite).await;
    }

    crate::postgres_variant! {{
        super::retention_keeps_each_users_newest(crate::helpers::Backend::Postgres).await;
    }}
}

/// Two servers on one database dispatch at once, each numbering the same
/// user's notifications: every one arrives once, in order, numbered without
/// a gap (a number met twice is taken again by the later dispatcher).
async fn two_dispatchers_number_one_users_notifications_without_gap_or_duplicate(backend: crate::helpers::Backend) {
    let Some(a) = try_spawn(backend, |c| c.notification_poll_ms = 100).await else {
        eprintln!("TEST_DATABASE_URL not set: PostgreSQL run skipped");
        return;
    };
    let shared = a.config.database_url();
    let b = try_spawn(backend, move |c| {
        c.database_url = Some(shared);
        c.notification_poll_ms = 100;
    })
    .await
    .expect("second server");
    let owner = a.signed_in("owner@example.com").await;
    let t = token(&owner).to_owned();
    let org = create_org(&a, &t, "acme").await;
    let (mut tx, mut rx) = connect(b.addr, Some(&t)).await;
    subscribe(&mut tx, &mut rx, json!({})).await;
    let (on_a, on_b) = tokio::join!(make_keys(&a, &t, &org, 150), make_keys(&b, &t, &org, 150));
    let ((), ()) = (on_a, on_b);
    let mut seen = std::collections::HashSet::new();
    let mut last_id = String::new();
    for _ in 0..300 {
        let item = next(&mut rx, 20).await;
        let id = item["params"]["result"]["id"].as_str().expect("id").to_owned();
        assert!(seen.insert(id.clone()), "{id} came twice");
        last_id = id;
    }
    let numbers = a.sql_count("SELECT count(DISTINCT seq) AS n FROM notifications").await;
    assert_eq!(numbers, 300);
    assert_eq!(a.sql_count("SELECT max(seq) AS n FROM notifications").await, 300, "numbered 1..=300");
    // The last item streamed is the newest listed.
    let list = a.call("notifications.list", json!({"limit": 1}), Some(&t)).await.expect("list");
    assert_eq!(list["items"][0]["id"], last_id.as_str());
    b.stop().await;
    a.stop().await;
}

mod two_dispatchers {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::two_dispatchers_number_one_users_notifications_without_gap_or_duplicate(crate::helpers::Backend::Sqlite)
            .await;
    }

    crate::postgres_variant! {{
        super::two_dispatchers_number_one_users_notifications_without_gap_or_duplicate(crate::helpers::Backend::Postgres)
            .await;
    }}
}
