use std::sync::Once;

use serde_json::{Value, json};
use tokio::sync::oneshot;
use trellis_server::{Application, Config};

pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123456789";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub addr: std::net::SocketAddr,
    /// The metrics listener's address, when `metrics_listen` is set.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// The settings it runs with (its database, for tools run beside it).
    pub config: Config,
    /// Counts the server's database checkouts.
    pub queries: trellis_server::db::pool::QueryCounter,
    pub url: String,
    pub http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    pg_database: Option<(String, String)>,
    _data_dir: tempfile::TempDir,
}

fn init_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            trellis_server::telemetry::init(trellis_server::config::LogFormat::Pretty);
        }
    });
}

/// An HTTP client for the tests. In a whole-workspace build reqwest carries
/// rustls without a crypto provider (feature unification with the client
/// crate), so the ring provider is installed first; elsewhere this is a no-op.
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// The failure of a PostgreSQL variant that was built to be ignored (no
/// `TEST_DATABASE_URL` at build time) but is run anyway, as
/// `--include-ignored` does, without the variable.
pub const POSTGRES_NOT_BUILT: &str =
    "TEST_DATABASE_URL is not set, so this PostgreSQL variant (ignored in a build made without it) cannot run";

/// The PostgreSQL server the tests make their databases on, from
/// `TEST_DATABASE_URL`. `None` when it is unset and was unset when the tests
/// were built too (their PostgreSQL variants are then reported ignored). Built
/// with it but run without it, a PostgreSQL variant fails: it never passes
/// without having run.
pub fn postgres_admin_url() -> Option<String> {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if cfg!(postgres_tests) => panic!(
            "TEST_DATABASE_URL is not set, but the tests were built with it, so their PostgreSQL variants \
             must run: set it again, or rebuild without it to have them reported as ignored"
        ),
        _ => None,
    }
}

/// A server on a random port with a database of its own. `None` when the
/// backend is PostgreSQL and `TEST_DATABASE_URL` is not set (see
/// [`postgres_admin_url`]).
pub async fn try_spawn(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Option<TestApp> {
    init_logs();
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::ephemeral(data_dir.path());
    config.jwt_secret = Some(JWT_SECRET.into());
    let pg_database = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => {
            let admin_url = postgres_admin_url()?;
            let (name, url) = create_pg_database(&admin_url).await;
            config.database_url = Some(url);
            Some((admin_url, name))
        }
    };
    tweak(&mut config);
    let app = Application::build(config.clone()).await.expect("server builds");
    let addr = app.local_addr();
    let metrics_addr = app.metrics_addr();
    let queries = app.query_counter();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async {
        let _ = rx.await;
    }));
    Some(TestApp {
        addr,
        metrics_addr,
        config,
        queries,
        url: format!("http://{addr}/rpc"),
        http: http_client(),
        shutdown: Some(tx),
        task: Some(task),
        pg_database,
        _data_dir: data_dir,
    })
}

/// A server whose mail goes to `sink` (so sign-in needs a verified address,
/// unless `tweak` says otherwise).
pub async fn try_spawn_with_mail(
    backend: Backend,
    sink: &crate::mail_sink::MailSink,
    tweak: impl FnOnce(&mut Config),
) -> Option<TestApp> {
    let url = sink.url();
    try_spawn(backend, move |c| {
        c.smtp_url = Some(url);
        c.mail_poll_ms = 100;
        c.public_url = "https://app.example.test".into();
        tweak(c);
    })
    .await
}

pub async fn spawn(backend: Backend) -> Option<TestApp> {
    try_spawn(backend, |_| {}).await
}

pub async fn spawn_sqlite() -> TestApp {
    spawn(Backend::Sqlite).await.expect("SQLite always works")
}

/// Creates an empty database `trellis_test_<uuid>` on the server of
/// `admin_url`; returns its name and its URL.
pub async fn create_pg_database(admin_url: &str) -> (String, String) {
    let name = format!("trellis_test_{}", uuid::Uuid::now_v7().simple());
    pg_admin(admin_url, &format!("CREATE DATABASE {name}")).await;
    let url = replace_db_name(admin_url, &name);
    (name, url)
}

fn replace_db_name(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let cut = base.rfind('/').filter(|&i| i > "postgres://".len()).unwrap_or(base.len());
    let mut out = format!("{}/{name}", &base[..cut]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

pub async fn pg_admin(admin_url: &str, sql: &str) {
    use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
    let mut conn = AsyncPgConnection::establish(admin_url).await.expect("connect to TEST_DATABASE_URL");
    conn.batch_execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

impl TestApp {
    /// Stops the server gracefully and drops its PostgreSQL database.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server ran");
        }
        if let Some((admin, name)) = self.pg_database.take() {
            pg_admin(&admin, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
        }
    }

    /// Posts a raw body to `/rpc`.
    pub async fn post(&self, body: impl Into<String>) -> reqwest::Response {
        self.http
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body.into())
            .send()
            .await
            .expect("request sent")
    }

    /// Posts a raw body; returns status and parsed body (`Null` when empty).
    pub async fn post_json(&self, body: impl Into<String>) -> (u16, Value) {
        let resp = self.post(body).await;
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let value = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("JSON answer") };
        (status, value)
    }

    /// One call; the whole response object.
    pub async fn rpc(&self, method: &str, params: Value, token: Option<&str>) -> Value {
        let mut req =
            self.http.post(&self.url).json(&json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1}));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("request sent");
        assert_eq!(resp.status(), 200);
        resp.json().await.expect("JSON answer")
    }

    /// One call: `Ok(result)` or `Err(error object)`.
    pub async fn call(&self, method: &str, params: Value, token: Option<&str>) -> Result<Value, Value> {
        let mut r = self.rpc(method, params, token).await;
        match r.get_mut("error") {
            Some(e) => Err(e.take()),
            None => Ok(r["result"].take()),
        }
    }

    pub async fn register(&self, email: &str, password: &str) -> Value {
        self.call("auth.register", json!({"email": email, "password": password}), None).await.expect("registered")
    }

    pub async fn login(&self, email: &str, password: &str) -> Value {
        self.call("auth.login", json!({"email": email, "password": password}), None).await.expect("signed in")
    }

    /// Registers, verifies the address with the token from the mail, and
    /// signs in; returns the tokens.
    pub async fn verified_in(&self, mail: &crate::mail_sink::MailSink, email: &str) -> Value {
        self.register(email, PASSWORD).await;
        let token = mail.wait_for(email, "Confirm your e-mail").await.link_token();
        self.call("auth.verifyEmail", json!({"token": token}), None).await.expect("verified");
        self.login(email, PASSWORD).await
    }

    /// One call with an API key in `X-Api-Key`.
    pub async fn call_with_key(&self, method: &str, params: Value, key: &str) -> Result<Value, Value> {
        let body = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1});
        let resp = self.http.post(&self.url).header("x-api-key", key).json(&body).send().await.expect("sent");
        let mut r: Value = resp.json().await.expect("JSON answer");
        match r.get_mut("error") {
            Some(e) => Err(e.take()),
            None => Ok(r["result"].take()),
        }
    }

    /// Registers and signs in; returns the tokens.
    pub async fn signed_in(&self, email: &str) -> Value {
        self.register(email, PASSWORD).await;
        self.login(email, PASSWORD).await
    }
}

pub const PASSWORD: &str = "correct horse battery staple";

/// Asserts an error object's code and reason, and that it carries a request id.
#[track_caller]
pub fn assert_error(err: &Value, code: i64, reason: &str) {
    assert_eq!(err["code"], code, "{err}");
    assert_eq!(err["data"]["reason"], reason, "{err}");
    assert!(err["data"]["requestId"].as_str().is_some_and(|s| !s.is_empty()), "no requestId: {err}");
}

/// Defines a test of a server whose mail goes to an SMTP sink, on SQLite and
/// again on PostgreSQL (`name::postgres`, ignored unless `TEST_DATABASE_URL`
/// was set when the tests were built). An optional
/// `where |config| { ... }` changes the settings.
#[macro_export]
macro_rules! mail_test {
    ($(#[$meta:meta])* async fn $name:ident($app:ident, $mail:ident) $(where |$c:ident| $tweak:block)? $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($app: &$crate::helpers::TestApp, $mail: &$crate::mail_sink::MailSink) $body

            #[allow(unused_variables)]
            fn tweak(config: &mut trellis_server::Config) {
                $( let $c = config; $tweak )?
            }

            async fn on(backend: $crate::helpers::Backend) {
                let sink = $crate::mail_sink::MailSink::start().await;
                let app = $crate::helpers::try_spawn_with_mail(backend, &sink, tweak)
                    .await
                    .expect($crate::helpers::POSTGRES_NOT_BUILT);
                run(&app, &sink).await;
                app.stop().await;
                sink.stop();
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                on($crate::helpers::Backend::Sqlite).await;
            }

            $crate::postgres_variant! {{
                on($crate::helpers::Backend::Postgres).await;
            }}
        }
    };
}

/// [`db_test!`] with changed settings: `async fn name(app) where |config| { ... } { body }`.
#[macro_export]
macro_rules! db_test_with {
    ($(#[$meta:meta])* async fn $name:ident($app:ident) where |$c:ident| $tweak:block $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($app: &$crate::helpers::TestApp) $body

            fn tweak($c: &mut trellis_server::Config) $tweak

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = $crate::helpers::try_spawn($crate::helpers::Backend::Sqlite, tweak).await.expect("SQLite");
                run(&app).await;
                app.stop().await;
            }

            $crate::postgres_variant! {{
                let app = $crate::helpers::try_spawn($crate::helpers::Backend::Postgres, tweak)
                    .await
                    .expect($crate::helpers::POSTGRES_NOT_BUILT);
                run(&app).await;
                app.stop().await;
            }}
        }
    };
}

/// Defines a test that runs on SQLite (`name::sqlite`), and again on
/// PostgreSQL (`name::postgres`, ignored unless `TEST_DATABASE_URL` was set
/// when the tests were built).
#[macro_export]
macro_rules! db_test {
    ($(#[$meta:meta])* async fn $name:ident($app:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($app: &$crate::helpers::TestApp) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = $crate::helpers::spawn($crate::helpers::Backend::Sqlite).await.expect("SQLite");
                run(&app).await;
                app.stop().await;
            }

            $crate::postgres_variant! {{
                let app = $crate::helpers::spawn($crate::helpers::Backend::Postgres)
                    .await
                    .expect($crate::helpers::POSTGRES_NOT_BUILT);
                run(&app).await;
                app.stop().await;
            }}
        }
    };
}

/// The `postgres` test of [`db_test!`], [`db_test_with!`] and [`mail_test!`]:
/// built to run when `TEST_DATABASE_URL` was set at build time
/// (`cfg(postgres_tests)`, from `server/build.rs`), otherwise reported as
/// ignored with the reason, so a run without PostgreSQL shows what it left out.
#[macro_export]
macro_rules! postgres_variant {
    ($body:block) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        #[cfg_attr(not(postgres_tests), ignore = "PostgreSQL: TEST_DATABASE_URL not set when the tests were built")]
        async fn postgres() $body
    };
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

impl TestApp {
    /// Runs a statement on the server's database, beside the server: to
    /// write what no procedure can (a row as another replica or an old
    /// version left it) or to look at what is stored. Returns the rows changed.
    pub async fn sql(&self, sql: &str) -> usize {
        let url = self.config.database_url();
        if url.starts_with("postgres") {
            use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
            let mut conn = AsyncPgConnection::establish(&url).await.expect("connect");
            diesel::sql_query(sql).execute(&mut conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
        } else {
            let sql = sql.to_owned();
            tokio::task::spawn_blocking(move || {
                use diesel::{Connection, RunQueryDsl, SqliteConnection};
                let mut conn = SqliteConnection::establish(&url).expect("open");
                diesel::sql_query("PRAGMA busy_timeout = 5000").execute(&mut conn).expect("busy timeout");
                diesel::sql_query(&sql).execute(&mut conn).unwrap_or_else(|e| panic!("{sql}: {e}"))
            })
            .await
            .expect("ran")
        }
    }

    /// The value of a query of one row with one integer column named `n`.
    pub async fn sql_count(&self, sql: &str) -> i64 {
        let url = self.config.database_url();
        if url.starts_with("postgres") {
            use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
            let mut conn = AsyncPgConnection::establish(&url).await.expect("connect");
            let c: Count = diesel::sql_query(sql).get_result(&mut conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
            c.n
        } else {
            let sql = sql.to_owned();
            tokio::task::spawn_blocking(move || {
                use diesel::{Connection, RunQueryDsl, SqliteConnection};
                let mut conn = SqliteConnection::establish(&url).expect("open");
                diesel::sql_query("PRAGMA busy_timeout = 5000").execute(&mut conn).expect("busy timeout");
                let c: Count = diesel::sql_query(&sql).get_result(&mut conn).unwrap_or_else(|e| panic!("{sql}: {e}"));
                c.n
            })
            .await
            .expect("ran")
        }
    }
}
