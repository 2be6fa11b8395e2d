//! The `lots` table. Decimal values are stored as their canonical strings
//! and parsed back through the schema's types (a row that does not parse is
//! an internal error, never a guess).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use trellis_schema::commodities::{Commodity, Grade, Location, Note, Percent, Quantity, ShortText, Unit};
use trellis_schema::ids::{LotId, OrgId, UserId};
use trellis_schema::lots::{Lot, Quality};

use crate::db::models::{AuditEventRow, utc};
use crate::db::schema::{audit_events, lots, orgs};
use crate::db::{Db, DbError, db_read, db_run};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = lots)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub(crate) struct LotRow {
    pub id: LotId,
    pub org_id: OrgId,
    pub commodity: String,
    pub quantity: String,
    pub unit: String,
    pub location: String,
    pub grade: String,
    pub moisture_pct: Option<String>,
    pub tested_at: NaiveDateTime,
    pub lab: Option<String>,
    pub notes: Option<String>,
    pub created_by: UserId,
    pub created_at: NaiveDateTime,
}

fn stored<T>(what: &str, r: Result<T, String>) -> Result<T, DbError> {
    r.map_err(|e| DbError::Other(anyhow::anyhow!("a stored lot's {what} does not parse: {e}")))
}

impl LotRow {
    pub(crate) fn to_api(&self) -> Result<Lot, DbError> {
        Ok(Lot {
            id: self.id,
            org_id: self.org_id,
            commodity: stored("commodity", Commodity::parse(&self.commodity))?,
            quantity: stored("quantity", Quantity::parse(&self.quantity))?,
            unit: stored("unit", Unit::from_wire(&self.unit).ok_or_else(|| self.unit.clone()))?,
            location: stored("location", Location::parse(&self.location))?,
            quality: Quality {
                grade: stored("grade", Grade::parse(&self.grade))?,
                moisture_pct: self
                    .moisture_pct
                    .as_deref()
                    .map(Percent::parse)
                    .transpose()
                    .map_err(|e| DbError::Other(anyhow::anyhow!("a stored lot's moisture does not parse: {e}")))?,
                tested_at: utc(self.tested_at),
                lab: self
                    .lab
                    .as_deref()
                    .map(ShortText::parse)
                    .transpose()
                    .map_err(|e| DbError::Other(anyhow::anyhow!("a stored lot's lab does not parse: {e}")))?,
                notes: self
                    .notes
                    .as_deref()
                    .map(Note::parse)
                    .transpose()
                    .map_err(|e| DbError::Other(anyhow::anyhow!("a stored lot's notes do not parse: {e}")))?,
            },
            created_by: self.created_by,
            created_at: utc(self.created_at),
        })
    }
}

/// Inserts a lot with its audit event, unless the organization holds `max`
/// already (`false`). The organization's row is written first, so two
/// creations in one organization take turns and the count holds.
pub(crate) async fn insert(db: &Db, row: &LotRow, event: &AuditEventRow, max: i64) -> Result<bool, DbError> {
    db_run!(db, |conn| conn
        .transaction(async |conn| {
            diesel::update(orgs::table.find(row.org_id)).set(orgs::slug.eq(orgs::slug)).execute(conn).await?;
            let n: i64 = lots::table.filter(lots::org_id.eq(row.org_id)).count().get_result(conn).await?;
            if n >= max {
                return Ok::<_, DbError>(false);
            }
            diesel::insert_into(lots::table).values(row).execute(conn).await?;
            diesel::insert_into(audit_events::table).values(event).execute(conn).await?;
            Ok(true)
        })
        .await)
}

/// The organization's lots after `after`, oldest first, of one commodity
/// or all.
pub(crate) async fn list(
    db: &Db,
    org_id: OrgId,
    commodity: Option<&str>,
    after: Option<LotId>,
    limit: i64,
) -> Result<Vec<LotRow>, DbError> {
    let commodity = commodity.map(str::to_owned);
    db_read!(db, |conn| {
        let mut q = lots::table
            .filter(lots::org_id.eq(org_id))
            .order(lots::id.asc())
            .limit(limit)
            .select(LotRow::as_select())
            .into_boxed();
        if let Some(c) = &commodity {
            q = q.filter(lots::commodity.eq(c.clone()));
        }
        if let Some(a) = after {
            q = q.filter(lots::id.gt(a));
        }
        q.load(conn).await.map_err(DbError::from)
    })
}

/// A lot of the organization (`None` for a lot of another, or none).
pub(crate) async fn get(db: &Db, org_id: OrgId, id: LotId) -> Result<Option<LotRow>, DbError> {
    db_read!(db, |conn| lots::table
        .find(id)
        .filter(lots::org_id.eq(org_id))
        .select(LotRow::as_select())
        .first(conn)
        .await
        .optional()
        .map_err(DbError::from))
}
