use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use diesel::sqlite::SqliteConnection;
use diesel::{ConnectionError, ConnectionResult};
use diesel_async::pooled_connection::bb8::Pool;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, PoolError, RecyclingMethod, SetupCallback,
};
use diesel_async::sync_connection_wrapper::{SpawnBlocking, SyncConnectionWrapper};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use futures::FutureExt;
use futures::future::BoxFuture;

use super::DbError;

/// A SQLite connection whose queries run on the blocking pool: writers, which
/// may wait on SQLite's busy timeout for the write lock.
pub(crate) type SqliteConn = SyncConnectionWrapper<SqliteConnection>;
/// A read-only SQLite connection whose queries run in place on the calling
/// worker. In WAL mode a reader never waits for a writer, so a read is a short
/// burst of CPU work, and the blocking pool's two thread hand-offs per query
/// (the larger part of a read's cost) are saved.
pub(crate) type SqliteReadConn = SyncConnectionWrapper<SqliteConnection, InPlace>;

/// Runs a connection's work on the calling thread.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InPlace;

impl SpawnBlocking for InPlace {
    fn spawn_blocking<'a, R>(
        &mut self,
        task: impl FnOnce() -> R + Send + 'static,
    ) -> BoxFuture<'a, Result<R, Box<dyn std::error::Error + Send + Sync + 'static>>>
    where
        R: Send + 'static,
    {
        async move { Ok(task()) }.boxed()
    }

    fn get_runtime() -> Self {
        InPlace
    }
}

const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/sqlite");

/// Applied to every new SQLite connection: WAL so readers never block the
/// writer, a busy timeout so concurrent writers wait instead of failing, and
/// enforced foreign keys.
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; \
     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;";
/// Read connections also refuse to write, so they never take the write lock.
const SQLITE_READ_PRAGMAS: &str = "PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; PRAGMA query_only = ON;";
/// SQLite has one writer at a time: more write connections only wait longer.
const SQLITE_MAX_WRITERS: u32 = 4;

pub(crate) enum Backend {
    Pg(Pool<AsyncPgConnection>),
    Sqlite { write: Pool<SqliteConn>, read: Pool<SqliteReadConn> },
}

/// The database: a connection pool over PostgreSQL or SQLite.
pub struct Db {
    backend: Backend,
    checkouts: Arc<AtomicU64>,
}

/// How many times connections were taken from the pool: one per query or
/// transaction. Tests read it to prove a path makes no query.
#[derive(Clone, Default)]
pub struct QueryCounter(Arc<AtomicU64>);

impl QueryCounter {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Postgres,
    Sqlite,
}

impl BackendKind {
    /// The backend a database URL names: `postgres://…`, else a SQLite file.
    pub fn of_url(url: &str) -> Self {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") { Self::Postgres } else { Self::Sqlite }
    }
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
        let backend = if BackendKind::of_url(url) == BackendKind::Postgres {
            Backend::Pg(build_pool::<AsyncPgConnection>(url, None, opts.max_size, opts).await?)
        } else {
            let path = url.strip_prefix("sqlite://").unwrap_or(url);
            let writers = opts.max_size.min(SQLITE_MAX_WRITERS);
            let setup: SetupCallback<SqliteConn> = Box::new(|url| establish_sqlite(url, SQLITE_PRAGMAS));
            let write = build_pool(path, Some(setup), writers, opts).await?;
            // The write pool's first connection has switched the file to WAL
            // before any read connection opens it.
            drop(write.get().await.map_err(|e| anyhow::anyhow!("failed to open the SQLite database: {e}"))?);
            let setup: SetupCallback<SqliteReadConn> = Box::new(|url| establish_sqlite(url, SQLITE_READ_PRAGMAS));
            let read = build_pool(path, Some(setup), opts.max_size, opts).await?;
            Backend::Sqlite { write, read }
        };
        Ok(Self { backend, checkouts: Arc::default() })
    }

    /// Whether this is PostgreSQL (for the few statements only it has).
    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self.backend, Backend::Pg(_))
    }

    /// The backend, counting one checkout (see [`QueryCounter`]).
    pub(crate) fn checkout(&self) -> &Backend {
        self.checkouts.fetch_add(1, Ordering::Relaxed);
        &self.backend
    }

    /// Connections open in the pool(s), and idle among them.
    pub(crate) fn pool_state(&self) -> (u32, u32) {
        match &self.backend {
            Backend::Pg(pool) => {
                let s = pool.state();
                (s.connections, s.idle_connections)
            }
            Backend::Sqlite { write, read } => {
                let (w, r) = (write.state(), read.state());
                (w.connections + r.connections, w.idle_connections + r.idle_connections)
            }
        }
    }

    pub fn query_counter(&self) -> QueryCounter {
        QueryCounter(self.checkouts.clone())
    }

    pub fn kind(&self) -> BackendKind {
        match self.backend {
            Backend::Pg(_) => BackendKind::Postgres,
            Backend::Sqlite { .. } => BackendKind::Sqlite,
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
            Backend::Sqlite { write: pool, .. } => {
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
        super::db_read!(self, |conn| conn.batch_execute("SELECT 1").await.map_err(DbError::from)?);
        Ok(start.elapsed())
    }
}

/// A pool of `max_size` connections to `url`, made by `setup` (or the
/// default connect), checked out without a test query.
async fn build_pool<C>(
    url: &str,
    setup: Option<SetupCallback<C>>,
    max_size: u32,
    opts: &PoolOptions,
) -> anyhow::Result<Pool<C>>
where
    C: AsyncConnection + 'static,
    AsyncDieselConnectionManager<C>: bb8::ManageConnection<Error = PoolError>,
{
    let mut config = ManagerConfig::<C>::default();
    config.recycling_method = RecyclingMethod::Fast;
    if let Some(setup) = setup {
        config.custom_setup = setup;
    }
    let manager = AsyncDieselConnectionManager::<C>::new_with_config(url, config);
    Pool::builder()
        .max_size(max_size)
        .connection_timeout(opts.connect_timeout)
        .build(manager)
        .await
        .map_err(|e| anyhow::anyhow!("failed to build the database pool: {e}"))
}

fn establish_sqlite<'a, S>(
    url: &'a str,
    pragmas: &'static str,
) -> BoxFuture<'a, ConnectionResult<SyncConnectionWrapper<SqliteConnection, S>>>
where
    S: SpawnBlocking + Send + 'static,
    SyncConnectionWrapper<SqliteConnection, S>: AsyncConnection,
{
    async move {
        let mut conn = SyncConnectionWrapper::<SqliteConnection, S>::establish(url).await?;
        conn.batch_execute(pragmas).await.map_err(ConnectionError::CouldntSetupConfiguration)?;
        Ok(conn)
    }
    .boxed()
}
