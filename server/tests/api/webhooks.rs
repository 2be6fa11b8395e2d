//! Webhooks through the real server on both backends: deliveries received
//! by an endpoint in the test and checked with a Standard Webhooks verifier
//! written here (not the server's), retries until a 2xx, rotation with two
//! signatures, redirects refused, private addresses refused at create and at
//! connect, auto-disable with the admins told, and who may do what.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::helpers::{Backend, TestApp, assert_error, try_spawn};
use crate::orgs::{create_org, join, user};
use crate::{db_test, db_test_with, mail_test};

/// A request the endpoint received.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    path: String,
    id: String,
    timestamp: String,
    signature: String,
    pub(crate) body: String,
    /// The status it was answered with.
    answered: u16,
}

/// A tiny HTTP/1.1 endpoint on 127.0.0.1 that answers the scripted statuses
/// in order (then `then`), one request per connection.
pub(crate) struct Endpoint {
    port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Endpoint {
    pub(crate) async fn start(script: &[u16], then: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script.iter().copied().collect::<VecDeque<u16>>()));
        let task = tokio::spawn({
            let received = received.clone();
            async move {
                loop {
                    let Ok((mut sock, _)) = listener.accept().await else { return };
                    let received = received.clone();
                    let script = script.clone();
                    tokio::spawn(async move {
                        let Some((path, headers, body)) = read_request(&mut sock).await else { return };
                        let status = script.lock().expect("lock").pop_front().unwrap_or(then);
                        let header = |name: &str| {
                            headers
                                .iter()
                                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                                .map(|(_, v)| v.clone())
                                .unwrap_or_default()
                        };
                        received.lock().expect("lock").push(Received {
                            path,
                            id: header("webhook-id"),
                            timestamp: header("webhook-timestamp"),
                            signature: header("webhook-signature"),
                            body,
                            answered: status,
                        });
                        let location = if status / 100 == 3 { "Location: /elsewhere\r\n" } else { "" };
                        let answer = format!(
                            "HTTP/1.1 {status} X\r\n{location}Content-Length: 2\r\nConnection: close\r\n\r\nok"
                        );
                        let _ = sock.write_all(answer.as_bytes()).await;
                        let _ = sock.shutdown().await;
                    });
                }
            }
        });
        Self { port, received, task }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    /// Waits until `n` requests came (at most 20 s).
    pub(crate) async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..400 {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the endpoint got {} requests, not {n}: {:?}", self.received().len(), self.received());
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<(String, Vec<(String, String)>, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let path = lines.next()?.split(' ').nth(1)?.to_owned();
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())).collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((path, headers, String::from_utf8_lossy(&body).into_owned()))
}

/// The Standard Webhooks check, written from the specification: the
/// timestamp within 5 minutes of now, and one of the `v1,` signatures equal
/// (in constant time) to the HMAC-SHA256 of `{id}.{timestamp}.{body}` keyed
/// by the secret's base64-decoded bytes. Answers which signatures (by
/// position in the header) are valid for `secret`.
fn valid_signatures(secret: &str, r: &Received) -> Vec<usize> {
    let ts: i64 = r.timestamp.parse().expect("a numeric timestamp");
    let now = chrono::Utc::now().timestamp();
    assert!((now - ts).abs() <= 300, "timestamp {ts} is not within 5 minutes of {now}");
    let key = STANDARD.decode(secret.strip_prefix("whsec_").expect("whsec_ prefix")).expect("base64 secret");
    let signed = format!("{}.{}.{}", r.id, r.timestamp, r.body);
    r.signature
        .split(' ')
        .enumerate()
        .filter(|(_, sig)| {
            let Some(b64) = sig.strip_prefix("v1,") else { return false };
            let Ok(given) = STANDARD.decode(b64) else { return false };
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("any key");
            mac.update(signed.as_bytes());
            mac.verify_slice(&given).is_ok()
        })
        .map(|(i, _)| i)
        .collect()
}

async fn make_webhook(app: &TestApp, token: &str, org: &str, url: &str) -> (String, String) {
    let made = app
        .call("webhooks.create", json!({"orgId": org, "url": url, "events": ["apiKey.created"]}), Some(token))
        .await
        .expect("webhook made");
    let secret = made["secret"].as_str().expect("secret").to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(STANDARD.decode(&secret[6..]).expect("base64").len(), 32);
    (made["webhook"]["id"].as_str().expect("id").to_owned(), secret)
}

/// An event for the org's webhooks: an API key made.
async fn key_made(app: &TestApp, token: &str, org: &str) {
    app.call("apiKeys.create", json!({"orgId": org, "name": "hook", "scopes": ["org:read"]}), Some(token))
        .await
        .expect("key made");
}

/// Polls `webhooks.deliveries` until `done` holds of its items (at most 20 s).
async fn deliveries_until(
    app: &TestApp,
    token: &str,
    org: &str,
    hook: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let mut last = Vec::new();
    for _ in 0..400 {
        let page = app
            .call("webhooks.deliveries", json!({"orgId": org, "webhookId": hook}), Some(token))
            .await
            .expect("deliveries");
        last = page["items"].as_array().cloned().unwrap_or_default();
        if done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("deliveries never reached the state expected: {last:?}");
}

pub(crate) fn fast(c: &mut trellis_server::Config) {
    c.webhooks_allow_private = true;
    c.webhook_retry_base_ms = 100;
    c.webhook_poll_ms = 50;
}

db_test_with! {
    /// 500, 500, then 200: three attempts of one message (one webhook-id,
    /// each validly signed), one accepted, recorded as delivered on attempt 3.
    async fn a_delivery_is_signed_and_retried_until_accepted(app) where |c| { fast(c); } {
        let endpoint = Endpoint::start(&[500, 500], 200).await;
        let owner = user(app, "owner@a.example").await;
        let org = create_org(app, &owner, "org-a").await;
        let (hook, secret) = make_webhook(app, &owner, &org, &endpoint.url()).await;

        let listed = app.call("webhooks.list", json!({"orgId": org}), Some(&owner)).await.expect("list");
        assert_eq!(listed["items"][0]["id"], hook.as_str());
        assert_eq!(listed["items"][0]["events"], json!(["apiKey.created"]));
        assert_eq!(listed["items"][0]["enabled"], true);
        assert!(!listed.to_string().contains(&secret[6..]), "the secret is never shown again");

        key_made(app, &owner, &org).await;
        let got = endpoint.wait_for(3).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let got_after = endpoint.received();
        assert_eq!(got_after.len(), 3, "no attempt after the accepted one: {got_after:?}");
        assert_eq!(got.iter().map(|r| r.answered).collect::<Vec<_>>(), [500, 500, 200]);
        assert!(got.iter().all(|r| r.id == got[0].id && !r.id.is_empty()), "one webhook-id on every attempt");
        for r in &got {
            assert_eq!(valid_signatures(&secret, r), [0], "{r:?}");
            assert_eq!(r.path, "/hook");
        }
        let body: Value = serde_json::from_str(&got[2].body).expect("JSON body");
        assert_eq!(body["type"], "apiKey.created");
        assert_eq!(body["data"]["orgId"], org.as_str());
        assert!(chrono::DateTime::parse_from_rfc3339(body["timestamp"].as_str().expect("timestamp")).is_ok());

        let items = deliveries_until(app, &owner, &org, &hook, |items| items.first().is_some_and(|d| d["status"] == "delivered")).await;
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["attempt"], 3);
        assert_eq!(items[0]["responseCode"], 200);
        assert_eq!(items[0]["event"], "apiKey.created");
        assert!(items[0].get("error").is_none_or(Value::is_null), "{items:?}");

        // A redelivery sends the same message again (same webhook-id). Asked
        // 40 times in one batch, it is queued while none is pending: the
        // others are refused, and each one queued is sent once.
        let delivery = items[0]["id"].clone();
        let batch: Vec<Value> = (0..40)
            .map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "webhooks.redeliver", "params": {"orgId": org, "deliveryId": delivery}}))
            .collect();
        let answers: Vec<Value> = app.http.post(format!("http://{}/rpc", app.addr)).bearer_auth(&owner).json(&batch).send().await.expect("sent").json().await.expect("answers");
        let queued = answers.iter().filter(|a| a.get("result").is_some()).count();
        for refused in answers.iter().filter(|a| a.get("error").is_some()) {
            assert_error(&refused["error"], -32009, "INVALID_TRANSITION");
        }
        assert!((1..40).contains(&queued), "{queued} of 40 queued");
        let again = endpoint.wait_for(3 + queued).await;
        assert_eq!(again[3].id, got[0].id);
        assert_eq!(again[3].body, got[0].body);
        deliveries_until(app, &owner, &org, &hook, |items| items.len() == 1 + queued && items.iter().all(|d| d["status"] == "delivered")).await;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert_eq!(endpoint.received().len(), 3 + queued, "each redelivery queued is sent once");
        let audit = app.call("audit.list", json!({"orgId": org, "action": "webhooks.redeliver"}), Some(&owner)).await.expect("audit");
        assert_eq!(audit["items"].as_array().map(Vec::len), Some(queued));
    }
}

db_test_with! {
    /// During a rotation's grace period each delivery carries two
    /// signatures, one by each secret; after it, only the new one signs.
    async fn a_rotated_secret_signs_beside_the_old_one_during_the_grace_period(app) where |c| { fast(c); } {
        let endpoint = Endpoint::start(&[], 200).await;
        let owner = user(app, "owner@a.example").await;
        let org = create_org(app, &owner, "org-a").await;
        let (hook, old) = make_webhook(app, &owner, &org, &endpoint.url()).await;
        let rotated = app
            .call("webhooks.rotateSecret", json!({"orgId": org, "webhookId": hook, "gracePeriodSecs": 2}), Some(&owner))
            .await
            .expect("rotated");
        let new = rotated["secret"].as_str().expect("secret").to_owned();
        assert_ne!(new, old);

        key_made(app, &owner, &org).await;
        let got = endpoint.wait_for(1).await;
        assert_eq!(got[0].signature.split(' ').count(), 2, "{:?}", got[0].signature);
        let mut by_new = valid_signatures(&new, &got[0]);
        let by_old = valid_signatures(&old, &got[0]);
        assert_eq!(by_new.len(), 1, "{got:?}");
        assert_eq!(by_old.len(), 1, "{got:?}");
        by_new.extend(by_old);
        by_new.sort_unstable();
        assert_eq!(by_new, [0, 1], "each secret signs one of the two");

        tokio::time::sleep(Duration::from_millis(2500)).await;
        key_made(app, &owner, &org).await;
        let got = endpoint.wait_for(2).await;
        assert_eq!(got[1].signature.split(' ').count(), 1, "{:?}", got[1].signature);
        assert_eq!(valid_signatures(&new, &got[1]), [0]);
        assert!(valid_signatures(&old, &got[1]).is_empty());

        let audit = app.call("audit.list", json!({"orgId": org, "action": "webhooks.rotateSecret"}), Some(&owner)).await.expect("audit");
        assert_eq!(audit["items"].as_array().map(Vec::len), Some(1));
        assert!(!audit.to_string().contains(&new[6..]), "no secret in the audit trail");
        let e = app
            .call("webhooks.rotateSecret", json!({"orgId": org, "webhookId": uuid::Uuid::now_v7()}), Some(&owner))
            .await
            .expect_err("no such webhook");
        assert_error(&e, -32004, "NOT_FOUND");
    }
}

db_test_with! {
    /// Redirects are not followed (a 302 is a failure), and after the run
    /// of given-up deliveries the webhook is disabled, its owners and admins
    /// get a `webhook.disabled` event, and it can be enabled again.
    async fn redirects_fail_and_a_run_of_failures_disables_the_webhook(app) where |c| {
        fast(c);
        c.webhook_retry_base_ms = 20;
        c.webhook_max_attempts = 2;
        c.webhook_disable_after = 2;
    } {
        let endpoint = Endpoint::start(&[], 302).await;
        let owner = user(app, "owner@a.example").await;
        let owner_id = app.call("auth.me", json!({}), Some(&owner)).await.expect("me")["user"]["id"].as_str().expect("id").to_owned();
        let org = create_org(app, &owner, "org-a").await;
        let (hook, _) = make_webhook(app, &owner, &org, &endpoint.url()).await;
        key_made(app, &owner, &org).await;
        key_made(app, &owner, &org).await;

        let items = deliveries_until(app, &owner, &org, &hook, |items| {
            items.len() == 2 && items.iter().all(|d| d["status"] == "failed")
        })
        .await;
        for d in &items {
            assert_eq!(d["attempt"], 2);
            assert_eq!(d["responseCode"], 302);
            assert!(d["error"].as_str().is_some_and(|e| e.contains("redirect")), "{d}");
        }
        let got = endpoint.received();
        assert_eq!(got.len(), 4, "{got:?}");
        assert!(got.iter().all(|r| r.path == "/hook"), "the redirect was not followed: {got:?}");

        let mut listed = Value::Null;
        for _ in 0..100 {
            listed = app.call("webhooks.list", json!({"orgId": org}), Some(&owner)).await.expect("list");
            if listed["items"][0]["enabled"] == false {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(listed["items"][0]["enabled"], false, "{listed}");
        assert!(listed["items"][0]["disabledReason"].as_str().is_some_and(|r| r.contains("2 deliveries")), "{listed}");
        let events = app
            .sql_count(&format!(
                "SELECT COUNT(*) AS n FROM events WHERE kind = 'webhook.disabled' AND org_id = '{org}' \
                 AND recipients LIKE '%{owner_id}%' AND data LIKE '%{hook}%' AND hooked_at IS NOT NULL"
            ))
            .await;
        assert_eq!(events, 1);
        // The owner is told.
        let mut told = false;
        for _ in 0..100 {
            let list = app.call("notifications.list", json!({}), Some(&owner)).await.expect("notifications");
            if list["items"].as_array().is_some_and(|items| items.iter().any(|n| n["type"] == "webhook.disabled")) {
                told = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(told, "the owner got a webhook.disabled notification");

        // Disabled, it gets nothing; enabled again, it starts afresh.
        key_made(app, &owner, &org).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(endpoint.received().len(), 4);
        let on = app.call("webhooks.update", json!({"orgId": org, "webhookId": hook, "enabled": true}), Some(&owner)).await.expect("enabled");
        assert_eq!(on["enabled"], true);
        assert!(on.get("disabledReason").is_none_or(Value::is_null), "{on}");
        key_made(app, &owner, &org).await;
        endpoint.wait_for(5).await;
    }
}

db_test! {
    /// Without the setting, URLs on this machine, private networks or the
    /// metadata service, and plain http, are refused when made or changed.
    async fn private_addresses_and_plain_http_are_refused(app) {
        let owner = user(app, "owner@a.example").await;
        let org = create_org(app, &owner, "org-a").await;
        for (url, words) in [
            ("https://localhost:9/hook", "private"),
            ("https://127.0.0.1/hook", "private"),
            ("https://[::1]/hook", "private"),
            ("https://[::ffff:127.0.0.1]/hook", "private"),
            ("https://10.1.2.3/hook", "private"),
            ("https://169.254.169.254/latest/meta-data", "private"),
            ("https://100.64.0.1/", "private"),
            ("http://203.0.113.10/hook", "https"),
            ("ftp://example.com/", "http"),
        ] {
            let e = app
                .call("webhooks.create", json!({"orgId": org, "url": url, "events": ["apiKey.created"]}), Some(&owner))
                .await
                .expect_err(url);
            assert_error(&e, -32602, "VALIDATION");
            assert_eq!(e["data"]["fields"][0]["path"], "url", "{url}: {e}");
            assert!(e["data"]["fields"][0]["message"].as_str().is_some_and(|m| m.contains(words)), "{url}: {e}");
        }
        let long = format!("https://example.com/{}", "a".repeat(2050));
        let e = app.call("webhooks.create", json!({"orgId": org, "url": long, "events": ["apiKey.created"]}), Some(&owner)).await.expect_err("long");
        assert_error(&e, -32602, "VALIDATION");
        let e = app.call("webhooks.create", json!({"orgId": org, "url": "https://203.0.113.10/", "events": []}), Some(&owner)).await.expect_err("no events");
        assert_error(&e, -32602, "VALIDATION");
        let e = app.call("webhooks.create", json!({"orgId": org, "url": "https://203.0.113.10/", "events": ["no.such"]}), Some(&owner)).await.expect_err("unknown event");
        assert_error(&e, -32602, "VALIDATION");

        let (hook, _) = make_webhook(app, &owner, &org, "https://203.0.113.10/hook").await;
        let e = app.call("webhooks.update", json!({"orgId": org, "webhookId": hook, "url": "https://localhost/"}), Some(&owner)).await.expect_err("private");
        assert_error(&e, -32602, "VALIDATION");
        for _ in 1..20 {
            make_webhook(app, &owner, &org, "https://203.0.113.10/hook").await;
        }
        let e = app.call("webhooks.create", json!({"orgId": org, "url": "https://203.0.113.10/", "events": ["apiKey.created"]}), Some(&owner)).await.expect_err("21st");
        assert_error(&e, -32009, "LIMIT_REACHED");
        assert_eq!(e["data"]["limit"], 20);
        app.call("webhooks.delete", json!({"orgId": org, "webhookId": hook}), Some(&owner)).await.expect("deleted");
        let e = app.call("webhooks.delete", json!({"orgId": org, "webhookId": hook}), Some(&owner)).await.expect_err("gone");
        assert_error(&e, -32004, "NOT_FOUND");
        let audit = app.call("audit.list", json!({"orgId": org, "action": "webhooks.delete"}), Some(&owner)).await.expect("audit");
        assert_eq!(audit["items"].as_array().map(Vec::len), Some(1));
    }
}

mail_test! {
    /// Viewers read deliveries but manage nothing; other organizations see
    /// nothing; secrets are never listed.
    async fn webhooks_are_managed_by_the_org_and_seen_by_no_other(app, mail) where |c| {
        c.require_verified_email = Some(false);
        c.webhooks_allow_private = true;
    } {
        let owner = user(app, "owner@a.example").await;
        let org = create_org(app, &owner, "org-a").await;
        let viewer = join(app, mail, &owner, &org, "viewer@a.example", "viewer").await;
        let outsider = user(app, "owner@b.example").await;
        let other = create_org(app, &outsider, "org-b").await;
        let (hook, secret) = make_webhook(app, &owner, &org, "http://127.0.0.1:9/hook").await;

        let params = json!({"orgId": org, "url": "http://127.0.0.1:9/x", "events": ["apiKey.created"]});
        let e = app.call("webhooks.create", params, Some(&viewer)).await.expect_err("viewer");
        assert_error(&e, -32003, "MISSING_PERMISSION");
        assert_eq!(e["data"]["required"], "notifications:manage");
        let e = app.call("webhooks.list", json!({"orgId": org}), Some(&viewer)).await.expect_err("viewer");
        assert_error(&e, -32003, "MISSING_PERMISSION");
        app.call("webhooks.deliveries", json!({"orgId": org, "webhookId": hook}), Some(&viewer)).await.expect("a viewer reads deliveries");

        let e = app.call("webhooks.list", json!({"orgId": org}), Some(&outsider)).await.expect_err("outsider");
        assert_error(&e, -32004, "NOT_FOUND");
        // Named through the outsider's own organization, the webhook is not there.
        let e = app.call("webhooks.update", json!({"orgId": other, "webhookId": hook, "enabled": false}), Some(&outsider)).await.expect_err("not theirs");
        assert_error(&e, -32004, "NOT_FOUND");
        let e = app.call("webhooks.delete", json!({"orgId": other, "webhookId": hook}), Some(&outsider)).await.expect_err("not theirs");
        assert_error(&e, -32004, "NOT_FOUND");
        let none = app.call("webhooks.deliveries", json!({"orgId": other, "webhookId": hook}), Some(&outsider)).await.expect("empty");
        assert_eq!(none["items"], json!([]));

        let listed = app.call("webhooks.list", json!({"orgId": org}), Some(&owner)).await.expect("list");
        let updated = app.call("webhooks.update", json!({"orgId": org, "webhookId": hook, "events": ["apiKey.revoked", "apiKey.created"]}), Some(&owner)).await.expect("updated");
        assert_eq!(updated["events"], json!(["apiKey.created", "apiKey.revoked"]));
        for answer in [&listed, &updated] {
            assert!(!answer.to_string().contains(&secret[6..]), "{answer}");
            assert!(!answer.to_string().contains("enc:"), "{answer}");
        }
        let stored = app.sql_count(&format!("SELECT COUNT(*) AS n FROM webhooks WHERE secret LIKE 'enc:%' AND secret NOT LIKE '%{}%'", &secret[6..])).await;
        assert_eq!(stored, 1, "the secret is stored sealed");
    }
}

/// A database both servers of [`a_delivery_is_checked_again_when_it_connects`] use.
async fn shared_database(backend: Backend, dir: &std::path::Path) -> Option<(String, Option<(String, String)>)> {
    match backend {
        Backend::Sqlite => Some((dir.join("shared.db").to_string_lossy().into_owned(), None)),
        Backend::Postgres => {
            let admin = crate::helpers::postgres_admin_url()?;
            let (name, url) = crate::helpers::create_pg_database(&admin).await;
            Some((url, Some((admin, name))))
        }
    }
}

/// A webhook made where private addresses were allowed, delivered by a
/// server where they are not: the name resolves to 127.0.0.1, which the
/// resolver refuses at connect time, and the failure is recorded.
async fn connect_time_check(backend: Backend) {
    let dir = tempfile::tempdir().expect("dir");
    let (url, pg) = shared_database(backend, dir.path()).await.expect(crate::helpers::POSTGRES_NOT_BUILT);
    let endpoint = Endpoint::start(&[], 200).await;
    let a = try_spawn(Backend::Sqlite, |c| {
        c.database_url = Some(url.clone());
        c.webhooks_allow_private = true;
    })
    .await
    .expect("server A");
    let owner = user(&a, "owner@a.example").await;
    let org = create_org(&a, &owner, "org-a").await;
    let (hook, _) = make_webhook(&a, &owner, &org, &format!("https://localhost:{}/hook", endpoint.port)).await;
    a.stop().await;

    let b = try_spawn(Backend::Sqlite, |c| {
        c.database_url = Some(url.clone());
        c.webhook_poll_ms = 50;
        c.webhook_retry_base_ms = 60_000;
    })
    .await
    .expect("server B");
    key_made(&b, &owner, &org).await;
    let items =
        deliveries_until(&b, &owner, &org, &hook, |items| items.first().is_some_and(|d| d["attempt"] == 1)).await;
    assert_eq!(items[0]["status"], "pending", "retried later");
    assert!(items[0].get("responseCode").is_none_or(Value::is_null));
    let error = items[0]["error"].as_str().expect("an error");
    assert!(error.contains("private or reserved"), "{error}");
    assert!(endpoint.received().is_empty());
    b.stop().await;
    if let Some((admin, name)) = pg {
        crate::helpers::pg_admin(&admin, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
    }
}

mod a_delivery_is_checked_again_when_it_connects {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        connect_time_check(Backend::Sqlite).await;
    }

    crate::postgres_variant! {{
        connect_time_check(Backend::Postgres).await;
    }}
}
