//! Storage: one pool enum over PostgreSQL and SQLite, and [`db_run!`], which
//! runs the same diesel code on whichever backend is configured.

mod error;
pub(crate) mod models;
pub mod pool;
pub(crate) mod schema;

pub use error::DbError;
pub use pool::Db;

/// Runs `$body` with `$conn` bound to a connection from `$db`: the PostgreSQL
/// pool, or the SQLite pool named by `$sqlite` (`write` or `read`). The body is
/// compiled once per backend, so it must be portable. The wait for the
/// connection and the time it is held are recorded as metrics, by `$sqlite`
/// (`read` or `write`; on PostgreSQL the same word tells the kind of work).
macro_rules! db_with {
    ($db:expr, $sqlite:ident, |$conn:ident| $body:expr) => {
        match $db.checkout() {
            $crate::db::pool::Backend::Pg(pool) => {
                let waited = std::time::Instant::now();
                let mut guard = pool.get().await.map_err($crate::db::DbError::from_pool)?;
                let _timer = $crate::observe::db_checkout(stringify!($sqlite), waited);
                let $conn = &mut *guard;
                $body
            }
            $crate::db::pool::Backend::Sqlite { $sqlite: pool, .. } => {
                let waited = std::time::Instant::now();
                let mut guard = pool.get().await.map_err($crate::db::DbError::from_pool)?;
                let _timer = $crate::observe::db_checkout(stringify!($sqlite), waited);
                let $conn = &mut *guard;
                $body
            }
        }
    };
}
pub(crate) use db_with;

/// [`db_with!`] for anything that writes (or reads in order to write).
macro_rules! db_run {
    ($db:expr, |$conn:ident| $body:expr) => {
        $crate::db::db_with!($db, write, |$conn| $body)
    };
}
pub(crate) use db_run;

/// [`db_with!`] for a body that only reads: on SQLite it runs on a read-only
/// connection, in place (see [`pool::SqliteReadConn`]).
macro_rules! db_read {
    ($db:expr, |$conn:ident| $body:expr) => {
        $crate::db::db_with!($db, read, |$conn| $body)
    };
}
pub(crate) use db_read;

/// Deletes in batches: runs `batch` (which deletes at most `size` rows and
/// says how many it found) until a batch finds fewer, so a large delete never
/// holds one long transaction or lock. Returns the rows found in all.
pub(crate) async fn in_batches<F, Fut>(size: usize, mut batch: F) -> Result<u64, DbError>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Result<usize, DbError>>,
{
    let mut total = 0;
    loop {
        let n = batch(size).await?;
        total += n as u64;
        if n < size {
            return Ok(total);
        }
    }
}
