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
#[cfg_attr(not(postgres_tests), ignore = "PostgreSQL: TEST_DATABASE_URL not set when the tests were built")]
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

async fn me(app: &TestApp, token: &str) -> Value {
    app.call("auth.me", json!({}), Some(token)).await.expect("me")["user"]["id"].clone()
}

mail_test! {
    /// The escalation of an admin through the owner's key: widening it is
    /// allowed (both hold the scopes), but rotating it makes the admin its
    /// holder, so the key acts with the admin's rank and cannot make them
    /// owner; the audit trail names the admin, and the owner's secret stops.
    async fn an_admin_cannot_climb_through_the_owners_key(app, mail) where |c| { c.require_verified_email = Some(false); } {
        let owner = user(app, "owner@a.example").await;
        let a = create_org(app, &owner, "org-a").await;
        let admin = join(app, mail, &owner, &a, "admin@a.example", "admin").await;
        let (owner_id, admin_id) = (me(app, &owner).await, me(app, &admin).await);
        let (owners_secret, k) = make_key(app, &owner, &a, &["org:read"], json!({})).await;

        app.call("apiKeys.update", json!({"id": k["id"], "scopes": ["org:read", "org:manage"]}), Some(&admin)).await.expect("both hold them");
        let e = app.call("apiKeys.rotate", json!({"id": k["id"], "gracePeriodSecs": 60}), Some(&admin)).await.expect_err("grace for another's key");
        assert_error(&e, -32602, "VALIDATION");
        app.call_with_key("orgs.get", json!({"orgId": a}), &owners_secret).await.expect("nothing changed");
        let rotated = app.call("apiKeys.rotate", json!({"id": k["id"]}), Some(&admin)).await.expect("rotated");
        let secret = rotated["key"].as_str().expect("key").to_owned();
        assert_eq!(rotated["apiKey"]["createdBy"], admin_id, "the admin holds the key now");
        let e = app.call_with_key("orgs.get", json!({"orgId": a}), &owners_secret).await.expect_err("old holder's secret");
        assert_error(&e, -32001, "API_KEY_REVOKED");

        let e = app.call_with_key("orgs.updateMemberRole", json!({"orgId": a, "userId": admin_id, "role": "owner"}), &secret).await.expect_err("no climb");
        assert_error(&e, -32003, "MISSING_PERMISSION");
        let e = app.call_with_key("orgs.updateMemberRole", json!({"orgId": a, "userId": owner_id, "role": "viewer"}), &secret).await.expect_err("not above them");
        assert_error(&e, -32003, "MISSING_PERMISSION");
        let e = app.call_with_key("orgs.invite", json!({"orgId": a, "email": "friend@a.example", "role": "owner"}), &secret).await.expect_err("no owner invitations");
        assert_error(&e, -32003, "MISSING_PERMISSION");
        let members = app.call("orgs.listMembers", json!({"orgId": a}), Some(&owner)).await.expect("members");
        let admin_row = members["items"].as_array().expect("items").iter().find(|m| m["user"]["id"] == admin_id).expect("admin").clone();
        assert_eq!(admin_row["role"], "admin");

        let got = app.call("apiKeys.get", json!({"id": k["id"]}), Some(&owner)).await.expect("get");
        assert_eq!(got["createdBy"], admin_id);
        let rotations = app.call("audit.list", json!({"orgId": a, "action": "apiKeys.rotate"}), Some(&owner)).await.expect("audit");
        let event = &rotations["items"][0];
        assert_eq!((event["actor"]["kind"].clone(), event["actor"]["id"].clone()), (json!("user"), admin_id.clone()), "{event}");
        let detail = event["detail"].as_str().expect("detail");
        assert!(detail.contains(&format!("user:{}", owner_id.as_str().expect("id"))) && detail.contains(&format!("user:{}", admin_id.as_str().expect("id"))), "{detail}");
        let climbs = app.call("audit.list", json!({"orgId": a, "action": "orgs.updateMemberRole"}), Some(&owner)).await.expect("audit");
        assert_eq!(climbs["items"].as_array().map(Vec::len), Some(0), "{climbs}");

        // A key with a scope the admin lacks cannot be taken over, and the
        // owner cannot give the admin's key a scope the admin lacks.
        let (deleter, d) = make_key(app, &owner, &a, &["org:read", "org:delete"], json!({})).await;
        let e = app.call("apiKeys.rotate", json!({"id": d["id"]}), Some(&admin)).await.expect_err("scope not held");
        assert_error(&e, -32003, "MISSING_PERMISSION");
        assert_eq!(e["data"]["required"], "org:delete");
        app.call_with_key("orgs.get", json!({"orgId": a}), &deleter).await.expect("still the owner's");
        let e = app.call("apiKeys.update", json!({"id": d["id"], "scopes": ["org:delete"]}), Some(&admin)).await.expect_err("caller lacks it");
        assert_error(&e, -32003, "MISSING_PERMISSION");
        let e = app.call("apiKeys.update", json!({"id": k["id"], "scopes": ["org:read", "org:delete"]}), Some(&owner)).await.expect_err("holder lacks it");
        assert_error(&e, -32003, "MISSING_PERMISSION");
        assert_eq!(e["data"]["required"], "org:delete");
    }
}

db_test! {
    /// A key managing keys gives none (itself included) a later expiry, a
    /// higher or absent limit, or a scope it lacks; what it may do, it does.
    async fn a_key_cannot_loosen_itself_or_mint_looser_keys(app) {
        let owner = user(app, "owner@a.example").await;
        let a = create_org(app, &owner, "org-a").await;
        let hour = chrono::Utc::now() + chrono::Duration::hours(1);
        let (m, record) = make_key(app, &owner, &a, &["apiKeys:manage", "apiKeys:read", "org:read"], json!({"expiresAt": hour.to_rfc3339(), "rateLimitPerMinute": 100})).await;
        let id = record["id"].clone();
        for (params, field) in [
            (json!({"id": id, "rateLimitPerMinute": 0}), "rateLimitPerMinute"),
            (json!({"id": id, "rateLimitPerMinute": 1000}), "rateLimitPerMinute"),
            (json!({"id": id, "expiresAt": (hour + chrono::Duration::days(365)).to_rfc3339()}), "expiresAt"),
        ] {
            let e = app.call_with_key("apiKeys.update", params.clone(), &m).await.expect_err("looser");
            assert_error(&e, -32003, "MISSING_PERMISSION");
            assert_eq!(e["data"]["field"], field, "{params}");
        }
        let base = json!({"orgId": a, "name": "minted", "scopes": ["org:read"]});
        let with = |extra: Value| {
            let mut p = base.clone();
            p.as_object_mut().expect("obj").extend(extra.as_object().expect("obj").clone());
            p
        };
        let soon = (chrono::Utc::now() + chrono::Duration::minutes(30)).to_rfc3339();
        for (params, field) in [
            (with(json!({"rateLimitPerMinute": 10})), "expiresAt"),
            (with(json!({"expiresAt": soon})), "rateLimitPerMinute"),
            (with(json!({"expiresAt": soon, "rateLimitPerMinute": 0})), "rateLimitPerMinute"),
            (with(json!({"expiresAt": soon, "rateLimitPerMinute": 101})), "rateLimitPerMinute"),
        ] {
            let e = app.call_with_key("apiKeys.create", params.clone(), &m).await.expect_err("looser key");
            assert_error(&e, -32003, "MISSING_PERMISSION");
            assert_eq!(e["data"]["field"], field, "{params}");
        }
        let e = app.call_with_key("apiKeys.create", with(json!({"expiresAt": soon, "rateLimitPerMinute": 10, "scopes": ["org:manage"]})), &m).await.expect_err("scope it lacks");
        assert_error(&e, -32003, "MISSING_PERMISSION");
        assert_eq!(e["data"]["required"], "org:manage");

        // Within its bounds it works, and the keys it makes are its holder's.
        let minted = app.call_with_key("apiKeys.create", with(json!({"expiresAt": soon, "rateLimitPerMinute": 10})), &m).await.expect("within bounds");
        assert_eq!(minted["apiKey"]["createdBy"], record["createdBy"]);
        let tightened = app.call_with_key("apiKeys.update", json!({"id": id, "rateLimitPerMinute": 50}), &m).await.expect("tighter");
        assert_eq!(tightened["rateLimitPerMinute"], 50);
        assert_eq!(tightened["expiresAt"], record["expiresAt"]);

        // It cannot rotate a key that outlives it (or has no limit), only itself.
        let (_, unlimited) = make_key(app, &owner, &a, &["org:read"], json!({})).await;
        let e = app.call_with_key("apiKeys.rotate", json!({"id": unlimited["id"]}), &m).await.expect_err("looser key");
        assert_error(&e, -32003, "MISSING_PERMISSION");
        let rotated = app.call_with_key("apiKeys.rotate", json!({"id": id}), &m).await.expect("itself");
        let new = rotated["key"].as_str().expect("key").to_owned();
        assert_eq!(rotated["apiKey"]["createdBy"], record["createdBy"], "a key's holder stays when it rotates itself");
        let got = app.call_with_key("apiKeys.get", json!({"id": id}), &new).await.expect("new secret works");
        assert_eq!((got["rateLimitPerMinute"].clone(), got["expiresAt"].clone()), (json!(50), record["expiresAt"].clone()));
    }
}

db_test! {
    /// After a rotation, get and list show the new secret's prefix.
    async fn rotation_shows_the_new_prefix(app) {
        let owner = user(app, "owner@a.example").await;
        let a = create_org(app, &owner, "org-a").await;
        let (old, record) = make_key(app, &owner, &a, &["org:read"], json!({})).await;
        let rotated = app.call("apiKeys.rotate", json!({"id": record["id"]}), Some(&owner)).await.expect("rotated");
        let new = rotated["key"].as_str().expect("key");
        let prefix = rotated["apiKey"]["prefix"].as_str().expect("prefix").to_owned();
        assert!(new.starts_with(&prefix) && !old.starts_with(&prefix), "{prefix}");
        let got = app.call("apiKeys.get", json!({"id": record["id"]}), Some(&owner)).await.expect("get");
        assert_eq!(got["prefix"], prefix);
        let listed = app.call("apiKeys.list", json!({"orgId": a}), Some(&owner)).await.expect("list");
        assert_eq!(listed["items"][0]["prefix"], prefix);
    }
}

async fn post_batch_bearer(app: &TestApp, token: &str, calls: Vec<Value>) -> Vec<Value> {
    let resp = app.http.post(&app.url).bearer_auth(token).json(&Value::Array(calls)).send().await.expect("sent");
    resp.json::<Value>().await.expect("json").as_array().expect("batch answer").clone()
}

db_test! {
    /// 40 concurrent renames with a rotation and a revocation among them,
    /// five times over: the key (and any new secret) stays revoked every time.
    async fn racing_updates_never_undo_a_revocation(app) {
        let owner = user(app, "owner@a.example").await;
        let a = create_org(app, &owner, "org-a").await;
        for round in 0..5 {
            let (key, record) = make_key(app, &owner, &a, &["org:read"], json!({})).await;
            app.call_with_key("orgs.get", json!({"orgId": a}), &key).await.expect("works before");
            let calls: Vec<Value> = (0..40)
                .map(|i| {
                    if i == 20 {
                        json!({"jsonrpc": "2.0", "id": i, "method": "apiKeys.revoke", "params": {"id": record["id"]}})
                    } else if i == 10 {
                        json!({"jsonrpc": "2.0", "id": i, "method": "apiKeys.rotate", "params": {"id": record["id"]}})
                    } else {
                        json!({"jsonrpc": "2.0", "id": i, "method": "apiKeys.update", "params": {"id": record["id"], "name": format!("n{round}-{i}")}})
                    }
                })
                .collect();
            let answers = post_batch_bearer(app, &owner, calls).await;
            assert_eq!(answers.len(), 40);
            for r in &answers {
                if let Some(e) = r.get("error") {
                    assert_error(e, -32009, "INVALID_TRANSITION");
                }
            }
            let e = app.call_with_key("orgs.get", json!({"orgId": a}), &key).await.expect_err("revoked");
            assert_error(&e, -32001, "API_KEY_REVOKED");
            let rotated = answers.iter().find(|r| r["id"] == 10).expect("the rotation's answer");
            if let Some(new) = rotated["result"]["key"].as_str() {
                let e = app.call_with_key("orgs.get", json!({"orgId": a}), new).await.expect_err("revoked too");
                assert_error(&e, -32001, "API_KEY_REVOKED");
            }
            let got = app.call("apiKeys.get", json!({"id": record["id"]}), Some(&owner)).await.expect("get");
            assert!(got["revokedAt"].is_string(), "round {round}: {got}");
            let revokes = app.call("audit.list", json!({"orgId": a, "action": "apiKeys.revoke"}), Some(&owner)).await.expect("audit");
            assert_eq!(revokes["items"].as_array().map(Vec::len), Some(round + 1));
        }
    }
}

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A made-up key whose checksum is right (the checksum is public).
fn forged_key() -> String {
    let head = format!("trl_{}{}", uuid::Uuid::now_v7().simple(), uuid::Uuid::now_v7().simple());
    let mut crc = !0u32;
    for &b in head.as_bytes() {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    let mut n = !crc;
    let mut sum = [b'0'; 6];
    for slot in sum.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    format!("{head}_{}", String::from_utf8_lossy(&sum))
}

/// The fewest database checkouts `body` (a batch) cost in three tries, each
/// with a fresh forged key (the health monitor's probe may fall into one).
async fn fewest_checkouts(app: &TestApp, method: &str, params: &Value) -> u64 {
    let mut fewest = u64::MAX;
    for _ in 0..3 {
        let key = forged_key();
        let before = app.queries.get();
        let answers = post_batch(app, &key, batch(method, params, 100)).await;
        fewest = fewest.min(app.queries.get() - before);
        assert_eq!(answers.len(), 100);
        for r in &answers {
            if method == "health.check" {
                assert!(r.get("result").is_some(), "a public call ignores the key: {r}");
            } else {
                assert_error(&r["error"], -32001, "API_KEY_INVALID");
            }
        }
    }
    fewest
}

async fn forged_keys_cost_at_most_one_lookup(backend: Backend) {
    let Some(app) = try_spawn(backend, |c| {
        c.mail_poll_ms = 3_600_000;
        c.usage_flush_ms = 3_600_000;
        c.session_sync_ms = 3_600_000;
        c.api_key_failures_per_ip = 5;
    })
    .await
    else {
        return;
    };
    let owner = user(&app, "owner@a.example").await;
    let a = create_org(&app, &owner, "org-a").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(fewest_checkouts(&app, "health.check", &json!({})).await, 0, "a public procedure looked a key up");
    assert!(
        fewest_checkouts(&app, "orgs.get", &json!({"orgId": a})).await <= 1,
        "a batch looked a forged key up more than once"
    );

    // Three lookups of unknown keys spent above; two more are allowed, then
    // unknown keys from this address are refused without a lookup.
    for _ in 0..2 {
        let e = app.call_with_key("orgs.get", json!({"orgId": a}), &forged_key()).await.expect_err("unknown");
        assert_error(&e, -32001, "API_KEY_INVALID");
    }
    let e = app.call_with_key("orgs.get", json!({"orgId": a}), &forged_key()).await.expect_err("limited");
    assert_error(&e, -32029, "RATE_LIMITED");
    assert_eq!(e["data"]["limit"], 5);
    assert!(e["data"]["retryAfterMs"].as_u64().is_some_and(|ms| ms > 0 && ms <= 12_000), "{e}");
    app.call_with_key("health.check", json!({}), &forged_key()).await.expect("public calls ignore keys");
    app.call("orgs.get", json!({"orgId": a}), Some(&owner)).await.expect("a signed-in user is unaffected");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_keys_cost_at_most_one_lookup_sqlite() {
    forged_keys_cost_at_most_one_lookup(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "PostgreSQL: TEST_DATABASE_URL not set when the tests were built")]
async fn forged_keys_cost_at_most_one_lookup_postgres() {
    forged_keys_cost_at_most_one_lookup(Backend::Postgres).await;
}
