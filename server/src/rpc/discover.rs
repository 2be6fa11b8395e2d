//! `rpc.discover` and `GET /openrpc.json`: the service describing itself.

use serde_json::json;
use trellis_schema::error::NoReason;
use trellis_schema::health::Empty;
use trellis_schema::rpc::{Discover, OpenRpcDocument};

use super::context::Ctx;
use super::error::HandlerError;
use super::registry::Handler;

/// The OpenRPC document, built once at start from the procedure list.
pub(crate) fn document() -> serde_json::Value {
    let methods: Vec<_> = trellis_schema::procedure::procedures()
        .into_iter()
        .map(|p| {
            json!({
                "name": p.method,
                "summary": p.summary,
                "params": [],
                "paramStructure": "by-name",
                "result": { "name": "result", "schema": {} },
                "errors": p.reasons.iter().map(|r| json!({
                    "code": r.code().number(),
                    "message": r.default_message(),
                    "data": { "reason": r.as_str() },
                })).collect::<Vec<_>>(),
                "x-kind": p.kind.as_str(),
                "x-access": p.access.describe(),
            })
        })
        .collect();
    json!({
        "openrpc": "1.3.2",
        "info": { "title": "Trellis", "version": env!("CARGO_PKG_VERSION") },
        "servers": [{ "name": "this server", "url": "/rpc" }],
        "methods": methods,
    })
}

impl Handler for Discover {
    async fn handle(ctx: Ctx, _: Empty) -> Result<OpenRpcDocument, HandlerError<NoReason>> {
        Ok(OpenRpcDocument(ctx.state.openrpc.clone()))
    }
}
