//! The trade desk through the real server on both backends: a whole deal
//! between organizations (offers, counters in turn, an accept that rejects
//! the other offer, four-eyes approval), what each party sees and hears,
//! stale versions, 20 concurrent accepts of one offer, and expiry.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error};
use crate::orgs::{create_org, join, user};
use crate::{db_test_with, mail_test};

/// An RFC 3339 time `secs` from now.
fn in_secs(secs: i64) -> String {
    (chrono::Utc::now() + chrono::TimeDelta::seconds(secs)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Params of `trades.create`: a buy of 120 t wheat at most 245 EUR, for a day.
pub(crate) fn trade_params(org: &str, visibility: &str, invited: &[&str]) -> Value {
    let mut p = json!({
        "orgId": org,
        "side": "buy",
        "commodity": "wheat",
        "quantity": "120",
        "unit": "t",
        "priceLimit": "245",
        "currency": "EUR",
        "visibility": visibility,
        "expiresAt": in_secs(86_400),
    });
    if !invited.is_empty() {
        p["invitedOrgIds"] = json!(invited);
    }
    p
}

fn offer_params(trade: &Value, org: &str, price: &str, quantity: &str) -> Value {
    json!({"tradeId": trade["id"], "orgId": org, "price": price, "quantity": quantity, "validUntil": in_secs(3_600)})
}

async fn negotiate(
    app: &TestApp,
    t: &str,
    org: &str,
    offer: &Value,
    action: &str,
    price: Option<&str>,
) -> Result<Value, Value> {
    let mut p = json!({"offerId": offer["id"], "orgId": org, "expectedVersion": offer["version"], "action": action});
    if let Some(price) = price {
        p["price"] = json!(price);
    }
    app.call("trades.negotiate", p, Some(t)).await
}

/// The caller's notification types, oldest first.
async fn heard(app: &TestApp, t: &str) -> Vec<String> {
    let page = app.call("notifications.list", json!({"limit": 200}), Some(t)).await.expect("notifications");
    let mut kinds: Vec<String> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|n| n["type"].as_str().filter(|k| k.starts_with("trade.")).map(str::to_owned))
        .collect();
    kinds.reverse();
    kinds
}

/// Waits until the caller heard every one of `kinds` (at most 10 s).
async fn heard_all(app: &TestApp, t: &str, kinds: &[&str]) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = heard(app, t).await;
        if kinds.iter().all(|k| got.iter().any(|g| g == k)) || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

mail_test! {
    /// A buyer posts a public request; two sellers offer; buyer and one
    /// seller counter in turn; the buyer accepts (the other offer is
    /// rejected); the deal is over the buyer's threshold, so a second
    /// member approves it. Each party hears each step; nobody else sees the
    /// offers.
    async fn a_deal_from_request_to_confirmation(app, mail) where |c| { c.require_verified_email = Some(false); } {
        let buyer = user(app, "buyer@a.example").await;
        let a = create_org(app, &buyer, "buyer-a").await;
        let approver = join(app, mail, &buyer, &a, "approver@a.example", "admin").await;
        let seller = user(app, "seller@b.example").await;
        let b = create_org(app, &seller, "seller-b").await;
        let rival = user(app, "seller@c.example").await;
        let c = create_org(app, &rival, "seller-c").await;
        let stranger = user(app, "someone@d.example").await;
        let d = create_org(app, &stranger, "org-d").await;

        let org = app
            .call("orgs.update", json!({"orgId": a, "approvalThresholds": {"EUR": "10000"}}), Some(&buyer))
            .await
            .expect("threshold set");
        assert_eq!(org["approvalThresholds"], json!({"EUR": "10000"}));

        let trade = app.call("trades.create", trade_params(&a, "public", &[]), Some(&buyer)).await.expect("trade");
        assert_eq!(trade["status"], "open");
        assert_eq!(trade["quantity"], "120");
        let lot = app.call("lots.create", crate::tenancy::lot_params(&b), Some(&seller)).await.expect("lot");
        let mut from_b = offer_params(&trade, &b, "250", "120");
        from_b["lotId"] = lot["id"].clone();
        let offer_b = app.call("trades.offer", from_b, Some(&seller)).await.expect("offer from B");
        assert_eq!(offer_b["status"], "pending");
        assert_eq!(offer_b["turn"], "owner");
        let offer_c = app.call("trades.offer", offer_params(&trade, &c, "248", "100"), Some(&rival)).await.expect("offer from C");
        let e = app.call("trades.offer", offer_params(&trade, &c, "247", "100"), Some(&rival)).await.expect_err("a second open offer");
        assert_error(&e, -32009, "ALREADY_EXISTS");
        let e = app.call("trades.offer", offer_params(&trade, &a, "1", "1"), Some(&buyer)).await.expect_err("own trade");
        assert_error(&e, -32602, "VALIDATION");
        let e = app.call("trades.offer", offer_params(&trade, &b, "250", "121"), Some(&seller)).await.expect_err("too much");
        assert_error(&e, -32602, "VALIDATION");

        // B may not counter its own proposal; the buyer counters; then B.
        let e = negotiate(app, &seller, &b, &offer_b, "counter", Some("249")).await.expect_err("own move");
        assert_error(&e, -32009, "NOT_YOUR_TURN");
        let countered = negotiate(app, &buyer, &a, &offer_b, "counter", Some("246")).await.expect("buyer counters");
        assert_eq!(countered["status"], "countered");
        assert_eq!(countered["price"], "246");
        assert_eq!(countered["version"], 2);
        let e = negotiate(app, &buyer, &a, &countered, "counter", Some("245")).await.expect_err("twice in a row");
        assert_error(&e, -32009, "NOT_YOUR_TURN");
        let e = negotiate(app, &seller, &b, &offer_b, "counter", Some("247")).await.expect_err("stale version");
        assert_error(&e, -32009, "VERSION_CONFLICT");
        assert_eq!(e["data"]["currentVersion"], 2);
        let back = negotiate(app, &seller, &b, &countered, "counter", Some("247")).await.expect("seller counters");
        assert_eq!(back["status"], "pending");

        // What each organization sees.
        let seen_by_c = app.call("trades.get", json!({"tradeId": trade["id"], "orgId": c}), Some(&rival)).await.expect("C sees");
        assert_eq!(seen_by_c["offers"].as_array().expect("offers").len(), 1, "C sees its own offer only");
        assert_eq!(seen_by_c["offers"][0]["id"], offer_c["id"]);
        let seen_by_d = app.call("trades.get", json!({"tradeId": trade["id"], "orgId": d}), Some(&stranger)).await.expect("public");
        assert_eq!(seen_by_d["offers"], json!([]), "a public request shows no offers to others");
        let e = app.call("trades.negotiate", json!({"offerId": back["id"], "orgId": d, "expectedVersion": 3, "action": "accept"}), Some(&stranger)).await.expect_err("not a party");
        assert_error(&e, -32004, "NOT_FOUND");
        let seen_by_a = app.call("trades.get", json!({"tradeId": trade["id"], "orgId": a}), Some(&buyer)).await.expect("owner");
        assert_eq!(seen_by_a["status"], "negotiating");
        assert_eq!(seen_by_a["offers"].as_array().expect("offers").len(), 2);
        let history: Vec<&str> = seen_by_a["offers"][0]["history"].as_array().expect("history").iter().map(|s| s["action"].as_str().expect("action")).collect();
        assert_eq!(history, ["offer", "counter", "counter"]);

        // The buyer accepts B's: C's is rejected; over the threshold, the
        // deal waits for a second member.
        let accepted = negotiate(app, &buyer, &a, &back, "accept", None).await.expect("accepted");
        assert_eq!(accepted["status"], "accepted");
        let deal = app.call("trades.get", json!({"tradeId": trade["id"], "orgId": a}), Some(&buyer)).await.expect("deal");
        assert_eq!(deal["status"], "pendingApproval", "247 × 120 = 29,640 EUR is over 10,000");
        assert_eq!(deal["agreedOfferId"], back["id"]);
        let c_offer = deal["offers"].as_array().expect("offers").iter().find(|o| o["id"] == offer_c["id"]).expect("C's").clone();
        assert_eq!(c_offer["status"], "rejected");
        let e = app.call("trades.approve", json!({"tradeId": trade["id"], "orgId": a, "decision": "approve"}), Some(&buyer)).await.expect_err("four eyes");
        assert_error(&e, -32003, "SELF_APPROVAL");
        let e = app.call("trades.approve", json!({"tradeId": trade["id"], "orgId": b, "decision": "approve"}), Some(&seller)).await.expect_err("not the owner");
        assert_error(&e, -32004, "NOT_FOUND");
        let confirmed = app.call("trades.approve", json!({"tradeId": trade["id"], "orgId": a, "decision": "approve"}), Some(&approver)).await.expect("approved");
        assert_eq!(confirmed["status"], "confirmed");
        assert!(confirmed["approvedBy"].is_string());
        let e = app.call("trades.cancel", json!({"tradeId": trade["id"], "orgId": a}), Some(&buyer)).await.expect_err("final");
        assert_error(&e, -32009, "INVALID_TRANSITION");
        assert_eq!(e["data"]["from"], "confirmed");

        // Each party heard each step of the other.
        let b_heard = heard_all(app, &seller, &["trade.offerCountered", "trade.offerAccepted", "trade.confirmed"]).await;
        assert_eq!(b_heard.iter().filter(|k| *k == "trade.offerCountered").count(), 1, "{b_heard:?}");
        assert!(b_heard.contains(&"trade.offerAccepted".to_owned()) && b_heard.contains(&"trade.confirmed".to_owned()), "{b_heard:?}");
        let c_heard = heard_all(app, &rival, &["trade.offerRejected"]).await;
        assert!(c_heard.contains(&"trade.offerRejected".to_owned()), "{c_heard:?}");
        let a_heard = heard_all(app, &buyer, &["trade.offerMade", "trade.approvalNeeded"]).await;
        assert_eq!(a_heard.iter().filter(|k| *k == "trade.offerMade").count(), 2, "{a_heard:?}");
        assert_eq!(a_heard.iter().filter(|k| *k == "trade.offerCountered").count(), 1, "{a_heard:?}");
        assert!(heard(app, &stranger).await.is_empty(), "a bystander hears nothing");

        // An invited request is not seen by others.
        let invited = app.call("trades.create", trade_params(&a, "invited", &[b.as_str()]), Some(&buyer)).await.expect("invited");
        app.call("trades.get", json!({"tradeId": invited["id"], "orgId": b}), Some(&seller)).await.expect("B is invited");
        let e = app.call("trades.get", json!({"tradeId": invited["id"], "orgId": d}), Some(&stranger)).await.expect_err("not invited");
        assert_error(&e, -32004, "NOT_FOUND");
        let e = app.call("trades.offer", offer_params(&invited, &d, "1", "1"), Some(&stranger)).await.expect_err("not invited");
        assert_error(&e, -32004, "NOT_FOUND");
        let listed = app.call("trades.list", json!({"orgId": d}), Some(&stranger)).await.expect("list");
        let ids: Vec<&Value> = listed["items"].as_array().expect("items").iter().map(|t| &t["id"]).collect();
        assert!(ids.contains(&&trade["id"]) && !ids.contains(&&invited["id"]), "{listed}");
        let mine = app.call("trades.list", json!({"orgId": b, "role": "counterparty"}), Some(&seller)).await.expect("list");
        assert_eq!(mine["items"].as_array().expect("items").len(), 1);
        assert_eq!(mine["items"][0]["id"], trade["id"]);
        assert_eq!(invited["invitedOrgIds"], json!([b]));
        let as_b = app.call("trades.get", json!({"tradeId": invited["id"], "orgId": b}), Some(&seller)).await.expect("B");
        assert_eq!(as_b["invitedOrgIds"], json!([]), "who else is invited is the owner's business");
    }
}

/// 20 accepts of one offer at once: one wins, 19 answer VERSION_CONFLICT,
/// and the trade is agreed once.
async fn concurrent_accepts(app: &TestApp) {
    let buyer = user(app, "buyer@a.example").await;
    let a = create_org(app, &buyer, "buyer-a").await;
    let seller = user(app, "seller@b.example").await;
    let b = create_org(app, &seller, "seller-b").await;
    let trade = app.call("trades.create", trade_params(&a, "public", &[]), Some(&buyer)).await.expect("trade");
    let offer = app.call("trades.offer", offer_params(&trade, &b, "240", "120"), Some(&seller)).await.expect("offer");
    let calls = (0..20).map(|_| negotiate(app, &buyer, &a, &offer, "accept", None));
    let results = futures::future::join_all(calls).await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1, "{results:?}");
    for e in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_error(e, -32009, "VERSION_CONFLICT");
        assert_eq!(e["data"]["currentVersion"], 2);
    }
    let t = app.call("trades.get", json!({"tradeId": trade["id"], "orgId": a}), Some(&buyer)).await.expect("trade");
    assert_eq!(t["status"], "confirmed", "no threshold: confirmed at once");
    assert_eq!(t["version"], 3, "created 1, negotiating 2, confirmed 3");
    assert_eq!(t["offers"][0]["version"], 2);
    let accepts =
        t["offers"][0]["history"].as_array().expect("history").iter().filter(|s| s["action"] == "accept").count();
    assert_eq!(accepts, 1);

    // Moves on two offers of one trade at once (an accept, which rejects
    // the other, and that other's withdrawal) take turns: no deadlock, no
    // internal error, and the trade ends consistent.
    let rival = user(app, "seller@c.example").await;
    let c = create_org(app, &rival, "seller-c").await;
    for _ in 0..5 {
        let trade = app.call("trades.create", trade_params(&a, "public", &[]), Some(&buyer)).await.expect("trade");
        let x = app.call("trades.offer", offer_params(&trade, &b, "240", "120"), Some(&seller)).await.expect("x");
        let y = app.call("trades.offer", offer_params(&trade, &c, "239", "120"), Some(&rival)).await.expect("y");
        let (accept, withdraw) = futures::future::join(
            negotiate(app, &buyer, &a, &x, "accept", None),
            negotiate(app, &rival, &c, &y, "withdraw", None),
        )
        .await;
        accept.expect("the accept wins: it does not depend on the other offer");
        if let Err(e) = &withdraw {
            assert_error(e, -32009, "VERSION_CONFLICT");
        }
        let t = app.call("trades.get", json!({"tradeId": trade["id"], "orgId": a}), Some(&buyer)).await.expect("trade");
        assert_eq!(t["status"], "confirmed");
        let y_now = t["offers"].as_array().expect("offers").iter().find(|o| o["id"] == y["id"]).expect("y").clone();
        let expected = if withdraw.is_ok() { "withdrawn" } else { "rejected" };
        assert_eq!(y_now["status"], expected, "{t}");
    }
}

db_test_with! {
    async fn twenty_concurrent_accepts_one_wins(app) where |c| { c.require_verified_email = Some(false); } {
        concurrent_accepts(app).await;
    }
}

db_test_with! {
    /// A trade and an offer past their time are expired by the sweeper
    /// (once), and their parties hear of it.
    async fn trades_and_offers_expire(app) where |c| { c.require_verified_email = Some(false); c.trade_sweep_ms = 100; } {
        let buyer = user(app, "buyer@a.example").await;
        let a = create_org(app, &buyer, "buyer-a").await;
        let seller = user(app, "seller@b.example").await;
        let b = create_org(app, &seller, "seller-b").await;
        let mut short = trade_params(&a, "public", &[]);
        short["expiresAt"] = json!(in_secs(3));
        let trade = app.call("trades.create", short, Some(&buyer)).await.expect("trade");
        let long = app.call("trades.create", trade_params(&a, "public", &[]), Some(&buyer)).await.expect("trade");
        let mut quick = offer_params(&long, &b, "240", "10");
        quick["validUntil"] = json!(in_secs(2));
        let offer = app.call("trades.offer", quick, Some(&seller)).await.expect("offer");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let t = app.call("trades.get", json!({"tradeId": trade["id"], "orgId": a}), Some(&buyer)).await.expect("trade");
            let l = app.call("trades.get", json!({"tradeId": long["id"], "orgId": a}), Some(&buyer)).await.expect("trade");
            if t["status"] == "expired" && l["offers"][0]["status"] == "expired" {
                assert_eq!(l["status"], "open", "its only offer expired: open again");
                assert_eq!(l["offers"][0]["id"], offer["id"]);
                break;
            }
            assert!(Instant::now() < deadline, "not expired: {t} {l}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let e = negotiate(app, &buyer, &a, &offer, "accept", None).await.expect_err("expired");
        assert_error(&e, -32009, "VERSION_CONFLICT");
        let heard_b = heard_all(app, &seller, &["trade.offerExpired"]).await;
        assert_eq!(heard_b.iter().filter(|k| *k == "trade.offerExpired").count(), 1, "{heard_b:?}");
        let heard_a = heard_all(app, &buyer, &["trade.expired", "trade.offerExpired"]).await;
        assert_eq!(heard_a.iter().filter(|k| *k == "trade.expired").count(), 1, "{heard_a:?}");
    }
}

db_test_with! {
    /// `trades.parse` reads a request typed as text into a draft of
    /// `trades.create` params, for signed-in users, changing nothing; the
    /// draft (with an organization and visibility added) is accepted by
    /// `trades.create`.
    async fn a_typed_request_is_read_into_a_draft(app) where |c| { c.require_verified_email = Some(false); } {
        let buyer = user(app, "buyer@a.example").await;
        let a = create_org(app, &buyer, "buyer-a").await;
        let text = "buy 120 t wheat grade 2 at most 245 EUR/t delivered Rotterdam, until Friday, please call Anna";
        let got = app.call("trades.parse", json!({"text": text}), Some(&buyer)).await.expect("parsed");
        let d = &got["draft"];
        assert_eq!(d["side"], "buy");
        assert_eq!(d["quantity"], "120");
        assert_eq!(d["unit"], "t");
        assert_eq!(d["commodity"], "wheat");
        assert_eq!(d["priceLimit"], "245");
        assert_eq!(d["currency"], "EUR");
        assert_eq!(d["location"], "Rotterdam");
        let expires = chrono::DateTime::parse_from_rfc3339(d["expiresAt"].as_str().expect("expiresAt")).expect("time");
        assert!(expires > chrono::Utc::now(), "{expires}");
        assert!(got["understood"].as_array().expect("understood").iter().any(|u| u["field"] == "grade" && u["text"] == "grade 2"), "{got}");
        assert!(!got["unparsed"].as_array().expect("unparsed").is_empty(), "{got}");
        let e = app.call("trades.parse", json!({"text": text}), None).await.expect_err("anonymous");
        assert_error(&e, -32001, "CREDENTIALS_MISSING");
        let e = app.call("trades.parse", json!({"text": "x".repeat(1001)}), Some(&buyer)).await.expect_err("too long");
        assert_error(&e, -32602, "VALIDATION");

        let mut create = json!({"orgId": a, "visibility": "public"});
        for f in ["side", "commodity", "quantity", "unit", "priceLimit", "currency", "expiresAt"] {
            create[f] = d[f].clone();
        }
        let trade = app.call("trades.create", create, Some(&buyer)).await.expect("the draft is a trade");
        assert_eq!(trade["priceLimit"], "245");
    }
}

/// Two replicas sweep one database at once: a trade past its time is
/// expired once (one `trade.expired` for its owner), whichever sweeps first.
async fn two_sweepers(backend: crate::helpers::Backend) {
    let a = crate::helpers::try_spawn(backend, |c| {
        c.require_verified_email = Some(false);
        c.trade_sweep_ms = 50;
    })
    .await
    .expect(crate::helpers::POSTGRES_NOT_BUILT);
    let shared = a.config.database_url();
    let b = crate::helpers::try_spawn(backend, move |c| {
        c.require_verified_email = Some(false);
        c.trade_sweep_ms = 50;
        c.database_url = Some(shared);
    })
    .await
    .expect("second replica");
    let buyer = user(&a, "buyer@a.example").await;
    let org = create_org(&a, &buyer, "buyer-a").await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let mut p = trade_params(&org, "public", &[]);
        p["expiresAt"] = json!(in_secs(2));
        ids.push(a.call("trades.create", p, Some(&buyer)).await.expect("trade")["id"].clone());
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let listed =
            b.call("trades.list", json!({"orgId": org, "status": "expired"}), Some(&buyer)).await.expect("list");
        if listed["items"].as_array().expect("items").len() == ids.len() {
            break;
        }
        assert!(Instant::now() < deadline, "not all expired: {listed}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = heard_all(&a, &buyer, &["trade.expired"]).await;
    assert_eq!(got.iter().filter(|k| *k == "trade.expired").count(), ids.len(), "one notice per trade: {got:?}");
    for id in &ids {
        let t = a.call("trades.get", json!({"tradeId": id, "orgId": org}), Some(&buyer)).await.expect("trade");
        assert_eq!(t["version"], 2, "expired once: {t}");
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_sweep_each_trade_once_sqlite() {
    two_sweepers(crate::helpers::Backend::Sqlite).await;
}

mod two_replicas_sweep_each_trade_once {
    crate::postgres_variant! {{
        super::two_sweepers(crate::helpers::Backend::Postgres).await;
    }}
}

db_test_with! {
    /// An organization's trade desk changes are limited per minute; another
    /// organization's are not affected.
    async fn trade_desk_changes_are_limited_per_organization(app) where |c| {
        c.require_verified_email = Some(false);
        c.trade_writes_per_org_minute = 3;
    } {
        let buyer = user(app, "buyer@a.example").await;
        let a = create_org(app, &buyer, "buyer-a").await;
        let other = user(app, "buyer@b.example").await;
        let b = create_org(app, &other, "buyer-b").await;
        for _ in 0..3 {
            app.call("trades.create", trade_params(&a, "public", &[]), Some(&buyer)).await.expect("within the limit");
        }
        let e = app.call("trades.create", trade_params(&a, "public", &[]), Some(&buyer)).await.expect_err("over");
        assert_error(&e, -32029, "RATE_LIMITED");
        assert_eq!(e["data"]["limit"], 3);
        assert!(e["data"]["retryAfterMs"].as_u64().is_some_and(|ms| ms > 0 && ms <= 60_000), "{e}");
        app.call("trades.create", trade_params(&b, "public", &[]), Some(&other)).await.expect("another organization");
        let listed = app.call("trades.list", json!({"orgId": a, "role": "owner"}), Some(&buyer)).await.expect("reads are not limited");
        assert_eq!(listed["items"].as_array().expect("items").len(), 3);
    }
}

db_test_with! {
    /// Past its `validUntil`, an offer takes no move, even before the
    /// sweeper expires it: an accept a moment late is refused.
    async fn a_late_move_is_refused_before_the_sweeper_comes(app) where |c| {
        c.require_verified_email = Some(false);
        c.trade_sweep_ms = 3_600_000;
    } {
        let buyer = user(app, "buyer@a.example").await;
        let a = create_org(app, &buyer, "buyer-a").await;
        let seller = user(app, "seller@b.example").await;
        let b = create_org(app, &seller, "seller-b").await;
        let trade = app.call("trades.create", trade_params(&a, "public", &[]), Some(&buyer)).await.expect("trade");
        let mut quick = offer_params(&trade, &b, "240", "10");
        quick["validUntil"] = json!(in_secs(1));
        let offer = app.call("trades.offer", quick, Some(&seller)).await.expect("offer");
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let e = negotiate(app, &buyer, &a, &offer, "accept", None).await.expect_err("too late");
        assert_error(&e, -32009, "INVALID_TRANSITION");
        assert_eq!(e["data"]["to"], "expired");
        let t = app.call("trades.get", json!({"tradeId": trade["id"], "orgId": a}), Some(&buyer)).await.expect("trade");
        assert_eq!(t["status"], "negotiating", "nothing changed");
        assert_eq!(t["offers"][0]["status"], "pending");
    }
}
