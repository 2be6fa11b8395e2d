//! HTTP response bodies, shared by the HTTP front and the WebSocket upgrade.

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub(crate) type HttpBody = UnsyncBoxBody<Bytes, BoxError>;

const JSON: HeaderValue = HeaderValue::from_static("application/json");

pub(crate) fn json_response(status: StatusCode, body: impl Into<Bytes>) -> Response<HttpBody> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, JSON);
    r
}

pub(crate) fn full(body: impl Into<Bytes>) -> HttpBody {
    Full::new(body.into()).map_err(|never| match never {}).boxed_unsync()
}
