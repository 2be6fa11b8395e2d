//! The permission model, walked over every procedure of the schema: each
//! organization-scoped one is called by a member of another organization, by
//! a viewer, by an API key without the scope, and with no credentials, and
//! must answer the right refusal (and another tenant's objects NOT_FOUND).

use serde_json::{Value, json};
use trellis_schema::ProcedureInfo;
use trellis_schema::ids::{ApiKeyId, LotId, OrgId, TradeId, UserId};

use crate::api_keys::make_key;
use crate::helpers::assert_error;
use crate::mail_test;
use crate::orgs::{create_org, join, user};

/// The schema's example params of `p`, naming objects of the test's
/// organization: the example ids swapped for `org`, its API key `key_id` and
/// its owner `user_id`. A procedure without an example fails the test.
fn example_params(p: &ProcedureInfo, org: &str, key_id: &str, user_id: &Value, lot_id: &str, trade_id: &str) -> Value {
    let example = p.example.clone().unwrap_or_else(|| {
        panic!("{} has no example params: give its `procedure!` an `example:` in the schema", p.method)
    });
    let ids = [
        (OrgId::EXAMPLE.to_string(), Value::from(org)),
        (ApiKeyId::EXAMPLE.to_string(), Value::from(key_id)),
        (UserId::EXAMPLE.to_string(), user_id.clone()),
        (LotId::EXAMPLE.to_string(), Value::from(lot_id)),
        (TradeId::EXAMPLE.to_string(), Value::from(trade_id)),
    ];
    swap_ids(example, &ids)
}

/// `v` with every string equal to an example id of `ids` replaced by its
/// real counterpart, at any depth.
fn swap_ids(v: Value, ids: &[(String, Value)]) -> Value {
    match v {
        Value::String(s) => match ids.iter().find(|(example, _)| *example == s) {
            Some((_, real)) => real.clone(),
            None => Value::String(s),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(|v| swap_ids(v, ids)).collect()),
        Value::Object(fields) => Value::Object(fields.into_iter().map(|(k, v)| (k, swap_ids(v, ids))).collect()),
        other => other,
    }
}

/// Params of `lots.create` in `org`.
pub(crate) fn lot_params(org: &str) -> Value {
    json!({
        "orgId": org,
        "commodity": "Wheat",
        "quantity": "120.50",
        "unit": "t",
        "location": "Rotterdam",
        "quality": {"grade": "2", "moisturePct": "13.5", "testedAt": "2026-11-30T10:00:00Z", "lab": "Lab One"},
    })
}

mail_test! {
    async fn every_org_procedure_refuses_outsiders_viewers_and_narrow_keys(app, mail) where |c| {
        c.require_verified_email = Some(false);
    } {
        let owner = user(app, "owner@a.example").await;
        let a = create_org(app, &owner, "org-a").await;
        let viewer = join(app, mail, &owner, &a, "viewer@a.example", "viewer").await;
        let (_, key) = make_key(app, &owner, &a, &["org:read"], json!({})).await;
        // A key whose one scope is not the one asked for: trades:read (which
        // may not negotiate), or, for the procedures that read the trade
        // desk, audit:read.
        let (narrow, _) = make_key(app, &owner, &a, &["trades:read"], json!({})).await;
        let (narrow_audit, _) = make_key(app, &owner, &a, &["audit:read"], json!({})).await;
        let owner_id = app.call("auth.me", json!({}), Some(&owner)).await.expect("me")["user"]["id"].clone();
        let outsider = user(app, "owner@b.example").await;
        create_org(app, &outsider, "org-b").await;
        let key_id = key["id"].as_str().expect("id").to_owned();
        let lot = app.call("lots.create", lot_params(&a), Some(&owner)).await.expect("lot");
        let lot_id = lot["id"].as_str().expect("id").to_owned();
        let trade = app.call("trades.create", crate::trades::trade_params(&a, "public", &[]), Some(&owner)).await.expect("trade");
        let trade_id = trade["id"].as_str().expect("id").to_owned();

        let procedures = trellis_schema::procedure::procedures();
        let org_scoped = procedures.iter().filter(|p| p.access.org_permission().is_some()).count();
        assert!(org_scoped > 0, "the schema has organization-scoped procedures");
        let mut walked = 0;
        for p in &procedures {
            let Some(permission) = p.access.org_permission() else { continue };
            walked += 1;
            let params = example_params(p, &a, &key_id, &owner_id, &lot_id, &trade_id);
            let required = permission.as_str();

            let e = app.call(p.method, params.clone(), None).await.expect_err("anonymous");
            assert_error(&e, -32001, "CREDENTIALS_MISSING");

            let e = app.call(p.method, params.clone(), Some(&outsider)).await.expect_err("outsider");
            assert_eq!(e["data"]["reason"], "NOT_FOUND", "{}: {e}", p.method);

            let narrow = if required == "trades:read" { &narrow_audit } else { &narrow };
            let e = app.call_with_key(p.method, params.clone(), narrow).await.expect_err("narrow key");
            assert_eq!(e["data"]["reason"], "MISSING_SCOPE", "{}: {e}", p.method);
            assert_eq!(e["data"]["required"], required, "{}", p.method);

            let as_viewer = app.call(p.method, params.clone(), Some(&viewer)).await;
            if required.ends_with(":read") {
                assert!(as_viewer.is_ok(), "{}: a viewer may read: {as_viewer:?}", p.method);
            } else {
                let e = as_viewer.expect_err("viewer");
                assert_eq!(e["data"]["reason"], "MISSING_PERMISSION", "{}: {e}", p.method);
                assert_eq!(e["data"]["required"], required, "{}", p.method);
            }
        }
        assert_eq!(walked, org_scoped, "every organization-scoped procedure was walked");
        // Nothing the refused calls asked for happened.
        let org = app.call("orgs.get", json!({"orgId": a}), Some(&owner)).await.expect("org");
        assert_eq!(org["name"], "Org org-a");
        let k = app.call("apiKeys.get", json!({"id": key_id}), Some(&owner)).await.expect("key");
        assert!(k["revokedAt"].is_null());
    }
}
