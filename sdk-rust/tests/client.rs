//! The client against the real server, started in-process on a random port
//! with a SQLite database of its own per test.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use trellis_client::{CallOptions, Client, Error, Failure, RetryPolicy, Session};
use trellis_schema::Empty;
use trellis_schema::auth::{self, LoginParams, LoginReason, RefreshParams, RegisterParams};
use trellis_schema::health::{self, HealthStatus};
use trellis_schema::values::{Email, NewPassword, Password, Token};
use trellis_schema::{ErrorCode, Reason};
use trellis_server::{Application, Config};

const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123456789";
const PASSWORD: &str = "correct horse battery staple";

struct Server {
    url: String,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _data_dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::ephemeral(data_dir.path());
        config.jwt_secret = Some(JWT_SECRET.into());
        tweak(&mut config);
        let app = Application::build(config).await.expect("server builds");
        let url = format!("http://{}/rpc", app.local_addr());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async {
            let _ = rx.await;
        }));
        Self { url, shutdown: Some(tx), task: Some(task), _data_dir: data_dir }
    }

    fn client(&self) -> Client {
        Client::builder(&self.url).build().expect("client")
    }

    async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server ran");
        }
    }
}

/// An address nothing listens on (yet).
fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address")
}

fn unique_email() -> String {
    format!("user-{}@example.com", uuid::Uuid::now_v7().simple())
}

fn register_params(email: &str) -> RegisterParams {
    RegisterParams {
        email: Email::parse(email).expect("e-mail"),
        password: NewPassword::parse(PASSWORD.to_owned()).expect("password"),
        display_name: None,
    }
}

fn login_params(email: &str, password: &str) -> LoginParams {
    LoginParams {
        email: Email::parse(email).expect("e-mail"),
        password: Password::try_from(password.to_owned()).expect("password"),
        otp: None,
    }
}

/// Registers a fresh account; returns its e-mail.
async fn registered(client: &Client) -> String {
    let email = unique_email();
    client.auth().register(register_params(&email)).await.expect("registered");
    email
}

/// A retry policy with short waits that counts the retries.
fn counting_policy(max_retries: u32, min_delay: Duration) -> (RetryPolicy, Arc<AtomicU32>) {
    let retries = Arc::new(AtomicU32::new(0));
    let seen = retries.clone();
    let policy = RetryPolicy::default().max_retries(max_retries).min_delay(min_delay).on_retry(move |_| {
        seen.fetch_add(1, Ordering::SeqCst);
    });
    (policy, retries)
}

#[track_caller]
fn assert_api_error<R: trellis_schema::ErrorReason + std::fmt::Debug>(e: &Error<R>, code: ErrorCode, reason: Failure<R>)
where
    Failure<R>: PartialEq,
{
    let Error::Api(api) = e else { panic!("expected an API error, got {e:?}") };
    assert_eq!(api.code, code, "{e}");
    assert_eq!(api.reason, reason, "{e}");
    assert!(api.request_id.as_deref().is_some_and(|id| !id.is_empty()), "no request id: {e}");
}

/// Waits until the server refuses `access` as expired (the server allows a
/// few seconds of clock skew past the token's expiry).
async fn wait_until_expired(url: &str, access: &str) {
    let client = Client::builder(url).bearer_token(access).retry(RetryPolicy::none()).build().expect("client");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match client.auth().me().await {
            Err(e) if e.reason() == Some(&Failure::Common(Reason::TokenExpired)) => return,
            Ok(_) => {}
            Err(e) => panic!("unexpected {e}"),
        }
        assert!(Instant::now() < deadline, "the access token never expired");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_methods_and_plain_calls() {
    let server = Server::start().await;
    let client = server.client();
    let status = client.health().check().await.expect("health.check");
    assert_eq!(status.status, HealthStatus::Ok);
    let same = client.call::<health::Check>(Empty {}).await.expect("health.check by type");
    assert_eq!(same.version, status.version);
    let doc = client.rpc().discover().await.expect("rpc.discover");
    assert_eq!(doc.0["openrpc"].as_str().map(|v| v.starts_with("1.")), Some(true), "{:?}", doc.0["openrpc"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_register_login_me_refresh_logout() {
    let server = Server::start().await;
    let client = server.client();
    let email = registered(&client).await;

    let session = client.sign_in(login_params(&email, PASSWORD)).await.expect("signed in");
    assert!(session.is_signed_in());
    let me = session.auth().me().await.expect("auth.me");
    assert_eq!(me.user.email, email);
    assert_eq!(session.user().map(|u| u.id), Some(me.user.id));

    // An explicit refresh rotates both tokens.
    let before = session.tokens().expect("tokens");
    session.refresh().await.expect("refreshed");
    let after = session.tokens().expect("tokens");
    assert_ne!(before.refresh_token, after.refresh_token);
    assert_eq!(session.refresh_count(), 1);
    assert_eq!(session.auth().me().await.expect("auth.me after refresh").user.id, me.user.id);

    // The old refresh token is spent.
    let reuse = RefreshParams { refresh_token: Token::try_from(before.refresh_token).expect("token") };
    let e = client.auth().refresh(reuse).await.expect_err("a spent refresh token");
    assert_eq!(e.code(), Some(ErrorCode::Unauthenticated), "{e}");
    assert!(matches!(e.reason(), Some(Failure::Own(_))), "{e}");

    // Reuse ended the whole session (theft detection): the session learns it
    // at its next refresh. Sign in again for the logout part.
    let session = client.sign_in(login_params(&email, PASSWORD)).await.expect("signed in again");
    let access = session.tokens().expect("tokens").access_token;
    session.logout().await.expect("logged out");
    assert!(!session.is_signed_in());
    let e = session.auth().me().await.expect_err("signed out");
    assert_api_error(&e, ErrorCode::Unauthenticated, Failure::Common(Reason::CredentialsMissing));
    // The access token of the ended session is refused as well.
    let old = Client::builder(&server.url).bearer_token(&access).build().expect("client");
    let e = old.auth().me().await.expect_err("ended session");
    assert_api_error(&e, ErrorCode::Unauthenticated, Failure::Common(Reason::TokenInvalid));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_the_procedures_own_reason() {
    let server = Server::start().await;
    let client = server.client();
    let email = registered(&client).await;
    let e = client.auth().login(login_params(&email, "not the password")).await.expect_err("wrong password");
    assert_api_error(&e, ErrorCode::Unauthenticated, Failure::Own(LoginReason::InvalidCredentials));
    assert!(e.to_string().contains("INVALID_CREDENTIALS"), "{e}");
    // A request id chosen by the caller comes back in the error.
    let options = CallOptions::default().request_id("my-call-1");
    let e = client.call_with::<auth::Login>(login_params(&email, "nope"), options).await.expect_err("wrong");
    assert_eq!(e.request_id(), Some("my-call-1"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_of_three_with_one_failure() {
    let server = Server::start().await;
    let client = server.client();
    let email = registered(&client).await;

    let mut batch = client.batch();
    let check = batch.add::<health::Check>(Empty {});
    let bad_login = batch.add::<auth::Login>(login_params(&email, "not the password"));
    let login = batch.add::<auth::Login>(login_params(&email, PASSWORD));
    assert_eq!(batch.len(), 3);
    let results = batch.send().await.expect("batch sent");
    assert_eq!(results.len(), 3);

    let status = results.get(check).expect("health.check");
    assert_eq!(status.status, HealthStatus::Ok);
    let e = results.get(bad_login).expect_err("wrong password");
    assert_api_error(&e, ErrorCode::Unauthenticated, Failure::Own(LoginReason::InvalidCredentials));
    let tokens = results.get(login).expect("signed in");
    assert_eq!(tokens.user.email, email);

    // A session batch carries the access token.
    let session = Session::with_tokens(client.clone(), tokens);
    let mut batch = session.batch();
    let me = batch.add::<auth::Me>(Empty {});
    let results = batch.send().await.expect("batch sent");
    assert_eq!(results.get(me).expect("auth.me").user.email, email);

    // An empty batch sends nothing.
    assert!(client.batch().send().await.expect("empty batch").is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_is_retried_until_the_server_is_up() {
    let addr = free_addr();
    let (policy, retries) = counting_policy(6, Duration::from_millis(200));
    let client = Client::builder(format!("http://{addr}/rpc")).retry(policy).build().expect("client");
    let starter = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(800)).await;
        Server::start_with(|c| c.listen = addr).await
    });
    let status = client.health().check().await.expect("health.check once the server is up");
    assert_eq!(status.status, HealthStatus::Ok);
    assert!(retries.load(Ordering::SeqCst) >= 1, "the first attempt cannot have succeeded");
    starter.await.expect("server started").stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutation_is_retried_only_when_the_call_opts_in() {
    let addr = free_addr();
    let (policy, retries) = counting_policy(2, Duration::from_millis(300));
    let client = Client::builder(format!("http://{addr}/rpc")).retry(policy).build().expect("client");

    let e = client.auth().register(register_params(&unique_email())).await.expect_err("no server");
    assert!(matches!(e, Error::Connection(_)), "{e:?}");
    assert!(e.is_transient());
    assert_eq!(retries.load(Ordering::SeqCst), 0, "a mutation is not retried by default");

    let options = CallOptions { retry_mutation: true, ..CallOptions::default() };
    let started = Instant::now();
    let e = client
        .call_with::<auth::Register>(register_params(&unique_email()), options)
        .await
        .expect_err("still no server");
    assert!(matches!(e, Error::Connection(_)), "{e:?}");
    assert_eq!(retries.load(Ordering::SeqCst), 2);
    // Two waits: at least 300 ms, then at least 600 ms.
    assert!(started.elapsed() >= Duration::from_millis(900), "{:?}", started.elapsed());

    // A per-call policy replaces the client's.
    let (none, counted) = counting_policy(0, Duration::from_millis(10));
    let options = CallOptions::default().retry(none);
    let e = client.call_with::<health::Check>(Empty {}, options).await.expect_err("no server");
    assert!(matches!(e, Error::Connection(_)), "{e:?}");
    assert_eq!(counted.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_server_times_out() {
    // Accepts connections (in the kernel backlog) and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let client = Client::builder(format!("http://{addr}/rpc"))
        .timeout(Duration::from_millis(300))
        .retry(RetryPolicy::none())
        .build()
        .expect("client");
    let started = Instant::now();
    let e = client.health().check().await.expect_err("no answer");
    assert!(matches!(e, Error::Timeout), "{e:?}");
    // Far above the 300 ms timeout: only a call that never gives up fails this.
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    drop(listener);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_key_is_sent_as_x_api_key() {
    let server = Server::start().await;
    let client = Client::builder(&server.url).api_key("no-such-key").build().expect("client");
    let e = client.auth().me().await.expect_err("unknown key");
    assert_api_error(&e, ErrorCode::Unauthenticated, Failure::Common(Reason::ApiKeyInvalid));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_refreshes_an_expired_token_once_for_concurrent_calls() {
    let server = Server::start_with(|c| c.access_token_ttl_secs = 1).await;
    let client = server.client();
    let email = registered(&client).await;
    let single = client.sign_in(login_params(&email, PASSWORD)).await.expect("signed in");
    let shared = client.sign_in(login_params(&email, PASSWORD)).await.expect("signed in");
    let first = single.tokens().expect("tokens");
    wait_until_expired(&server.url, &first.access_token).await;

    // One call: the refresh happens on the way, unseen by the caller.
    let me = single.auth().me().await.expect("auth.me through an expired token");
    assert_eq!(me.user.email, email);
    assert_eq!(single.refresh_count(), 1);
    assert_ne!(single.tokens().expect("tokens").refresh_token, first.refresh_token);

    // Three concurrent calls meeting the expired token share one refresh (a
    // second refresh would reuse the refresh token and end the session).
    // `shared` signed in a little after `single`: wait for its own token too.
    let before_tokens = shared.tokens().expect("tokens");
    wait_until_expired(&server.url, &before_tokens.access_token).await;
    let before = before_tokens.refresh_token;
    let (a, b, c) = tokio::join!(shared.auth().me(), shared.auth().me(), shared.health().check());
    a.expect("first call");
    b.expect("second call");
    c.expect("third call");
    assert_eq!(shared.refresh_count(), 1);
    assert_ne!(shared.tokens().expect("tokens").refresh_token, before);
    assert!(shared.is_signed_in());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_refresh_signs_the_session_out() {
    let server = Server::start_with(|c| c.access_token_ttl_secs = 1).await;
    let client = server.client();
    let email = registered(&client).await;
    let session = client.sign_in(login_params(&email, PASSWORD)).await.expect("signed in");
    let tokens = session.tokens().expect("tokens");
    // Someone else spends the session's refresh token first.
    let stolen = RefreshParams { refresh_token: Token::try_from(tokens.refresh_token.clone()).expect("token") };
    client.auth().refresh(stolen).await.expect("refreshed elsewhere");
    wait_until_expired(&server.url, &tokens.access_token).await;

    let e = session.auth().me().await.expect_err("refresh refused");
    assert_eq!(e.code(), Some(ErrorCode::Unauthenticated), "{e}");
    assert_eq!(e.reason(), Some(&Failure::Common(Reason::TokenReused)), "{e}");
    assert!(!session.is_signed_in());
    assert_eq!(session.refresh_count(), 0);
    server.stop().await;
}
