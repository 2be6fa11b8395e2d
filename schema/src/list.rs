//! Pages of a list: the items and where the next page starts.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::values::PageLimit;

/// One page of a list. `nextCursor` is absent on the last page; pass it as
/// `cursor` to get the next one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub items: Vec<T>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub next_cursor: Option<String>,
}

/// The page size the examples of the reference ask for. (A `PageLimit` is
/// made only by parsing, as from a call's params.)
pub(crate) fn example_limit() -> Option<PageLimit> {
    Some(serde_json::from_value(serde_json::json!(20)).expect("20 is a page limit"))
}

/// Declares the params of a list that pages: the struct with its own fields,
/// then `cursor` and `limit`, written here once for every list (same names,
/// attributes and derives, `deny_unknown_fields` included). Not
/// `#[serde(flatten)]`, which would let unknown fields through.
///
/// ```text
/// list_params! {
///     /// The members of an organization.
///     pub struct ListMembersParams {
///         pub org_id: OrgId,
///     }
/// }
/// ```
///
/// Attributes given (docs, `#[derive(Default)]`) are kept.
macro_rules! list_params {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $( $(#[$field_meta:meta])* $field_vis:vis $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, ::serde::Serialize, ::serde::Deserialize, ::ts_rs::TS, ::schemars::JsonSchema)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        $vis struct $name {
            $( $(#[$field_meta])* $field_vis $field: $ty, )*
            #[serde(default)]
            #[ts(optional)]
            pub cursor: Option<$crate::values::Cursor>,
            #[serde(default)]
            #[ts(optional)]
            pub limit: Option<$crate::values::PageLimit>,
        }
    };
}
pub(crate) use list_params;

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::ids::OrgId;
    use crate::orgs::ListMembersParams;
    use crate::users::PageParams;
    use crate::values::{Cursor, PageLimit};

    #[test]
    fn list_params_take_a_cursor_and_a_limit_and_refuse_unknown_fields() {
        let p: ListMembersParams =
            serde_json::from_value(json!({"orgId": OrgId::EXAMPLE, "cursor": "c1", "limit": 20})).expect("parses");
        assert_eq!(p.cursor.as_ref().map(Cursor::as_str), Some("c1"));
        assert_eq!(p.limit.map(PageLimit::get), Some(20));
        let p: PageParams = serde_json::from_value(json!({})).expect("both optional");
        assert!(p.cursor.is_none() && p.limit.is_none());
        assert!(serde_json::from_value::<ListMembersParams>(json!({"orgId": OrgId::EXAMPLE, "offset": 5})).is_err());
        assert!(serde_json::from_value::<PageParams>(json!({"page": 2})).is_err());
        assert!(serde_json::from_value::<PageParams>(json!({"limit": 0})).is_err());
    }
}
