//! The accept loop: bounded connections, header read timeout, and graceful
//! shutdown (stop accepting, let in-flight calls finish, then close).

use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::http::{Front, handle};

pub(crate) struct ServeOptions {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub shutdown_grace: Duration,
}

pub(crate) async fn serve(
    listener: TcpListener,
    front: Arc<Front>,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()> + Send,
    on_shutdown: impl FnOnce() + Send,
) {
    let permits = Arc::new(Semaphore::new(opts.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);

    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let (mut socket, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: back off briefly.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, limit = opts.max_connections, "connection limit reached");
                    tokio::spawn(async move {
                        let _ = socket
                            .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                            .await;
                    });
                    continue;
                };
                let _ = socket.set_nodelay(true);
                let front = front.clone();
                let mut stop = stop_rx.clone();
                let header_timeout = opts.header_read_timeout;
                connections.spawn(async move {
                    let _permit = permit;
                    let svc = service_fn(move |req| handle(front.clone(), peer, req));
                    let mut builder = auto::Builder::new(TokioExecutor::new());
                    builder.http1().timer(TokioTimer::new()).header_read_timeout(header_timeout);
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(socket), svc);
                    tokio::pin!(conn);
                    let result = tokio::select! {
                        r = conn.as_mut() => r,
                        () = async { drop(stop.wait_for(|stopped| *stopped).await) } => {
                            conn.as_mut().graceful_shutdown();
                            conn.await
                        }
                    };
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                });
            }
        }
    }

    tracing::info!(open = connections.len(), "shutting down: no new connections, finishing in-flight calls");
    on_shutdown();
    let _ = stop_tx.send(true);
    let drained =
        tokio::time::timeout(opts.shutdown_grace, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(open = connections.len(), "shutdown grace period over; closing remaining connections");
        connections.shutdown().await;
    }
}
