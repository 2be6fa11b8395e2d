//! `trades.*`: the trade desk. An organization posts a trade request (to buy
//! or to sell); other organizations answer with offers; the owner and each
//! offering organization counter in turn until one accepts (which rejects
//! the trade's other open offers); a deal over the owner's approval
//! threshold waits for a second member's approval. The state machines are
//! in [`crate::trade_machine`].

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::access::Permission;
use crate::commodities::{Commodity, Currency, Note, Price, Quantity, Unit};
use crate::ids::{LotId, OfferId, OrgId, TradeId, UserId};
use crate::list::{Page, example_limit, list_params};
use crate::trade_machine::{OfferStatus, Party, TradeStatus};
use crate::{procedure, reasons};

/// Most organizations one trade may invite.
pub const MAX_INVITED_ORGS: usize = 50;

/// Whether the owner buys or sells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Buy => "buy",
            Self::Sell => "sell",
        }
    }

    pub fn from_wire(s: &str) -> Option<Self> {
        [Self::Buy, Self::Sell].into_iter().find(|x| x.as_str() == s)
    }
}

/// Who sees a trade: every organization's members, or the invited
/// organizations' only (and always the owner's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Visibility {
    Public,
    Invited,
}

impl Visibility {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Invited => "invited",
        }
    }

    pub fn from_wire(s: &str) -> Option<Self> {
        [Self::Public, Self::Invited].into_iter().find(|x| x.as_str() == s)
    }
}

/// A move recorded in an offer's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum OfferAction {
    /// The offer was made.
    Offer,
    Counter,
    Accept,
    Reject,
    Withdraw,
    /// Another offer of the trade was accepted.
    Outbid,
    /// It passed its `validUntil`, or its trade closed.
    Expire,
}

impl OfferAction {
    pub const ALL: &'static [OfferAction] =
        &[Self::Offer, Self::Counter, Self::Accept, Self::Reject, Self::Withdraw, Self::Outbid, Self::Expire];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Offer => "offer",
            Self::Counter => "counter",
            Self::Accept => "accept",
            Self::Reject => "reject",
            Self::Withdraw => "withdraw",
            Self::Outbid => "outbid",
            Self::Expire => "expire",
        }
    }

    pub fn from_wire(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|x| x.as_str() == s)
    }
}

/// One step of an offer's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfferStep {
    pub at: DateTime<Utc>,
    pub action: OfferAction,
    /// Who moved; absent for the server's moves (outbid, expire).
    pub by: Option<Party>,
    /// The price and quantity proposed after this step.
    pub price: Price,
    pub quantity: Quantity,
    pub note: Option<Note>,
    /// The offer's version after this step.
    pub version: u64,
}

/// An offer on a trade, seen by its two parties only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Offer {
    pub id: OfferId,
    pub trade_id: TradeId,
    /// The organization that made it (the counterparty).
    pub org_id: OrgId,
    /// The last proposal: a price per unit, in the trade's currency.
    pub price: Price,
    pub quantity: Quantity,
    pub lot_id: Option<LotId>,
    pub valid_until: DateTime<Utc>,
    pub note: Option<Note>,
    pub status: OfferStatus,
    /// Whose move it is while the offer is open.
    pub turn: Option<Party>,
    /// Bumped by every change; `trades.negotiate` takes it as `expectedVersion`.
    pub version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Every step, oldest first (in `trades.get`, `trades.offer` and `trades.negotiate` answers).
    pub history: Vec<OfferStep>,
}

/// A trade request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Trade {
    pub id: TradeId,
    /// The organization that posted it (the owner).
    pub org_id: OrgId,
    pub side: Side,
    pub commodity: Commodity,
    pub quantity: Quantity,
    pub unit: Unit,
    /// For a buy, the most the owner pays per unit; for a sell, the least it
    /// takes (a guide for offers, not enforced).
    pub price_limit: Option<Price>,
    pub currency: Currency,
    pub lot_id: Option<LotId>,
    pub visibility: Visibility,
    /// The invited organizations (shown to the owner only; empty for others).
    pub invited_org_ids: Vec<OrgId>,
    pub expires_at: DateTime<Utc>,
    pub status: TradeStatus,
    /// Bumped by every change of the trade itself.
    pub version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The accepted offer, once agreed.
    pub agreed_offer_id: Option<OfferId>,
    /// The member of the owner who approved it (over the threshold).
    pub approved_by: Option<UserId>,
    /// Offers the caller's organization may see: all of them for the owner,
    /// its own for a counterparty (in `trades.get` only; empty in lists).
    pub offers: Vec<Offer>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateTradeParams {
    pub org_id: OrgId,
    pub side: Side,
    pub commodity: Commodity,
    pub quantity: Quantity,
    pub unit: Unit,
    #[serde(default)]
    #[ts(optional)]
    pub price_limit: Option<Price>,
    pub currency: Currency,
    /// A lot of the owner organization.
    #[serde(default)]
    #[ts(optional)]
    pub lot_id: Option<LotId>,
    pub visibility: Visibility,
    /// For an `invited` trade: 1 to 50 other organizations.
    #[serde(default)]
    #[ts(optional)]
    pub invited_org_ids: Option<Vec<OrgId>>,
    /// In the future, at most a year ahead.
    pub expires_at: DateTime<Utc>,
}

fn example_time() -> DateTime<Utc> {
    DateTime::from_timestamp(1_798_761_600, 0).expect("valid")
}

procedure! {
    /// Posts a trade request of the organization. `invitedOrgIds` are needed for (and only for) an `invited` trade; `lotId` must be a lot of the organization; `expiresAt` must be in the future (VALIDATION).
    Create {
        method: "trades.create",
        kind: Mutation,
        access: Org(Permission::TradesWrite),
        params: CreateTradeParams,
        output: Trade,
        org: OrgId = |p| p.org_id,
        reasons: crate::error::NoReason,
        example: CreateTradeParams {
            org_id: OrgId::EXAMPLE,
            side: Side::Buy,
            commodity: Commodity::parse("wheat").expect("valid"),
            quantity: Quantity::parse("120").expect("valid"),
            unit: Unit::Tonne,
            price_limit: Some(Price::parse("245").expect("valid")),
            currency: Currency::EUR,
            lot_id: None,
            visibility: Visibility::Public,
            invited_org_ids: None,
            expires_at: example_time(),
        },
    }
}

/// Which trades a list shows, for the organization asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum TradeRole {
    /// Its own trades.
    Owner,
    /// Trades it made an offer on.
    Counterparty,
    /// Other organizations' trades it may see (public, or inviting it).
    Public,
}

list_params! {
    pub struct ListTradesParams {
        pub org_id: OrgId,
        #[serde(default)]
        #[ts(optional)]
        pub status: Option<TradeStatus>,
        /// Without it: every trade the organization may see.
        #[serde(default)]
        #[ts(optional)]
        pub role: Option<TradeRole>,
    }
}

procedure! {
    /// The trades the organization may see (its own, public ones, ones it is invited to or made an offer on), newest first, without their offers.
    List {
        method: "trades.list",
        kind: Query,
        access: Org(Permission::TradesRead),
        params: ListTradesParams,
        output: Page<Trade>,
        org: OrgId = |p| p.org_id,
        reasons: crate::error::NoReason,
        example: ListTradesParams { org_id: OrgId::EXAMPLE, status: None, role: None, cursor: None, limit: example_limit() },
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TradeParams {
    pub trade_id: TradeId,
    pub org_id: OrgId,
}

reasons! {
    /// Why a trade cannot be read: none the organization may see.
    pub enum GetTradeReason { NotFound }
}

procedure! {
    /// One trade the organization may see, with the offers it may see and each one's history (NOT_FOUND for a trade it may not see).
    Get {
        method: "trades.get",
        kind: Query,
        access: Org(Permission::TradesRead),
        params: TradeParams,
        output: Trade,
        org: OrgId = |p| p.org_id,
        reasons: GetTradeReason,
        example: TradeParams { trade_id: TradeId::EXAMPLE, org_id: OrgId::EXAMPLE },
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OfferParams {
    pub trade_id: TradeId,
    /// The offering organization (not the trade's owner).
    pub org_id: OrgId,
    /// Per unit, in the trade's currency.
    pub price: Price,
    /// At most the trade's quantity.
    pub quantity: Quantity,
    /// A lot of the offering organization.
    #[serde(default)]
    #[ts(optional)]
    pub lot_id: Option<LotId>,
    /// In the future, and not after the trade expires.
    pub valid_until: DateTime<Utc>,
    #[serde(default)]
    #[ts(optional)]
    pub note: Option<Note>,
}

reasons! {
    /// Why an offer cannot be made: no such trade for the organization; the
    /// trade takes no offers now (INVALID_TRANSITION); the organization has
    /// an open offer on it already (ALREADY_EXISTS).
    pub enum OfferReason { NotFound, InvalidTransition, AlreadyExists }
}

procedure! {
    /// Makes an offer on another organization's trade it may see (one open offer per organization and trade). The owner is notified.
    MakeOffer {
        method: "trades.offer",
        kind: Mutation,
        access: Org(Permission::TradesWrite),
        params: OfferParams,
        output: Offer,
        org: OrgId = |p| p.org_id,
        reasons: OfferReason,
        example: OfferParams {
            trade_id: TradeId::EXAMPLE,
            org_id: OrgId::EXAMPLE,
            price: Price::parse("240").expect("valid"),
            quantity: Quantity::parse("120").expect("valid"),
            lot_id: None,
            valid_until: example_time(),
            note: None,
        },
    }
}

/// What `trades.negotiate` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum NegotiateAction {
    /// Propose a new price and/or quantity (at least one).
    Counter,
    Accept,
    Reject,
    /// The offering organization takes its offer back.
    Withdraw,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NegotiateParams {
    pub offer_id: OfferId,
    /// The organization acting: the trade's owner or the offer's maker.
    pub org_id: OrgId,
    /// The offer's `version` the caller saw.
    pub expected_version: u64,
    pub action: NegotiateAction,
    /// For `counter`.
    #[serde(default)]
    #[ts(optional)]
    pub price: Option<Price>,
    /// For `counter`: at most the trade's quantity.
    #[serde(default)]
    #[ts(optional)]
    pub quantity: Option<Quantity>,
    #[serde(default)]
    #[ts(optional)]
    pub note: Option<Note>,
}

reasons! {
    /// Why a move is refused: no such offer for the organization; the offer
    /// changed since `expectedVersion` (VERSION_CONFLICT, `data.currentVersion`);
    /// the move is not allowed from its state or its trade's
    /// (INVALID_TRANSITION, `data.from`); it is the other party's turn
    /// (NOT_YOUR_TURN).
    pub enum NegotiateReason { NotFound, VersionConflict, InvalidTransition, NotYourTurn }
}

procedure! {
    /// Counters, accepts, rejects or withdraws an offer, as one of its two parties, in turn. Accepting agrees the trade (confirmed, or pendingApproval over the owner's threshold) and rejects its other open offers. The other party is notified.
    Negotiate {
        method: "trades.negotiate",
        kind: Mutation,
        access: Org(Permission::TradesWrite),
        params: NegotiateParams,
        output: Offer,
        org: OrgId = |p| p.org_id,
        reasons: NegotiateReason,
        example: NegotiateParams {
            offer_id: OfferId::EXAMPLE,
            org_id: OrgId::EXAMPLE,
            expected_version: 1,
            action: NegotiateAction::Counter,
            price: Some(Price::parse("242.50").expect("valid")),
            quantity: None,
            note: None,
        },
    }
}

/// An approver's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Decision {
    Approve,
    Reject,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApproveParams {
    pub trade_id: TradeId,
    /// The trade's owner.
    pub org_id: OrgId,
    pub decision: Decision,
    #[serde(default)]
    #[ts(optional)]
    pub note: Option<Note>,
}

reasons! {
    /// Why an approval is refused: no such trade of the organization; it is
    /// not pending approval (INVALID_TRANSITION); the approver is the member
    /// who accepted the deal (SELF_APPROVAL).
    pub enum ApproveReason { NotFound, InvalidTransition, SelfApproval }
}

procedure! {
    /// Approves (confirmed) or rejects (cancelled) a deal of the organization pending approval; the approver must not be the member who accepted it. The counterparty is notified.
    Approve {
        method: "trades.approve",
        kind: Mutation,
        access: Org(Permission::TradesApprove),
        params: ApproveParams,
        output: Trade,
        org: OrgId = |p| p.org_id,
        reasons: ApproveReason,
        example: ApproveParams { trade_id: TradeId::EXAMPLE, org_id: OrgId::EXAMPLE, decision: Decision::Approve, note: None },
    }
}

reasons! {
    /// Why a cancel is refused: no such trade of the organization; it is
    /// final already (INVALID_TRANSITION).
    pub enum CancelReason { NotFound, InvalidTransition }
}

procedure! {
    /// Cancels a trade of the organization that is not final; its open offers expire and their makers are notified.
    Cancel {
        method: "trades.cancel",
        kind: Mutation,
        access: Org(Permission::TradesWrite),
        params: TradeParams,
        output: Trade,
        org: OrgId = |p| p.org_id,
        reasons: CancelReason,
        example: TradeParams { trade_id: TradeId::EXAMPLE, org_id: OrgId::EXAMPLE },
    }
}

/// The procedures of this namespace, in order, for [`all_procedures!`](crate::all_procedures).
#[doc(hidden)]
#[macro_export]
macro_rules! __procedures_trades {
    ($callback:ident; [$($acc:tt)*]; $($rest:ident)*) => {
        $crate::__collect_procedures! { $callback; [$($acc)*
            $crate::trades::Create,
            $crate::trades::List,
            $crate::trades::Get,
            $crate::trades::MakeOffer,
            $crate::trades::Negotiate,
            $crate::trades::Approve,
            $crate::trades::Cancel,
        ]; $($rest)* }
    };
}
