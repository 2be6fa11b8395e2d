//! The trade desk's tables. Every change is one transaction that first
//! writes the row it is about (so concurrent changes of one offer or trade
//! take turns, on SQLite and PostgreSQL alike), reads it, asks the state
//! machine (`trellis_schema::trade_machine`) what the move leads to, writes
//! only the columns it changes under a condition on the state read, and
//! writes its audit event and its notifications' events with it.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use trellis_schema::commodities::{Commodity, Currency, Decimal, Note, Price, Quantity, Unit};
use trellis_schema::ids::{LotId, OfferId, OrgId, TradeId, UserId};
use trellis_schema::notifications::EventType;
use trellis_schema::trade_machine::{
    Actor, OfferMove, OfferStatus, Party, Refused, TradeEvent, TradeStatus, offer_step, trade_step,
};
use trellis_schema::trades::{Offer, OfferAction, OfferStep, Side, Trade, TradeRole, Visibility};

use crate::db::models::{AuditEventRow, EventRow, internal_id, now, utc};
use crate::db::schema::{
    audit_events, events, lots, offer_steps, offers, org_approval_thresholds, org_members, trade_invites, trades,
};
use crate::db::{Db, DbError, db_read, db_run};
use crate::notifications::Event;

fn bad(what: &str, e: impl std::fmt::Display) -> DbError {
    DbError::Other(anyhow::anyhow!("a stored {what} does not parse: {e}"))
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = trades)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub(crate) struct TradeRow {
    pub id: TradeId,
    pub org_id: OrgId,
    pub side: String,
    pub commodity: String,
    pub quantity: String,
    pub unit: String,
    pub price_limit: Option<String>,
    pub currency: String,
    pub lot_id: Option<LotId>,
    pub visibility: String,
    pub expires_at: NaiveDateTime,
    pub status: String,
    pub version: i64,
    pub created_by: UserId,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub agreed_offer_id: Option<OfferId>,
    pub accepted_by: Option<UserId>,
    pub approved_by: Option<UserId>,
}

impl TradeRow {
    pub(crate) fn status(&self) -> Result<TradeStatus, DbError> {
        TradeStatus::from_wire(&self.status).ok_or_else(|| bad("trade status", &self.status))
    }

    pub(crate) fn quantity(&self) -> Result<Quantity, DbError> {
        Quantity::parse(&self.quantity).map_err(|e| bad("trade quantity", e))
    }

    pub(crate) fn currency(&self) -> Result<Currency, DbError> {
        Currency::from_code(&self.currency).ok_or_else(|| bad("currency", &self.currency))
    }

    /// The trade as `org` may see it (the invited list for the owner only).
    pub(crate) fn to_api(&self, invited: Vec<OrgId>, offers: Vec<Offer>) -> Result<Trade, DbError> {
        Ok(Trade {
            id: self.id,
            org_id: self.org_id,
            side: Side::from_wire(&self.side).ok_or_else(|| bad("side", &self.side))?,
            commodity: Commodity::parse(&self.commodity).map_err(|e| bad("commodity", e))?,
            quantity: self.quantity()?,
            unit: Unit::from_wire(&self.unit).ok_or_else(|| bad("unit", &self.unit))?,
            price_limit: self.price_limit.as_deref().map(Price::parse).transpose().map_err(|e| bad("price", e))?,
            currency: self.currency()?,
            lot_id: self.lot_id,
            visibility: Visibility::from_wire(&self.visibility).ok_or_else(|| bad("visibility", &self.visibility))?,
            invited_org_ids: invited,
            expires_at: utc(self.expires_at),
            status: self.status()?,
            version: self.version.max(0) as u64,
            created_at: utc(self.created_at),
            updated_at: utc(self.updated_at),
            agreed_offer_id: self.agreed_offer_id,
            approved_by: self.approved_by,
            offers,
        })
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = offers)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub(crate) struct OfferRow {
    pub id: OfferId,
    pub trade_id: TradeId,
    pub org_id: OrgId,
    pub price: String,
    pub quantity: String,
    pub lot_id: Option<LotId>,
    pub valid_until: NaiveDateTime,
    pub note: Option<String>,
    pub status: String,
    pub version: i64,
    pub created_by: UserId,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl OfferRow {
    pub(crate) fn status(&self) -> Result<OfferStatus, DbError> {
        OfferStatus::from_wire(&self.status).ok_or_else(|| bad("offer status", &self.status))
    }

    fn decimals(&self) -> Result<(Price, Quantity), DbError> {
        Ok((
            Price::parse(&self.price).map_err(|e| bad("price", e))?,
            Quantity::parse(&self.quantity).map_err(|e| bad("quantity", e))?,
        ))
    }

    pub(crate) fn to_api(&self, steps: &[StepRow]) -> Result<Offer, DbError> {
        let (price, quantity) = self.decimals()?;
        let status = self.status()?;
        let history = steps.iter().filter(|s| s.offer_id == self.id).map(StepRow::to_api).collect::<Result<_, _>>()?;
        Ok(Offer {
            id: self.id,
            trade_id: self.trade_id,
            org_id: self.org_id,
            price,
            quantity,
            lot_id: self.lot_id,
            valid_until: utc(self.valid_until),
            note: self.note.as_deref().map(Note::parse).transpose().map_err(|e| bad("note", e))?,
            status,
            turn: status.turn(),
            version: self.version.max(0) as u64,
            created_at: utc(self.created_at),
            updated_at: utc(self.updated_at),
            history,
        })
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = offer_steps)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub(crate) struct StepRow {
    pub id: String,
    pub offer_id: OfferId,
    pub at: NaiveDateTime,
    pub action: String,
    pub party: Option<String>,
    pub price: String,
    pub quantity: String,
    pub note: Option<String>,
    pub version: i64,
}

fn party_str(p: Party) -> &'static str {
    match p {
        Party::Owner => "owner",
        Party::Counterparty => "counterparty",
    }
}

impl StepRow {
    pub(crate) fn new(offer: &OfferRow, action: OfferAction, by: Option<Party>, note: Option<&str>) -> Self {
        Self {
            id: internal_id(),
            offer_id: offer.id,
            at: offer.updated_at,
            action: action.as_str().to_owned(),
            party: by.map(|p| party_str(p).to_owned()),
            price: offer.price.clone(),
            quantity: offer.quantity.clone(),
            note: note.map(str::to_owned),
            version: offer.version,
        }
    }

    fn to_api(&self) -> Result<OfferStep, DbError> {
        Ok(OfferStep {
            at: utc(self.at),
            action: OfferAction::from_wire(&self.action).ok_or_else(|| bad("offer action", &self.action))?,
            by: match self.party.as_deref() {
                None => None,
                Some("owner") => Some(Party::Owner),
                Some("counterparty") => Some(Party::Counterparty),
                Some(other) => return Err(bad("party", other)),
            },
            price: Price::parse(&self.price).map_err(|e| bad("price", e))?,
            quantity: Quantity::parse(&self.quantity).map_err(|e| bad("quantity", e))?,
            note: self.note.as_deref().map(Note::parse).transpose().map_err(|e| bad("note", e))?,
            version: self.version.max(0) as u64,
        })
    }
}

/// Whether `org` may see a trade: its owner, a public trade, an invited
/// organization, or one that made an offer on it.
macro_rules! visible_to {
    ($org:expr) => {
        trades::org_id
            .eq($org)
            .or(trades::visibility.eq(Visibility::Public.as_str()))
            .or(trades::id
                .eq_any(trade_invites::table.filter(trade_invites::org_id.eq($org)).select(trade_invites::trade_id)))
            .or(trades::id.eq_any(offers::table.filter(offers::org_id.eq($org)).select(offers::trade_id)))
    };
}

/// Inserts a trade, its invitations and its audit event.
pub(crate) async fn insert_trade(
    db: &Db,
    row: &TradeRow,
    invited: &[OrgId],
    event: &AuditEventRow,
) -> Result<(), DbError> {
    let invites: Vec<_> =
        invited.iter().map(|o| (trade_invites::trade_id.eq(row.id), trade_invites::org_id.eq(*o))).collect();
    db_run!(db, |conn| conn
        .transaction(async |conn| {
            diesel::insert_into(trades::table).values(row).execute(conn).await?;
            for i in &invites {
                diesel::insert_into(trade_invites::table).values(*i).execute(conn).await?;
            }
            diesel::insert_into(audit_events::table).values(event).execute(conn).await?;
            Ok::<_, DbError>(())
        })
        .await)
}

/// Whether `lot` is a lot of `org`.
pub(crate) async fn lot_of(db: &Db, org: OrgId, lot: LotId) -> Result<bool, DbError> {
    let n: i64 = db_read!(db, |conn| lots::table
        .filter(lots::id.eq(lot))
        .filter(lots::org_id.eq(org))
        .count()
        .get_result(conn)
        .await
        .map_err(DbError::from))?;
    Ok(n > 0)
}

/// A trade `org` may see.
pub(crate) async fn find_visible(db: &Db, org: OrgId, id: TradeId) -> Result<Option<TradeRow>, DbError> {
    db_read!(db, |conn| trades::table
        .filter(trades::id.eq(id))
        .filter(visible_to!(org))
        .select(TradeRow::as_select())
        .first(conn)
        .await
        .optional()
        .map_err(DbError::from))
}

/// The trade as `org` sees it: the invited organizations for its owner;
/// every offer for the owner, its own for a counterparty, each with its
/// history.
pub(crate) async fn view(db: &Db, org: OrgId, row: &TradeRow) -> Result<Trade, DbError> {
    let id = row.id;
    let owner = row.org_id == org;
    let (invited, offer_rows, steps) = db_read!(db, |conn| {
        let invited: Vec<OrgId> = if owner {
            trade_invites::table
                .filter(trade_invites::trade_id.eq(id))
                .select(trade_invites::org_id)
                .order(trade_invites::org_id)
                .load(conn)
                .await?
        } else {
            Vec::new()
        };
        let mut q =
            offers::table.filter(offers::trade_id.eq(id)).order(offers::id).select(OfferRow::as_select()).into_boxed();
        if !owner {
            q = q.filter(offers::org_id.eq(org));
        }
        let offer_rows: Vec<OfferRow> = q.load(conn).await?;
        let ids: Vec<OfferId> = offer_rows.iter().map(|o| o.id).collect();
        let steps: Vec<StepRow> = offer_steps::table
            .filter(offer_steps::offer_id.eq_any(ids))
            .order((offer_steps::offer_id, offer_steps::version, offer_steps::id))
            .select(StepRow::as_select())
            .load(conn)
            .await?;
        Ok::<_, DbError>((invited, offer_rows, steps))
    })?;
    let offers = offer_rows.iter().map(|o| o.to_api(&steps)).collect::<Result<Vec<_>, _>>()?;
    row.to_api(invited, offers)
}

/// An offer with its history.
pub(crate) async fn offer_view(db: &Db, id: OfferId) -> Result<Offer, DbError> {
    let (row, steps) = db_read!(db, |conn| {
        let row: OfferRow = offers::table.find(id).select(OfferRow::as_select()).first(conn).await?;
        let steps: Vec<StepRow> = offer_steps::table
            .filter(offer_steps::offer_id.eq(id))
            .order((offer_steps::version, offer_steps::id))
            .select(StepRow::as_select())
            .load(conn)
            .await?;
        Ok::<_, DbError>((row, steps))
    })?;
    row.to_api(&steps)
}

/// The trades `org` may see (of a role), newest first, after `before`.
pub(crate) async fn list(
    db: &Db,
    org: OrgId,
    role: Option<TradeRole>,
    status: Option<TradeStatus>,
    before: Option<TradeId>,
    limit: i64,
) -> Result<Vec<TradeRow>, DbError> {
    db_read!(db, |conn| {
        let mut q = trades::table.order(trades::id.desc()).limit(limit).select(TradeRow::as_select()).into_boxed();
        q = match role {
            None => q.filter(visible_to!(org)),
            Some(TradeRole::Owner) => q.filter(trades::org_id.eq(org)),
            Some(TradeRole::Counterparty) => {
                q.filter(trades::id.eq_any(offers::table.filter(offers::org_id.eq(org)).select(offers::trade_id)))
            }
            Some(TradeRole::Public) => q.filter(trades::org_id.ne(org)).filter(
                trades::visibility.eq(Visibility::Public.as_str()).or(trades::id.eq_any(
                    trade_invites::table.filter(trade_invites::org_id.eq(org)).select(trade_invites::trade_id),
                )),
            ),
        };
        if let Some(s) = status {
            q = q.filter(trades::status.eq(s.as_str()));
        }
        if let Some(b) = before {
            q = q.filter(trades::id.lt(b));
        }
        q.load(conn).await.map_err(DbError::from)
    })
}

/// Writes the event of a [`Notice`], for the members of its organization
/// (who hear of what the other party did), in the change's transaction. A
/// macro: the body of a transaction is compiled once per backend.
macro_rules! tell {
    ($conn:ident, $notice:expr) => {{
        let notice: Notice = $notice;
        let recipients: Vec<UserId> = org_members::table
            .filter(org_members::org_id.eq(notice.org))
            .select(org_members::user_id)
            .load(&mut *$conn)
            .await?;
        diesel::insert_into(events::table).values(&notice.into_row(recipients)).execute(&mut *$conn).await?;
    }};
}

/// A notification event about a trade, for `org`'s members (and webhooks).
pub(crate) struct Notice {
    pub kind: EventType,
    pub org: OrgId,
    pub title: String,
    pub trade: TradeId,
    pub offer: Option<OfferId>,
}

impl Notice {
    pub(crate) fn new(kind: EventType, org: OrgId, title: impl Into<String>, trade: TradeId) -> Self {
        Self { kind, org, title: title.into(), trade, offer: None }
    }

    pub(crate) fn offer(mut self, offer: OfferId) -> Self {
        self.offer = Some(offer);
        self
    }

    fn into_row(self, recipients: Vec<UserId>) -> EventRow {
        let mut e = Event::new(self.kind, recipients, self.title.clone(), self.title)
            .in_org(self.org)
            .with("tradeId", self.trade.to_string());
        if let Some(o) = self.offer {
            e = e.with("offerId", o.to_string());
        }
        e.row()
    }
}

/// Why a change was not made.
#[derive(Debug)]
pub(crate) enum Blocked {
    NotFound,
    Version(i64),
    Refused(Refused),
    AlreadyExists,
    SelfApproval,
    /// A param does not fit (path, message).
    Invalid(&'static str, String),
}

impl From<Refused> for Blocked {
    fn from(r: Refused) -> Self {
        Self::Refused(r)
    }
}

type Outcome<T> = Result<Result<T, Blocked>, DbError>;

/// The server's move on every open offer of a trade but `except`: outbid
/// (another was accepted) or expired (the trade closed), each with its step
/// and a notice for its maker.
macro_rules! close_open_offers {
    ($conn:ident, $trade:expr, $except:expr, $mv:expr, $t:expr) => {{
        let (trade, except, mv, t): (TradeId, Option<OfferId>, OfferMove, NaiveDateTime) = ($trade, $except, $mv, $t);
        let (action, kind, title) = match mv {
            OfferMove::Outbid => (OfferAction::Outbid, EventType::TradeOfferRejected, "Another offer was accepted"),
            _ => (OfferAction::Expire, EventType::TradeOfferExpired, "An offer expired"),
        };
        let conn = &mut *$conn;
        let open: Vec<OfferRow> = offers::table
            .filter(offers::trade_id.eq(trade))
            .filter(offers::status.eq_any(open_states()))
            .select(OfferRow::as_select())
            .load(conn)
            .await?;
        for mut o in open.into_iter().filter(|o| Some(o.id) != except) {
            let from = o.status()?;
            let to = offer_step(from, mv, Actor::Server).map_err(|e| bad("open offer", format!("{e:?}")))?;
            let n = diesel::update(offers::table.find(o.id))
                .filter(offers::status.eq(from.as_str()))
                .set((
                    offers::status.eq(to.as_str()),
                    offers::version.eq(offers::version + 1),
                    offers::updated_at.eq(t),
                ))
                .execute(conn)
                .await?;
            if n == 1 {
                o.status = to.as_str().to_owned();
                o.version += 1;
                o.updated_at = t;
                diesel::insert_into(offer_steps::table)
                    .values(&StepRow::new(&o, action, None, None))
                    .execute(conn)
                    .await?;
                tell!(conn, Notice::new(kind, o.org_id, title, trade).offer(o.id));
            }
        }
    }};
}

/// The deal value over which `org` wants approval, in `currency`.
macro_rules! threshold {
    ($conn:ident, $org:expr, $currency:expr) => {{
        let t: Option<String> = org_approval_thresholds::table
            .filter(org_approval_thresholds::org_id.eq($org))
            .filter(org_approval_thresholds::currency.eq($currency))
            .select(org_approval_thresholds::threshold)
            .first($conn)
            .await
            .optional()?;
        t.map(|s| Price::parse(&s).map(Price::get).map_err(|e| bad("threshold", e))).transpose()?
    }};
}

/// A negotiating trade whose last open offer closed is open again.
macro_rules! close_if_last {
    ($conn:ident, $trade:expr, $t:expr) => {{
        let (trade, t): (TradeId, NaiveDateTime) = ($trade, $t);
        let open: i64 = offers::table
            .filter(offers::trade_id.eq(trade))
            .filter(offers::status.eq_any(open_states()))
            .count()
            .get_result(&mut *$conn)
            .await?;
        if open == 0
            && let Ok(to) = trade_step(TradeStatus::Negotiating, TradeEvent::OffersClosed)
        {
            diesel::update(trades::table.find(trade))
                .filter(trades::status.eq(TradeStatus::Negotiating.as_str()))
                .set((
                    trades::status.eq(to.as_str()),
                    trades::version.eq(trades::version + 1),
                    trades::updated_at.eq(t),
                ))
                .execute(&mut *$conn)
                .await?;
        }
    }};
}

/// Makes an offer on a trade `org` may see and does not own.
pub(crate) async fn make_offer(db: &Db, org: OrgId, mut offer: OfferRow, audit: AuditEventRow) -> Outcome<OfferRow> {
    let trade_id = offer.trade_id;
    db_run!(db, |conn| conn
        .transaction(async |conn| {
            // Written first: offers on one trade take turns.
            diesel::update(trades::table.find(trade_id)).set(trades::version.eq(trades::version)).execute(conn).await?;
            let Some(trade) = trades::table
                .filter(trades::id.eq(trade_id))
                .filter(visible_to!(org))
                .select(TradeRow::as_select())
                .first(conn)
                .await
                .optional()?
            else {
                return Ok(Err(Blocked::NotFound));
            };
            if trade.org_id == org {
                return Ok(Err(Blocked::Invalid("orgId", "an organization makes no offer on its own trade".into())));
            }
            let from = trade.status()?;
            if !from.takes_offers() || trade.expires_at <= now() {
                return Ok(Err(Blocked::Refused(Refused::InvalidTransition { from: from.as_str(), to: None })));
            }
            if offer.quantity()?.get() > trade.quantity()?.get() {
                return Ok(Err(Blocked::Invalid("quantity", "must be at most the trade's quantity".into())));
            }
            if offer.valid_until > trade.expires_at {
                return Ok(Err(Blocked::Invalid("validUntil", "must not be after the trade expires".into())));
            }
            let open: i64 = offers::table
                .filter(offers::trade_id.eq(trade_id))
                .filter(offers::org_id.eq(org))
                .filter(offers::status.eq_any(open_states()))
                .count()
                .get_result(conn)
                .await?;
            if open > 0 {
                return Ok(Err(Blocked::AlreadyExists));
            }
            let to = match trade_step(from, TradeEvent::OfferOpened) {
                Ok(to) => to,
                Err(r) => return Ok(Err(Blocked::Refused(r))),
            };
            let t = now();
            let n = diesel::update(trades::table.find(trade_id))
                .filter(trades::status.eq(from.as_str()))
                .set((
                    trades::status.eq(to.as_str()),
                    trades::version.eq(trades::version + 1),
                    trades::updated_at.eq(t),
                ))
                .execute(conn)
                .await?;
            if n != 1 {
                return Ok(Err(Blocked::Refused(Refused::InvalidTransition { from: from.as_str(), to: None })));
            }
            offer.created_at = t;
            offer.updated_at = t;
            diesel::insert_into(offers::table).values(&offer).execute(conn).await?;
            let step = StepRow::new(&offer, OfferAction::Offer, Some(Party::Counterparty), offer.note.as_deref());
            diesel::insert_into(offer_steps::table).values(&step).execute(conn).await?;
            diesel::insert_into(audit_events::table).values(&audit).execute(conn).await?;
            tell!(
                conn,
                Notice::new(EventType::TradeOfferMade, trade.org_id, "New offer on your trade", trade_id)
                    .offer(offer.id)
            );
            Ok::<_, DbError>(Ok(offer.clone()))
        })
        .await)
}

impl OfferRow {
    fn quantity(&self) -> Result<Quantity, DbError> {
        Quantity::parse(&self.quantity).map_err(|e| bad("offer quantity", e))
    }
}

fn open_states() -> [&'static str; 2] {
    [OfferStatus::Pending.as_str(), OfferStatus::Countered.as_str()]
}

/// A move on an offer by one of its parties.
pub(crate) struct Move {
    pub offer: OfferId,
    pub org: OrgId,
    /// The member acting (for an API key, the member who made it).
    pub user: UserId,
    pub expected_version: i64,
    pub mv: OfferMove,
    pub price: Option<Price>,
    pub quantity: Option<Quantity>,
    pub note: Option<String>,
}

/// Counters, accepts, rejects or withdraws an offer (see the module's
/// comment for how).
pub(crate) async fn negotiate(db: &Db, m: Move, audit: AuditEventRow) -> Outcome<OfferRow> {
    let id = m.offer;
    db_run!(db, |conn| conn
        .transaction(async |conn| {
            // Written first, the trade then the offer (the order every
            // change takes, so two never wait on each other): moves on one
            // offer, and changes of one trade, take turns.
            diesel::update(trades::table.filter(trades::id.eq_any(offers::table.find(id).select(offers::trade_id))))
                .set(trades::version.eq(trades::version))
                .execute(conn)
                .await?;
            diesel::update(offers::table.find(id)).set(offers::version.eq(offers::version)).execute(conn).await?;
            let Some(mut offer) = offers::table.find(id).select(OfferRow::as_select()).first(conn).await.optional()?
            else {
                return Ok(Err(Blocked::NotFound));
            };
            let trade: TradeRow = trades::table.find(offer.trade_id).select(TradeRow::as_select()).first(conn).await?;
            let party = if trade.org_id == m.org {
                Party::Owner
            } else if offer.org_id == m.org {
                Party::Counterparty
            } else {
                return Ok(Err(Blocked::NotFound));
            };
            if offer.version != m.expected_version {
                return Ok(Err(Blocked::Version(offer.version)));
            }
            let from = offer.status()?;
            let trade_from = trade.status()?;
            if from.is_open() && !trade_from.takes_offers() {
                return Ok(Err(Blocked::Refused(Refused::InvalidTransition { from: trade_from.as_str(), to: None })));
            }
            // Past its time, an offer (or its trade) takes no move but the
            // sweeper's expiry, even before the sweeper comes by.
            let late = now();
            if from.is_open() && (offer.valid_until <= late || trade.expires_at <= late) {
                return Ok(Err(Blocked::Refused(Refused::InvalidTransition {
                    from: from.as_str(),
                    to: Some(OfferStatus::Expired.as_str()),
                })));
            }
            let to = match offer_step(from, m.mv, Actor::Party(party)) {
                Ok(to) => to,
                Err(r) => return Ok(Err(Blocked::Refused(r))),
            };
            let t = now();
            if m.mv == OfferMove::Counter {
                if m.price.is_none() && m.quantity.is_none() {
                    return Ok(Err(Blocked::Invalid("price", "a counter names a price, a quantity or both".into())));
                }
                if let Some(q) = m.quantity {
                    if q.get() > trade.quantity()?.get() {
                        return Ok(Err(Blocked::Invalid("quantity", "must be at most the trade's quantity".into())));
                    }
                    offer.quantity = q.to_wire();
                }
                if let Some(p) = m.price {
                    offer.price = p.to_wire();
                }
            }
            let n = diesel::update(offers::table.find(id))
                .filter(offers::version.eq(m.expected_version))
                .filter(offers::status.eq(from.as_str()))
                .set((
                    offers::status.eq(to.as_str()),
                    offers::price.eq(&offer.price),
                    offers::quantity.eq(&offer.quantity),
                    offers::version.eq(offers::version + 1),
                    offers::updated_at.eq(t),
                ))
                .execute(conn)
                .await?;
            if n != 1 {
                return Ok(Err(Blocked::Version(offer.version)));
            }
            offer.status = to.as_str().to_owned();
            offer.version += 1;
            offer.updated_at = t;
            let action = match m.mv {
                OfferMove::Counter => OfferAction::Counter,
                OfferMove::Accept => OfferAction::Accept,
                OfferMove::Reject => OfferAction::Reject,
                OfferMove::Withdraw => OfferAction::Withdraw,
                OfferMove::Outbid => OfferAction::Outbid,
                OfferMove::Expire => OfferAction::Expire,
            };
            diesel::insert_into(offer_steps::table)
                .values(&StepRow::new(&offer, action, Some(party), m.note.as_deref()))
                .execute(conn)
                .await?;
            let other = match party {
                Party::Owner => offer.org_id,
                Party::Counterparty => trade.org_id,
            };
            let (kind, title) = match m.mv {
                OfferMove::Counter => (EventType::TradeOfferCountered, "Your offer was countered"),
                OfferMove::Accept => (EventType::TradeOfferAccepted, "Your offer was accepted"),
                OfferMove::Reject => (EventType::TradeOfferRejected, "Your offer was rejected"),
                _ => (EventType::TradeOfferWithdrawn, "An offer on your trade was withdrawn"),
            };
            tell!(conn, Notice::new(kind, other, title, trade.id).offer(id));
            match m.mv {
                OfferMove::Accept => {
                    let (price, quantity) = offer.decimals()?;
                    let value = price.get() * quantity.get();
                    let limit: Option<Decimal> = threshold!(conn, trade.org_id, trade.currency.as_str());
                    let over = limit.is_some_and(|limit| value > limit);
                    let last = if over { TradeEvent::NeedApproval } else { TradeEvent::Confirm };
                    let end = match trade_step(trade_from, TradeEvent::Accepted).and_then(|a| trade_step(a, last)) {
                        Ok(end) => end,
                        Err(r) => return Err(DbError::Other(anyhow::anyhow!("an accepted offer's trade: {r:?}"))),
                    };
                    let n = diesel::update(trades::table.find(trade.id))
                        .filter(trades::status.eq(trade_from.as_str()))
                        .set((
                            trades::status.eq(end.as_str()),
                            trades::agreed_offer_id.eq(Some(id)),
                            trades::accepted_by.eq(Some(m.user)),
                            trades::version.eq(trades::version + 1),
                            trades::updated_at.eq(t),
                        ))
                        .execute(conn)
                        .await?;
                    if n != 1 {
                        // Rolled back: the trade moved meanwhile.
                        return Err(DbError::Other(anyhow::anyhow!("the trade changed under a held offer")));
                    }
                    close_open_offers!(conn, trade.id, Some(id), OfferMove::Outbid, t);
                    if end == TradeStatus::PendingApproval {
                        tell!(
                            conn,
                            Notice::new(
                                EventType::TradeApprovalNeeded,
                                trade.org_id,
                                "A deal waits for approval",
                                trade.id
                            )
                            .offer(id)
                        );
                    } else {
                        for org in [trade.org_id, offer.org_id] {
                            tell!(
                                conn,
                                Notice::new(EventType::TradeConfirmed, org, "A deal was confirmed", trade.id).offer(id)
                            );
                        }
                    }
                }
                OfferMove::Reject | OfferMove::Withdraw => close_if_last!(conn, trade.id, t),
                _ => {}
            }
            diesel::insert_into(audit_events::table).values(&audit).execute(conn).await?;
            Ok::<_, DbError>(Ok(offer.clone()))
        })
        .await)
}

/// A change of a whole trade by its owner (approve, refuse, cancel) or the
/// server (expire).
pub(crate) struct TradeChange {
    pub trade: TradeId,
    /// The owner acting; `None` for the server.
    pub org: Option<OrgId>,
    pub event: TradeEvent,
    /// For an approval: the approver (not the member who accepted).
    pub approver: Option<UserId>,
}

/// Applies `change` with its audit event (`None`: the server's own change,
/// audited as the system's).
pub(crate) async fn change_trade(db: &Db, change: TradeChange, audit: Option<AuditEventRow>) -> Outcome<TradeRow> {
    let id = change.trade;
    db_run!(db, |conn| conn
        .transaction(async |conn| {
            diesel::update(trades::table.find(id)).set(trades::version.eq(trades::version)).execute(conn).await?;
            let Some(mut trade) = trades::table.find(id).select(TradeRow::as_select()).first(conn).await.optional()?
            else {
                return Ok(Err(Blocked::NotFound));
            };
            if change.org.is_some_and(|o| o != trade.org_id) {
                return Ok(Err(Blocked::NotFound));
            }
            let from = trade.status()?;
            let to = match trade_step(from, change.event) {
                Ok(to) => to,
                Err(r) => return Ok(Err(Blocked::Refused(r))),
            };
            if change.event == TradeEvent::Expire && trade.expires_at > now() {
                return Ok(Err(Blocked::Refused(Refused::InvalidTransition { from: from.as_str(), to: None })));
            }
            // Past its time, a trade is approved by nobody (the sweeper expires it).
            if matches!(change.event, TradeEvent::Approve | TradeEvent::Refuse) && trade.expires_at <= now() {
                return Ok(Err(Blocked::Refused(Refused::InvalidTransition {
                    from: from.as_str(),
                    to: Some(TradeStatus::Expired.as_str()),
                })));
            }
            if let Some(approver) = change.approver
                && trade.accepted_by == Some(approver)
            {
                return Ok(Err(Blocked::SelfApproval));
            }
            let t = now();
            let approved_by = if change.event == TradeEvent::Approve { change.approver } else { trade.approved_by };
            let n = diesel::update(trades::table.find(id))
                .filter(trades::status.eq(from.as_str()))
                .set((
                    trades::status.eq(to.as_str()),
                    trades::approved_by.eq(approved_by),
                    trades::version.eq(trades::version + 1),
                    trades::updated_at.eq(t),
                ))
                .execute(conn)
                .await?;
            if n != 1 {
                return Ok(Err(Blocked::Refused(Refused::InvalidTransition { from: from.as_str(), to: None })));
            }
            trade.status = to.as_str().to_owned();
            trade.version += 1;
            trade.updated_at = t;
            trade.approved_by = approved_by;
            close_open_offers!(conn, id, None, OfferMove::Expire, t);
            // The counterparty of an agreed deal hears of its end.
            let counterparty: Option<OrgId> = match trade.agreed_offer_id {
                Some(o) => offers::table.find(o).select(offers::org_id).first(conn).await.optional()?,
                None => None,
            };
            let (kind, title) = match to {
                TradeStatus::Confirmed => (EventType::TradeConfirmed, "A deal was confirmed"),
                TradeStatus::Expired => (EventType::TradeExpired, "A trade expired"),
                _ => (EventType::TradeCancelled, "A trade was cancelled"),
            };
            let mut told = vec![trade.org_id];
            told.extend(counterparty);
            for org in told {
                tell!(conn, Notice::new(kind, org, title, id));
            }
            // The server's own change (an expiry) is audited as the system's.
            let audit = audit.unwrap_or_else(|| {
                crate::audit::Event::system("trades.expire").org(trade.org_id).target(format!("trade:{id}")).row()
            });
            diesel::insert_into(audit_events::table).values(&audit).execute(conn).await?;
            Ok::<_, DbError>(Ok(trade.clone()))
        })
        .await)
}

/// Expires an open offer past its `validUntil` (the server's move).
pub(crate) async fn expire_offer(db: &Db, id: OfferId) -> Result<bool, DbError> {
    db_run!(db, |conn| conn
        .transaction(async |conn| {
            diesel::update(trades::table.filter(trades::id.eq_any(offers::table.find(id).select(offers::trade_id))))
                .set(trades::version.eq(trades::version))
                .execute(conn)
                .await?;
            diesel::update(offers::table.find(id)).set(offers::version.eq(offers::version)).execute(conn).await?;
            let Some(mut o) = offers::table.find(id).select(OfferRow::as_select()).first(conn).await.optional()? else {
                return Ok(false);
            };
            let from = o.status()?;
            let Ok(to) = offer_step(from, OfferMove::Expire, Actor::Server) else { return Ok(false) };
            if o.valid_until > now() {
                return Ok(false);
            }
            let t = now();
            let n = diesel::update(offers::table.find(id))
                .filter(offers::status.eq(from.as_str()))
                .set((
                    offers::status.eq(to.as_str()),
                    offers::version.eq(offers::version + 1),
                    offers::updated_at.eq(t),
                ))
                .execute(conn)
                .await?;
            if n != 1 {
                return Ok(false);
            }
            o.status = to.as_str().to_owned();
            o.version += 1;
            o.updated_at = t;
            diesel::insert_into(offer_steps::table)
                .values(&StepRow::new(&o, OfferAction::Expire, None, None))
                .execute(conn)
                .await?;
            let trade: TradeRow = trades::table.find(o.trade_id).select(TradeRow::as_select()).first(conn).await?;
            for org in [o.org_id, trade.org_id] {
                tell!(conn, Notice::new(EventType::TradeOfferExpired, org, "An offer expired", trade.id).offer(id));
            }
            close_if_last!(conn, trade.id, t);
            let audit =
                crate::audit::Event::system("trades.expireOffer").org(trade.org_id).target(format!("offer:{id}")).row();
            diesel::insert_into(audit_events::table).values(&audit).execute(conn).await?;
            Ok::<_, DbError>(true)
        })
        .await)
}

/// Trades and open offers past their time, at most `limit` of each.
pub(crate) async fn due(db: &Db, limit: i64) -> Result<(Vec<TradeId>, Vec<OfferId>), DbError> {
    let t = now();
    let finals = [TradeStatus::Confirmed.as_str(), TradeStatus::Cancelled.as_str(), TradeStatus::Expired.as_str()];
    db_read!(db, |conn| {
        let trades_due: Vec<TradeId> = trades::table
            .filter(trades::status.ne_all(finals))
            .filter(trades::expires_at.le(t))
            .select(trades::id)
            .limit(limit)
            .load(conn)
            .await?;
        let offers_due: Vec<OfferId> = offers::table
            .filter(offers::status.eq_any(open_states()))
            .filter(offers::valid_until.le(t))
            .select(offers::id)
            .limit(limit)
            .load(conn)
            .await?;
        Ok::<_, DbError>((trades_due, offers_due))
    })
}

/// The organization's approval thresholds.
pub(crate) async fn thresholds(db: &Db, org: OrgId) -> Result<Vec<(String, String)>, DbError> {
    db_read!(db, |conn| org_approval_thresholds::table
        .filter(org_approval_thresholds::org_id.eq(org))
        .select((org_approval_thresholds::currency, org_approval_thresholds::threshold))
        .order(org_approval_thresholds::currency)
        .load(conn)
        .await
        .map_err(DbError::from))
}

/// Replaces the organization's approval thresholds, with its audit event.
pub(crate) async fn set_thresholds(
    db: &Db,
    org: OrgId,
    values: &[(String, String)],
    audit: &AuditEventRow,
) -> Result<(), DbError> {
    db_run!(db, |conn| conn
        .transaction(async |conn| {
            diesel::delete(org_approval_thresholds::table.filter(org_approval_thresholds::org_id.eq(org)))
                .execute(conn)
                .await?;
            for (c, v) in values {
                diesel::insert_into(org_approval_thresholds::table)
                    .values((
                        org_approval_thresholds::org_id.eq(org),
                        org_approval_thresholds::currency.eq(c),
                        org_approval_thresholds::threshold.eq(v),
                    ))
                    .execute(conn)
                    .await?;
            }
            diesel::insert_into(audit_events::table).values(audit).execute(conn).await?;
            Ok::<_, DbError>(())
        })
        .await)
}
