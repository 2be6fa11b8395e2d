//! API keys through the real server on both backends: format, scopes, the
//! creator's own permissions, revocation, rotation with a grace period,
//! expiry, per-key limits, usage, verification, and a bad checksum refused
//! without a database query.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_error, try_spawn};
use crate::orgs::{create_org, join, user};
use crate::{db_test, db_test_with, mail_test};

pub async fn make_key(app: &TestApp, token: &str, org: &str, scopes: &[&str], extra: Value) -> (String, Value) {
    let mut params = json!({"orgId": org, "name": "ci key", "scopes": scopes});
    if let (Some(p), Some(e)) = (params.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    let made = app.call("apiKeys.create", params, Some(token)).await.expect("key made");
    (made["key"].as_str().expect("key").to_owned(), made["apiKey"].clone())
}

fn looks_like_a_key(key: &str) -> bool {
    let Some(rest) = key.strip_prefix("trl_") else { return false };
    let Some((body, sum)) = rest.rsplit_once('_') else { return false };
    body.len() >= 32 && sum.len() == 6 && body.chars().chain(sum.chars()).all(|c| c.is_ascii_alphanumeric())
}

db_test! {
    /// A key acts for its org within its scopes; revoked, it is refused on
    /// the next call; it is shown once and listed without its secret.
    async fn keys_act_within_their_scopes_until_revoked(app) {
        let owner = user(app, "owner@a.example").await;
        let a = create_org(app, &owner, "org-a").await;
        let (reader, record) = make_key(app, &owner, &a, &["org:read", "trades:read"], json!({})).await;
        assert!(looks_like_a_key(&reader), "{reader}");
        assert!(reader.starts_with(record["prefix"].as_str().expect("prefix")));
        assert_eq!(record["scopes"], json!(["org:read", "trades:read"]));

        // Bearer and X-Api-Key both work.
        let org = app.call("orgs.get", json!({"orgId": a}), Some(&reader)).await.expect("bearer");
        assert_eq!(org["slug"], "org-a");
        app.call_with_key("orgs.get", json!({"orgId": a}), &reader).await.expect("x-api-key");

        let (trades_only, _) = make_key(app, &owner, &a, &["trades:read"], json!({})).await;
        let e = app.call_with_key("apiKeys.create", json!({"orgId": a, "name": "x", "scopes": ["org:read"]}), &trades_only).await.expect_err("scope");
        assert_error(&e, -32003, "MISSING_SCOPE");
        assert_eq!(e["data"]["required"], "apiKeys:manage");
        let e = app.call_with_key("auth.me", json!({}), &trades_only).await.expect_err("not a user");
        assert_error(&e, -32003, "MISSING_SCOPE");
        let e = app.call_with_key("admin.listUsers", json!({}), &trades_only).await.expect_err("not an admin");
        assert_error(&e, -32003, "ADMIN_REQUIRED");

        let listed = app.call("apiKeys.list", json!({"orgId": a}), Some(&owner)).await.expect("list");
        assert_eq!(listed["items"].as_array().map(Vec::len), Some(2));
        assert!(!listed.to_string().contains(&reader), "the secret is never shown again");

        let id = record["id"].clone();
        let revoked = app.call("apiKeys.revoke", json!({"id": id}), Some(&owner)).await.expect("revoked");
        assert!(revoked["revokedAt"].is_string());
        let e = app.call_with_key("orgs.get", json!({"orgId": a}), &reader).await.expect_err("revoked");
        assert_error(&e, -32001, "API_KEY_REVOKED");
        let listed = app.call("apiKeys.list", json!({"orgId": a}), Some(&owner)).await.expect("list");
        assert_eq!(listed["items"].as_array().map(Vec::len), Some(1));
        let all = app.call("apiKeys.list", json!({"orgId": a, "includeRevoked": true}), Some(&owner)).await.expect("list");
        assert_eq!(all["items"].as_array().map(Vec::len), Some(2));
        let e = app.call("apiKeys.update", json!({"id": id, "name": "again"}), Some(&owner)).await.expect_err("revoked");
        assert_error(&e, -32009, "INVALID_TRANSITION");

        // Another organization's key does not exist for this one.
        let other = user(app, "owner@b.example").await;
        let b = create_org(app, &other, "org-b").await;
        let (_, b_key) = make_key(app, &other, &b, &["org:read"], json!({})).await;
        let e = app.call("apiKeys.get", json!({"id": b_key["id"]}), Some(&owner)).await.expect_err("other org");
        assert_error(&e, -32004, "NOT_FOUND");
        let e = app.call("apiKeys.revoke", json!({"id": uuid::Uuid::now_v7()}), Some(&owner)).await.expect_err("none");
        assert_error(&e, -32004, "NOT_FOUND");
        let e = app.call_with_key("orgs.get", json!({"orgId": b}), &trades_only).await.expect_err("other org");
        assert_error(&e, -32004, "NOT_FOUND");
    }
}

mail_test! {
    /// Nobody gives a key more than they hold, and a key never does more
    /// than its maker may do now.
    async fn a_key_never_exceeds_its_maker(app, mail) where |c| { c.require_verified_email = Some(false); } {
        let owner = user(app, "owner@a.example").await;
        let a = create_org(app, &owner, "org-a").await;
        let admin = join(app, mail, &owner, &a, "admin@a.example", "admin").await;
        let e = app.call("apiKeys.create", json!({"orgId": a, "name": "x", "scopes": ["org:delete"]}), Some(&admin)).await.expect_err("above own");
        assert_error(&e, -32003, "MISSING_PERMISSION");
        assert_eq!(e["data"]["required"], "org:delete");
        let (key, _) = make_key(app, &admin, &a, &["org:manage", "org:read"], json!({})).await;
        app.call_with_key("orgs.update", json!({"orgId": a, "name": "By key"}), &key).await.expect("maker may");
        let admin_id = app.call("auth.me", json!({}), Some(&admin)).await.expect("me")["user"]["id"].clone();
        app.call("orgs.updateMemberRole", json!({"orgId": a, "userId": admin_id, "role": "viewer"}), Some(&owner)).await.expect("demoted");
        let e = app.call_with_key("orgs.update", json!({"orgId": a, "name": "Again"}), &key).await.expect_err("maker may not now");
        assert_error(&e, -32003, "MISSING_PERMISSION");
        app.call_with_key("orgs.get", json!({"orgId": a}), &key).await.expect("reads still allowed");
        app.call("orgs.removeMember", json!({"orgId": a, "userId": admin_id}), Some(&owner)).await.expect("removed");
        let e = app.call_with_key("orgs.get", json!({"orgId": a}), &key).await.expect_err("maker gone");
        assert_error(&e, -32003, "MISSING_PERMISSION");
        let audit = app.call("audit.list", json!({"orgId": a, "action": "orgs.update"}), Some(&owner)).await.expect("audit");
        assert_eq!(audit["items"][0]["actor"]["kind"], "apiKey");
    }
}

db_test! {
    /// The old secret of a rotated key works during the grace period and not
    /// after; without a grace period it stops at once. Expired keys are refused.
    async fn rotation_grace_and_expiry(app) {
        let owner = user(app, "owner@a.example").await;
        let a = create_org(app, &owner, "org-a").await;
        let (old, record) = make_key(app, &owner, &a, &["org:read"], json!({})).await;
        let rotated = app.call("apiKeys.rotate", json!({"id": record["id"], "gracePeriodSecs": 2}), Some(&owner)).await.expect("rotated");
        let new = rotated["key"].as_str().expect("key").to_owned();
        assert_ne!(new, old);
        assert_eq!(rotated["apiKey"]["id"], record["id"]);
        app.call_with_key("orgs.get", json!({"orgId": a}), &old).await.expect("old, in grace");
        app.call_with_key("orgs.get", json!({"orgId": a}), &new).await.expect("new");
        tokio::time::sleep(Duration::from_millis(3200)).await;
        let e = app.call_with_key("orgs.get", json!({"orgId": a}), &old).await.expect_err("grace over");
        assert_error(&e, -32001, "API_KEY_REVOKED");
        app.call_with_key("orgs.get", json!({"orgId": a}), &new).await.expect("new still");
        let again = app.call("apiKeys.rotate", json!({"id": record["id"]}), Some(&owner)).await.expect("rotated");
        let e = app.call_with_key("orgs.get", json!({"orgId": a}), &new).await.expect_err("no grace");
        assert_error(&e, -32001, "API_KEY_REVOKED");
        app.call_with_key("orgs.get", json!({"orgId": a}), again["key"].as_str().expect("key")).await.expect("newest");

        let soon = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
        let (brief, _) = make_key(app, &owner, &a, &["org:read"], json!({"expiresAt": soon})).await;
        app.call_with_key("orgs.get", json!({"orgId": a}), &brief).await.expect("before expiry");
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let e = app.call_with_key("orgs.get", json!({"orgId": a}), &brief).await.expect_err("expired");
        assert_error(&e, -32001, "API_KEY_EXPIRED");
        let past = (chrono::Utc::now() - chrono::Duration::seconds(5)).to_rfc3339();
        let e = app.call("apiKeys.create", json!({"orgId": a, "name": "x", "scopes": ["org:read"], "expiresAt": past}), Some(&owner)).await.expect_err("past");
        assert_error(&e, -32602, "VALIDATION");
        let actions = app.call("audit.list", json!({"orgId": a}), Some(&owner)).await.expect("audit");
        let actions: Vec<&str> = actions["items"].as_array().expect("items").iter().map(|e| e["action"].as_str().expect("a")).collect();
        assert!(actions.contains(&"apiKeys.rotate") && actions.contains(&"apiKeys.create"), "{actions:?}");
    }
}

async fn bad_checksum_is_refused_without_a_query(backend: Backend) {
    let Some(app) = try_spawn(backend, |c| {
        // No background work during the count.
        c.mail_poll_ms = 3_600_000;
        c.usage_flush_ms = 3_600_000;
        c.session_sync_ms = 3_600_000;
    })
    .await
    else {
        return;
    };
    let owner = user(&app, "owner@a.example").await;
    let a = create_org(&app, &owner, "org-a").await;
    let (key, _) = make_key(&app, &owner, &a, &["org:read"], json!({})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut bad = key.clone().into_bytes();
    let i = bad.len() - 1;
    bad[i] = if bad[i] == b'A' { b'B' } else { b'A' };
    let bad = String::from_utf8(bad).expect("ascii");
    let before = app.queries.get();
    for _ in 0..50 {
        let e = app.call_with_key("health.check", json!({}), &bad).await;
        assert!(e.is_ok(), "a public call ignores a bad key");
        let e = app.call_with_key("orgs.get", json!({"orgId": a}), &bad).await.expect_err("bad checksum");
        assert_error(&e, -32001, "API_KEY_INVALID");
    }
    assert_eq!(app.queries.get(), before, "a key with a bad checksum reached the database");
    // A well-formed key does reach it (once, then it is cached).
    app.call_with_key("orgs.get", json!({"orgId": a}), &key).await.expect("good key");
    assert!(app.queries.get() > before);
    let cached = app.queries.get();
    app.call_with_key("health.check", json!({}), &key).await.expect("cached");
    assert_eq!(app.queries.get(), cached, "a key seen in the last second costs no query");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_checksum_is_refused_without_a_query_sqlite() {
    bad_checksum_is_refused_without_a_query(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_checksum_is_refused_without_a_query_postgres() {
    bad_checksum_is_refused_without_a_query(Backend::Postgres).await;
}

fn batch(method: &str, params: &Value, n: usize) -> String {
    let calls: Vec<Value> =
        (0..n).map(|i| json!({"jsonrpc": "2.0", "id": i, "method": method, "params": params})).collect();
    Value::Array(calls).to_string()
}

async fn post_batch(app: &TestApp, key: &str, body: String) -> Vec<Value> {
    let resp = app
        .http
        .post(&app.url)
        .header("x-api-key", key)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("sent");
    let v: Value = resp.json().await.expect("json");
    v.as_array().expect("batch answer").clone()
}

db_test_with! {
    /// 60 a minute: the 61st call is refused with retryAfterMs, each call of
    /// a batch counts, and another key of the org is unaffected. Usage then
    /// shows the known sequence of calls.
    async fn per_key_limits_and_usage(app) where |c| { c.usage_flush_ms = 100; } {
        let owner = user(app, "owner@a.example").await;
        let a = create_org(app, &owner, "org-a").await;
        let (limited, record) = make_key(app, &owner, &a, &["org:read"], json!({"rateLimitPerMinute": 60})).await;
        let (other, _) = make_key(app, &owner, &a, &["org:read"], json!({"rateLimitPerMinute": 60})).await;
        let get = json!({"orgId": a});
        let answers = post_batch(app, &limited, batch("orgs.get", &get, 50)).await;
        assert!(answers.iter().all(|r| r.get("result").is_some()), "50 in a batch pass");
        for _ in 0..8 {
            app.call_with_key("orgs.get", get.clone(), &limited).await.expect("within the limit");
        }
        // Two failures that count as calls too: a missing scope.
        for _ in 0..2 {
            app.call_with_key("apiKeys.list", json!({"orgId": a}), &limited).await.expect_err("scope");
        }
        let e = app.call_with_key("orgs.get", get.clone(), &limited).await.expect_err("61st");
        assert_error(&e, -32029, "RATE_LIMITED");
        let retry = e["data"]["retryAfterMs"].as_u64().expect("retryAfterMs");
        assert!(retry > 0 && retry <= 1000, "{retry}");
        assert_eq!(e["data"]["limit"], 60);
        app.call_with_key("orgs.get", get.clone(), &other).await.expect("another key is unaffected");
        let answers = post_batch(app, &other, batch("orgs.get", &get, 61)).await;
        let refused = answers.iter().filter(|r| r["error"]["data"]["reason"] == "RATE_LIMITED").count();
        assert_eq!(refused, 2, "a batch counts each call (1 + 61 = 62 calls, 60 allowed)");

        let verify = app.call("apiKeys.verify", json!({"orgId": a, "key": limited}), Some(&owner)).await.expect("verify");
        assert_eq!(verify["valid"], true);
        assert_eq!(verify["remainingThisMinute"], 0);
        assert_eq!(verify["apiKey"]["id"], record["id"]);

        // Usage: 58 orgs.get, 2 apiKeys.list errors, 1 rate-limited orgs.get.
        let mut usage = Value::Null;
        for _ in 0..100 {
            usage = app.call("apiKeys.usage", json!({"id": record["id"], "bucket": "minute"}), Some(&owner)).await.expect("usage");
            let calls: u64 = usage["series"].as_array().expect("series").iter().map(|p| p["calls"].as_u64().unwrap_or(0)).sum();
            if calls >= 61 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let total = |f: &str| usage["series"].as_array().expect("series").iter().map(|p| p[f].as_u64().unwrap_or(0)).sum::<u64>();
        assert_eq!((total("calls"), total("errors"), total("rateLimited")), (61, 3, 1), "{usage}");
        let by: Vec<(String, u64, u64)> = usage["byMethod"].as_array().expect("byMethod").iter()
            .map(|m| (m["method"].as_str().expect("m").to_owned(), m["calls"].as_u64().expect("c"), m["errors"].as_u64().expect("e")))
            .collect();
        assert_eq!(by, [("orgs.get".to_owned(), 59, 1), ("apiKeys.list".to_owned(), 2, 2)]);
        let day = app.call("apiKeys.usage", json!({"id": record["id"], "bucket": "day"}), Some(&owner)).await.expect("usage");
        assert_eq!(day["series"].as_array().map(Vec::len), Some(1));
        let got = app.call("apiKeys.get", json!({"id": record["id"]}), Some(&owner)).await.expect("get");
        assert!(got["lastUsedAt"].is_string(), "{got}");
    }
}

db_test! {
    /// apiKeys.verify answers for keys of the organization only.
    async fn verify_answers_for_the_organizations_own_keys(app) {
        let owner = user(app, "owner@a.example").await;
        let a = create_org(app, &owner, "org-a").await;
        let (gateway, _) = make_key(app, &owner, &a, &["apiKeys:read"], json!({})).await;
        let (key, record) = make_key(app, &owner, &a, &["org:read"], json!({})).await;
        let ok = app.call_with_key("apiKeys.verify", json!({"key": key}), &gateway).await.expect("by the gateway's key");
        assert_eq!(ok["valid"], true);
        assert!(ok.get("remainingThisMinute").is_none());
        let e = app.call("apiKeys.verify", json!({"key": key}), Some(&owner)).await.expect_err("a user names the org");
        assert_error(&e, -32602, "VALIDATION");
        for (k, reason) in [("trl_nonsense", "API_KEY_INVALID"), ("not even close", "API_KEY_INVALID")] {
            let r = app.call_with_key("apiKeys.verify", json!({"key": k}), &gateway).await.expect("answered");
            assert_eq!((r["valid"].clone(), r["reason"].clone()), (json!(false), json!(reason)));
        }
        app.call("apiKeys.revoke", json!({"id": record["id"]}), Some(&owner)).await.expect("revoked");
        let r = app.call_with_key("apiKeys.verify", json!({"key": key}), &gateway).await.expect("answered");
        assert_eq!(r["reason"], "API_KEY_REVOKED");
        let other = user(app, "owner@b.example").await;
        let b = create_org(app, &other, "org-b").await;
        let (b_key, _) = make_key(app, &other, &b, &["org:read"], json!({})).await;
        let r = app.call_with_key("apiKeys.verify", json!({"key": b_key}), &gateway).await.expect("answered");
        assert_eq!((r["valid"].clone(), r["reason"].clone()), (json!(false), json!("API_KEY_INVALID")));
    }
}
