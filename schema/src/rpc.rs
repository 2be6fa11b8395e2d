//! `rpc.*`: the service describing itself.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::Empty;
use crate::error::NoReason;
use crate::procedure;

/// An OpenRPC 1.3 document.
#[derive(Debug, Clone, PartialEq, TS)]
#[ts(type = "Record<string, unknown>")]
pub struct OpenRpcDocument(pub serde_json::Value);

impl Serialize for OpenRpcDocument {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl JsonSchema for OpenRpcDocument {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("OpenRpcDocument")
    }
    fn schema_id() -> Cow<'static, str> {
        Cow::Borrowed(concat!(module_path!(), "::OpenRpcDocument"))
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "description": "An OpenRPC 1.3 document (https://spec.open-rpc.org)."
        })
    }
}

impl<'de> Deserialize<'de> for OpenRpcDocument {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde_json::Value::deserialize(d).map(Self)
    }
}

procedure! {
    /// The OpenRPC document describing every procedure.
    Discover {
        method: "rpc.discover",
        kind: Query,
        access: Public,
        params: Empty,
        output: OpenRpcDocument,
        reasons: NoReason,
    }
}

/// The id of one subscription, as its subscribe call answered it; items
/// carry it as `params.subscription`. Opaque; unique within its connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, TS, JsonSchema)]
pub struct SubscriptionId(#[schemars(length(min = 1, max = 64))] pub String);

/// The params of every unsubscribe method: which subscription to end.
#[derive(Debug, Clone, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UnsubscribeParams {
    pub subscription: SubscriptionId,
}

/// The procedures of this namespace, in order, for [`all_procedures!`](crate::all_procedures).
#[doc(hidden)]
#[macro_export]
macro_rules! __procedures_rpc {
    ($callback:ident; [$($acc:tt)*]; $($rest:ident)*) => {
        $crate::__collect_procedures! { $callback; [$($acc)*
            $crate::rpc::Discover,
        ]; $($rest)* }
    };
}
