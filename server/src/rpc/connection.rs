//! What a request's handler knows of its connection, and the server's stop
//! signal.

use std::sync::{Mutex, PoisonError};

use futures::future::BoxFuture;
use tokio::sync::watch;

/// What a request's handler knows of its connection (in every request's
/// extensions).
pub(crate) struct Connection {
    pub(super) stop: watch::Receiver<bool>,
    /// A WebSocket session handed over by an upgrade, run by the
    /// connection's task once hyper lets go of the socket, so it keeps the
    /// connection's slots and is part of graceful shutdown.
    pub(super) upgraded: Mutex<Option<BoxFuture<'static, ()>>>,
}

impl Connection {
    /// Turns `true` when the server begins to shut down.
    pub(crate) fn stopping(&self) -> watch::Receiver<bool> {
        self.stop.clone()
    }

    /// Runs `session` on this connection after the current response.
    pub(crate) fn take_over(&self, session: BoxFuture<'static, ()>) {
        *self.upgraded.lock().unwrap_or_else(PoisonError::into_inner) = Some(session);
    }
}

/// Completes when the server begins to shut down.
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|stopped| *stopped).await.is_err() {
        // The server is gone: nothing will stop this connection but itself.
        std::future::pending::<()>().await;
    }
}
