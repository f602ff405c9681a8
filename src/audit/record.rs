//! The audit record: one JSON line per SCIM write (`kind: "scim_write"`) and one per sampled
//! application access (`kind: "access"`). This format is a contract: `scimguard report` and SIEM
//! pipelines read it. Add fields; never rename or remove one.

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::time::rfc3339_ms;
use crate::policy::{Decision, Mode, RuleMatch, Severity};
use crate::scim::endpoint::printable;
use crate::scim::{Normalized, ScimError};

/// Record schema version.
pub const RECORD_VERSION: u32 = 1;

/// What the host knows about the request.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RequestFacts {
    /// Start of the request, epoch milliseconds.
    pub time_ms: u64,
    pub audit_id: String,
    /// Envoy's `x-request-id`.
    pub request_id: Option<String>,
    /// W3C trace id from `traceparent`.
    pub trace_id: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub method: String,
    pub path: String,
}

impl RequestFacts {
    /// The audit id and Envoy's request id as every output shows them: cleaned, and the request id
    /// absent when empty.
    pub fn clean_ids(&self) -> (String, Option<String>) {
        let request_id = self
            .request_id
            .as_deref()
            .map(printable)
            .filter(|r| !r.is_empty());
        (printable(&self.audit_id), request_id)
    }
}

/// What the host learned once the stream completed.
#[derive(Debug, Clone, Default)]
pub struct Completion {
    /// The status the client received (upstream's, or our local reply's).
    pub status: Option<u16>,
    /// The id of a resource the request created, from `Location` or the response body.
    pub created_id: Option<String>,
    pub duration_ms: Option<u64>,
}

/// The parts of a judged request an audit record shows.
#[derive(Debug, Clone, Copy)]
pub struct Judged<'a> {
    pub decision: Decision,
    pub risk: Option<Severity>,
    pub mode: Mode,
    pub matches: &'a [RuleMatch],
    pub normalized: Option<&'a Normalized>,
    pub error: Option<&'a ScimError>,
    pub actor: Option<&'a str>,
    pub unknown_groups: &'a [String],
}

/// The `scim_write` record as one JSON line (no trailing newline).
pub fn write_record(j: &Judged<'_>, req: &RequestFacts, done: &Completion) -> String {
    let mut r = Map::new();
    r.insert("kind".into(), json!("scim_write"));
    r.insert("v".into(), json!(RECORD_VERSION));
    common(&mut r, req, j.actor);
    let n = j.normalized;
    r.insert(
        "resource_type".into(),
        json!(n.map(|n| n.resource_type.as_str())),
    );
    let id = n
        .and_then(|n| n.resource_id.clone())
        .or_else(|| done.created_id.clone());
    r.insert("resource_id".into(), json!(id));
    r.insert("bulk".into(), json!(n.is_some_and(|n| n.bulk)));
    r.insert("events".into(), events(n, done));
    r.insert("changes".into(), changes(n));
    let rules: Vec<Value> = j
        .matches
        .iter()
        .map(|m| json!({"id": m.id, "severity": m.severity, "action": m.action, "mode": m.mode, "notify": m.notify}))
        .collect();
    r.insert("rules".into(), Value::Array(rules));
    r.insert("decision".into(), json!(j.decision.as_str()));
    r.insert(
        "risk".into(),
        json!(j.risk.map_or("none", Severity::as_str)),
    );
    r.insert("mode".into(), json!(j.mode.as_str()));
    r.insert("status".into(), json!(done.status));
    r.insert("duration_ms".into(), json!(done.duration_ms));
    if let Some(e) = j.error {
        r.insert(
            "error".into(),
            json!({"status": e.status, "scimType": e.scim_type, "detail": e.detail}),
        );
    }
    if !j.unknown_groups.is_empty() {
        r.insert("group_names_unknown".into(), json!(j.unknown_groups));
    }
    Value::Object(r).to_string()
}

/// Facts about one access to an application route.
#[derive(Debug, Clone, Default)]
pub struct AccessFacts {
    pub actor: Option<String>,
    /// The route template (`/api/projects/{id}`), or the path when no template is configured.
    pub route: String,
    pub status: Option<u16>,
    pub duration_ms: Option<u64>,
    /// This record was kept by sampling (1 in `sample_rate_inverse`), not because it must be kept.
    pub sampled: bool,
}

/// The `access` record as one JSON line.
pub fn access_record(req: &RequestFacts, access: &AccessFacts) -> String {
    let mut r = Map::new();
    r.insert("kind".into(), json!("access"));
    r.insert("v".into(), json!(RECORD_VERSION));
    common(&mut r, req, access.actor.as_deref());
    r.insert("route".into(), json!(clean(&access.route)));
    r.insert("status".into(), json!(access.status));
    r.insert("duration_ms".into(), json!(access.duration_ms));
    r.insert("sampled".into(), json!(access.sampled));
    Value::Object(r).to_string()
}

fn common(r: &mut Map<String, Value>, req: &RequestFacts, actor: Option<&str>) {
    r.insert("time".into(), json!(rfc3339_ms(req.time_ms)));
    r.insert("audit_id".into(), json!(req.audit_id));
    r.insert(
        "request_id".into(),
        json!(req.request_id.as_deref().map(clean)),
    );
    r.insert("trace_id".into(), json!(req.trace_id));
    r.insert("actor".into(), json!(actor.map(clean)));
    r.insert("source_ip".into(), json!(req.source_ip));
    r.insert(
        "user_agent".into(),
        json!(req.user_agent.as_deref().map(clean)),
    );
    r.insert("method".into(), json!(clean(&req.method)));
    r.insert("path".into(), json!(clean(path_without_query(&req.path))));
}

/// Query strings can carry tokens (`?access_token=`); records keep the path only.
fn path_without_query(path: &str) -> &str {
    path.split(['?', '#']).next().unwrap_or_default()
}

fn clean(s: &str) -> String {
    printable(s)
}

fn events(n: Option<&Normalized>, done: &Completion) -> Value {
    let Some(n) = n else { return json!([]) };
    let single_create = !n.bulk && n.resource_id.is_none();
    let list: Vec<Value> = n
        .operations
        .iter()
        .flat_map(|o| o.events.iter())
        .map(|e| {
            let mut v = serde_json::to_value(e).unwrap_or(Value::Null);
            if single_create && e.resource_id.is_none() {
                if let (Some(id), Some(obj)) = (&done.created_id, v.as_object_mut()) {
                    obj.insert("resource_id".into(), json!(id));
                }
            }
            v
        })
        .collect();
    Value::Array(list)
}

/// A summary of the changes: who/what/op/attribute and how many values, never the values of
/// sensitive attributes (already redacted by the normaliser) and at most 20 values per change.
fn changes(n: Option<&Normalized>) -> Value {
    let Some(n) = n else { return json!([]) };
    let list: Vec<Value> = n
        .operations
        .iter()
        .flat_map(|o| o.changes.iter())
        .map(|c| {
            let mut v = serde_json::to_value(c).unwrap_or(Value::Null);
            if let Some(obj) = v.as_object_mut() {
                if c.values.len() > 20 {
                    obj.insert(
                        "values".into(),
                        json!(c.values.iter().take(20).collect::<Vec<_>>()),
                    );
                    obj.insert("values_total".into(), json!(c.values.len()));
                }
            }
            v
        })
        .collect();
    Value::Array(list)
}
