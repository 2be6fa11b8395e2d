use std::collections::BTreeMap;

use chrono::{Duration, NaiveDateTime, Timelike};
use trellis_schema::api_keys::{Bucket, MethodUsage, Usage, UsageParams, UsagePoint, UsageReport};
use trellis_schema::error::NoReason;

use super::create::invalid;
use super::store;
use crate::access::OrgCtx;
use crate::db::models::{now, utc};
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

fn bucket_start(t: NaiveDateTime, bucket: Bucket) -> NaiveDateTime {
    let t = t.with_second(0).and_then(|t| t.with_nanosecond(0)).unwrap_or(t);
    match bucket {
        Bucket::Minute => t,
        Bucket::Hour => t.with_minute(0).unwrap_or(t),
        Bucket::Day => t.with_minute(0).and_then(|t| t.with_hour(0)).unwrap_or(t),
    }
}

impl Handler for UsageReport {
    async fn handle(ctx: OrgCtx, p: UsageParams) -> Result<Usage, HandlerError<NoReason>> {
        let to = p.to.map_or_else(|| now() + Duration::minutes(1), |t| t.naive_utc());
        let from = p.from.map_or_else(|| to - Duration::hours(24), |t| t.naive_utc());
        if from >= to {
            return Err(HandlerError::Common(invalid("from", "must be before `to`")));
        }
        if to - from > Duration::days(400) {
            return Err(HandlerError::Common(invalid("from", "the window is at most 400 days")));
        }
        let bucket = p.bucket.unwrap_or(Bucket::Hour);
        let rows = store::usage(&ctx.state.db, p.id, from, to).await?;
        let mut series: BTreeMap<NaiveDateTime, (u64, u64, u64)> = BTreeMap::new();
        let mut by_method: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for (minute, method, calls, errors, limited) in rows {
            let (calls, errors, limited) = (calls.max(0) as u64, errors.max(0) as u64, limited.max(0) as u64);
            let s = series.entry(bucket_start(minute, bucket)).or_default();
            s.0 += calls;
            s.1 += errors;
            s.2 += limited;
            let m = by_method.entry(method).or_default();
            m.0 += calls;
            m.1 += errors;
        }
        let mut by_method: Vec<MethodUsage> =
            by_method.into_iter().map(|(method, (calls, errors))| MethodUsage { method, calls, errors }).collect();
        by_method.sort_by(|a, b| b.calls.cmp(&a.calls).then_with(|| a.method.cmp(&b.method)));
        Ok(Usage {
            series: series
                .into_iter()
                .map(|(start, (calls, errors, rate_limited))| UsagePoint {
                    start: utc(start),
                    calls,
                    errors,
                    rate_limited,
                })
                .collect(),
            by_method,
        })
    }
}
