//! Account security flows through the real server, with mail received by an
//! SMTP sink: verification, recovery, password policy, password changes,
//! lockout, sessions, e-mailed codes, MFA and the user's own activity.

use hmac::{Hmac, Mac};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, assert_error};
use crate::mail_test;

fn token_of(tokens: &Value) -> String {
    tokens["accessToken"].as_str().expect("access token").to_owned()
}

async fn login_err(app: &TestApp, email: &str, password: &str) -> Value {
    app.call("auth.login", json!({"email": email, "password": password}), None).await.expect_err("refused")
}

mail_test! {
    /// register (mail with a link on the public URL) → sign-in refused until
    /// verified → verify → sign in; a used token is TOKEN_USED; a resent
    /// link supersedes the last.
    async fn email_verification(app, mail) {
        let r = app.register("vera@example.com", PASSWORD).await;
        assert_eq!(r["verificationRequired"], true);
        let first = mail.wait_for("vera@example.com", "Confirm your e-mail").await;
        assert!(first.text.contains("https://app.example.test/verify-email?token="), "{}", first.text);
        assert!(first.html.contains("https://app.example.test/verify-email?token="));
        assert_error(&login_err(app, "vera@example.com", PASSWORD).await, -32001, "EMAIL_NOT_VERIFIED");

        app.call("auth.resendVerification", json!({"email": "vera@example.com"}), None).await.expect("resent");
        let second = mail.wait_nth("vera@example.com", "Confirm your e-mail", 2).await;
        assert_ne!(first.link_token(), second.link_token());
        let e = app.call("auth.verifyEmail", json!({"token": first.link_token()}), None).await.expect_err("superseded");
        assert_error(&e, -32001, "TOKEN_EXPIRED");

        let ok = app.call("auth.verifyEmail", json!({"token": second.link_token()}), None).await.expect("verified");
        assert_eq!(ok, json!({"verified": true}));
        let e = app.call("auth.verifyEmail", json!({"token": second.link_token()}), None).await.expect_err("used");
        assert_error(&e, -32012, "TOKEN_USED");
        let e = app.call("auth.verifyEmail", json!({"token": "not-a-token"}), None).await.expect_err("unknown");
        assert_error(&e, -32001, "TOKEN_INVALID");

        let tokens = app.login("vera@example.com", PASSWORD).await;
        assert_eq!(tokens["user"]["emailVerified"], true);
    }
}

mail_test! {
    /// The link in every mail is built from the configured public URL, never
    /// from the Host header the caller sends.
    async fn mail_links_ignore_the_host_header(app, mail) {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "auth.register",
            "params": {"email": "host@example.com", "password": PASSWORD}});
        let resp = app.http.post(&app.url).header("host", "evil.example").json(&body).send().await.expect("sent");
        assert_eq!(resp.status(), 200);
        let m = mail.wait_for("host@example.com", "Confirm").await;
        assert!(!m.text.contains("evil.example") && !m.html.contains("evil.example"));
        assert!(m.text.contains("https://app.example.test/"));
    }
}

mail_test! {
    /// request → mail → policy refusals listing every violation → reuse of
    /// the current password refused → reset ends every session → the token
    /// works once; a newer request supersedes the older link.
    async fn password_reset(app, mail) {
        let tokens = app.verified_in(mail, "rita@example.com").await;
        let access = token_of(&tokens);
        app.call("auth.requestPasswordReset", json!({"email": "rita@example.com"}), None).await.expect("requested");
        let old = mail.wait_for("rita@example.com", "Reset your password").await.link_token();
        app.call("auth.requestPasswordReset", json!({"email": "rita@example.com"}), None).await.expect("again");
        let token = mail.wait_nth("rita@example.com", "Reset your password", 2).await.link_token();
        let e = app.call("auth.resetPassword", json!({"token": old, "newPassword": "a brand new secret"}), None)
            .await.expect_err("superseded");
        assert_error(&e, -32001, "TOKEN_EXPIRED");

        let e = app.call("auth.resetPassword", json!({"token": token, "newPassword": "rita1234"}), None)
            .await.expect_err("policy");
        assert_error(&e, -32012, "PASSWORD_POLICY");
        let codes: Vec<&str> = e["data"]["violations"].as_array().expect("violations").iter()
            .map(|v| v["code"].as_str().expect("code")).collect();
        assert_eq!(codes, ["CONTAINS_EMAIL"], "{e}");
        let e = app.call("auth.resetPassword", json!({"token": token, "newPassword": "qwertyuiop"}), None)
            .await.expect_err("common");
        assert_eq!(e["data"]["violations"][0]["code"], "COMMON");
        let e = app.call("auth.resetPassword", json!({"token": token, "newPassword": PASSWORD}), None)
            .await.expect_err("reused");
        assert_error(&e, -32012, "PASSWORD_REUSED");

        app.call("auth.resetPassword", json!({"token": token, "newPassword": "a brand new secret"}), None)
            .await.expect("reset");
        let e = app.call("auth.me", json!({}), Some(&access)).await.expect_err("sessions ended");
        assert_error(&e, -32001, "TOKEN_INVALID");
        let e = app.call("auth.refresh", json!({"refreshToken": tokens["refreshToken"]}), None).await.expect_err("ended");
        assert_eq!(e["code"], -32001);
        assert_error(&login_err(app, "rita@example.com", PASSWORD).await, -32001, "INVALID_CREDENTIALS");
        app.login("rita@example.com", "a brand new secret").await;
        mail.wait_for("rita@example.com", "Your password was changed").await;
        let e = app.call("auth.resetPassword", json!({"token": token, "newPassword": "another new secret"}), None)
            .await.expect_err("single use");
        assert_error(&e, -32012, "TOKEN_USED");
    }
}

mail_test! {
    /// Needs the current password; ends the other sessions, not this one;
    /// the last five passwords cannot come back.
    async fn change_password(app, mail) {
        let here = app.verified_in(mail, "carl@example.com").await;
        let there = app.login("carl@example.com", PASSWORD).await;
        let (here, there) = (token_of(&here), token_of(&there));
        let e = app.call("auth.changePassword", json!({"currentPassword": "wrong one", "newPassword": "a brand new secret"}), Some(&here))
            .await.expect_err("wrong current");
        assert_error(&e, -32001, "INVALID_CREDENTIALS");
        let mut current = PASSWORD.to_owned();
        for next in ["first new secret", "second new secret", "third new secret"] {
            app.call("auth.changePassword", json!({"currentPassword": current, "newPassword": next}), Some(&here))
                .await.expect("changed");
            current = next.to_owned();
        }
        let e = app.call("auth.me", json!({}), Some(&there)).await.expect_err("other session ended");
        assert_error(&e, -32001, "TOKEN_INVALID");
        app.call("auth.me", json!({}), Some(&here)).await.expect("this session goes on");
        for old in [PASSWORD, "first new secret", "third new secret"] {
            let e = app.call("auth.changePassword", json!({"currentPassword": current, "newPassword": old}), Some(&here))
                .await.expect_err("recent password");
            assert_error(&e, -32012, "PASSWORD_REUSED");
        }
        let e = app.call("auth.changePassword", json!({"currentPassword": current, "newPassword": "password"}), Some(&here))
            .await.expect_err("policy");
        assert_error(&e, -32012, "PASSWORD_POLICY");
        // Each change tells the owner by mail.
        mail.wait_nth("carl@example.com", "Your password was changed", 3).await;
    }
}

mail_test! {
    /// 5 failures lock the account (with retryAfterMs and a mail); the right
    /// password is then refused; another account is unaffected; changing
    /// X-Forwarded-For does not reset the count; an administrator unlocks it.
    async fn lockout_after_five_failures(app, mail) where |c| { c.require_verified_email = Some(false); } {
        app.register("lock@example.com", PASSWORD).await;
        app.register("other@example.com", PASSWORD).await;
        for i in 0..5 {
            let body = json!({"jsonrpc": "2.0", "id": 1, "method": "auth.login",
                "params": {"email": "lock@example.com", "password": format!("wrong {i}")}});
            let resp: Value = app.http.post(&app.url).header("x-forwarded-for", format!("10.0.0.{i}"))
                .json(&body).send().await.expect("sent").json().await.expect("json");
            let e = &resp["error"];
            if i < 4 {
                assert_error(e, -32001, "INVALID_CREDENTIALS");
            } else {
                assert_error(e, -32023, "ACCOUNT_LOCKED");
            }
        }
        let e = login_err(app, "lock@example.com", PASSWORD).await;
        assert_error(&e, -32023, "ACCOUNT_LOCKED");
        let retry = e["data"]["retryAfterMs"].as_i64().expect("retryAfterMs");
        assert!(retry > 29 * 60 * 1000 && retry <= 30 * 60 * 1000, "{retry}");
        app.login("other@example.com", PASSWORD).await;
        let m = mail.wait_for("lock@example.com", "Your account was locked").await;
        assert!(m.text.contains("5 failed sign-in attempts"), "{}", m.text);

        let admin = crate::admin::admin_token(app, "root@example.com").await;
        let users = app.call("admin.listUsers", json!({"query": "lock@"}), Some(&admin)).await.expect("list");
        let locked = &users["items"][0];
        assert!(locked["lockedUntil"].is_string(), "{users}");
        app.call("admin.unlockUser", json!({"userId": locked["id"]}), Some(&admin)).await.expect("unlocked");
        app.login("lock@example.com", PASSWORD).await;

        let activity = app.call("users.activity", json!({}), Some(&token_of(&app.login("lock@example.com", PASSWORD).await)))
            .await.expect("activity");
        let actions: Vec<&str> = activity["items"].as_array().expect("items").iter()
            .map(|e| e["action"].as_str().expect("action")).collect();
        assert!(actions.contains(&"account.locked") && actions.contains(&"admin.unlockUser"), "{actions:?}");
        let text = activity.to_string();
        assert!(!text.contains(PASSWORD) && !text.contains("wrong 1"), "no secret in the trail");
    }
}

mail_test! {
    /// sessions.list shows each session once with `current`; revoking one
    /// makes its access token fail on the next call; another user's session
    /// is NOT_FOUND.
    async fn sessions_list_and_revoke(app, _mail) where |c| { c.require_verified_email = Some(false); } {
        let a = app.signed_in("sam@example.com").await;
        let b = app.login("sam@example.com", PASSWORD).await;
        let (ta, tb) = (token_of(&a), token_of(&b));
        let list = app.call("sessions.list", json!({}), Some(&ta)).await.expect("list");
        let items = list["items"].as_array().expect("items");
        assert_eq!(items.len(), 2);
        assert_eq!(items.iter().filter(|s| s["current"] == true).count(), 1);
        let other = items.iter().find(|s| s["current"] == false).expect("the other session");
        assert_eq!(other["ip"], "127.0.0.1");

        let eve = app.signed_in("eve@example.com").await;
        let e = app.call("sessions.revoke", json!({"sessionId": other["id"]}), Some(&token_of(&eve))).await
            .expect_err("not eve's");
        assert_error(&e, -32004, "NOT_FOUND");
        app.call("auth.me", json!({}), Some(&tb)).await.expect("still live");

        app.call("sessions.revoke", json!({"sessionId": other["id"]}), Some(&ta)).await.expect("revoked");
        let e = app.call("auth.me", json!({}), Some(&tb)).await.expect_err("revoked at once");
        assert_error(&e, -32001, "TOKEN_INVALID");
        let e = app.call("sessions.revoke", json!({"sessionId": other["id"]}), Some(&ta)).await.expect_err("again");
        assert_error(&e, -32004, "NOT_FOUND");
        assert_eq!(app.call("sessions.list", json!({}), Some(&ta)).await.expect("list")["items"].as_array().map(Vec::len), Some(1));
    }
}

mail_test! {
    /// A 6-digit code by mail: 3 attempts, single use, newest only; signing
    /// in with it verifies the address. An unknown address is OTP_INVALID.
    async fn login_with_emailed_code(app, mail) {
        app.register("cody@example.com", PASSWORD).await;
        app.call("auth.requestLoginCode", json!({"email": "cody@example.com"}), None).await.expect("sent");
        let code = mail.wait_for("cody@example.com", "sign-in code").await.code();
        let wrong = if code == "000000" { "111111" } else { "000000" };
        for _ in 0..2 {
            let e = app.call("auth.loginWithCode", json!({"email": "cody@example.com", "code": wrong}), None)
                .await.expect_err("wrong code");
            assert_error(&e, -32012, "OTP_INVALID");
        }
        let tokens = app.call("auth.loginWithCode", json!({"email": "cody@example.com", "code": code}), None)
            .await.expect("signed in");
        assert_eq!(tokens["user"]["emailVerified"], true);
        let e = app.call("auth.loginWithCode", json!({"email": "cody@example.com", "code": code}), None)
            .await.expect_err("single use");
        assert_error(&e, -32012, "OTP_INVALID");
        app.login("cody@example.com", PASSWORD).await;

        app.call("auth.requestLoginCode", json!({"email": "cody@example.com"}), None).await.expect("sent");
        let code = mail.wait_nth("cody@example.com", "sign-in code", 2).await.code();
        let wrong = if code == "000000" { "111111" } else { "000000" };
        for expected in ["OTP_INVALID", "OTP_INVALID", "OTP_EXHAUSTED"] {
            let e = app.call("auth.loginWithCode", json!({"email": "cody@example.com", "code": wrong}), None)
                .await.expect_err("wrong");
            assert_eq!(e["data"]["reason"], expected);
        }
        let e = app.call("auth.loginWithCode", json!({"email": "cody@example.com", "code": code}), None)
            .await.expect_err("spent");
        assert_error(&e, -32012, "OTP_EXHAUSTED");
        let e = app.call("auth.loginWithCode", json!({"email": "cody@example.com", "code": wrong}), None)
            .await.expect_err("spent");
        assert_error(&e, -32012, "OTP_EXHAUSTED");
        let e = app.call("auth.loginWithCode", json!({"email": "nobody@example.com", "code": "123456"}), None)
            .await.expect_err("unknown");
        assert_error(&e, -32012, "OTP_INVALID");
    }
}

/// RFC 4648 base32 (no padding), as TOTP secrets are written.
pub(crate) fn base32_decode(s: &str) -> Vec<u8> {
    let (mut bits, mut buffer, mut out) = (0u32, 0u64, Vec::new());
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => panic!("not base32: {c}"),
        };
        buffer = (buffer << 5) | u64::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

/// RFC 6238 TOTP, written again here so the test checks the server against
/// an implementation of its own.
pub(crate) fn totp(secret_b32: &str, step: u64) -> String {
    let key = base32_decode(secret_b32);
    let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(&key).expect("key");
    mac.update(&step.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let o = (h[19] & 0xf) as usize;
    let n = (u32::from(h[o]) & 0x7f) << 24 | u32::from(h[o + 1]) << 16 | u32::from(h[o + 2]) << 8 | u32::from(h[o + 3]);
    format!("{:06}", n % 1_000_000)
}

pub(crate) fn step_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() / 30
}

mail_test! {
    /// enroll → confirm (recovery codes) → sign-in needs a code: none is
    /// MFA_REQUIRED, a used one is refused, the next one works, a recovery
    /// code works once → disable with a recovery code.
    async fn totp_mfa(app, _mail) where |c| { c.require_verified_email = Some(false); } {
        let t = token_of(&app.signed_in("mia@example.com").await);
        let e = app.call("mfa.confirmTotp", json!({"code": "123456"}), Some(&t)).await.expect_err("nothing pending");
        assert_error(&e, -32009, "INVALID_TRANSITION");
        let enrolled = app.call("mfa.enrollTotp", json!({}), Some(&t)).await.expect("enrolled");
        let secret = enrolled["secret"].as_str().expect("secret").to_owned();
        assert!(enrolled["otpauthUrl"].as_str().expect("url").starts_with("otpauth://totp/Trellis:mia@example.com?secret="));
        let step = step_now();
        let e = app.call("mfa.confirmTotp", json!({"code": totp(&secret, step + 5)}), Some(&t)).await.expect_err("wrong");
        assert_error(&e, -32012, "OTP_INVALID");
        let confirmed = app.call("mfa.confirmTotp", json!({"code": totp(&secret, step - 1)}), Some(&t)).await.expect("on");
        let recovery: Vec<String> = confirmed["recoveryCodes"].as_array().expect("codes").iter()
            .map(|c| c.as_str().expect("code").to_owned()).collect();
        assert_eq!(recovery.len(), 10);
        let e = app.call("mfa.enrollTotp", json!({}), Some(&t)).await.expect_err("already on");
        assert_error(&e, -32009, "ALREADY_EXISTS");

        assert_error(&login_err(app, "mia@example.com", PASSWORD).await, -32001, "MFA_REQUIRED");
        let used = json!({"email": "mia@example.com", "password": PASSWORD, "otp": totp(&secret, step - 1)});
        assert_error(&app.call("auth.login", used, None).await.expect_err("replayed code"), -32012, "OTP_INVALID");
        let next = json!({"email": "mia@example.com", "password": PASSWORD, "otp": totp(&secret, step_now())});
        let tokens = app.call("auth.login", next.clone(), None).await.expect("signed in with MFA");
        assert_eq!(tokens["user"]["mfaEnabled"], true);
        assert_error(&app.call("auth.login", next, None).await.expect_err("same code twice"), -32012, "OTP_INVALID");

        let with_recovery = json!({"email": "mia@example.com", "password": PASSWORD, "otp": recovery[0].to_uppercase()});
        app.call("auth.login", with_recovery.clone(), None).await.expect("recovery code");
        assert_error(&app.call("auth.login", with_recovery, None).await.expect_err("used"), -32012, "OTP_INVALID");

        let e = app.call("mfa.disable", json!({"code": "zzzzz-zzzzz"}), Some(&t)).await.expect_err("bad code");
        assert_error(&e, -32012, "OTP_INVALID");
        app.call("mfa.disable", json!({"code": recovery[1]}), Some(&t)).await.expect("off");
        let tokens = app.login("mia@example.com", PASSWORD).await;
        assert_eq!(tokens["user"]["mfaEnabled"], false);
        let activity = app.call("users.activity", json!({"limit": 200}), Some(&t)).await.expect("activity");
        let actions: Vec<&str> = activity["items"].as_array().expect("items").iter()
            .map(|e| e["action"].as_str().expect("action")).collect();
        for a in ["mfa.enrollTotp", "mfa.confirmTotp", "mfa.disable", "auth.login"] {
            assert!(actions.contains(&a), "{a} missing from {actions:?}");
        }
        assert!(!activity.to_string().contains(&secret), "the secret is never recorded");
    }
}

mail_test! {
    /// The profile changes; the activity pages newest first with a cursor
    /// and shows only the caller's own events, each with IP, user agent and
    /// request id.
    async fn profile_and_activity(app, _mail) where |c| { c.require_verified_email = Some(false); } {
        let t = token_of(&app.signed_in("pat@example.com").await);
        let other = token_of(&app.signed_in("quinn@example.com").await);
        let user = app.call("users.updateProfile", json!({"displayName": "  Pat Doe "}), Some(&t)).await.expect("updated");
        assert_eq!(user["displayName"], "Pat Doe");
        for _ in 0..3 {
            let _ = login_err(app, "pat@example.com", "not the password").await;
        }
        let page = app.call("users.activity", json!({"limit": 2}), Some(&t)).await.expect("page 1");
        let items = page["items"].as_array().expect("items");
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["action"], "auth.login");
        assert_eq!(items[0]["outcome"], "failure");
        assert_eq!(items[0]["detail"], "INVALID_CREDENTIALS");
        assert_eq!(items[0]["ip"], "127.0.0.1");
        assert!(items[0]["requestId"].is_string());
        let mut all: Vec<Value> = items.clone();
        let mut cursor = page["nextCursor"].clone();
        while cursor.is_string() {
            let p = app.call("users.activity", json!({"limit": 2, "cursor": cursor}), Some(&t)).await.expect("page");
            all.extend(p["items"].as_array().expect("items").iter().cloned());
            cursor = p["nextCursor"].clone();
        }
        let actions: Vec<&str> = all.iter().map(|e| e["action"].as_str().expect("action")).collect();
        assert_eq!(actions.last(), Some(&"auth.register"), "{actions:?}");
        assert!(actions.contains(&"users.updateProfile"));
        assert_eq!(actions.iter().filter(|a| **a == "auth.login").count(), 4, "{actions:?}");
        let theirs = app.call("users.activity", json!({}), Some(&other)).await.expect("other");
        assert!(!theirs.to_string().contains("users.updateProfile"));
        let e = app.call("users.activity", json!({"cursor": "garbage"}), Some(&t)).await.expect_err("bad cursor");
        assert_error(&e, -32602, "VALIDATION");
    }
}
