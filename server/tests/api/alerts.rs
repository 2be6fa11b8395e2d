//! Performance alert rules through the real server on both backends: who
//! may read and set them, what a rule may be, and a rule that fires under a
//! real load and resolves after it, each exactly once, told in-app and to a
//! webhook endpoint.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{Backend, PASSWORD, TestApp, assert_error, try_spawn};
use crate::orgs::{create_org, token, user};
use crate::webhooks::{Endpoint, fast};
use crate::{db_test_with, postgres_variant};

fn alerts_fast(c: &mut trellis_server::Config) {
    fast(c);
    c.perf_flush_ms = 100;
    c.alert_eval_ms = 200;
}

/// The caller's notifications of `kind`.
async fn notified(app: &TestApp, t: &str, kind: &str) -> Vec<Value> {
    let page = app.call("notifications.list", json!({"limit": 200}), Some(t)).await.expect("notifications");
    page["items"].as_array().expect("items").iter().filter(|n| n["type"] == kind).cloned().collect()
}

async fn notified_within(app: &TestApp, t: &str, kind: &str, within: Duration) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        let got = notified(app, t, kind).await;
        if !got.is_empty() || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

db_test_with! {
    /// The rules of an organization: read with `performance:read` (a
    /// viewer, an API key with the scope), set with `org:manage` only; the
    /// server's rules by system admins only. Bad rules are VALIDATION; a
    /// rule sent again unchanged keeps its id; a rule left out is gone.
    async fn alert_rules_are_set_by_admins_and_checked(app) where |c| { alerts_fast(c); } {
        let owner = user(app, "owner@a.example").await;
        let org = create_org(app, &owner, "org-a").await;
        let rule = json!({"metric": "p95Ms", "method": "orgs.get", "threshold": 250, "windowSecs": 300});
        let set = app
            .call("performance.setAlertRules", json!({"orgId": org, "rules": [rule]}), Some(&owner))
            .await
            .expect("set");
        let first = set["rules"][0].clone();
        assert_eq!(first["metric"], "p95Ms");
        assert_eq!(first["method"], "orgs.get");
        assert_eq!(first["threshold"], 250.0);
        assert_eq!(first["windowSecs"], 300);
        assert!(first["firingSince"].is_null());

        let second = json!({"metric": "errorRate", "threshold": 0.5, "windowSecs": 60});
        let set = app
            .call("performance.setAlertRules", json!({"orgId": org, "rules": [second, rule]}), Some(&owner))
            .await
            .expect("set again");
        let rules = set["rules"].as_array().expect("rules");
        assert_eq!(rules.len(), 2);
        assert!(rules.iter().any(|r| r["id"] == first["id"]), "the unchanged rule keeps its id: {set}");
        assert!(rules.iter().any(|r| r["metric"] == "errorRate" && r["method"].is_null()));

        // A key with the scope reads them; one without is refused.
        let key = app
            .call("apiKeys.create", json!({"orgId": org, "name": "k", "scopes": ["performance:read"]}), Some(&owner))
            .await
            .expect("key");
        let key = key["key"].as_str().expect("key");
        let got = app.call_with_key("performance.getAlertRules", json!({"orgId": org}), key).await.expect("key reads");
        assert_eq!(got["rules"].as_array().expect("rules").len(), 2);
        let e = app
            .call_with_key("performance.setAlertRules", json!({"orgId": org, "rules": []}), key)
            .await
            .expect_err("a read key sets nothing");
        assert_error(&e, -32003, "MISSING_SCOPE");
        assert_eq!(e["data"]["required"], "org:manage");
        let e = app.call_with_key("performance.getAlertRules", json!({}), key).await.expect_err("server rules");
        assert_error(&e, -32003, "ADMIN_REQUIRED");

        // Another organization's member sees nothing; the owner is no
        // system admin.
        let stranger = user(app, "owner@b.example").await;
        let e = app.call("performance.getAlertRules", json!({"orgId": org}), Some(&stranger)).await.expect_err("stranger");
        assert_error(&e, -32004, "NOT_FOUND");
        let e = app.call("performance.setAlertRules", json!({"rules": []}), Some(&owner)).await.expect_err("not admin");
        assert_error(&e, -32003, "ADMIN_REQUIRED");

        for (bad, path) in [
            (json!({"metric": "p95Ms", "threshold": -1, "windowSecs": 60}), "rules[0].threshold"),
            (json!({"metric": "errorRate", "threshold": 1.5, "windowSecs": 60}), "rules[0].threshold"),
            (json!({"metric": "p95Ms", "threshold": 1, "windowSecs": 59}), "rules[0].windowSecs"),
            (json!({"metric": "p95Ms", "threshold": 1, "windowSecs": 86_401}), "rules[0].windowSecs"),
            (json!({"metric": "p95Ms", "method": "no.such", "threshold": 1, "windowSecs": 60}), "rules[0].method"),
        ] {
            let e = app
                .call("performance.setAlertRules", json!({"orgId": org, "rules": [bad]}), Some(&owner))
                .await
                .expect_err("invalid");
            assert_error(&e, -32602, "VALIDATION");
            assert_eq!(e["data"]["fields"][0]["path"], path, "{e}");
        }
        let e = app
            .call("performance.setAlertRules", json!({"orgId": org, "rules": [{"metric": "p99Ms", "threshold": 1, "windowSecs": 60}]}), Some(&owner))
            .await
            .expect_err("unknown metric");
        assert_error(&e, -32602, "VALIDATION");
        let many: Vec<Value> = (0..21).map(|i| json!({"metric": "callsPerMinute", "threshold": i, "windowSecs": 60})).collect();
        let e = app
            .call("performance.setAlertRules", json!({"orgId": org, "rules": many}), Some(&owner))
            .await
            .expect_err("too many");
        assert_error(&e, -32602, "VALIDATION");
        let got = app.call("performance.getAlertRules", json!({"orgId": org}), Some(&owner)).await.expect("get");
        assert_eq!(got["rules"].as_array().expect("rules").len(), 2, "refused sets changed nothing");

        // A system admin sets the server's rules; the organization's stay.
        app.register("root@example.com", PASSWORD).await;
        app.sql("UPDATE users SET is_admin = TRUE WHERE email_key = 'root@example.com'").await;
        let admin = token(&app.login("root@example.com", PASSWORD).await);
        let server = app
            .call("performance.setAlertRules", json!({"rules": [{"metric": "callsPerMinute", "threshold": 1e6, "windowSecs": 600}]}), Some(&admin))
            .await
            .expect("server rules");
        assert_eq!(server["rules"].as_array().expect("rules").len(), 1);
        let cleared = app
            .call("performance.setAlertRules", json!({"orgId": org, "rules": []}), Some(&owner))
            .await
            .expect("cleared");
        assert_eq!(cleared["rules"], json!([]));
        let server = app.call("performance.getAlertRules", json!({}), Some(&admin)).await.expect("server rules");
        assert_eq!(server["rules"].as_array().expect("rules").len(), 1);
    }
}

/// A calls-per-minute rule of an organization fires under a real load of
/// its calls, spread over two replicas of one database (only their sum is
/// above the threshold), and resolves once the load is over: one
/// `alert.fired` and one `alert.resolved`, in-app for the owner and
/// delivered to the organization's webhook, and the report lists the alert
/// while it fires. Both replicas evaluate rules; one holds the lease.
async fn alert_fires_under_load_and_resolves_once(backend: Backend) {
    let a = try_spawn(backend, alerts_fast).await.expect(crate::helpers::POSTGRES_NOT_BUILT);
    let shared = a.config.database_url();
    let b = try_spawn(backend, move |c| {
        alerts_fast(c);
        c.database_url = Some(shared);
    })
    .await
    .expect("second replica");
    let app = &a;
    let endpoint = Endpoint::start(&[], 200).await;
    let owner = user(app, "owner@a.example").await;
    let org = create_org(app, &owner, "org-a").await;
    app.call(
        "webhooks.create",
        json!({"orgId": org, "url": endpoint.url(), "events": ["alert.fired", "alert.resolved"]}),
        Some(&owner),
    )
    .await
    .expect("webhook");
    const LOAD: usize = 800;
    let set = app
        .call(
            "performance.setAlertRules",
            json!({"orgId": org, "rules": [{"metric": "callsPerMinute", "method": "orgs.get", "threshold": 600, "windowSecs": 60}]}),
            Some(&owner),
        )
        .await
        .expect("rule set");
    let rule_id = set["rules"][0]["id"].clone();
    let quiet = app.call("performance.report", json!({"orgId": org}), Some(&owner)).await.expect("report");
    assert_eq!(quiet["alerts"], json!([]), "nothing fires before the load");

    // The load: 800 calls of orgs.get, 20 at a time, half on each replica.
    let load_started = Instant::now();
    let workers = (0..20).map(|w| {
        let (owner, org) = (owner.clone(), org.clone());
        let replica = if w % 2 == 0 { &a } else { &b };
        async move {
            for _ in 0..LOAD / 20 {
                replica.call("orgs.get", json!({"orgId": org}), Some(&owner)).await.expect("orgs.get");
            }
        }
    });
    futures::future::join_all(workers).await;
    let load_took = load_started.elapsed();

    let fired = notified_within(app, &owner, "alert.fired", Duration::from_secs(20)).await;
    assert_eq!(fired.len(), 1, "fired once (the load took {load_took:?}): {fired:?}");
    assert_eq!(fired[0]["data"]["ruleId"], rule_id);
    assert_eq!(fired[0]["data"]["metric"], "callsPerMinute");
    assert_eq!(fired[0]["data"]["method"], "orgs.get");
    assert_eq!(fired[0]["data"]["orgId"], org.as_str());
    assert!(fired[0]["data"]["value"].as_f64().expect("value") > 600.0, "{fired:?}");

    let report = b.call("performance.report", json!({"orgId": org}), Some(&owner)).await.expect("report");
    let alerts = report["alerts"].as_array().expect("alerts");
    if notified(app, &owner, "alert.resolved").await.is_empty() {
        assert_eq!(alerts.len(), 1, "{report}");
        assert_eq!(alerts[0]["ruleId"], rule_id);
        assert_eq!(alerts[0]["threshold"], 600.0);
    }
    let holders = a.sql_count("SELECT COUNT(*) AS n FROM leases WHERE name = 'alerts'").await;
    assert_eq!(holders, 1, "one lease row, held by one replica");

    // The load is over: the rate falls as its minute leaves the window.
    let resolved = notified_within(app, &owner, "alert.resolved", Duration::from_secs(100)).await;
    assert_eq!(resolved.len(), 1, "{resolved:?}");
    assert_eq!(resolved[0]["data"]["ruleId"], rule_id);
    // Several more evaluations change nothing.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(notified(app, &owner, "alert.fired").await.len(), 1);
    assert_eq!(notified(app, &owner, "alert.resolved").await.len(), 1);
    let rules = app.call("performance.getAlertRules", json!({"orgId": org}), Some(&owner)).await.expect("rules");
    assert!(rules["rules"][0]["firingSince"].is_null(), "{rules}");
    assert!(rules["rules"][0]["lastValue"].as_f64().expect("value") <= 600.0, "{rules}");
    let report = app.call("performance.report", json!({"orgId": org}), Some(&owner)).await.expect("report");
    assert_eq!(report["alerts"], json!([]));

    // The webhook got both, in order, once each.
    let got = endpoint.wait_for(2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got_after = endpoint.received();
    assert_eq!(got_after.len(), 2, "{got_after:?}");
    let kinds: Vec<String> = got
        .iter()
        .map(|r| serde_json::from_str::<Value>(&r.body).expect("JSON")["type"].as_str().expect("type").to_owned())
        .collect();
    assert_eq!(kinds, ["alert.fired", "alert.resolved"]);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_fires_under_load_and_resolves_once_sqlite() {
    alert_fires_under_load_and_resolves_once(Backend::Sqlite).await;
}

mod an_alert_fires_under_load_and_resolves_once {
    use super::*;
    postgres_variant! {{
        alert_fires_under_load_and_resolves_once(Backend::Postgres).await;
    }}
}
