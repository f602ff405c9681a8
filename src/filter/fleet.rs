//! Fleet detections through Envoy's global rate limit (docs/fleet.md): scimguard marks a judged
//! write, Envoy's `envoy.filters.http.ratelimit` after it asks the shared service, and a 429 it
//! answers is recorded here as the fleet detection's block.
//!
//! - The mark: request header `x-scim-fleet: <descriptor>` (clients cannot send it: every
//!   client-sent `x-scim-*` header is removed first; the route removes it before the upstream), and,
//!   when a request counts more than once (a Bulk), Envoy filter state `envoy.ratelimit.hits_addend`
//!   set through the `set_envoy_filter_state` foreign function (a registered object factory parses
//!   the number), which the ratelimit filter adds instead of 1.
//! - The record: a marked write answered 429 with `x-envoy-ratelimited` was stopped by the service;
//!   the detection `detection.fleet.<name>` is added to its evaluation before the audit record,
//!   OCSF events and notification are written in `on_log`.
//!
//! Host calls: none for an unmarked write; a marked one adds one `set_map_value` (+ one foreign
//! call for a count above 1) and, on the response, one `get_map` of the response headers.

use proxy_wasm::hostcalls;
use proxy_wasm::types::MapType;

use super::detect;
use super::host::{self, HostError, HostResult};
use super::metrics::Metric;
use super::root::Shared;
use crate::audit::detect::fleet_mark;
use crate::engine::Evaluation;
use crate::policy::{Decision, DetectionAction, FleetDetection, Mode, Severity};

/// The marker header the ratelimit filter's descriptor action reads.
pub const MARKER: &str = "x-scim-fleet";
const HITS_KEY: &str = "envoy.ratelimit.hits_addend";

/// A write counted by the service: which detection, by how many.
pub struct Mark {
    pub detection: FleetDetection,
    pub hits: u64,
}

/// Marks a write that is going upstream and carries events of a fleet detection.
pub fn mark(shared: &Shared, e: &Evaluation) -> Option<Mark> {
    let fleet = &shared.engine.policy().settings.detections.fleet;
    if e.decision == Decision::Block || fleet.is_empty() {
        return None;
    }
    let events: Vec<_> = e.events().collect();
    let (f, hits) = fleet_mark(fleet, &events)?;
    let mark = Mark {
        detection: f.clone(),
        hits,
    };
    let set = host::set_header(MapType::HttpRequestHeaders, MARKER, &f.descriptor).and_then(|()| {
        if hits > 1 {
            set_hits(hits)
        } else {
            Ok(())
        }
    });
    match set {
        Ok(()) => shared.metrics.count(Metric::FleetMarked),
        Err(err) => shared.host_error(err),
    }
    Some(mark)
}

/// `envoy.ratelimit.hits_addend` = `hits`: `SetEnvoyFilterStateArguments { path = 1, value = 2 }`
/// as protobuf (two length-delimited strings; life span 0 = filter chain, the default).
fn set_hits(hits: u64) -> HostResult<()> {
    hostcalls::call_foreign_function("set_envoy_filter_state", Some(&hits_args(hits)))
        .map(|_| ())
        .map_err(|status| HostError {
            call: "set_envoy_filter_state",
            status,
        })
}

/// The foreign function's argument. Both strings are shorter than 128 bytes, so each length is
/// one varint byte.
fn hits_args(hits: u64) -> Vec<u8> {
    let value = hits.min(u64::from(u32::MAX)).to_string();
    let mut args = Vec::with_capacity(HITS_KEY.len() + value.len() + 4);
    for (tag, bytes) in [(0x0a, HITS_KEY.as_bytes()), (0x12, value.as_bytes())] {
        args.push(tag);
        args.push(bytes.len() as u8);
        args.extend_from_slice(bytes);
    }
    args
}

/// Whether the response is the rate-limit service's refusal (Envoy's ratelimit filter's 429).
pub fn refused(response: &[(String, String)]) -> bool {
    let has = |name: &str, value: Option<&str>| {
        response
            .iter()
            .any(|(k, v)| k == name && value.is_none_or(|want| v == want))
    };
    has(":status", Some("429")) && has("x-envoy-ratelimited", None)
}

/// Adds the fleet block to the evaluation the record is written from.
pub fn record_block(shared: &Shared, e: &mut Evaluation, mark: &Mark) {
    shared.metrics.count(Metric::FleetBlocks);
    let f = &mark.detection;
    let description = format!(
        "fleet detection `{}`: the rate-limit service's limit for descriptor `{}` was reached across the fleet ({} counted by this request)",
        f.name, f.descriptor, mark.hits
    );
    let m = detect::detection(
        &format!("fleet.{}", f.name),
        description,
        Severity::Critical,
        DetectionAction::Block,
        Mode::Enforce,
        429,
    );
    detect::add(e, m);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn the_hits_argument_is_the_protobuf_envoy_expects() {
        let mut want = vec![0x0a, 27];
        want.extend_from_slice(b"envoy.ratelimit.hits_addend");
        want.extend_from_slice(&[0x12, 2, b'2', b'0']);
        assert_eq!(hits_args(20), want);
        let big = hits_args(u64::MAX);
        assert!(
            big.ends_with(b"4294967295"),
            "capped at u32 (the object is a UInt32)"
        );
    }

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
