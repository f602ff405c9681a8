//! The counters a session moves, and their metric names: the contract dashboards and alerts
//! (`deploy/prometheus/alerts.yaml`) read. A host publishes each under its name (Envoy: `/stats`
//! as `wasmcustom.<name>`, `/stats/prometheus` as `<name>`). Labels do not exist for wasm metrics,
//! so the few dimensions needed (decision, severity) are in the names; rule ids never are.

use crate::policy::{Decision, Severity};

macro_rules! counts {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// One counter.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Count { $($(#[$doc])* $variant,)* }

        impl Count {
            /// Every counter, in a fixed order (a host indexes its metric ids by `as usize`).
            pub const ALL: &'static [Count] = &[$(Count::$variant,)*];

            /// The metric name.
            pub fn name(self) -> &'static str {
                match self { $(Count::$variant => $name,)* }
            }
        }
    };
}

counts! {
    Allowed => "scimguard_requests_allow_total",
    Tagged => "scimguard_requests_tag_total",
    Blocked => "scimguard_requests_block_total",
    /// Requests let through unjudged (reads, non-SCIM paths).
    Passthrough => "scimguard_passthrough_total",
    RuleLow => "scimguard_rule_matches_low_total",
    RuleMedium => "scimguard_rule_matches_medium_total",
    RuleHigh => "scimguard_rule_matches_high_total",
    RuleCritical => "scimguard_rule_matches_critical_total",
    /// Writes the engine could not read (malformed, unsupported encoding or type, invalid path).
    ParseErrors => "scimguard_parse_errors_total",
    BodyTooLarge => "scimguard_body_too_large_total",
    AuditRecords => "scimguard_audit_records_total",
    GroupLookups => "scimguard_group_lookups_total",
    GroupLookupFailures => "scimguard_group_lookup_failures_total",
    GroupNamesLearned => "scimguard_group_names_learned_total",
    /// Host calls that failed (the request got the fail-closed posture where it mattered).
    HostErrors => "scimguard_host_errors_total",
    /// Shipping to the collector: items queued, delivered, dropped (queue full), given up on after
    /// the last retry, and retry attempts. enqueued = delivered + dropped + failed + pending.
    AuditEnqueued => "scimguard_audit_enqueued_total",
    AuditDelivered => "scimguard_audit_delivered_total",
    AuditDropped => "scimguard_audit_dropped_total",
    AuditDeliveryFailed => "scimguard_audit_delivery_failed_total",
    AuditRetries => "scimguard_audit_retries_total",
    /// The same for webhook notifications.
    NotifyEnqueued => "scimguard_notify_enqueued_total",
    NotifyDelivered => "scimguard_notify_delivered_total",
    NotifyDropped => "scimguard_notify_dropped_total",
    NotifyDeliveryFailed => "scimguard_notify_delivery_failed_total",
    NotifyRetries => "scimguard_notify_retries_total",
    /// Requests on audited application routes, and the access records kept (after sampling).
    AccessRequests => "scimguard_access_requests_total",
    AccessRecords => "scimguard_access_records_total",
    /// The storm tripped; requests that met a tripped storm; requests from risky actors.
    StormTrips => "scimguard_detection_storm_trips_total",
    StormHits => "scimguard_detection_storm_hits_total",
    ActorRiskHits => "scimguard_detection_actor_risk_hits_total",
    /// Audit outputs cut to fit `audit.max_record_bytes`, and those dropped (never expected).
    AuditCut => "scimguard_audit_outputs_cut_total",
    AuditOversizeDropped => "scimguard_audit_outputs_oversize_dropped_total",
    /// Writes marked for the fleet's rate-limit service, and those it refused (docs/fleet.md).
    FleetMarked => "scimguard_fleet_marked_total",
    FleetBlocks => "scimguard_fleet_blocks_total",
}

impl Count {
    pub fn of_decision(decision: Decision) -> Count {
        match decision {
            Decision::Allow => Count::Allowed,
            Decision::Tag => Count::Tagged,
            Decision::Block => Count::Blocked,
        }
    }

    pub fn of_match(severity: Severity) -> Count {
        match severity {
            Severity::Low => Count::RuleLow,
            Severity::Medium => Count::RuleMedium,
            Severity::High => Count::RuleHigh,
            Severity::Critical => Count::RuleCritical,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn every_count_has_its_own_prometheus_name() {
        let names: std::collections::BTreeSet<&str> = Count::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(names.len(), Count::ALL.len());
        assert!(names
            .iter()
            .all(|n| n.starts_with("scimguard_") && n.ends_with("_total")));
        for (i, c) in Count::ALL.iter().enumerate() {
            assert_eq!(*c as usize, i, "ALL is in declaration order");
        }
    }
}
