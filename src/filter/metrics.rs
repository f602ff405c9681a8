//! The filter's counters: the core's `Count` set (names and meaning are the engine's) plus the
//! shipping queues' gauges, defined once per VM in `on_configure`.
//!
//! Counted in the VM, published on the root context's tick (`FLUSH_PERIOD`): an `increment_metric`
//! is a VM→host crossing, and one per event would be two or three more crossings on every judged
//! write. Stats therefore lag by at most one period (Prometheus scrapes far less often). A flush
//! publishes every counter before the gauges, so a reader that sees a queue gauge at 0 also sees the
//! counters that moved it. Every worker VM defines the same names, so the counts aggregate into
//! one stat (`wasmcustom.<name>` in `/stats`, `<name>` in `/stats/prometheus`).

use std::cell::Cell;
use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::types::{LogLevel, MetricType};

use super::host;
use crate::engine::Count;

/// Items waiting or in flight, per sink (gauges: every VM adds and subtracts, so the stat is the
/// process-wide total).
#[derive(Debug, Clone, Copy)]
pub enum Gauge {
    AuditPending,
    NotifyPending,
}

const GAUGES: [&str; 2] = ["scimguard_audit_pending", "scimguard_notify_pending"];

/// How often counts are published: the longest a stat lags behind what happened.
pub const FLUSH_PERIOD: Duration = Duration::from_secs(1);

/// The metric ids the host gave this VM (`None` where defining failed: that counter is skipped),
/// and what has been counted since the last flush.
#[derive(Debug, Default)]
pub struct Metrics {
    ids: Vec<Option<u32>>,
    gauges: Vec<Option<u32>>,
    counted: Vec<Cell<u64>>,
    moved: Vec<Cell<i64>>,
}

impl Metrics {
    /// Defines every counter (one host call each, once per VM).
    pub fn define() -> Metrics {
        Metrics {
            ids: Count::ALL
                .iter()
                .map(|c| define(MetricType::Counter, c.name()))
                .collect(),
            gauges: GAUGES
                .iter()
                .map(|name| define(MetricType::Gauge, name))
                .collect(),
            counted: Count::ALL.iter().map(|_| Cell::new(0)).collect(),
            moved: GAUGES.iter().map(|_| Cell::new(0)).collect(),
        }
    }

    /// Adds one (no host call: published by `flush`).
    pub fn count(&self, count: Count) {
        self.add(count, 1);
    }

    /// Adds `n` (no host call: published by `flush`).
    pub fn add(&self, count: Count, n: u64) {
        if let Some(c) = self.counted.get(count as usize) {
            c.set(c.get().saturating_add(n));
        }
    }

    /// Moves a gauge by `delta` (no host call: published by `flush`).
    pub fn gauge(&self, gauge: Gauge, delta: i64) {
        if let Some(g) = self.moved.get(gauge as usize) {
            g.set(g.get().saturating_add(delta));
        }
    }

    /// Publishes what was counted since the last flush: one host call per counter or gauge that
    /// moved, counters first. A failed increment is not retried (a stat is not worth a loop).
    pub fn flush(&self) {
        for (id, c) in self.ids.iter().zip(&self.counted) {
            let n = i64::try_from(c.replace(0)).unwrap_or(i64::MAX);
            if let (Some(id), 1..) = (id, n) {
                let _ = hostcalls::increment_metric(*id, n);
            }
        }
        for (id, g) in self.gauges.iter().zip(&self.moved) {
            let delta = g.replace(0);
            if let (Some(id), true) = (id, delta != 0) {
                let _ = hostcalls::increment_metric(*id, delta);
            }
        }
    }
}

fn define(kind: MetricType, name: &str) -> Option<u32> {
    match hostcalls::define_metric(kind, name) {
        Ok(id) => Some(id),
        Err(status) => {
            host::log(
                LogLevel::Warn,
                &format!("scimguard: cannot define metric `{name}`: {status:?}"),
            );
            None
        }
    }
}
