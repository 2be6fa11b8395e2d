//! Access tokens that must be refused: forged, tampered, `alg: none`,
//! expired, for another audience or issuer, or of another algorithm.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::db_test;
use crate::helpers::{JWT_SECRET, TestApp, assert_error};

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn sign(alg: Algorithm, secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(secret.as_bytes())).expect("signed")
}

/// Claims as the server issues them, for a real user and session.
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64")).expect("JSON")
}

async fn refused(app: &TestApp, token: &str, reason: &str) {
    let e = app.call("auth.me", json!({}), Some(token)).await.expect_err("refused");
    assert_error(&e, -32001, reason);
}

db_test! {
    async fn bad_tokens_are_refused(app) {
        let tokens = app.signed_in("jwt@example.com").await;
        let good = tokens["accessToken"].as_str().expect("token");
        app.call("auth.me", json!({}), Some(good)).await.expect("the genuine token works");
        let claims = claims_of(good);
        let with = |k: &str, v: Value| {
            let mut c = claims.clone();
            c[k] = v;
            c
        };

        // Forged: the right claims, signed with another secret.
        refused(app, &sign(Algorithm::HS256, "another-secret-another-secret-0123456789", &claims), "TOKEN_INVALID").await;

        // Tampered: the payload changed under the genuine signature.
        let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(with("sub", json!(uuid::Uuid::now_v7())).to_string());
        refused(app, &parts.join("."), "TOKEN_INVALID").await;

        // alg: none, with and without a trailing signature part.
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        refused(app, &format!("{header}.{payload}."), "TOKEN_INVALID").await;
        refused(app, &format!("{header}.{payload}"), "TOKEN_INVALID").await;

        // Another algorithm with the same secret.
        refused(app, &sign(Algorithm::HS512, JWT_SECRET, &claims), "TOKEN_INVALID").await;

        // Expired, beyond the leeway.
        let expired = with("exp", json!(now() - 120));
        refused(app, &sign(Algorithm::HS256, JWT_SECRET, &expired), "TOKEN_EXPIRED").await;

        // Another audience, another issuer, issued in the future, no session.
        refused(app, &sign(Algorithm::HS256, JWT_SECRET, &with("aud", json!("someone-else"))), "TOKEN_INVALID").await;
        refused(app, &sign(Algorithm::HS256, JWT_SECRET, &with("iss", json!("someone-else"))), "TOKEN_INVALID").await;
        refused(app, &sign(Algorithm::HS256, JWT_SECRET, &with("iat", json!(now() + 3600))), "TOKEN_INVALID").await;
        let mut no_sid = claims.clone();
        no_sid.as_object_mut().expect("object").remove("sid");
        refused(app, &sign(Algorithm::HS256, JWT_SECRET, &no_sid), "TOKEN_INVALID").await;

        // Not a JWT at all, or not a Bearer header.
        refused(app, "garbage", "TOKEN_INVALID").await;
        let resp = app
            .http
            .post(&app.url)
            .header("authorization", format!("Basic {good}"))
            .json(&json!({"jsonrpc": "2.0", "method": "auth.me", "id": 1}))
            .send()
            .await
            .expect("sent");
        let body: Value = resp.json().await.expect("JSON");
        assert_error(&body["error"], -32001, "TOKEN_INVALID");
    }
}
