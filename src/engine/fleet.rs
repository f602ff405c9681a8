//! Fleet detections through a global rate-limit service (docs/fleet.md): the session marks a
//! judged write that carries a fleet detection's events, the host's rate-limit step counts it across
//! the fleet, and a refusal it answers is recorded here as the detection's block.
//!
//! - The mark: request header `x-scim-fleet: <descriptor>` (clients cannot send it: every
//!   client-sent `x-scim-*` header is removed first; the route removes it before the upstream), and
//!   how many the request counts for (a Bulk's deprovisions), which the host passes on (Envoy:
//!   filter state `envoy.ratelimit.hits_addend`).
//! - The refusal: a marked write answered 429 with `x-envoy-ratelimited` was stopped by the service;
//!   `detection.fleet.<name>` is added to its evaluation before the audit outputs are written.

use super::detections::detection;
use super::Evaluation;
use crate::audit::detect::fleet_mark;
use crate::policy::{Decision, DetectionAction, FleetDetection, Mode, Policy, Severity};

/// The marker header the rate-limit descriptor action reads.
pub const MARKER: &str = "x-scim-fleet";

/// A write counted by the service: which detection, by how many.
#[derive(Debug, Clone)]
pub struct Mark {
    pub detection: FleetDetection,
    pub hits: u64,
}

/// The mark of a write that is going upstream with events of a fleet detection.
pub fn mark(policy: &Policy, e: &Evaluation) -> Option<Mark> {
    let fleet = &policy.settings.detections.fleet;
    if e.decision == Decision::Block || fleet.is_empty() {
        return None;
    }
    let events: Vec<_> = e.events().collect();
    let (f, hits) = fleet_mark(fleet, &events)?;
    Some(Mark {
        detection: f.clone(),
        hits,
    })
}

/// Whether a response is the rate-limit service's refusal (Envoy's ratelimit filter's 429).
pub fn refused(response: &[(String, String)]) -> bool {
    let has = |name: &str, value: Option<&str>| {
        response
            .iter()
            .any(|(k, v)| k == name && value.is_none_or(|want| v == want))
    };
    has(":status", Some("429")) && has("x-envoy-ratelimited", None)
}

/// Adds the fleet block to the evaluation the audit outputs are written from.
pub fn record_block(e: &mut Evaluation, mark: &Mark) {
    let f = &mark.detection;
    let description = format!(
        "fleet detection `{}`: the rate-limit service's limit for descriptor `{}` was reached across the fleet ({} counted by this request)",
        f.name, f.descriptor, mark.hits
    );
    e.add_match(detection(
        &format!("fleet.{}", f.name),
        description,
        Severity::Critical,
        (DetectionAction::Block, Mode::Enforce, 429),
    ));
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn only_the_ratelimit_filters_429_is_a_fleet_refusal() {
        let h = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(refused(&h(&[
            (":status", "429"),
            ("x-envoy-ratelimited", "true")
        ])));
        assert!(
            !refused(&h(&[(":status", "429")])),
            "the upstream's own 429"
        );
        assert!(!refused(&h(&[
            (":status", "503"),
            ("x-envoy-ratelimited", "true")
        ])));
        assert!(!refused(&[]));
    }
}
