//! Three real replicas behind a real HAProxy, sharing PostgreSQL and a
//! test-owned Redis: limits shared across replicas, sessions and keys ended
//! on one refused by all within 100 ms, and the failures a deployment meets
//! (Redis killed, a replica killed) met without failed calls or lost writes.
//!
//! Each test is `<name>::postgres`, run when `TEST_DATABASE_URL` was set at
//! build time. It fails, never skips, when `redis-server` or `haproxy` is
//! missing.

mod harness;
mod load;

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, assert_error};
use harness::{Answer, Auth, Cluster, REPLICAS, poll};

/// The database fallback that picks up sessions ended elsewhere, slowed to
/// a minute: only the Redis bus can explain a refusal within 100 ms.
const NO_SESSION_SYNC: (&str, &str) = ("TRELLIS_SESSION_SYNC_MS", "60000");

const WITHIN: Duration = Duration::from_millis(100);

/// Registers `email` and signs in, both at `url`; the access token.
async fn signed_in(c: &Cluster, url: &str, email: &str) -> String {
    let account = json!({"email": email, "password": PASSWORD});
    c.call(url, "auth.register", account.clone(), None).await.expect("registered");
    crate::orgs::token(&c.call(url, "auth.login", account, None).await.expect("signed in"))
}

/// A user signed in through the balancer and the organization they own.
async fn owner_and_org(c: &Cluster) -> (String, String) {
    let owner = signed_in(c, &c.balancer, "owner@example.com").await;
    let org = c.call(&c.balancer, "orgs.create", json!({"name": "Cluster", "slug": "cluster"}), Some(&owner)).await;
    (owner, org.expect("org created")["id"].as_str().expect("id").to_owned())
}

/// `apiKeys.create` params: a key of `org` that may read it, plus `extra`.
fn key_params(org: &str, name: &str, extra: Value) -> Value {
    let mut params = json!({"orgId": org, "name": name, "scopes": ["org:read"]});
    if let (Some(p), Some(e)) = (params.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    params
}

/// A new key of `org`, made through the balancer; the secret and its id.
async fn make_key(c: &Cluster, owner: &str, org: &str, extra: Value) -> (String, String) {
    let made = c.call(&c.balancer, "apiKeys.create", key_params(org, "cluster key", extra), Some(owner)).await;
    let made = made.expect("key made");
    (made["key"].as_str().expect("key").to_owned(), made["apiKey"]["id"].as_str().expect("id").to_owned())
}

/// A cheap call a key of `org` may make.
async fn read_org(c: &Cluster, url: &str, org: &str, key: &str) -> Answer {
    c.call_with_key(url, "orgs.get", json!({"orgId": org}), key).await
}

/// `limit` calls with `key` at each replica directly, all at once: about
/// `limit` pass in all (the limit refills a little during the burst), and
/// every other is RATE_LIMITED with `retryAfterMs`.
async fn assert_spread_calls_share(c: &Cluster, org: &str, key: &str, limit: usize) {
    let began = Instant::now();
    let calls = c.replica_urls().flat_map(|url| (0..limit).map(move |_| read_org(c, url, org, key)));
    let answers = futures::future::join_all(calls).await;
    let took = began.elapsed();
    let passed = answers.iter().filter(|a| a.is_ok()).count();
    eprintln!("{passed} of {} calls passed a shared limit of {limit} a minute, in {took:?}", answers.len());
    for e in answers.iter().filter_map(|a| a.as_ref().err()) {
        assert_error(e, -32029, "RATE_LIMITED");
        assert!(e["data"]["retryAfterMs"].as_u64().is_some_and(|ms| ms > 0), "{e}");
    }
    assert!(
        (limit - 2..=limit + 2).contains(&passed),
        "{passed} of {} calls spread over {REPLICAS} replicas passed a key limit of {limit} a minute (took {took:?})",
        answers.len()
    );
    assert!(took < Duration::from_secs(2), "the burst took {took:?}: too slow for the count to mean anything");
}

/// Polls `call` until it is refused; how long that took. The refusal must
/// give `reason`.
async fn refused_within<F: Future<Output = Answer>>(reason: &str, call: impl Fn() -> F) -> Option<Duration> {
    poll(Duration::from_millis(5), Duration::from_secs(3), || {
        let answer = call();
        async move {
            let Err(e) = answer.await else { return false };
            assert_error(&e, -32001, reason);
            true
        }
    })
    .await
}

/// Replicas 2 and 3 refuse `call(replica)` within 100 ms with `reason`.
async fn assert_replicas_2_and_3_refuse<F: Future<Output = Answer>>(
    what: &str,
    reason: &str,
    call: impl Fn(usize) -> F,
) {
    let (on2, on3) = futures::join!(refused_within(reason, || call(2)), refused_within(reason, || call(3)));
    eprintln!("{what} on replica 1: refused by replica 2 after {on2:?}, by replica 3 after {on3:?}");
    for (n, took) in [(2, on2), (3, on3)] {
        assert!(took.is_some_and(|t| t <= WITHIN), "{what} on replica 1: replica {n} refused it after {took:?}");
    }
}

mod key_limit_is_shared_by_the_replicas {
    use super::*;

    crate::postgres_variant! {{
        let c = &Cluster::start(&[]).await;
        let (owner, org) = owner_and_org(c).await;
        let (key, _) = make_key(c, &owner, &org, json!({"rateLimitPerMinute": 60})).await;
        assert_spread_calls_share(c, &org, &key, 60).await;
    }}
}

mod logout_is_refused_by_every_replica_within_100ms {
    use super::*;

    crate::postgres_variant! {{
        let c = &Cluster::start(&[NO_SESSION_SYNC]).await;
        let token = signed_in(c, c.replica(1), "leaving@example.com").await;
        let me = |n| c.call(c.replica(n), "auth.me", json!({}), Some(token.as_str()));
        for n in [2, 3] {
            me(n).await.expect("the token works on every replica");
        }
        c.call(c.replica(1), "auth.logout", json!({}), Some(&token)).await.expect("signed out");
        assert_replicas_2_and_3_refuse("signed out", "TOKEN_INVALID", me).await;
    }}
}

mod revoked_key_is_refused_by_every_replica_within_100ms {
    use super::*;

    crate::postgres_variant! {{
        let c = &Cluster::start(&[NO_SESSION_SYNC]).await;
        let (owner, org) = owner_and_org(c).await;
        let (key, id) = make_key(c, &owner, &org, json!({})).await;
        let read = |n| read_org(c, c.replica(n), &org, &key);
        for n in 1..=REPLICAS {
            read(n).await.expect("the key works on every replica");
        }
        c.call(c.replica(1), "apiKeys.revoke", json!({"id": id}), Some(&owner)).await.expect("revoked");
        assert_replicas_2_and_3_refuse("key revoked", "API_KEY_REVOKED", read).await;
    }}
}

/// `attempts` failed sign-ins, round-robin over the replicas (directly),
/// attempt `i` for the account and client address `who(i)` says; the errors.
async fn failed_sign_ins(c: &Cluster, attempts: usize, who: impl Fn(usize) -> (String, String)) -> Vec<Value> {
    let mut errors = Vec::new();
    for i in 0..attempts {
        let (email, client) = who(i);
        let params = json!({"email": email, "password": "not the password"});
        let req = c.request(c.replica(i % REPLICAS + 1), "auth.login", params, Auth::Anonymous);
        let answer = c.answer(req.header("x-forwarded-for", client)).await.expect("answered");
        errors.push(answer.expect_err("a wrong password is refused"));
    }
    errors
}

mod sign_in_limits_count_attempts_on_every_replica {
    use super::*;

    const PER_ACCOUNT: usize = 5;
    const PER_IP: usize = 4;

    /// The first `limit` attempts are let through (to be refused for the
    /// password), every later one is RATE_LIMITED.
    #[track_caller]
    fn assert_limited_after(errors: &[Value], limit: usize, per: &str) {
        let limited: Vec<bool> = errors.iter().map(|e| e["data"]["reason"] == "RATE_LIMITED").collect();
        let expected: Vec<bool> = (0..errors.len()).map(|i| i >= limit).collect();
        assert_eq!(limited, expected, "which attempts were RATE_LIMITED under a limit of {limit} {per}: {errors:?}");
        for e in errors.iter().skip(limit) {
            assert_error(e, -32029, "RATE_LIMITED");
            assert_eq!(e["data"]["limit"], limit, "{e}");
            assert!(e["data"]["retryAfterMs"].as_u64().is_some_and(|ms| ms > 0), "{e}");
        }
    }

    crate::postgres_variant! {{
        let c = &Cluster::start(&[
            ("TRELLIS_AUTH_RATE_PER_ACCOUNT", &PER_ACCOUNT.to_string()),
            ("TRELLIS_AUTH_RATE_PER_IP", &PER_IP.to_string()),
        ]).await;
        // One account, from a new address each time.
        let errors = failed_sign_ins(c, REPLICAS * PER_ACCOUNT, |i| {
            ("target@example.com".into(), format!("203.0.113.{i}"))
        }).await;
        assert_limited_after(&errors, PER_ACCOUNT, "per account");
        // One address, a new account each time.
        let errors = failed_sign_ins(c, REPLICAS * PER_IP, |i| {
            (format!("guess{i}@example.com"), "198.51.100.7".into())
        }).await;
        assert_limited_after(&errors, PER_IP, "per IP");
    }}
}

mod lockout_counts_failures_on_every_replica {
    use super::*;

    crate::postgres_variant! {{
        let c = &Cluster::start(&[("TRELLIS_LOCKOUT_THRESHOLD", "3")]).await;
        let account = json!({"email": "lock@example.com", "password": PASSWORD});
        c.call(&c.balancer, "auth.register", account.clone(), None).await.expect("registered");
        // Three wrong passwords, one at each replica, from three addresses.
        let errors = failed_sign_ins(c, 3, |i| ("lock@example.com".into(), format!("203.0.113.{i}"))).await;
        assert_error(&errors[0], -32001, "INVALID_CREDENTIALS");
        assert_error(&errors[1], -32001, "INVALID_CREDENTIALS");
        assert_error(&errors[2], -32023, "ACCOUNT_LOCKED");
        for url in c.replica_urls() {
            let e = c.call(url, "auth.login", account.clone(), None).await.expect_err("locked everywhere");
            assert_error(&e, -32023, "ACCOUNT_LOCKED");
            assert!(e["data"]["retryAfterMs"].as_u64().is_some_and(|ms| ms > 0), "{e}");
        }
    }}
}

/// Whether `health.check` answered `status`, with the database up and the
/// cache, Redis, up or not as `cache_ok` says.
fn health_is(health: &Value, status: &str, cache_ok: bool) -> bool {
    let checks = &health["checks"];
    health["status"] == status
        && checks["database"]["ok"] == true
        && checks["cache"]["ok"] == cache_ok
        && checks["cache"]["backend"] == "redis"
}

mod redis_killed_under_load_degrades_without_failed_calls {
    use super::*;

    crate::postgres_variant! {{
        let c = &Cluster::start(&[]).await;
        let (owner, org) = owner_and_org(c).await;
        let (key, _) = make_key(c, &owner, &org, json!({})).await;
        let lb = c.balancer.as_str();
        let step = |loop_index: usize, n: usize| {
            let (owner, org, key) = (owner.as_str(), org.as_str(), key.as_str());
            async move {
                let (what, req) = match (loop_index, n % 4) {
                    (0, _) => ("health.check", c.request(lb, "health.check", json!({}), Auth::Anonymous)),
                    (2, _) => ("orgs.get", c.request(lb, "orgs.get", json!({"orgId": org}), Auth::Key(key))),
                    (3, 0) => {
                        let account = json!({"email": format!("load{n}@example.com"), "password": PASSWORD});
                        ("auth.register", c.request(lb, "auth.register", account, Auth::Anonymous))
                    }
                    _ => ("auth.me", c.request(lb, "auth.me", json!({}), Auth::Token(owner))),
                };
                (what, c.answer(req).await)
            }
        };
        let began = Instant::now();
        let kill_at = Duration::from_secs(2);
        let workload = load::run(began, 4, Duration::from_secs(6), Duration::from_millis(20), step);
        // Meanwhile: kill Redis, then watch each replica's health.
        let watch = async {
            tokio::time::sleep_until((began + kill_at).into()).await;
            c.kill_redis();
            let seen = (1..=REPLICAS).map(|n| async move {
                let took = poll(Duration::from_millis(50), Duration::from_secs(4), move || async move {
                    health_is(&c.health(n).await, "degraded", false)
                }).await;
                (n, took, c.readyz(n).await)
            });
            futures::future::join_all(seen).await
        };
        let (calls, seen) = futures::join!(workload, watch);

        let failed: Vec<_> = calls.iter().filter(|call| !call.succeeded()).collect();
        eprintln!("{} calls through the balancer, {} failed; Redis killed at {kill_at:?}", calls.len(), failed.len());
        assert!(failed.is_empty(), "calls failed while Redis died: {failed:#?}");
        for (n, took, (status, readyz)) in seen {
            eprintln!("replica {n}: degraded after {took:?}; /readyz {status} {readyz}");
            assert!(took.is_some_and(|t| t <= Duration::from_secs(2)), "replica {n} said degraded after {took:?}");
            assert_eq!((status, &readyz["status"]), (200, &json!("degraded")), "replica {n} /readyz: {readyz}");
        }

        // Meanwhile each replica keeps each limit divided by the replicas it
        // last saw alive (three): a key limited to 30 a minute still gets
        // about 30 in all, not 90.
        let (outage_key, _) = make_key(c, &owner, &org, json!({"rateLimitPerMinute": 30})).await;
        assert_spread_calls_share(c, &org, &outage_key, 30).await;
        let health = c.health(1).await;
        assert!(health["checks"]["cache"]["fallbacks"].as_u64().is_some_and(|n| n > 0), "{health}");

        c.restart_redis().await;
        for n in 1..=REPLICAS {
            let took = poll(Duration::from_millis(50), Duration::from_secs(5), move || async move {
                health_is(&c.health(n).await, "ok", true)
            }).await;
            eprintln!("replica {n}: healthy again {took:?} after Redis came back");
            assert!(took.is_some(), "replica {n} still says {}", c.health(n).await);
        }
        let (limited, _) = make_key(c, &owner, &org, json!({"rateLimitPerMinute": 30})).await;
        assert_spread_calls_share(c, &org, &limited, 30).await;
    }}
}

mod replica_killed_under_load_loses_no_acknowledged_write {
    use super::*;

    /// The balancer checks every 500 ms and drops a replica after two failed
    /// checks: by then every call must succeed again.
    const DROPPED_WITHIN: Duration = Duration::from_secs(2);

    fn email(loop_index: usize, n: usize) -> String {
        format!("load{loop_index}-{n}@example.com")
    }

    crate::postgres_variant! {{
        let c = &Cluster::start(&[]).await;
        let (owner, org) = owner_and_org(c).await;
        let lb = c.balancer.as_str();
        let step = |loop_index: usize, n: usize| {
            let (owner, org) = (owner.as_str(), org.as_str());
            async move {
                let (what, req) = if n.is_multiple_of(2) {
                    let account = json!({"email": email(loop_index, n), "password": PASSWORD});
                    ("auth.register", c.request(lb, "auth.register", account, Auth::Anonymous))
                } else {
                    let params = key_params(org, &format!("load {loop_index}-{n}"), json!({}));
                    ("apiKeys.create", c.request(lb, "apiKeys.create", params, Auth::Token(owner)))
                };
                (what, c.answer(req).await)
            }
        };
        let began = Instant::now();
        let kill_at = Duration::from_millis(1500);
        let workload = load::run(began, 4, Duration::from_secs(5), Duration::from_millis(20), step);
        let kill = async {
            tokio::time::sleep_until((began + kill_at).into()).await;
            c.kill_replica(2);
        };
        let (calls, ()) = futures::join!(workload, kill);

        let failed: Vec<_> = calls.iter().filter(|call| !call.succeeded()).collect();
        let after_drop: Vec<_> = calls.iter().filter(|call| call.start > kill_at + DROPPED_WITHIN).collect();
        eprintln!(
            "{} calls, {} failed: {failed:#?}; {} made after the balancer dropped replica 2",
            calls.len(),
            failed.len(),
            after_drop.len()
        );
        for call in &failed {
            assert!(call.outcome.is_err(), "only the transport or the balancer may fail a call: {call:?}");
            assert!(
                call.end >= kill_at && call.start <= kill_at + DROPPED_WITHIN,
                "a call failed away from the kill at {kill_at:?}: {call:?}"
            );
        }
        assert!(failed.len() * 20 <= calls.len(), "more than 5% of the calls failed");
        assert!(!after_drop.is_empty(), "no call was made after the balancer dropped replica 2");
        assert!(after_drop.iter().all(|call| call.succeeded()), "calls failed after replica 2 was dropped");

        // Every acknowledged write is there.
        let acknowledged = |what| calls.iter().filter(move |call| call.what == what && call.succeeded());
        let emails: Vec<String> = acknowledged("auth.register").map(|call| email(call.loop_index, call.n)).collect();
        let sign_in = |email: String| async move {
            let answer = c.call(lb, "auth.login", json!({"email": email, "password": PASSWORD}), None).await;
            (email, answer)
        };
        let lost: Vec<_> = futures::stream::iter(emails.clone())
            .map(sign_in)
            .buffer_unordered(4)
            .filter(|(_, answer)| std::future::ready(answer.is_err()))
            .collect()
            .await;
        assert!(lost.is_empty(), "registrations acknowledged, then lost: {lost:?}");
        let mut listed = std::collections::HashSet::new();
        let mut cursor = Value::Null;
        loop {
            let params = json!({"orgId": org, "limit": 200, "cursor": cursor});
            let page = c.call(lb, "apiKeys.list", params, Some(&owner)).await.expect("keys listed");
            listed.extend(page["items"].as_array().expect("items").iter().map(|k| k["id"].to_string()));
            cursor = page["nextCursor"].clone();
            if cursor.is_null() {
                break;
            }
        }
        let key_id = |call: &load::Call| call.result().map(|made| made["apiKey"]["id"].to_string());
        let keys: Vec<String> = acknowledged("apiKeys.create").filter_map(key_id).collect();
        let missing: Vec<_> = keys.iter().filter(|id| !listed.contains(*id)).collect();
        eprintln!("{} accounts and {} keys acknowledged; {} keys missing", emails.len(), keys.len(), missing.len());
        assert!(missing.is_empty(), "keys acknowledged, then lost: {missing:?}");
    }}
}
