//! `rpc.discover` and `GET /openrpc.json`: the service describing itself.

use trellis_schema::Empty;
use trellis_schema::error::NoReason;
use trellis_schema::rpc::{Discover, OpenRpcDocument};

use super::error::HandlerError;
use super::registry::Handler;
use crate::access::PublicCtx;

/// The OpenRPC document, built once at start from the procedure list: the
/// very value `just gen` writes to `schema/openrpc.json`.
pub(crate) fn document() -> serde_json::Value {
    trellis_schema::openrpc::document()
}

impl Handler for Discover {
    async fn handle(ctx: PublicCtx, _: Empty) -> Result<OpenRpcDocument, HandlerError<NoReason>> {
        Ok(OpenRpcDocument(ctx.state.openrpc.clone()))
    }
}
