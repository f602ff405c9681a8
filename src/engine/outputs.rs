//! What a judged write leaves behind: the tags the upstream gets, the counters it moves, and its
//! audit outputs (the record for the host's access log, lines for the collector, the signed
//! notification), each bounded by `audit.max_record_bytes`.

use super::host::Host;
use super::{Count, Engine, Evaluation};
use crate::audit::notify::{cloudevent, should_notify, Origin};
use crate::audit::{bound, ocsf, Completion, Fit, Line, RequestFacts};
use crate::policy::Decision;

/// What leaves the session when the stream is complete.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outputs {
    /// The record for the host's access log, and the counter to move once it is written.
    pub record: Option<(String, Count)>,
    /// The whole record for the host's own log (`filter.audit_to_log`).
    pub log: Option<String>,
    /// Lines for the collector (records and/or OCSF events).
    pub ship: Vec<String>,
    /// The notification for the webhook: its id (the audit id) and the exact body to sign.
    pub notify: Option<(String, String)>,
}

/// The request headers the upstream gets: audit id and decision always; risk and rules when tagged.
pub fn tags(e: &Evaluation, audit_id: &str) -> Vec<(&'static str, String)> {
    let mut tags = vec![
        ("x-scim-audit-id", audit_id.to_string()),
        ("x-scim-decision", e.decision.as_str().to_string()),
    ];
    if e.decision == Decision::Tag {
        tags.push((
            "x-scim-risk",
            e.risk.map_or("none", |r| r.as_str()).to_string(),
        ));
        let rules: String = e
            .rule_ids()
            .join(",")
            .chars()
            .filter(|c| !c.is_control())
            .collect();
        if !rules.is_empty() {
            tags.push(("x-scim-rules", rules));
        }
    }
    tags
}

pub fn count_verdict(host: &mut dyn Host, e: &Evaluation) {
    host.count(Count::of_decision(e.decision), 1);
    for m in &e.matches {
        host.count(Count::of_match(m.severity), 1);
    }
    match &e.error {
        Some(err) if err.status == 413 => host.count(Count::BodyTooLarge, 1),
        Some(_) => host.count(Count::ParseErrors, 1),
        None => {}
    }
}

/// What leaves for the collector and the webhook: the record and/or its OCSF events, and the signed
/// notification when the request is high-risk. OCSF events are built only when something takes them.
pub fn outbound(
    engine: &Engine,
    host: &mut dyn Host,
    (e, facts): (&Evaluation, &RequestFacts),
    done: &Completion,
    record: &str,
    traceparent: Option<&str>,
) -> Outputs {
    let s = &engine.policy().settings;
    let collect = s.audit.collector.is_some();
    let notify = s
        .notify
        .as_ref()
        .is_some_and(|n| should_notify(&e.matches, e.risk, Some(n.min_severity)));
    let mut out = Outputs::default();
    if !collect && !notify {
        return out;
    }
    let judged = e.judged();
    let max = e.stamp.max_bytes;
    let events = if (collect && s.audit.format.ocsf()) || notify {
        ocsf::events(&judged, facts, done, &ocsf::OcsfContext::default())
    } else {
        Vec::new()
    };
    if collect && s.audit.format.records() && !record.is_empty() {
        out.ship.push(record.to_string());
    }
    if collect && s.audit.format.ocsf() {
        for event in &events {
            let line = fitted(host, bound::ocsf(event, max));
            if !line.is_empty() {
                out.ship.push(line);
            }
        }
    }
    if notify {
        let node = host.node().to_string();
        let notice = Origin {
            node: &node,
            traceparent,
        };
        let body = cloudevent(&judged, facts, done, &notice, &events);
        let line = fitted(host, bound::notification(&body, max));
        if !line.is_empty() {
            out.notify = Some((facts.audit_id.clone(), line));
        }
    }
    out
}

/// An output line as it fits `audit.max_record_bytes`; a cut or dropped one is counted (a dropped
/// one is empty).
pub fn fitted(host: &mut dyn Host, line: Line) -> String {
    match line.fit {
        Fit::Whole => {}
        Fit::Cut | Fit::Minimal => host.count(Count::AuditCut, 1),
        Fit::Dropped => {
            host.count(Count::AuditOversizeDropped, 1);
            host.warn(
                "scimguard: an audit output did not fit audit.max_record_bytes and was dropped",
            );
        }
    }
    line.text
}
