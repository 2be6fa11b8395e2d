use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::pooled_connection::PoolError;

/// A storage failure, split the way callers must treat it.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database cannot be reached or the pool timed out: retryable.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A unique constraint refused the write.
    #[error("unique constraint violated: {0}")]
    UniqueViolation(String),
    #[error("record not found")]
    NotFound,
    #[error(transparent)]
    Other(anyhow::Error),
}

impl DbError {
    pub(crate) fn from_pool(e: bb8::RunError<PoolError>) -> Self {
        match e {
            bb8::RunError::TimedOut => Self::Unavailable("timed out waiting for a connection".into()),
            bb8::RunError::User(e) => Self::Unavailable(e.to_string()),
        }
    }
}

impl From<DieselError> for DbError {
    fn from(e: DieselError) -> Self {
        match e {
            DieselError::NotFound => Self::NotFound,
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                Self::UniqueViolation(info.message().to_owned())
            }
            DieselError::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                info,
            ) => Self::Unavailable(info.message().to_owned()),
            DieselError::DatabaseError(DatabaseErrorKind::Unknown, ref info)
                if is_connection_message(info.message()) =>
            {
                Self::Unavailable(info.message().to_owned())
            }
            DieselError::BrokenTransactionManager => Self::Unavailable("broken transaction".into()),
            other => Self::Other(other.into()),
        }
    }
}

fn is_connection_message(m: &str) -> bool {
    let m = m.to_ascii_lowercase();
    ["connection", "database is locked", "terminating", "shutting down", "broken pipe"]
        .iter()
        .any(|needle| m.contains(needle))
}
