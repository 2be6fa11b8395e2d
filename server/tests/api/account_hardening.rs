//! Account hardening through the real server on both backends: attempt
//! counters spent in SQL under concurrency, failed refreshes limited per
//! IP, lockout that answers the same for an address without an account,
//! step-up (password or a recent sign-in) before MFA and API key changes,
//! TOTP secrets sealed at rest with rotatable keys, and session endings
//! recorded with their change.

use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

use crate::accounts::{base32_decode, step_now, totp};
use crate::helpers::{Backend, PASSWORD, TestApp, assert_error, try_spawn};
use crate::{db_test, db_test_with, mail_test};

fn token_of(tokens: &Value) -> String {
    tokens["accessToken"].as_str().expect("access token").to_owned()
}

/// The answer without what differs on every call: the request id, and the
/// exact wait (kept as whether it lies within the lock time).
fn shape(mut e: Value) -> Value {
    if let Some(data) = e.get_mut("data").and_then(Value::as_object_mut) {
        data.remove("requestId");
        if let Some(ms) = data.get("retryAfterMs").and_then(Value::as_i64) {
            data.insert("retryAfterMs".into(), json!(ms > 29 * 60 * 1000 && ms <= 30 * 60 * 1000));
        }
    }
    e
}

/// One text column of the server's database, read directly (as someone
/// holding a copy of the database would).
async fn column(app: &TestApp, sql: &str) -> Vec<Option<String>> {
    use diesel::sql_types::{Nullable, Text};
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = Nullable<Text>)]
        v: Option<String>,
    }
    let url = app.config.database_url();
    let rows: Vec<Row> = if url.starts_with("postgres") {
        use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
        let mut conn = AsyncPgConnection::establish(&url).await.expect("connect");
        diesel::sql_query(sql).load(&mut conn).await.expect(sql)
    } else {
        use diesel::{Connection, RunQueryDsl, SqliteConnection};
        let mut conn = SqliteConnection::establish(&url).expect("open");
        diesel::sql_query(sql).load(&mut conn).expect(sql)
    };
    rows.into_iter().map(|r| r.v).collect()
}

async fn exec(app: &TestApp, sql: &str) {
    let url = app.config.database_url();
    if url.starts_with("postgres") {
        use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
        let mut conn = AsyncPgConnection::establish(&url).await.expect("connect");
        diesel::sql_query(sql).execute(&mut conn).await.expect(sql);
    } else {
        use diesel::{Connection, RunQueryDsl, SqliteConnection};
        let mut conn = SqliteConnection::establish(&url).expect("open");
        diesel::sql_query(sql).execute(&mut conn).expect(sql);
    }
}

mail_test! {
    /// Ten wrong guesses at once spend exactly the code's 3 attempts: two
    /// answer OTP_INVALID, the other eight OTP_EXHAUSTED, and the right code
    /// is refused afterwards (OTP_EXHAUSTED: ask for a new code). Three rounds, each with a new code.
    async fn concurrent_wrong_codes_spend_exactly_the_allowed_attempts(app, mail) {
        app.register("race@example.com", PASSWORD).await;
        for round in 1..=3 {
            app.call("auth.requestLoginCode", json!({"email": "race@example.com"}), None).await.expect("sent");
            let code = mail.wait_nth("race@example.com", "sign-in code", round).await.code();
            let wrong = if code == "000000" { "111111" } else { "000000" };
            let guesses = (0..10).map(|_| {
                app.call("auth.loginWithCode", json!({"email": "race@example.com", "code": wrong}), None)
            });
            let answers = futures::future::join_all(guesses).await;
            let reasons: Vec<String> = answers
                .iter()
                .map(|a| a.as_ref().expect_err("wrong code")["data"]["reason"].as_str().expect("reason").to_owned())
                .collect();
            let invalid = reasons.iter().filter(|r| *r == "OTP_INVALID").count();
            let exhausted = reasons.iter().filter(|r| *r == "OTP_EXHAUSTED").count();
            assert_eq!((invalid, exhausted), (2, 8), "round {round}: {reasons:?}");
            let e = app.call("auth.loginWithCode", json!({"email": "race@example.com", "code": code}), None)
                .await.expect_err("spent");
            assert_error(&e, -32012, "OTP_EXHAUSTED");
        }
        let spent = column(app, "SELECT CAST(attempts AS TEXT) AS v FROM one_time_tokens WHERE purpose = 'login_code'").await;
        assert_eq!(spent, vec![Some("3".to_owned()); 3], "each code counted exactly its 3 attempts");
    }
}

db_test! {
    /// Two password changes at once with the same current password: one
    /// wins, the other is INVALID_CREDENTIALS (its password is no longer
    /// current); the winner's password works.
    async fn concurrent_password_changes_do_not_both_apply(app) {
        let t = token_of(&app.signed_in("pw@example.com").await);
        let a = app.call("auth.changePassword",
            json!({"currentPassword": PASSWORD, "newPassword": "first new password 1"}), Some(&t));
        let b = app.call("auth.changePassword",
            json!({"currentPassword": PASSWORD, "newPassword": "second new password 2"}), Some(&t));
        let (a, b) = futures::join!(a, b);
        assert!(a.is_ok() != b.is_ok(), "exactly one applies: {a:?} {b:?}");
        let (winner, loser) = if a.is_ok() { ("first new password 1", b) } else { ("second new password 2", a) };
        assert_error(&loser.expect_err("lost"), -32001, "INVALID_CREDENTIALS");
        app.login("pw@example.com", winner).await;
    }
}

db_test_with! {
    /// Made-up refresh tokens are limited per IP (here 3 a minute); then
    /// every refresh from that IP, even a valid one, is RATE_LIMITED with
    /// retryAfterMs and limit, without a query. Successful refreshes do not
    /// count.
    async fn failed_refreshes_are_limited_per_ip(app) where |c| {
        c.refresh_failures_per_ip = 3;
        // No background sync of ended sessions may query during the count.
        c.session_sync_ms = 3_600_000;
    } {
        let mut refresh = app.signed_in("fresh@example.com").await["refreshToken"].as_str().expect("rt").to_owned();
        for _ in 0..5 {
            let t = app.call("auth.refresh", json!({"refreshToken": refresh}), None).await.expect("refreshed");
            refresh = t["refreshToken"].as_str().expect("rt").to_owned();
        }
        for i in 0..3 {
            let e = app.call("auth.refresh", json!({"refreshToken": format!("made-up-{i}")}), None).await
                .expect_err("unknown");
            assert_error(&e, -32001, "TOKEN_INVALID");
        }
        let e = app.call("auth.refresh", json!({"refreshToken": "made-up-3"}), None).await.expect_err("limited");
        assert_error(&e, -32029, "RATE_LIMITED");
        assert_eq!(e["data"]["limit"], 3);
        assert!(e["data"]["retryAfterMs"].as_u64().is_some_and(|ms| ms > 0 && ms <= 60_000), "{e}");
        let before = app.queries.get();
        let e = app.call("auth.refresh", json!({"refreshToken": refresh}), None).await.expect_err("limited too");
        assert_error(&e, -32029, "RATE_LIMITED");
        assert_eq!(app.queries.get(), before, "a refused refresh made a query");
    }
}

db_test! {
    /// Five wrong passwords lock an address without an account exactly as
    /// they lock an account: the same answers, one by one (ACCOUNT_LOCKED
    /// with retryAfterMs on the fifth and after), on auth.login and on
    /// auth.loginWithCode.
    async fn an_unknown_address_locks_like_a_known_one(app) {
        app.register("known@example.com", PASSWORD).await;
        for i in 0..6 {
            let mut answers = Vec::new();
            for email in ["known@example.com", "nobody@example.com"] {
                let e = app.call("auth.login", json!({"email": email, "password": format!("wrong {i}")}), None)
                    .await.expect_err("refused");
                answers.push(shape(e));
            }
            assert_eq!(answers[0], answers[1], "attempt {i}: known and unknown answered differently");
            let expected = if i < 4 { "INVALID_CREDENTIALS" } else { "ACCOUNT_LOCKED" };
            assert_eq!(answers[0]["data"]["reason"], expected, "attempt {i}: {}", answers[0]);
        }
        assert_eq!(answers_of(app, "known@example.com").await, answers_of(app, "nobody@example.com").await);
        let known = answers_of(app, "known@example.com").await;
        assert_eq!(known[0]["data"]["reason"], "ACCOUNT_LOCKED", "{known:?}");
        assert_eq!(known[0]["data"]["retryAfterMs"], true, "{known:?}");
        assert_eq!(known[0]["code"], -32023);
        // Another address is not affected.
        let e = app.call("auth.login", json!({"email": "someone@example.com", "password": "x"}), None).await
            .expect_err("wrong");
        assert_error(&e, -32001, "INVALID_CREDENTIALS");
    }
}

/// The answers of a locked address to the right password (for the known
/// one) and to a sign-in code.
async fn answers_of(app: &TestApp, email: &str) -> Vec<Value> {
    let login = app.call("auth.login", json!({"email": email, "password": PASSWORD}), None).await.expect_err("locked");
    let code =
        app.call("auth.loginWithCode", json!({"email": email, "code": "123456"}), None).await.expect_err("locked");
    vec![shape(login), shape(code)]
}

db_test_with! {
    /// With the window set to 3 s: right after signing in, mfa.enrollTotp,
    /// mfa.disable and apiKeys.create need no password; once the window has
    /// passed (a refresh does not renew it) each is REAUTHENTICATION_REQUIRED
    /// without the password, INVALID_CREDENTIALS with a wrong one, and
    /// accepted with the right one. A key acting on keys needs no password.
    async fn step_up_guards_mfa_and_api_key_creation(app) where |c| { c.step_up_secs = 3; } {
        let first = app.signed_in("step@example.com").await;
        let t = token_of(&first);
        // Right after sign-in: accepted without the password.
        app.call("mfa.enrollTotp", json!({}), Some(&t)).await.expect("fresh sign-in");
        let org = crate::orgs::create_org(app, &t, "step-org").await;
        let fresh_key = app.call("apiKeys.create", json!({"orgId": org, "name": "fresh", "scopes": ["apiKeys:manage", "apiKeys:read"]}), Some(&t))
            .await.expect("fresh sign-in");

        tokio::time::sleep(Duration::from_secs(4)).await;
        // A refresh gives new tokens but does not renew the sign-in.
        let refreshed = app.call("auth.refresh", json!({"refreshToken": first["refreshToken"]}), None).await.expect("refresh");
        let t = token_of(&refreshed);
        let e = app.call("mfa.enrollTotp", json!({}), Some(&t)).await.expect_err("stale");
        assert_error(&e, -32003, "REAUTHENTICATION_REQUIRED");
        let e = app.call("mfa.enrollTotp", json!({"currentPassword": "not it"}), Some(&t)).await.expect_err("wrong");
        assert_error(&e, -32001, "INVALID_CREDENTIALS");
        let enrolled = app.call("mfa.enrollTotp", json!({"currentPassword": PASSWORD}), Some(&t)).await.expect("password");
        let secret = enrolled["secret"].as_str().expect("secret").to_owned();
        let confirmed = app.call("mfa.confirmTotp", json!({"code": totp(&secret, step_now() - 1)}), Some(&t)).await.expect("on");
        let recovery: Vec<String> = confirmed["recoveryCodes"].as_array().expect("codes").iter()
            .map(|c| c.as_str().expect("code").to_owned()).collect();

        let e = app.call("mfa.disable", json!({"code": recovery[0]}), Some(&t)).await.expect_err("stale");
        assert_error(&e, -32003, "REAUTHENTICATION_REQUIRED");
        let e = app.call("mfa.disable", json!({"code": recovery[0], "currentPassword": "not it"}), Some(&t)).await
            .expect_err("wrong");
        assert_error(&e, -32001, "INVALID_CREDENTIALS");
        app.call("mfa.disable", json!({"code": recovery[0], "currentPassword": PASSWORD}), Some(&t)).await.expect("off");

        let params = json!({"orgId": org, "name": "late", "scopes": ["apiKeys:read"]});
        let e = app.call("apiKeys.create", params.clone(), Some(&t)).await.expect_err("stale");
        assert_error(&e, -32003, "REAUTHENTICATION_REQUIRED");
        let mut with_pw = params.clone();
        with_pw["currentPassword"] = json!("not it");
        assert_error(&app.call("apiKeys.create", with_pw.clone(), Some(&t)).await.expect_err("wrong"), -32001, "INVALID_CREDENTIALS");
        with_pw["currentPassword"] = json!(PASSWORD);
        app.call("apiKeys.create", with_pw, Some(&t)).await.expect("password");
        // A key with apiKeys:manage is not a person at a keyboard: no step-up.
        app.call_with_key("apiKeys.create", params.clone(), fresh_key["key"].as_str().expect("key")).await
            .expect("a key needs no password");

        // A new sign-in opens the window again, for all three.
        let t = token_of(&app.login("step@example.com", PASSWORD).await);
        app.call("apiKeys.create", params, Some(&t)).await.expect("fresh sign-in");
        let enrolled = app.call("mfa.enrollTotp", json!({}), Some(&t)).await.expect("fresh sign-in");
        let secret = enrolled["secret"].as_str().expect("secret").to_owned();
        let confirmed = app.call("mfa.confirmTotp", json!({"code": totp(&secret, step_now() - 1)}), Some(&t)).await.expect("on");
        let code = confirmed["recoveryCodes"][0].as_str().expect("code").to_owned();
        let signed_in = app.call("auth.login", json!({"email": "step@example.com", "password": PASSWORD, "otp": totp(&secret, step_now())}), None)
            .await.expect("signed in with MFA");
        app.call("mfa.disable", json!({"code": code}), Some(&token_of(&signed_in))).await.expect("fresh sign-in");

        let activity = app.call("users.activity", json!({"limit": 200}), Some(&t)).await.expect("activity");
        let refused: Vec<&Value> = activity["items"].as_array().expect("items").iter()
            .filter(|e| e["action"] == "mfa.enrollTotp" && e["outcome"] != "success")
            .collect();
        assert_eq!(refused.len(), 2, "the stale and the wrong-password attempts are recorded: {activity}");
    }
}

db_test_with! {
    /// A wrong step-up password, or a wrong current password given to
    /// auth.changePassword, counts as a failed sign-in: at the threshold the
    /// account locks, and even the right password is then ACCOUNT_LOCKED.
    async fn wrong_step_up_passwords_lock_the_account(app) where |c| { c.step_up_secs = 0; c.lockout_threshold = 2; } {
        let t = token_of(&app.signed_in("guess@example.com").await);
        let e = app.call("mfa.enrollTotp", json!({"currentPassword": "guess 1"}), Some(&t)).await.expect_err("wrong");
        assert_error(&e, -32001, "INVALID_CREDENTIALS");
        let e = app.call("mfa.enrollTotp", json!({"currentPassword": "guess 2"}), Some(&t)).await.expect_err("locks");
        assert_error(&e, -32023, "ACCOUNT_LOCKED");
        let e = app.call("mfa.enrollTotp", json!({"currentPassword": PASSWORD}), Some(&t)).await.expect_err("locked");
        assert_error(&e, -32023, "ACCOUNT_LOCKED");
        let e = app.call("auth.login", json!({"email": "guess@example.com", "password": PASSWORD}), None).await
            .expect_err("locked");
        assert_error(&e, -32023, "ACCOUNT_LOCKED");

        // auth.changePassword follows the same rule.
        let t = token_of(&app.signed_in("change@example.com").await);
        let change = |current: &str| json!({"currentPassword": current, "newPassword": "a brand new password 9"});
        let e = app.call("auth.changePassword", change("guess 1"), Some(&t)).await.expect_err("wrong");
        assert_error(&e, -32001, "INVALID_CREDENTIALS");
        let e = app.call("auth.changePassword", change("guess 2"), Some(&t)).await.expect_err("locks");
        assert_error(&e, -32023, "ACCOUNT_LOCKED");
        let e = app.call("auth.changePassword", change(PASSWORD), Some(&t)).await.expect_err("locked");
        assert_error(&e, -32023, "ACCOUNT_LOCKED");
    }
}

db_test! {
    /// Logging out, revoking a session and reusing a refresh token each
    /// leave their event in the owner's activity.
    async fn session_endings_are_recorded(app) {
        let keep = token_of(&app.signed_in("audit@example.com").await);
        let other = app.login("audit@example.com", PASSWORD).await;
        app.call("auth.logout", json!({}), Some(&token_of(&other))).await.expect("signed out");
        let third = app.login("audit@example.com", PASSWORD).await;
        let sessions = app.call("sessions.list", json!({}), Some(&keep)).await.expect("list");
        let id = sessions["items"].as_array().expect("items").iter().find(|s| s["current"] == false).expect("other")["id"].clone();
        app.call("sessions.revoke", json!({"sessionId": id}), Some(&keep)).await.expect("revoked");
        let e = app.call("auth.me", json!({}), Some(&token_of(&third))).await.expect_err("ended");
        assert_error(&e, -32001, "TOKEN_INVALID");
        let fourth = app.login("audit@example.com", PASSWORD).await;
        let rt = fourth["refreshToken"].clone();
        app.call("auth.refresh", json!({"refreshToken": rt}), None).await.expect("first use");
        let e = app.call("auth.refresh", json!({"refreshToken": rt}), None).await.expect_err("reuse");
        assert_error(&e, -32001, "TOKEN_REUSED");

        let activity = app.call("users.activity", json!({"limit": 200}), Some(&keep)).await.expect("activity");
        let items = activity["items"].as_array().expect("items");
        let find = |action: &str| items.iter().filter(|e| e["action"] == action).cloned().collect::<Vec<_>>();
        assert_eq!(find("auth.logout").len(), 1, "{activity}");
        let revoked = find("sessions.revoke");
        assert_eq!(revoked.len(), 1, "{activity}");
        assert_eq!(revoked[0]["target"], format!("session:{}", id.as_str().expect("id")));
        let reused = find("auth.refreshTokenReused");
        assert_eq!(reused.len(), 1, "{activity}");
        assert_eq!(reused[0]["outcome"], "failure", "{activity}");
    }
}

/// TOTP secrets are sealed in the database (neither the base32 secret nor
/// its bytes appear), MFA still works, and a key rotation (new key first,
/// old second) reads the old rows, seals them again under the new key at
/// start, and seals new enrolments under it; a secret stored readable
/// before encryption is sealed at start too.
async fn totp_secrets_are_sealed_with_rotatable_keys(backend: Backend) {
    let b64 = |b: u8| base64::engine::general_purpose::STANDARD.encode([b; 32]);
    let old_keys = format!("old:{}", b64(7));
    let Some(a) = try_spawn(backend, |c| c.encryption_keys = Some(old_keys)).await else {
        eprintln!("TEST_DATABASE_URL not set: PostgreSQL run skipped");
        return;
    };
    let t = token_of(&a.signed_in("sealed@example.com").await);
    let enrolled = a.call("mfa.enrollTotp", json!({}), Some(&t)).await.expect("enrolled");
    let secret = enrolled["secret"].as_str().expect("secret").to_owned();
    let raw = base32_decode(&secret);
    let readable = base64::engine::general_purpose::STANDARD.encode(&raw);
    let pending = column(&a, "SELECT totp_pending_secret AS v FROM users WHERE email_key = 'sealed@example.com'").await;
    let pending = pending[0].clone().expect("pending secret stored");
    assert!(pending.starts_with("enc:old:"), "{pending}");
    assert!(!pending.contains(&secret) && !pending.contains(&readable), "the pending secret is readable: {pending}");
    a.call("mfa.confirmTotp", json!({"code": totp(&secret, step_now() - 1)}), Some(&t)).await.expect("on");
    let stored = column(&a, "SELECT totp_secret AS v FROM users WHERE email_key = 'sealed@example.com'").await;
    let stored = stored[0].clone().expect("secret stored");
    assert!(stored.starts_with("enc:old:") && !stored.contains(&secret) && !stored.contains(&readable), "{stored}");
    let login = json!({"email": "sealed@example.com", "password": PASSWORD, "otp": totp(&secret, step_now())});
    a.call("auth.login", login, None).await.expect("MFA works on sealed secrets");

    // A second account whose pending secret was stored readable, as before
    // encryption.
    let t2 = token_of(&a.signed_in("legacy@example.com").await);
    let legacy = a.call("mfa.enrollTotp", json!({}), Some(&t2)).await.expect("enrolled");
    let legacy_secret = legacy["secret"].as_str().expect("secret").to_owned();
    let legacy_readable = base64::engine::general_purpose::STANDARD.encode(base32_decode(&legacy_secret));
    exec(
        &a,
        &format!("UPDATE users SET totp_pending_secret = '{legacy_readable}' WHERE email_key = 'legacy@example.com'"),
    )
    .await;

    // The rotation: a replica on the same database with the new key first.
    let shared = a.config.database_url();
    let new_keys = format!("new:{},old:{}", b64(9), b64(7));
    let b = try_spawn(backend, move |c| {
        c.database_url = Some(shared);
        c.encryption_keys = Some(new_keys);
    })
    .await
    .expect("second server");
    let stored = column(&b, "SELECT totp_secret AS v FROM users WHERE email_key = 'sealed@example.com'").await;
    assert!(stored[0].as_deref().is_some_and(|s| s.starts_with("enc:new:")), "resealed at start: {stored:?}");
    let legacy_stored =
        column(&b, "SELECT totp_pending_secret AS v FROM users WHERE email_key = 'legacy@example.com'").await;
    let legacy_stored = legacy_stored[0].clone().expect("pending");
    assert!(legacy_stored.starts_with("enc:new:") && !legacy_stored.contains(&legacy_readable), "{legacy_stored}");
    let login = json!({"email": "sealed@example.com", "password": PASSWORD, "otp": totp(&secret, step_now() + 1)});
    b.call("auth.login", login, None).await.expect("the old secret still works after rotation");
    let t2 = token_of(&b.login("legacy@example.com", PASSWORD).await);
    b.call("mfa.confirmTotp", json!({"code": totp(&legacy_secret, step_now())}), Some(&t2))
        .await
        .expect("a secret stored readable before still works");
    let t3 = token_of(&b.signed_in("newer@example.com").await);
    b.call("mfa.enrollTotp", json!({}), Some(&t3)).await.expect("enrolled");
    let newer = column(&b, "SELECT totp_pending_secret AS v FROM users WHERE email_key = 'newer@example.com'").await;
    assert!(
        newer[0].as_deref().is_some_and(|s| s.starts_with("enc:new:")),
        "new enrolments use the new key: {newer:?}"
    );
    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totp_secrets_are_sealed_with_rotatable_keys_sqlite() {
    totp_secrets_are_sealed_with_rotatable_keys(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "PostgreSQL: TEST_DATABASE_URL not set when the tests were built")]
async fn totp_secrets_are_sealed_with_rotatable_keys_postgres() {
    totp_secrets_are_sealed_with_rotatable_keys(Backend::Postgres).await;
}

mail_test! {
    /// Wrong guesses at an e-mailed code answer alike for an address with an
    /// account, one without, and a disabled account: OTP_INVALID until the
    /// third spends the code, OTP_EXHAUSTED after, and a new request starts
    /// over. (The known address's code comes by mail and is never guessed.)
    async fn code_guesses_answer_alike_with_or_without_an_account(app, mail) where |c| { c.require_verified_email = Some(false); } {
        app.register("real@example.com", PASSWORD).await;
        app.register("off@example.com", PASSWORD).await;
        let admin = crate::admin::admin_token(app, "root@example.com").await;
        let users = app.call("admin.listUsers", json!({"query": "off@"}), Some(&admin)).await.expect("list");
        app.call("admin.setUserDisabled", json!({"userId": users["items"][0]["id"], "disabled": true}), Some(&admin))
            .await.expect("disabled");
        let addresses = ["real@example.com", "ghost@example.com", "off@example.com"];
        for round in 1..=2 {
            for email in addresses {
                app.call("auth.requestLoginCode", json!({"email": email}), None).await.expect("requested");
            }
            let code = mail.wait_nth("real@example.com", "sign-in code", round).await.code();
            let wrong = if code == "000000" { "111111" } else { "000000" };
            for attempt in 0..4 {
                let mut answers = Vec::new();
                for email in addresses {
                    let e = app.call("auth.loginWithCode", json!({"email": email, "code": wrong}), None).await
                        .expect_err("wrong");
                    answers.push(shape(e));
                }
                assert_eq!(answers[0], answers[1], "round {round}, attempt {attempt}: {answers:?}");
                assert_eq!(answers[0], answers[2], "round {round}, attempt {attempt}: {answers:?}");
                let expected = if attempt < 2 { "OTP_INVALID" } else { "OTP_EXHAUSTED" };
                assert_eq!(answers[0]["data"]["reason"], expected, "round {round}, attempt {attempt}");
            }
        }
        let to_them = mail.all().iter().filter(|m| m.subject.contains("code") && m.to.iter().any(|t| t.contains("ghost@") || t.contains("off@")))
            .count();
        assert_eq!(to_them, 0, "no code is sent to those");
    }
}
