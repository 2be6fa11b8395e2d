use std::time::{Duration, Instant};

use anyhow::Context;
use diesel::sqlite::SqliteConnection;
use diesel::{ConnectionError, ConnectionResult};
use diesel_async::pooled_connection::bb8::Pool;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use futures::FutureExt;
use futures::future::BoxFuture;

use super::DbError;

pub(crate) type SqliteConn = SyncConnectionWrapper<SqliteConnection>;

const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/sqlite");

/// Applied to every new SQLite connection: WAL so readers never block the
/// writer, a busy timeout so concurrent writers wait instead of failing, and
/// enforced foreign keys.
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; \
     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;";

pub(crate) enum Backend {
    Pg(Pool<AsyncPgConnection>),
    Sqlite(Pool<SqliteConn>),
}

/// The database: a connection pool over PostgreSQL or SQLite.
pub struct Db {
    backend: Backend,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Postgres,
    Sqlite,
}

/// Pool settings.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub max_size: u32,
    pub connect_timeout: Duration,
}

impl Db {
    /// Connects to `url`: `postgres://…` or a SQLite file path.
    pub async fn connect(url: &str, opts: &PoolOptions) -> anyhow::Result<Self> {
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let mut config = ManagerConfig::default();
            config.recycling_method = RecyclingMethod::Fast;
            let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, config);
            let pool = Pool::builder()
                .max_size(opts.max_size)
                .connection_timeout(opts.connect_timeout)
                .build(manager)
                .await
                .context("failed to build the PostgreSQL pool")?;
            Backend::Pg(pool)
        } else {
            let path = url.strip_prefix("sqlite://").unwrap_or(url);
            let mut config = ManagerConfig::<SqliteConn>::default();
            config.recycling_method = RecyclingMethod::Fast;
            config.custom_setup = Box::new(establish_sqlite);
            let manager = AsyncDieselConnectionManager::<SqliteConn>::new_with_config(path, config);
            let pool = Pool::builder()
                .max_size(opts.max_size)
                .connection_timeout(opts.connect_timeout)
                .build(manager)
                .await
                .context("failed to build the SQLite pool")?;
            Backend::Sqlite(pool)
        };
        Ok(Self { backend })
    }

    pub(crate) fn backend(&self) -> &Backend {
        &self.backend
    }

    pub fn kind(&self) -> BackendKind {
        match self.backend {
            Backend::Pg(_) => BackendKind::Postgres,
            Backend::Sqlite(_) => BackendKind::Sqlite,
        }
    }

    /// Applies every pending migration of this backend.
    pub async fn migrate(&self) -> anyhow::Result<Vec<String>> {
        let applied = match &self.backend {
            Backend::Pg(pool) => {
                let conn = pool.get_owned().await.map_err(|e| anyhow::anyhow!("{e}"))?;
                let mut harness = diesel_async::AsyncMigrationHarness::new(conn);
                harness
                    .run_pending_migrations(PG_MIGRATIONS)
                    .map_err(|e| anyhow::anyhow!("{e}"))?
                    .iter()
                    .map(ToString::to_string)
                    .collect()
            }
            Backend::Sqlite(pool) => {
                let conn = pool.get_owned().await.map_err(|e| anyhow::anyhow!("{e}"))?;
                let mut harness = diesel_async::AsyncMigrationHarness::new(conn);
                harness
                    .run_pending_migrations(SQLITE_MIGRATIONS)
                    .map_err(|e| anyhow::anyhow!("{e}"))?
                    .iter()
                    .map(ToString::to_string)
                    .collect()
            }
        };
        Ok(applied)
    }

    /// A round trip to the database; returns its latency.
    pub async fn ping(&self) -> Result<Duration, DbError> {
        let start = Instant::now();
        super::db_run!(self, |conn| conn.batch_execute("SELECT 1").await.map_err(DbError::from)?);
        Ok(start.elapsed())
    }

    /// Connections open and idle, for reports.
    pub fn pool_state(&self) -> (u32, u32) {
        let s = match &self.backend {
            Backend::Pg(p) => p.state(),
            Backend::Sqlite(p) => p.state(),
        };
        (s.connections, s.idle_connections)
    }
}

fn establish_sqlite(url: &str) -> BoxFuture<'_, ConnectionResult<SqliteConn>> {
    async move {
        let mut conn = SqliteConn::establish(url).await?;
        conn.batch_execute(SQLITE_PRAGMAS).await.map_err(ConnectionError::CouldntSetupConfiguration)?;
        Ok(conn)
    }
    .boxed()
}
