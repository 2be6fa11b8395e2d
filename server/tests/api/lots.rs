//! `lots.*` through the real server on both backends: decimal strings kept
//! exactly, closed lists and bounds refused as VALIDATION naming the field,
//! paging and the commodity filter, and another organization's lot unseen.

use serde_json::{Value, json};

use crate::db_test;
use crate::helpers::assert_error;
use crate::orgs::{create_org, user};
use crate::tenancy::lot_params;

fn with(mut params: Value, path: &[&str], value: Value) -> Value {
    let mut at = &mut params;
    for p in &path[..path.len() - 1] {
        at = &mut at[*p];
    }
    at[path[path.len() - 1]] = value;
    params
}

db_test! {
    async fn lots_keep_exact_decimals_and_refuse_bad_values(app) {
        let owner = user(app, "owner@a.example").await;
        let org = create_org(app, &owner, "org-a").await;
        let lot = app.call("lots.create", lot_params(&org), Some(&owner)).await.expect("lot");
        assert_eq!(lot["commodity"], "wheat", "lower-cased");
        assert_eq!(lot["quantity"], "120.5", "a decimal string, canonical");
        assert_eq!(lot["unit"], "t");
        assert_eq!(lot["quality"]["moisturePct"], "13.5");
        assert_eq!(lot["quality"]["testedAt"], "2026-11-30T10:00:00Z");
        assert_eq!(lot["orgId"], org.as_str());
        let got = app.call("lots.get", json!({"orgId": org, "lotId": lot["id"]}), Some(&owner)).await.expect("get");
        assert_eq!(got, lot);
        let exact = app
            .call("lots.create", with(lot_params(&org), &["quantity"], json!("999999999999.123456")), Some(&owner))
            .await
            .expect("twelve digits and six");
        assert_eq!(exact["quantity"], "999999999999.123456", "no digit lost to a float");

        let base = lot_params(&org);
        for (path, value, field) in [
            (&["quantity"][..], json!(120), "quantity"),
            (&["quantity"][..], json!(120.5), "quantity"),
            (&["quantity"][..], json!("-1"), "quantity"),
            (&["quantity"][..], json!("0"), "quantity"),
            (&["quantity"][..], json!("1e3"), "quantity"),
            (&["quantity"][..], json!("1000000000000"), "quantity"),
            (&["quantity"][..], json!("1.1234567"), "quantity"),
            (&["unit"][..], json!("tons"), "unit"),
            (&["commodity"][..], json!(""), "commodity"),
            (&["commodity"][..], json!("x".repeat(65)), "commodity"),
            (&["location"][..], json!("   "), "location"),
            (&["quality", "moisturePct"][..], json!("100.5"), "quality.moisturePct"),
            (&["quality", "testedAt"][..], json!("2999-01-01T00:00:00Z"), "quality.testedAt"),
            (&["quality", "grade"][..], json!(null), "quality.grade"),
        ] {
            let e = app.call("lots.create", with(base.clone(), path, value.clone()), Some(&owner)).await.expect_err("invalid");
            assert_error(&e, -32602, "VALIDATION");
            let paths: Vec<&str> = e["data"]["fields"].as_array().expect("fields").iter().filter_map(|f| f["path"].as_str()).collect();
            assert!(paths.iter().any(|p| p.contains(field)), "{field} = {value}: {e}");
        }
        let listed = app.call("lots.list", json!({"orgId": org}), Some(&owner)).await.expect("list");
        assert_eq!(listed["items"].as_array().expect("items").len(), 2, "refused lots were not written");
    }
}

db_test! {
    async fn lots_are_paged_filtered_and_private_to_their_organization(app) {
        let owner = user(app, "owner@a.example").await;
        let org = create_org(app, &owner, "org-a").await;
        for i in 0..3 {
            app.call("lots.create", with(lot_params(&org), &["quantity"], json!(format!("{}", i + 1))), Some(&owner)).await.expect("wheat");
        }
        let corn = app.call("lots.create", with(lot_params(&org), &["commodity"], json!("Corn")), Some(&owner)).await.expect("corn");

        let first = app.call("lots.list", json!({"orgId": org, "limit": 2}), Some(&owner)).await.expect("page 1");
        assert_eq!(first["items"].as_array().expect("items").len(), 2);
        let second = app
            .call("lots.list", json!({"orgId": org, "limit": 2, "cursor": first["nextCursor"]}), Some(&owner))
            .await
            .expect("page 2");
        assert_eq!(second["items"].as_array().expect("items").len(), 2);
        assert!(second["nextCursor"].is_null());
        let quantities: Vec<&str> = first["items"].as_array().expect("items").iter().chain(second["items"].as_array().expect("items"))
            .map(|l| l["quantity"].as_str().expect("quantity")).collect();
        assert_eq!(quantities, ["1", "2", "3", "120.5"], "oldest first");
        let wheat = app.call("lots.list", json!({"orgId": org, "commodity": "WHEAT"}), Some(&owner)).await.expect("wheat");
        assert_eq!(wheat["items"].as_array().expect("items").len(), 3);
        let corn_only = app.call("lots.list", json!({"orgId": org, "commodity": "corn"}), Some(&owner)).await.expect("corn");
        assert_eq!(corn_only["items"][0]["id"], corn["id"]);

        // Another organization's member asks for the lot by its id, in
        // their own organization or in this one: NOT_FOUND either way.
        let other = user(app, "owner@b.example").await;
        let theirs = create_org(app, &other, "org-b").await;
        let e = app.call("lots.get", json!({"orgId": theirs, "lotId": corn["id"]}), Some(&other)).await.expect_err("other org");
        assert_error(&e, -32004, "NOT_FOUND");
        let e = app.call("lots.get", json!({"orgId": org, "lotId": corn["id"]}), Some(&other)).await.expect_err("not a member");
        assert_error(&e, -32004, "NOT_FOUND");
        let none = app.call("lots.list", json!({"orgId": theirs}), Some(&other)).await.expect("their list");
        assert_eq!(none["items"], json!([]));
    }
}
