//! The filter's counters: a fixed, bounded set, defined once per VM in `on_configure`.
//!
//! Envoy shows each as `wasmcustom.<name>` in `/stats` and as `<name>` in `/stats/prometheus` (the
//! custom namespace is stripped, no `envoy_` prefix). Every worker VM defines the same names, so the
//! counts aggregate into one stat. Labels do not exist for wasm metrics, so the few dimensions we
//! need (decision, severity) are in the names; rule ids never are (they go to the audit record).

use proxy_wasm::hostcalls;
use proxy_wasm::types::{LogLevel, MetricType};
use crate::policy::{Decision, Severity};

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
}

const NAMES: [&str; 15] = [
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
];

/// The metric ids the host gave this VM (`None` where defining failed: that counter is skipped).
#[derive(Debug, Default)]
pub struct Metrics {
    ids: Vec<Option<u32>>,
}

impl Metrics {
    /// Defines every counter (one host call each, once per VM).
    pub fn define() -> Metrics {
        let ids = NAMES
            .iter()
            .map(|name| match hostcalls::define_metric(MetricType::Counter, name) {
                Ok(id) => Some(id),
                Err(status) => {
                    host::log(LogLevel::Warn, &format!("scimguard: cannot define metric `{name}`: {status:?}"));
                    None
                }
            })
            .collect();
        Metrics { ids }
    }

    /// Adds one (one host call).
    pub fn count(&self, metric: Metric) {
        if let Some(Some(id)) = self.ids.get(metric as usize) {
            // A lost increment is not worth failing a request for.
            let _ = hostcalls::increment_metric(*id, 1);
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
