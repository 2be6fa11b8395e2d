//! `lots.*`: an organization's tested lots of a commodity, which its trades
//! and offers may name.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::access::Permission;
use crate::commodities::{Commodity, Grade, Location, Note, Percent, Quantity, ShortText, Unit};
use crate::ids::{LotId, OrgId, UserId};
use crate::list::{Page, example_limit, list_params};
use crate::{procedure, reasons};

/// How a lot tested.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Quality {
    pub grade: Grade,
    /// Moisture, 0 to 100 percent.
    #[serde(default)]
    #[ts(optional)]
    pub moisture_pct: Option<Percent>,
    /// When it was tested; not in the future.
    pub tested_at: DateTime<Utc>,
    /// The laboratory that tested it.
    #[serde(default)]
    #[ts(optional)]
    pub lab: Option<ShortText>,
    #[serde(default)]
    #[ts(optional)]
    pub notes: Option<Note>,
}

/// A lot of a commodity an organization holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Lot {
    pub id: LotId,
    pub org_id: OrgId,
    pub commodity: Commodity,
    pub quantity: Quantity,
    pub unit: Unit,
    pub location: Location,
    pub quality: Quality,
    /// The member who recorded it (for an API key, the member who made the key).
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateLotParams {
    pub org_id: OrgId,
    pub commodity: Commodity,
    pub quantity: Quantity,
    pub unit: Unit,
    pub location: Location,
    pub quality: Quality,
}

reasons! {
    /// Why `lots.create` can refuse: an organization holds at most 10,000 lots.
    pub enum CreateLotReason { LimitReached }
}

/// Most lots one organization may hold.
pub const MAX_LOTS_PER_ORG: i64 = 10_000;

procedure! {
    /// Records a tested lot of the organization. `testedAt` may not be in the future (VALIDATION); an organization holds at most 10,000 lots (LIMIT_REACHED).
    Create {
        method: "lots.create",
        kind: Mutation,
        access: Org(Permission::TradesWrite),
        params: CreateLotParams,
        output: Lot,
        org: OrgId = |p| p.org_id,
        reasons: CreateLotReason,
        example: CreateLotParams {
            org_id: OrgId::EXAMPLE,
            commodity: Commodity::parse("wheat").expect("valid"),
            quantity: Quantity::parse("120").expect("valid"),
            unit: Unit::Tonne,
            location: Location::parse("Rotterdam").expect("valid"),
            quality: Quality {
                grade: Grade::parse("2").expect("valid"),
                moisture_pct: Some(Percent::parse("13.5").expect("valid")),
                tested_at: DateTime::from_timestamp(1_764_547_200, 0).expect("valid"),
                lab: None,
                notes: None,
            },
        },
    }
}

list_params! {
    pub struct ListLotsParams {
        pub org_id: OrgId,
        /// Only lots of this commodity (compared lower-cased).
        #[serde(default)]
        #[ts(optional)]
        pub commodity: Option<Commodity>,
    }
}

procedure! {
    /// The organization's lots, oldest first.
    List {
        method: "lots.list",
        kind: Query,
        access: Org(Permission::TradesRead),
        params: ListLotsParams,
        output: Page<Lot>,
        org: OrgId = |p| p.org_id,
        reasons: crate::error::NoReason,
        example: ListLotsParams { org_id: OrgId::EXAMPLE, commodity: None, cursor: None, limit: example_limit() },
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetLotParams {
    pub org_id: OrgId,
    pub lot_id: LotId,
}

reasons! {
    /// Why `lots.get` can refuse: no such lot in the organization.
    pub enum GetLotReason { NotFound }
}

procedure! {
    /// One lot of the organization (NOT_FOUND for another organization's).
    Get {
        method: "lots.get",
        kind: Query,
        access: Org(Permission::TradesRead),
        params: GetLotParams,
        output: Lot,
        org: OrgId = |p| p.org_id,
        reasons: GetLotReason,
        example: GetLotParams { org_id: OrgId::EXAMPLE, lot_id: LotId::EXAMPLE },
    }
}

/// The procedures of this namespace, in order, for [`all_procedures!`](crate::all_procedures).
#[doc(hidden)]
#[macro_export]
macro_rules! __procedures_lots {
    ($callback:ident; [$($acc:tt)*]; $($rest:ident)*) => {
        $crate::__collect_procedures! { $callback; [$($acc)*
            $crate::lots::Create,
            $crate::lots::List,
            $crate::lots::Get,
        ]; $($rest)* }
    };
}
