//! The floor: a bare hyper server doing the least any JSON-RPC endpoint must
//! (read the body, parse it as JSON, answer), so the table shows what Trellis
//! costs above that.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

const ANSWER: &[u8] = br#"{"jsonrpc":"2.0","result":{"status":"ok"},"id":1}"#;
const PARSE_ERROR: &[u8] = br#"{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null}"#;

/// Trellis's default: the floor pays for the same header-read timer.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds a local port and serves it on the current runtime until that runtime stops.
pub async fn start() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(accept_loop(listener));
    Ok(addr)
}

/// The same shape as Trellis's accept loop: one task per connection, no
/// Nagle delay, hyper's auto builder with a header-read timeout.
async fn accept_loop(listener: TcpListener) {
    loop {
        let socket = match listener.accept().await {
            Ok((socket, _)) => socket,
            Err(_) => {
                // Out of file descriptors and the like: back off briefly, as Trellis does.
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        tokio::spawn(async move {
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
            let _ = builder.serve_connection(TokioIo::new(socket), service_fn(answer)).await;
        });
    }
}

async fn answer(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let parsed = match req.into_body().collect().await {
        Ok(body) => serde_json::from_slice::<serde_json::Value>(&body.to_bytes()).is_ok(),
        Err(_) => false,
    };
    Ok(if parsed { json_response(StatusCode::OK, ANSWER) } else { json_response(StatusCode::BAD_REQUEST, PARSE_ERROR) })
}

fn json_response(status: StatusCode, body: &'static [u8]) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from_static(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}
