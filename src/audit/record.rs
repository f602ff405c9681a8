//! The audit record: one JSON line per SCIM write (`kind: "scim_write"`) and one per sampled
//! application access (`kind: "access"`). This format is a contract: `scimguard report` and SIEM
//! pipelines read it. Add fields; never rename or remove one.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::Value;

use super::time::rfc3339_ms;
use crate::policy::{Action, Decision, Mode, RuleId, RuleMatch, Severity};
use crate::scim::endpoint::printable;
use crate::scim::{Change, Event, Normalized, Op, ResourceType, ScimError};

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
///
/// Serialised in one pass from borrowed parts (no intermediate `Value` tree): this runs on every
/// SCIM write inside the filter.
pub fn write_record(j: &Judged<'_>, req: &RequestFacts, done: &Completion) -> String {
    let n = j.normalized;
    let record = WriteRecord {
        kind: "scim_write",
        v: RECORD_VERSION,
        common: Common::new(req, j.actor),
        resource_type: n.map(|n| n.resource_type.as_str()),
        resource_id: n
            .and_then(|n| n.resource_id.as_deref())
            .or(done.created_id.as_deref()),
        bulk: n.is_some_and(|n| n.bulk),
        events: events(n, done),
        changes_total: n
            .map(|n| n.operations.iter().map(|o| o.changes.len()).sum::<usize>())
            .filter(|total| *total > MAX_CHANGES),
        changes: changes(n),
        rules: j.matches.iter().map(RuleOut::from).collect(),
        decision: j.decision.as_str(),
        risk: j.risk.map_or("none", Severity::as_str),
        mode: j.mode.as_str(),
        status: done.status,
        duration_ms: done.duration_ms,
        error: j.error.map(|e| ErrorOut {
            status: e.status,
            scim_type: e.scim_type,
            detail: &e.detail,
        }),
        group_names_unknown: j.unknown_groups,
    };
    serde_json::to_string(&record).unwrap_or_default()
}

#[derive(Serialize)]
struct WriteRecord<'a> {
    kind: &'static str,
    v: u32,
    #[serde(flatten)]
    common: Common<'a>,
    resource_type: Option<&'a str>,
    resource_id: Option<&'a str>,
    bulk: bool,
    events: Vec<Cow<'a, Event>>,
    changes: Vec<ChangeOut<'a>>,
    /// Present when the request had more than `MAX_CHANGES` changes (a large Bulk).
    #[serde(skip_serializing_if = "Option::is_none")]
    changes_total: Option<usize>,
    rules: Vec<RuleOut<'a>>,
    decision: &'static str,
    risk: &'static str,
    mode: &'static str,
    status: Option<u16>,
    duration_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorOut<'a>>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    group_names_unknown: &'a [String],
}

/// The fields every record starts with.
#[derive(Serialize)]
struct Common<'a> {
    time: String,
    audit_id: &'a str,
    request_id: Option<String>,
    trace_id: Option<&'a str>,
    actor: Option<String>,
    source_ip: Option<&'a str>,
    user_agent: Option<String>,
    method: String,
    path: String,
}

impl<'a> Common<'a> {
    fn new(req: &'a RequestFacts, actor: Option<&str>) -> Common<'a> {
        Common {
            time: rfc3339_ms(req.time_ms),
            audit_id: &req.audit_id,
            request_id: req.request_id.as_deref().map(clean),
            trace_id: req.trace_id.as_deref(),
            actor: actor.map(clean),
            source_ip: req.source_ip.as_deref(),
            user_agent: req.user_agent.as_deref().map(clean),
            method: clean(&req.method),
            path: clean(path_without_query(&req.path)),
        }
    }
}

#[derive(Serialize)]
struct RuleOut<'a> {
    id: &'a RuleId,
    severity: Severity,
    action: Action,
    mode: Mode,
    notify: bool,
}

impl<'a> From<&'a RuleMatch> for RuleOut<'a> {
    fn from(m: &'a RuleMatch) -> Self {
        RuleOut {
            id: &m.id,
            severity: m.severity,
            action: m.action,
            mode: m.mode,
            notify: m.notify,
        }
    }
}

#[derive(Serialize)]
struct ErrorOut<'a> {
    status: u16,
    #[serde(rename = "scimType")]
    scim_type: Option<&'static str>,
    detail: &'a str,
}

/// A change as recorded: whole, or cut to its first `MAX_VALUES` values (with the total) and its
/// strings to `MAX_STRING` characters.
#[derive(Serialize)]
#[serde(untagged)]
enum ChangeOut<'a> {
    Whole(&'a Change),
    Cut(CutChange<'a>),
}

/// A cut change: `Change`'s fields in `Change`'s order, borrowed, with the values kept (only those
/// holding a long string are copied, to cut it) and `values_total`.
#[derive(Serialize)]
struct CutChange<'a> {
    resource_type: &'a ResourceType,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bulk_id: Option<&'a str>,
    op: Op,
    attribute: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub_attribute: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    filter: Option<&'a str>,
    values: Vec<Cow<'a, Value>>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    flags: &'a [&'static str],
    values_total: usize,
}

/// Values recorded per change; the rest are counted in `values_total`.
const MAX_VALUES: usize = 20;
/// Changes recorded per request; the total is in `changes_total`. Events are never cut: they are
/// what `scimguard report` rebuilds state from. A 1 MiB Bulk of creates keeps a record of ~0.2 MB
/// instead of ~1.5 MB (Envoy copies filter state into the access log).
const MAX_CHANGES: usize = 100;
/// Characters kept of a string value (longer ones end with `…`).
const MAX_STRING: usize = 256;

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
    let record = AccessRecord {
        kind: "access",
        v: RECORD_VERSION,
        common: Common::new(req, access.actor.as_deref()),
        route: clean(&access.route),
        status: access.status,
        duration_ms: access.duration_ms,
        sampled: access.sampled,
    };
    serde_json::to_string(&record).unwrap_or_default()
}

#[derive(Serialize)]
struct AccessRecord<'a> {
    kind: &'static str,
    v: u32,
    #[serde(flatten)]
    common: Common<'a>,
    route: String,
    status: Option<u16>,
    duration_ms: Option<u64>,
    sampled: bool,
}

/// Query strings can carry tokens (`?access_token=`); records keep the path only.
fn path_without_query(path: &str) -> &str {
    path.split(['?', '#']).next().unwrap_or_default()
}

fn clean(s: &str) -> String {
    printable(s)
}

fn events<'a>(n: Option<&'a Normalized>, done: &Completion) -> Vec<Cow<'a, Event>> {
    let Some(n) = n else { return Vec::new() };
    // A single create learns its id from the response: its events carry it.
    let created = done
        .created_id
        .as_ref()
        .filter(|_| !n.bulk && n.resource_id.is_none());
    n.operations
        .iter()
        .flat_map(|o| o.events.iter())
        .map(|e| match created {
            Some(id) if e.resource_id.is_none() => {
                let mut owned = e.clone();
                owned.resource_id = Some(id.clone());
                Cow::Owned(owned)
            }
            _ => Cow::Borrowed(e),
        })
        .collect()
}

/// The first `MAX_CHANGES` changes, each with at most `MAX_VALUES` values and strings of at most
/// `MAX_STRING` characters. Sensitive values are already redacted by the normaliser.
fn changes(n: Option<&Normalized>) -> Vec<ChangeOut<'_>> {
    let Some(n) = n else { return Vec::new() };
    n.operations
        .iter()
        .flat_map(|o| o.changes.iter())
        .take(MAX_CHANGES)
        .map(|c| {
            if c.values.len() <= MAX_VALUES && !c.values.iter().any(|v| has_long_string(v, 0)) {
                return ChangeOut::Whole(c);
            }
            let values = c
                .values
                .iter()
                .take(MAX_VALUES)
                .map(|v| {
                    if !has_long_string(v, 0) {
                        return Cow::Borrowed(v);
                    }
                    let mut v = v.clone();
                    cut_strings(&mut v, 0);
                    Cow::Owned(v)
                })
                .collect();
            ChangeOut::Cut(CutChange {
                resource_type: &c.resource_type,
                resource_id: c.resource_id.as_deref(),
                bulk_id: c.bulk_id.as_deref(),
                op: c.op,
                attribute: &c.attribute,
                sub_attribute: c.sub_attribute.as_deref(),
                filter: c.filter.as_deref(),
                values,
                flags: &c.flags,
                values_total: c.values.len(),
            })
        })
        .collect()
}

fn has_long_string(v: &Value, depth: usize) -> bool {
    match v {
        Value::String(s) => s.len() > MAX_STRING,
        Value::Array(items) if depth < 3 => items.iter().any(|i| has_long_string(i, depth + 1)),
        Value::Object(map) if depth < 3 => map.values().any(|i| has_long_string(i, depth + 1)),
        _ => false,
    }
}

fn cut_strings(v: &mut Value, depth: usize) {
    match v {
        Value::String(s) if s.len() > MAX_STRING => {
            let mut end = MAX_STRING;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s.truncate(end);
            s.push('…');
        }
        Value::Array(items) if depth < 3 => {
            items.iter_mut().for_each(|i| cut_strings(i, depth + 1))
        }
        Value::Object(map) if depth < 3 => map.values_mut().for_each(|i| cut_strings(i, depth + 1)),
        _ => {}
    }
}
