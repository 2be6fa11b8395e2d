//! Alert rules: an organization's (over its calls) or the server's (over
//! every call). One replica at a time evaluates them all (it holds the
//! `alerts` lease); each rule starts firing and resolves by a conditional
//! update of its row (only from not firing, only from firing), in the
//! transaction that writes its event, so each change notifies once whoever
//! evaluates, and nothing is lost if the replica stops after it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use trellis_schema::ApiError;
use trellis_schema::error::{FieldError, NoReason};
use trellis_schema::ids::{AlertRuleId, OrgId, UserId};
use trellis_schema::notifications::EventType;
use trellis_schema::performance::{
    AlertMetric, AlertRule, AlertRuleSpec, AlertRules, FiringAlert, GetAlertRules, GetAlertRulesParams,
    MAX_ALERT_RULES, SetAlertRules, SetAlertRulesParams,
};

use super::store::{self, Rollup, decode};
use crate::access::OrgOrAdminCtx;
use crate::audit::Event as AuditEvent;
use crate::db::models::{now, utc};
use crate::db::schema::{alert_rules, audit_events, events, leases, users};
use crate::db::{Db, DbError, db_read, db_run};
use crate::notifications::Event;
use crate::notifications::events::Events;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

/// The lease the evaluating replica holds.
const LEASE: &str = "alerts";
const MIN_WINDOW_SECS: u32 = 60;
const MAX_WINDOW_SECS: u32 = 86_400;

type RuleRow = (
    String,
    Option<OrgId>,
    String,
    Option<String>,
    f64,
    i32,
    Option<NaiveDateTime>,
    Option<f64>,
    Option<NaiveDateTime>,
);

struct Stored {
    id: AlertRuleId,
    org: Option<OrgId>,
    metric: AlertMetric,
    method: Option<String>,
    threshold: f64,
    window_secs: u32,
    firing_since: Option<NaiveDateTime>,
    last_value: Option<f64>,
    evaluated_at: Option<NaiveDateTime>,
}

impl Stored {
    fn from_row(r: RuleRow) -> Option<Self> {
        Some(Self {
            id: r.0.parse().ok()?,
            org: r.1,
            metric: AlertMetric::from_wire(&r.2)?,
            method: r.3,
            threshold: r.4,
            window_secs: u32::try_from(r.5).ok()?,
            firing_since: r.6,
            last_value: r.7,
            evaluated_at: r.8,
        })
    }

    fn view(&self) -> AlertRule {
        AlertRule {
            id: self.id,
            metric: self.metric,
            method: self.method.clone(),
            threshold: self.threshold,
            window_secs: self.window_secs,
            firing_since: self.firing_since.map(utc),
            last_value: self.last_value,
            evaluated_at: self.evaluated_at.map(utc),
        }
    }

    fn same_as(&self, s: &AlertRuleSpec) -> bool {
        self.metric == s.metric
            && self.method == s.method
            && self.threshold.to_bits() == s.threshold.to_bits()
            && self.window_secs == s.window_secs
    }

    /// `"p95 of orgs.get"`, `"error rate of all calls"`.
    fn describe(&self) -> String {
        let what = match self.metric {
            AlertMetric::P95Ms => "p95 latency",
            AlertMetric::ErrorRate => "error rate",
            AlertMetric::CallsPerMinute => "calls per minute",
        };
        match &self.method {
            Some(m) => format!("{what} of {m}"),
            None => format!("{what} of all calls"),
        }
    }
}

macro_rules! rule_columns {
    () => {
        (
            alert_rules::id,
            alert_rules::org_id,
            alert_rules::metric,
            alert_rules::method,
            alert_rules::threshold,
            alert_rules::window_secs,
            alert_rules::firing_since,
            alert_rules::last_value,
            alert_rules::evaluated_at,
        )
    };
}

/// The rules of one scope (an organization's, or the server's), oldest first.
async fn rules_of(db: &Db, org: Option<OrgId>) -> Result<Vec<Stored>, DbError> {
    let rows: Vec<RuleRow> = db_read!(db, |conn| {
        let q = alert_rules::table.select(rule_columns!()).order((alert_rules::created_at, alert_rules::id));
        match org {
            Some(o) => q.filter(alert_rules::org_id.eq(o)).load(conn).await,
            None => q.filter(alert_rules::org_id.is_null()).load(conn).await,
        }
        .map_err(DbError::from)
    })?;
    Ok(rows.into_iter().filter_map(Stored::from_row).collect())
}

/// The firing rules of a scope, for `performance.report`.
pub(super) async fn firing(db: &Db, org: Option<OrgId>) -> Result<Vec<FiringAlert>, DbError> {
    Ok(rules_of(db, org)
        .await?
        .into_iter()
        .filter_map(|r| {
            Some(FiringAlert {
                rule_id: r.id,
                metric: r.metric,
                method: r.method.clone(),
                threshold: r.threshold,
                value: r.last_value.unwrap_or(r.threshold),
                since: utc(r.firing_since?),
            })
        })
        .collect())
}

fn invalid(path: String, message: &str) -> FieldError {
    FieldError { path, message: message.into() }
}

fn validate(rules: &[AlertRuleSpec]) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    if rules.len() > MAX_ALERT_RULES {
        errors.push(invalid("rules".into(), "at most 20 rules"));
    }
    let known = super::sample::known_methods();
    for (i, r) in rules.iter().enumerate() {
        let at = |f: &str| format!("rules[{i}].{f}");
        if !r.threshold.is_finite() || r.threshold < 0.0 {
            errors.push(invalid(at("threshold"), "must be a number at least 0"));
        } else if r.metric == AlertMetric::ErrorRate && r.threshold > 1.0 {
            errors.push(invalid(at("threshold"), "an error rate is at most 1"));
        }
        if !(MIN_WINDOW_SECS..=MAX_WINDOW_SECS).contains(&r.window_secs) {
            errors.push(invalid(at("windowSecs"), "must be 60 to 86400"));
        }
        if let Some(m) = &r.method
            && !known.contains(m.as_str())
        {
            errors.push(invalid(at("method"), "is not a method of the API"));
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(ApiError::validation(errors)) }
}

/// Replaces the rules of a scope: a rule sent again unchanged keeps its
/// row (and state), the others are inserted, the rest deleted. Setters of
/// one scope take turns (the scope's lease row is written first).
async fn replace(
    db: &Db,
    org: Option<OrgId>,
    specs: &[AlertRuleSpec],
    audit: &crate::db::models::AuditEventRow,
) -> Result<(), DbError> {
    let scope = match org {
        Some(o) => format!("alert-rules:{o}"),
        None => "alert-rules:server".to_owned(),
    };
    let t = now();
    db_run!(db, |conn| conn
        .transaction(async |conn| {
            diesel::insert_into(leases::table)
                .values((leases::name.eq(&scope), leases::holder.eq("setter"), leases::expires_at.eq(t)))
                .on_conflict(leases::name)
                .do_update()
                .set(leases::expires_at.eq(t))
                .execute(conn)
                .await?;
            let q = alert_rules::table.select(rule_columns!());
            let rows: Vec<RuleRow> = match org {
                Some(o) => q.filter(alert_rules::org_id.eq(o)).load(conn).await?,
                None => q.filter(alert_rules::org_id.is_null()).load(conn).await?,
            };
            let existing: Vec<Stored> = rows.into_iter().filter_map(Stored::from_row).collect();
            let mut kept: HashSet<AlertRuleId> = HashSet::new();
            for (i, s) in specs.iter().enumerate() {
                if let Some(old) = existing.iter().find(|r| !kept.contains(&r.id) && r.same_as(s)) {
                    kept.insert(old.id);
                    continue;
                }
                diesel::insert_into(alert_rules::table)
                    .values((
                        alert_rules::id.eq(AlertRuleId::new().to_string()),
                        alert_rules::org_id.eq(org),
                        alert_rules::metric.eq(s.metric.as_str()),
                        alert_rules::method.eq(s.method.as_deref()),
                        alert_rules::threshold.eq(s.threshold),
                        alert_rules::window_secs.eq(s.window_secs as i32),
                        // In the order given.
                        alert_rules::created_at.eq(t + TimeDelta::microseconds(i as i64)),
                    ))
                    .execute(conn)
                    .await?;
            }
            for old in existing.iter().filter(|r| !kept.contains(&r.id)) {
                diesel::delete(alert_rules::table.find(old.id.to_string())).execute(conn).await?;
            }
            diesel::insert_into(audit_events::table).values(audit).execute(conn).await?;
            Ok::<_, DbError>(())
        })
        .await)
}

impl Handler for GetAlertRules {
    async fn handle(ctx: OrgOrAdminCtx, _: GetAlertRulesParams) -> Result<AlertRules, HandlerError<NoReason>> {
        let rules = rules_of(&ctx.call().state.db, ctx.org_id()).await?;
        Ok(AlertRules { rules: rules.iter().map(Stored::view).collect() })
    }
}

impl Handler for SetAlertRules {
    async fn handle(ctx: OrgOrAdminCtx, p: SetAlertRulesParams) -> Result<AlertRules, HandlerError<NoReason>> {
        validate(&p.rules).map_err(HandlerError::Common)?;
        let call = ctx.call();
        let audit = AuditEvent::new(&call.meta, "performance.setAlertRules").detail(format!("{} rules", p.rules.len()));
        let audit = match &ctx {
            OrgOrAdminCtx::Org(c) => audit.in_org(&c.org),
            OrgOrAdminCtx::Admin(c) => audit.by_user(c.admin.user_id),
        }
        .row();
        let db = &call.state.db;
        replace(db, ctx.org_id(), &p.rules, &audit).await?;
        let rules = rules_of(db, ctx.org_id()).await?;
        Ok(AlertRules { rules: rules.iter().map(Stored::view).collect() })
    }
}

/// Takes (or renews) the lease `name` for `holder` until `ttl` from now:
/// `true` when held.
pub(crate) async fn take_lease(db: &Db, name: &str, holder: &str, ttl: TimeDelta) -> Result<bool, DbError> {
    let t = now();
    let until = t + ttl;
    db_run!(db, |conn| {
        let inserted = diesel::insert_into(leases::table)
            .values((leases::name.eq(name), leases::holder.eq(holder), leases::expires_at.eq(until)))
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
        if inserted == 1 {
            return Ok(true);
        }
        let renewed = diesel::update(leases::table.find(name))
            .filter(leases::holder.eq(holder).or(leases::expires_at.lt(t)))
            .set((leases::holder.eq(holder), leases::expires_at.eq(until)))
            .execute(conn)
            .await?;
        Ok::<_, DbError>(renewed == 1)
    })
}

/// A rule's metric over the window ending at `at`, from the minute rows of
/// every replica. A minute partly in the window counts for its share
/// (calls taken as spread evenly over what has passed of it); p95 merges
/// the histograms of the minutes the window touches.
async fn measure(db: &Db, rule: &Stored, at: NaiveDateTime) -> anyhow::Result<f64> {
    let window = TimeDelta::seconds(i64::from(rule.window_secs));
    let start = at - window;
    let minute = TimeDelta::minutes(1);
    let org = rule.org.map(|o| o.to_string());
    let read = store::Read {
        rollup: Rollup::Minutes,
        from: start - minute,
        to: at + minute,
        method: rule.method.clone(),
        org,
        histograms: true,
    };
    let rows = store::window(db, read).await?;
    let (mut calls, mut errors) = (0.0, 0.0);
    let mut hist = super::sample::histogram();
    for row in &rows {
        let end = row.bucket_start + minute;
        let passed = (end.min(at) - row.bucket_start).num_milliseconds();
        let inside = (end.min(at) - row.bucket_start.max(start)).num_milliseconds();
        if inside <= 0 && passed > 0 {
            continue;
        }
        let share = if passed <= 0 { 1.0 } else { inside as f64 / passed as f64 };
        calls += share * row.calls as f64;
        errors += share * row.errors as f64;
        if rule.metric == AlertMetric::P95Ms {
            let _ = hist.add(&decode(&row.histogram)?);
        }
    }
    Ok(match rule.metric {
        AlertMetric::CallsPerMinute => calls / (f64::from(rule.window_secs) / 60.0),
        AlertMetric::ErrorRate if calls > 0.0 => errors / calls,
        AlertMetric::ErrorRate => 0.0,
        AlertMetric::P95Ms if hist.is_empty() => 0.0,
        AlertMetric::P95Ms => hist.value_at_quantile(0.95) as f64 / 1000.0,
    })
}

/// Who hears of a rule: the organization's owners and admins, or the
/// server's administrators.
async fn recipients(db: &Db, org: Option<OrgId>) -> Result<Vec<UserId>, DbError> {
    match org {
        Some(o) => crate::orgs::store::admins(db, o).await,
        None => db_read!(db, |conn| users::table
            .filter(users::is_admin.eq(true))
            .filter(users::disabled.eq(false))
            .select(users::id)
            .load(conn)
            .await
            .map_err(DbError::from)),
    }
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 { format!("{v:.0}") } else { format!("{v:.3}") }
}

/// Records a rule's value; starts or ends its firing when the value says
/// so and it was not already. Returns whether it changed.
async fn apply(db: &Db, rule: &Stored, value: f64, at: NaiveDateTime) -> Result<bool, DbError> {
    let fire = value > rule.threshold;
    let (kind, title) = if fire {
        (EventType::AlertFired, format!("Alert: {} above {}", rule.describe(), number(rule.threshold)))
    } else {
        (EventType::AlertResolved, format!("Resolved: {} back at or below {}", rule.describe(), number(rule.threshold)))
    };
    let changes_state = if fire { rule.firing_since.is_none() } else { rule.firing_since.is_some() };
    let event = if changes_state {
        let body = format!(
            "The {} over the last {} s is {} (threshold {}).",
            rule.describe(),
            rule.window_secs,
            number(value),
            number(rule.threshold)
        );
        let mut e = Event::new(kind, recipients(db, rule.org).await?, title, body)
            .with("ruleId", rule.id.to_string())
            .with("metric", rule.metric.as_str())
            .with("threshold", rule.threshold)
            .with("value", value)
            .with("windowSecs", rule.window_secs);
        if let Some(m) = &rule.method {
            e = e.with("method", m.as_str());
        }
        if let Some(o) = rule.org {
            e = e.in_org(o);
        }
        Some(e.row())
    } else {
        None
    };
    let id = rule.id.to_string();
    db_run!(db, |conn| conn
        .transaction(async |conn| {
            let row = alert_rules::table.find(&id);
            let changed = match (&event, fire) {
                (Some(_), true) => {
                    diesel::update(row.filter(alert_rules::firing_since.is_null()))
                        .set(alert_rules::firing_since.eq(Some(at)))
                        .execute(conn)
                        .await?
                }
                (Some(_), false) => {
                    diesel::update(row.filter(alert_rules::firing_since.is_not_null()))
                        .set(alert_rules::firing_since.eq(None::<NaiveDateTime>))
                        .execute(conn)
                        .await?
                }
                (None, _) => 0,
            };
            if let (1, Some(event)) = (changed, &event) {
                diesel::insert_into(events::table).values(event).execute(conn).await?;
            }
            diesel::update(row)
                .set((alert_rules::last_value.eq(Some(value)), alert_rules::evaluated_at.eq(Some(at))))
                .execute(conn)
                .await?;
            Ok::<_, DbError>(changed == 1)
        })
        .await)
}

/// Evaluates every rule, if this replica holds the lease. Returns the
/// rules that started or stopped firing.
async fn evaluate(db: &Db, holder: &str, ttl: TimeDelta) -> anyhow::Result<usize> {
    if !take_lease(db, LEASE, holder, ttl).await? {
        return Ok(0);
    }
    let rows: Vec<RuleRow> = db_read!(db, |conn| alert_rules::table
        .select(rule_columns!())
        .order(alert_rules::id)
        .load(conn)
        .await
        .map_err(DbError::from))?;
    let at = now();
    let mut changed = 0;
    for rule in rows.into_iter().filter_map(Stored::from_row) {
        let value = measure(db, &rule, at).await?;
        if apply(db, &rule, value, at).await? {
            changed += 1;
        }
    }
    Ok(changed)
}

/// Evaluates the rules every `every` (while this replica holds the lease,
/// which lapses after three rounds missed).
pub(crate) fn spawn(db: Arc<Db>, events: Events, every: Duration) -> tokio::task::JoinHandle<()> {
    let holder = uuid::Uuid::now_v7().simple().to_string();
    let ttl = TimeDelta::from_std(every * 3).unwrap_or(TimeDelta::seconds(60)).max(TimeDelta::seconds(2));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match evaluate(&db, &holder, ttl).await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(rules = n, "alert rules changed state");
                    events.published();
                }
                Err(e) => tracing::warn!(error = %e, "alert rules not evaluated this round"),
            }
        }
    })
}
