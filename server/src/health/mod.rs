//! `health.*`, and the monitor that keeps the latest probe of each dependency.

mod check;
mod monitor;

pub(crate) use monitor::HealthMonitor;
