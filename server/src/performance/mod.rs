//! Call latency: every call's duration recorded per minute, method and
//! acting organization in an HDR histogram (in memory, sharded), written by
//! a background task to `perf_minutes` (one row per replica), and merged
//! into `performance.report`; alert rules evaluated over the same rows.

mod alerts;
#[doc(hidden)]
pub mod bench;
mod recorder;
mod report;
mod sample;
mod store;
mod system;

pub(crate) use alerts::spawn as spawn_alerts;
pub(crate) use recorder::{Recorder, record};
pub(crate) use store::{prune, prune_hours};
