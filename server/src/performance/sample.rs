//! One minute's sample of one method (and acting organization): the
//! histogram of its durations and its counts, as recorded and as stored.

use chrono::NaiveDateTime;
use hdrhistogram::Histogram;
use trellis_schema::ids::OrgId;

/// Microseconds up to an hour, at three significant digits.
pub(super) const HIGHEST_US: u64 = 3_600_000_000;

pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_US, 3).expect("valid histogram bounds")
}

/// Minute, method, acting organization.
pub(super) type Key = (NaiveDateTime, &'static str, Option<OrgId>);

pub(super) struct Entry {
    pub hist: Histogram<u64>,
    pub calls: i64,
    pub errors: i64,
    pub max_us: i64,
}

impl Entry {
    pub(super) fn new() -> Self {
        Self { hist: histogram(), calls: 0, errors: 0, max_us: 0 }
    }

    pub(super) fn merge(&mut self, other: &Entry) {
        // Both have the same bounds: adding never fails.
        let _ = self.hist.add(&other.hist);
        self.calls += other.calls;
        self.errors += other.errors;
        self.max_us = self.max_us.max(other.max_us);
    }
}
