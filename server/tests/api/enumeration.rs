//! Nothing tells whether an address has an account: register, login,
//! resend and reset answer an unknown and a known address alike, in about
//! the same time (the one timed check of the suite: two medians compared
//! within one run).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp};
use crate::mail_test;

const CALLS: usize = 20;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Strips what differs on every call (request ids, generated user ids).
fn shape(mut answer: Value) -> Value {
    if let Some(data) = answer.pointer_mut("/error/data").and_then(Value::as_object_mut) {
        data.remove("requestId");
    }
    if let Some(r) = answer.pointer_mut("/result/userId") {
        *r = json!("<id>");
    }
    answer
}

/// Timed comparisons made before a difference is taken as real.
const ATTEMPTS: usize = 3;

/// Calls `method` with params for a known and an unknown address in turn,
/// `CALLS` times each; asserts identical answers and medians within 25%. A
/// timing outside the band is measured again, after a pause, up to
/// [`ATTEMPTS`] times: other tests running beside this one can slow one side
/// for a few seconds, but a real difference fails every time.
async fn compare(app: &TestApp, method: &str, known: impl Fn(usize) -> Value, unknown: impl Fn(usize) -> Value) {
    let mut ratios = Vec::with_capacity(ATTEMPTS);
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        let ratio = medians_ratio(app, method, &known, &unknown).await;
        if (0.8..=1.25).contains(&ratio) {
            return;
        }
        ratios.push(format!("{ratio:.3}"));
    }
    panic!("{method}: known ÷ unknown median ratio outside 0.8–1.25 every time: {}", ratios.join(", "));
}

/// One timed comparison: the known address's median time ÷ the unknown's.
async fn medians_ratio(
    app: &TestApp,
    method: &str,
    known: &impl Fn(usize) -> Value,
    unknown: &impl Fn(usize) -> Value,
) -> f64 {
    let (mut tk, mut tu) = (Vec::new(), Vec::new());
    // One warm-up call each, not counted.
    let _ = app.rpc(method, known(CALLS), None).await;
    let _ = app.rpc(method, unknown(CALLS), None).await;
    for i in 0..CALLS {
        // Alternate which goes first, so neither always follows the other.
        let order = if i % 2 == 0 { [true, false] } else { [false, true] };
        let mut answers = [Value::Null, Value::Null];
        for is_known in order {
            let params = if is_known { known(i) } else { unknown(i) };
            let start = Instant::now();
            let answer = shape(app.rpc(method, params, None).await);
            if is_known {
                tk.push(start.elapsed())
            } else {
                tu.push(start.elapsed())
            }
            answers[usize::from(!is_known)] = answer;
        }
        assert_eq!(answers[0], answers[1], "{method}: a known and an unknown address are answered differently");
    }
    let (mk, mu) = (median(tk), median(tu));
    let ratio = mk.as_secs_f64() / mu.as_secs_f64();
    eprintln!("{method}: median known {mk:?}, unknown {mu:?}, ratio {ratio:.3}");
    ratio
}

mail_test! {
    async fn unknown_and_known_addresses_are_answered_alike(app, _mail) where |c| {
        c.lockout_threshold = 0;
    } {
        app.register("known@example.com", PASSWORD).await;
        compare(
            app,
            "auth.register",
            |_| json!({"email": "known@example.com", "password": PASSWORD}),
            |i| json!({"email": format!("new{i}-{}@example.com", uuid::Uuid::now_v7().simple()), "password": PASSWORD}),
        )
        .await;
        compare(
            app,
            "auth.login",
            |_| json!({"email": "known@example.com", "password": "not the password"}),
            |_| json!({"email": "unknown@example.com", "password": "not the password"}),
        )
        .await;
        for method in ["auth.resendVerification", "auth.requestPasswordReset"] {
            compare(
                app,
                method,
                |_| json!({"email": "known@example.com"}),
                |_| json!({"email": "unknown@example.com"}),
            )
            .await;
        }
    }
}
