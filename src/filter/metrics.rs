//! The filter's counters: a fixed, bounded set, defined once per VM in `on_configure`.
//!
//! Counted in the VM, published on the root context's tick (`FLUSH_PERIOD`): an `increment_metric`
//! is a VM→host crossing, and one per event would be two or three more crossings on every judged
//! write. Stats therefore lag by at most one period (Prometheus scrapes far less often). A flush
//! publishes every counter before the gauges, so a reader that sees a queue gauge at 0 also sees the
//! counters that moved it.
//!
//! Envoy shows each as `wasmcustom.<name>` in `/stats` and as `<name>` in `/stats/prometheus` (the
//! custom namespace is stripped, no `envoy_` prefix). Every worker VM defines the same names, so the
//! counts aggregate into one stat. Labels do not exist for wasm metrics, so the few dimensions we
//! need (decision, severity) are in the names; rule ids never are (they go to the audit record).

use std::cell::Cell;
use std::time::Duration;

use crate::policy::{Decision, Severity};
use proxy_wasm::hostcalls;
use proxy_wasm::types::{LogLevel, MetricType};

use super::host;

/// One counter. The discriminant indexes `NAMES`.
#[derive(Debug, Clone, Copy)]
pub enum Metric {
    Allowed,
    Tagged,
    Blocked,
    /// Requests let through unjudged (reads, non-SCIM paths).
    Passthrough,
    RuleLow,
    RuleMedium,
    RuleHigh,
    RuleCritical,
    /// Writes the engine could not read (malformed, unsupported encoding or type, invalid path).
    ParseErrors,
    BodyTooLarge,
    AuditRecords,
    GroupLookups,
    GroupLookupFailures,
    GroupNamesLearned,
    /// Host calls that failed (the request got the fail-closed posture where it mattered).
    HostErrors,
    /// Shipping to the collector: items queued, delivered, dropped (queue full), given up on
    /// after the last retry, and retry attempts. enqueued = delivered + dropped + failed + pending.
    AuditEnqueued,
    AuditDelivered,
    AuditDropped,
    AuditDeliveryFailed,
    AuditRetries,
    /// The same for webhook notifications.
    NotifyEnqueued,
    NotifyDelivered,
    NotifyDropped,
    NotifyDeliveryFailed,
    NotifyRetries,
    /// Requests on audited application routes, and the access records kept (after sampling).
    AccessRequests,
    AccessRecords,
    /// The deprovision storm tripped; requests that met a tripped storm; requests from risky actors.
    StormTrips,
    StormHits,
    ActorRiskHits,
    /// Audit outputs (records, OCSF events, notifications) cut to fit `audit.max_record_bytes`,
    /// and those that could not be made to fit and were dropped (never expected).
    AuditCut,
    AuditOversizeDropped,
    /// Writes marked for the fleet's rate-limit service, and those it refused (docs/fleet.md).
    FleetMarked,
    FleetBlocks,
}

const NAMES: [&str; 34] = [
    "scimguard_requests_allow_total",
    "scimguard_requests_tag_total",
    "scimguard_requests_block_total",
    "scimguard_passthrough_total",
    "scimguard_rule_matches_low_total",
    "scimguard_rule_matches_medium_total",
    "scimguard_rule_matches_high_total",
    "scimguard_rule_matches_critical_total",
    "scimguard_parse_errors_total",
    "scimguard_body_too_large_total",
    "scimguard_audit_records_total",
    "scimguard_group_lookups_total",
    "scimguard_group_lookup_failures_total",
    "scimguard_group_names_learned_total",
    "scimguard_host_errors_total",
    "scimguard_audit_enqueued_total",
    "scimguard_audit_delivered_total",
    "scimguard_audit_dropped_total",
    "scimguard_audit_delivery_failed_total",
    "scimguard_audit_retries_total",
    "scimguard_notify_enqueued_total",
    "scimguard_notify_delivered_total",
    "scimguard_notify_dropped_total",
    "scimguard_notify_delivery_failed_total",
    "scimguard_notify_retries_total",
    "scimguard_access_requests_total",
    "scimguard_access_records_total",
    "scimguard_detection_storm_trips_total",
    "scimguard_detection_storm_hits_total",
    "scimguard_detection_actor_risk_hits_total",
    "scimguard_audit_outputs_cut_total",
    "scimguard_audit_outputs_oversize_dropped_total",
    "scimguard_fleet_marked_total",
    "scimguard_fleet_blocks_total",
];

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
        let ids = NAMES
            .iter()
            .map(|name| define(MetricType::Counter, name))
            .collect();
        let gauges = GAUGES
            .iter()
            .map(|name| define(MetricType::Gauge, name))
            .collect();
        Metrics {
            counted: NAMES.iter().map(|_| Cell::new(0)).collect(),
            moved: GAUGES.iter().map(|_| Cell::new(0)).collect(),
            ids,
            gauges,
        }
    }

    /// Adds one (no host call: published by `flush`).
    pub fn count(&self, metric: Metric) {
        self.add(metric, 1);
    }

    /// Adds `n` (no host call: published by `flush`).
    pub fn add(&self, metric: Metric, n: u64) {
        if let Some(c) = self.counted.get(metric as usize) {
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

    pub fn decision(&self, decision: Decision) {
        self.count(match decision {
            Decision::Allow => Metric::Allowed,
            Decision::Tag => Metric::Tagged,
            Decision::Block => Metric::Blocked,
        });
    }

    pub fn rule_match(&self, severity: Severity) {
        self.count(match severity {
            Severity::Low => Metric::RuleLow,
            Severity::Medium => Metric::RuleMedium,
            Severity::High => Metric::RuleHigh,
            Severity::Critical => Metric::RuleCritical,
        });
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
