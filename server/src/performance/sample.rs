//! One minute's sample of one method (and acting organization): the
//! histogram of its durations and its counts, as recorded and as stored;
//! and [`Counts`], the histogram's counters alone, which merging many stored
//! histograms needs (no histogram built per row).

use std::collections::HashSet;
use std::sync::OnceLock;

use chrono::NaiveDateTime;
use hdrhistogram::Histogram;
use trellis_schema::ids::OrgId;

/// The methods of the API (what a report or an alert rule may name).
pub(super) fn known_methods() -> &'static HashSet<&'static str> {
    static METHODS: OnceLock<HashSet<&'static str>> = OnceLock::new();
    METHODS.get_or_init(|| trellis_schema::procedure::procedures().iter().map(|p| p.method).collect())
}

/// Microseconds up to an hour, at three significant digits.
pub(super) const HIGHEST_US: u64 = 3_600_000_000;
pub(super) const LOWEST_US: u64 = 1;
pub(super) const SIGNIFICANT_DIGITS: u8 = 3;

pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS).expect("valid histogram bounds")
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

// The layout of the histogram's counters, as hdrhistogram lays them out for
// these bounds (a test checks it against the crate): the first 2,048
// counters hold one value each; after them, each run of 1,024 counters holds
// values twice as wide as the run before.
const HALF_SUB_BUCKET_BITS: u32 = 10;
const HALF_SUB_BUCKETS: usize = 1 << HALF_SUB_BUCKET_BITS;

/// How many counters the histogram has.
pub(super) fn counters() -> usize {
    static LEN: OnceLock<usize> = OnceLock::new();
    *LEN.get_or_init(|| histogram().distinct_values())
}

/// The bucket of counter `index` and the lowest value it holds.
fn bucket_and_lowest(index: usize) -> (u32, u64) {
    let bucket = (index >> HALF_SUB_BUCKET_BITS).saturating_sub(1);
    let sub = if index < 2 * HALF_SUB_BUCKETS { index } else { (index & (HALF_SUB_BUCKETS - 1)) + HALF_SUB_BUCKETS };
    (bucket as u32, (sub as u64) << bucket)
}

/// The lowest value counter `index` holds.
pub(super) fn lowest_of(index: usize) -> u64 {
    bucket_and_lowest(index).1
}

/// The highest value counter `index` holds.
pub(super) fn highest_of(index: usize) -> u64 {
    let (bucket, lowest) = bucket_and_lowest(index);
    lowest + (1u64 << bucket) - 1
}

/// The counter that holds `value` (at least 1).
pub(super) fn index_of(value: u64) -> usize {
    let bucket = 63 - HALF_SUB_BUCKET_BITS - (value | (2 * HALF_SUB_BUCKETS as u64 - 1)).leading_zeros();
    let sub = (value >> bucket) as usize;
    ((bucket as usize + 1) << HALF_SUB_BUCKET_BITS) + sub - HALF_SUB_BUCKETS
}

/// A histogram's counters only: stored histograms are merged by adding
/// their non-zero counters here, and the percentiles are read as
/// [`Histogram::value_at_quantile`] reads them, so they are exactly those
/// of the merged histogram. Grows to the highest counter used.
#[derive(Debug, Default, Clone)]
pub(super) struct Counts {
    counts: Vec<u64>,
    total: u64,
}

impl Counts {
    #[inline]
    pub(super) fn add(&mut self, index: usize, count: u64) {
        if index >= self.counts.len() {
            self.grow(index);
        }
        self.counts[index] = self.counts[index].saturating_add(count);
        self.total = self.total.saturating_add(count);
    }

    #[cold]
    fn grow(&mut self, index: usize) {
        self.counts.resize((self.counts.len() * 2).min(counters()).max(index + 1), 0);
    }

    /// Adds `(index, count)` pairs, as [`super::store::read_counts`] reads them.
    pub(super) fn add_all(&mut self, pairs: &[(u32, u64)]) {
        for &(index, count) in pairs {
            self.add(index as usize, count);
        }
    }

    pub(super) fn merge(&mut self, other: &Counts) {
        if other.counts.len() > self.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine = mine.saturating_add(*theirs);
        }
        self.total = self.total.saturating_add(other.total);
    }

    pub(super) fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// What [`Histogram::value_at_quantile`] answers for the histogram of
    /// these counters (0 when empty).
    pub(super) fn value_at_quantile(&self, quantile: f64) -> u64 {
        let quantile = quantile.min(1.0);
        let target = ((quantile * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= target {
                return if quantile == 0.0 { lowest_of(index) } else { highest_of(index) };
            }
        }
        0
    }

    /// The histogram of these counters (to store it).
    pub(super) fn to_histogram(&self) -> Histogram<u64> {
        let mut h = histogram();
        for (index, &count) in self.counts.iter().enumerate() {
            if count > 0 {
                h.saturating_record_n(lowest_of(index), count);
            }
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_is_hdrhistograms() {
        let h = histogram();
        for index in 0..counters() {
            let (low, high) = (lowest_of(index), highest_of(index));
            assert_eq!(h.lowest_equivalent(low), low, "counter {index}");
            assert_eq!(h.highest_equivalent(low), high, "counter {index}");
            assert_eq!(index_of(low), index);
            assert_eq!(index_of(high), index);
        }
        assert!(index_of(HIGHEST_US) < counters());
    }

    #[test]
    fn percentiles_are_those_of_the_merged_histogram() {
        let mut merged = histogram();
        let mut counts = Counts::default();
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for part in 0..20u64 {
            let mut h = histogram();
            for _ in 0..(50 + part * 37) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let v = 1 + x % (10u64.pow((x % 9 + 1) as u32));
                h.record(v).expect("in bounds");
            }
            merged.add(&h).expect("same bounds");
            for v in h.iter_recorded() {
                counts.add(index_of(v.value_iterated_to()), v.count_at_value());
            }
            for q in [0.0, 0.01, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
                assert_eq!(counts.value_at_quantile(q), merged.value_at_quantile(q), "quantile {q}");
            }
        }
        let rebuilt = counts.to_histogram();
        assert_eq!(rebuilt, merged);
    }
}
