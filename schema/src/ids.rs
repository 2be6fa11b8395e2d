//! Typed ids: one type per kind of object, so a user's id cannot be passed
//! where an organization's is expected, in Rust (a compile error) or in
//! TypeScript (each is a branded string: `string & { readonly __brand:
//! "OrgId" }`).
//!
//! On the wire an id is its UUID as a string (`#[serde(transparent)]`), as
//! before. Every id is a UUID v7, so ids order by creation (list cursors rely
//! on it). With the `diesel` feature (the server's), each maps to a `Text`
//! column on PostgreSQL and SQLite, the one place that mapping is written.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! ids {
    ($( $(#[$doc:meta])* $name:ident, example = $example:literal $(, ts = $ts:literal)?; )*) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
        #[serde(transparent)]
        #[cfg_attr(feature = "diesel", derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow))]
        #[cfg_attr(feature = "diesel", diesel(sql_type = diesel::sql_types::Text))]
        pub struct $name(Uuid);

        impl $name {
            /// A fixed id used in the examples of the reference (and by tests
            /// that fill examples with real ids). Never made by the server.
            pub const EXAMPLE: Self = Self(Uuid::from_u128($example));

            /// A new id (UUID v7: ordered by creation).
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            pub const fn uuid(self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }

        impl ts_rs::TS for $name {
            type WithoutGenerics = Self;
            type OptionInnerType = Self;

            fn docs() -> Option<String> {
                Some(doc_comment(&[$(stringify!($doc)),*]))
            }
            fn name(_: &ts_rs::Config) -> String {
                stringify!($name).to_owned()
            }
            fn inline(_: &ts_rs::Config) -> String {
                // The type given, else a string branded with the name.
                let choices: &[&str] = &[$($ts,)? concat!("string & { readonly __brand: \"", stringify!($name), "\" }")];
                choices[0].to_owned()
            }
            fn decl(cfg: &ts_rs::Config) -> String {
                format!("type {} = {};", stringify!($name), <Self as ts_rs::TS>::inline(cfg))
            }
            fn decl_concrete(cfg: &ts_rs::Config) -> String {
                <Self as ts_rs::TS>::decl(cfg)
            }
            fn output_path() -> Option<std::path::PathBuf> {
                Some(std::path::PathBuf::from(concat!(stringify!($name), ".ts")))
            }
        }

        #[cfg(feature = "diesel")]
        impl diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg> for $name {
            fn to_sql<'b>(&'b self, out: &mut diesel::serialize::Output<'b, '_, diesel::pg::Pg>) -> diesel::serialize::Result {
                use std::io::Write as _;
                let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
                out.write_all(self.0.as_hyphenated().encode_lower(&mut buf).as_bytes())?;
                Ok(diesel::serialize::IsNull::No)
            }
        }

        #[cfg(feature = "diesel")]
        impl diesel::serialize::ToSql<diesel::sql_types::Text, diesel::sqlite::Sqlite> for $name {
            fn to_sql<'b>(&'b self, out: &mut diesel::serialize::Output<'b, '_, diesel::sqlite::Sqlite>) -> diesel::serialize::Result {
                out.set_value(self.0.to_string());
                Ok(diesel::serialize::IsNull::No)
            }
        }

        #[cfg(feature = "diesel")]
        impl<DB> diesel::deserialize::FromSql<diesel::sql_types::Text, DB> for $name
        where
            DB: diesel::backend::Backend,
            String: diesel::deserialize::FromSql<diesel::sql_types::Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> diesel::deserialize::Result<Self> {
                let text = <String as diesel::deserialize::FromSql<diesel::sql_types::Text, DB>>::from_sql(bytes)?;
                Ok(Self(Uuid::parse_str(&text)?))
            }
        }
    )*};
}

/// A JSDoc comment from the `doc = "..."` attributes of a type.
fn doc_comment(metas: &[&str]) -> String {
    let lines: Vec<&str> = metas
        .iter()
        .filter_map(|m| m.strip_prefix("doc = r\"").or_else(|| m.strip_prefix("doc = \"")))
        .map(|m| m.strip_suffix('"').unwrap_or(m).trim())
        .collect();
    format!("/**\n{} */\n", lines.iter().map(|l| format!(" * {l}\n")).collect::<String>())
}

ids! {
    /// A user's id.
    UserId, example = 0x0193_0000_0000_7000_8000_0000_0000_0001;
    /// An organization's id.
    OrgId, example = 0x0193_0000_0000_7000_8000_0000_0000_0002;
    /// A session's id: one per sign-in, across its refreshes.
    SessionId, example = 0x0193_0000_0000_7000_8000_0000_0000_0003;
    /// An API key's id (not its secret).
    ApiKeyId, example = 0x0193_0000_0000_7000_8000_0000_0000_0004;
    /// An invitation's id.
    InvitationId, example = 0x0193_0000_0000_7000_8000_0000_0000_0005;
    /// An audit event's id.
    AuditEventId, example = 0x0193_0000_0000_7000_8000_0000_0000_0006;
    /// A notification's id.
    NotificationId, example = 0x0193_0000_0000_7000_8000_0000_0000_0008;
    /// A webhook's id.
    WebhookId, example = 0x0193_0000_0000_7000_8000_0000_0000_0009;
    /// A webhook delivery's id: one event sent to one webhook, over all its attempts.
    WebhookDeliveryId, example = 0x0193_0000_0000_7000_8000_0000_0000_000a;
    /// A performance alert rule's id.
    AlertRuleId, example = 0x0193_0000_0000_7000_8000_0000_0000_000b;
    /// A lot's id.
    LotId, example = 0x0193_0000_0000_7000_8000_0000_0000_000c;
    /// A trade's id.
    TradeId, example = 0x0193_0000_0000_7000_8000_0000_0000_000d;
    /// An offer's id.
    OfferId, example = 0x0193_0000_0000_7000_8000_0000_0000_000e;
    /// Who acted, in the audit trail: a user's or an API key's id.
    ActorId, example = 0x0193_0000_0000_7000_8000_0000_0000_0007, ts = "UserId | ApiKeyId";
}

impl From<UserId> for ActorId {
    fn from(id: UserId) -> Self {
        Self(id.0)
    }
}

impl From<ApiKeyId> for ActorId {
    fn from(id: ApiKeyId) -> Self {
        Self(id.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_uuid_strings_on_the_wire() {
        let id = OrgId::EXAMPLE;
        let json = serde_json::to_string(&id).expect("serializes");
        assert_eq!(json, "\"01930000-0000-7000-8000-000000000002\"");
        let back: OrgId = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, id);
        assert!(serde_json::from_str::<UserId>("\"not-a-uuid\"").is_err());
    }

    #[test]
    fn ids_are_branded_strings_in_typescript() {
        use ts_rs::TS;
        let cfg = ts_rs::Config::new();
        assert_eq!(OrgId::decl(&cfg), "type OrgId = string & { readonly __brand: \"OrgId\" };");
        assert_ne!(OrgId::inline(&cfg), UserId::inline(&cfg));
    }
}
