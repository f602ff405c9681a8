//! The audit record: one JSON line per SCIM write (`kind: "scim_write"`) and one per sampled
//! application access (`kind: "access"`). This format is a contract: `scimguard report` and SIEM
//! pipelines read it. Add fields; never rename or remove one.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::Value;

use super::json::{self, Object};
use super::time::rfc3339_ms;
use crate::policy::{Decision, Mode, RuleMatch, Severity};
use crate::scim::endpoint::{printable, printable_cow, without_query};
use crate::scim::{Change, Event, Normalized, ScimError};

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
/// Written field by field straight into one buffer from borrowed parts (no `Value` tree, no
/// intermediate structs): this runs on every SCIM write inside the filter.
pub fn write_record(j: &Judged<'_>, req: &RequestFacts, done: &Completion) -> String {
    let n = j.normalized;
    let operations = n.map_or(&[][..], |n| n.operations.as_slice());
    let changes: usize = operations.iter().map(|o| o.changes.len()).sum();
    let members: usize = operations
        .iter()
        .flat_map(|o| o.events.iter())
        .map(|e| e.members.len())
        .sum();
    // Room for the usual record, so it is not regrown as it is written.
    let mut out = Vec::with_capacity(768 + 256 * changes.min(MAX_CHANGES) + 48 * members);
    finish(write_record_to(&mut out, j, req, done, changes), out)
}

fn write_record_to(
    out: &mut Vec<u8>,
    j: &Judged<'_>,
    req: &RequestFacts,
    done: &Completion,
    changes_total: usize,
) -> serde_json::Result<()> {
    let n = j.normalized;
    let mut o = Object::open(out);
    o.str("kind", "scim_write");
    o.value("v", &RECORD_VERSION)?;
    common(&mut o, req, j.actor)?;
    o.opt_str("resource_type", n.map(|n| n.resource_type.as_str()));
    o.opt_str(
        "resource_id",
        n.and_then(|n| n.resource_id.as_deref())
            .or(done.created_id.as_deref()),
    );
    o.bool("bulk", n.is_some_and(|n| n.bulk));
    // A single create learns its id from the response: its events carry it.
    let created = n
        .filter(|n| !n.bulk && n.resource_id.is_none())
        .and(done.created_id.as_deref());
    let operations = n.map_or(&[][..], |n| n.operations.as_slice());
    let events = operations.iter().flat_map(|op| op.events.iter());
    json::array(o.key("events"), events, |out, e| event(out, e, created))?;
    let changes = operations.iter().flat_map(|op| op.changes.iter());
    json::array(o.key("changes"), changes.take(MAX_CHANGES), change)?;
    if changes_total > MAX_CHANGES {
        o.value("changes_total", &changes_total)?;
    }
    json::array(o.key("rules"), j.matches, rule)?;
    o.str("decision", j.decision.as_str());
    o.str("risk", j.risk.map_or("none", Severity::as_str));
    o.str("mode", j.mode.as_str());
    o.value("status", &done.status)?;
    o.value("duration_ms", &done.duration_ms)?;
    if let Some(e) = j.error {
        let mut err = Object::open(o.key("error"));
        err.value("status", &e.status)?;
        err.opt_str("scimType", e.scim_type);
        err.str("detail", &e.detail);
        err.close();
    }
    if !j.unknown_groups.is_empty() {
        o.strs(
            "group_names_unknown",
            j.unknown_groups.iter().map(String::as_str),
        );
    }
    o.close();
    Ok(())
}

/// The fields every record has after `kind` and `v`.
fn common(o: &mut Object<'_>, req: &RequestFacts, actor: Option<&str>) -> serde_json::Result<()> {
    o.str("time", &rfc3339_ms(req.time_ms));
    o.str("audit_id", &req.audit_id);
    o.opt_str(
        "request_id",
        req.request_id.as_deref().map(clean).as_deref(),
    );
    o.opt_str("trace_id", req.trace_id.as_deref());
    o.opt_str("actor", actor.map(clean).as_deref());
    o.opt_str("source_ip", req.source_ip.as_deref());
    o.opt_str(
        "user_agent",
        req.user_agent.as_deref().map(clean).as_deref(),
    );
    o.str("method", &clean(&req.method));
    // Query strings can carry tokens (`?access_token=`); records keep the path only.
    o.str("path", &clean(without_query(&req.path)));
    Ok(())
}

/// An event as `Event` serialises, with `created` as its id when it has none.
fn event(out: &mut Vec<u8>, e: &Event, created: Option<&str>) -> serde_json::Result<()> {
    let mut o = Object::open(out);
    o.str("type", e.kind.as_str());
    o.str("resource_type", e.resource_type.as_str());
    o.some_str("resource_id", e.resource_id.as_deref().or(created));
    o.some_str("bulk_id", e.bulk_id.as_deref());
    if !e.members.is_empty() {
        o.strs("members", e.members.iter().map(String::as_str));
    }
    if !e.values.is_empty() {
        o.value("values", &e.values)?;
    }
    o.some_str("user_name", e.user_name.as_deref());
    o.some_str("display_name", e.display_name.as_deref());
    o.some_str("scope", e.scope);
    o.close();
    Ok(())
}

/// A change as `Change` serialises, or cut to its first `MAX_VALUES` values (then followed by
/// `values_total`) with its strings cut to `MAX_STRING` characters.
fn change(out: &mut Vec<u8>, c: &Change) -> serde_json::Result<()> {
    let mut o = Object::open(out);
    o.str("resource_type", c.resource_type.as_str());
    o.some_str("resource_id", c.resource_id.as_deref());
    o.some_str("bulk_id", c.bulk_id.as_deref());
    o.str("op", c.op.as_str());
    o.str("attribute", &c.attribute);
    o.some_str("sub_attribute", c.sub_attribute.as_deref());
    o.some_str("filter", c.filter.as_deref());
    let cut = c.values.len() > MAX_VALUES || c.values.iter().any(|v| has_long_string(v, 0));
    if cut {
        json::array(
            o.key("values"),
            c.values.iter().take(MAX_VALUES),
            |out, v| {
                if !has_long_string(v, 0) {
                    return serde_json::to_writer(out, v);
                }
                let mut v = v.clone();
                cut_strings(&mut v, 0);
                serde_json::to_writer(out, &v)
            },
        )?;
    } else {
        o.value("values", &c.values)?;
    }
    if !c.flags.is_empty() {
        o.strs("flags", c.flags.iter().copied());
    }
    if cut {
        o.value("values_total", &c.values.len())?;
    }
    o.close();
    Ok(())
}

fn rule(out: &mut Vec<u8>, m: &RuleMatch) -> serde_json::Result<()> {
    let mut o = Object::open(out);
    o.str("id", m.id.as_str());
    o.str("severity", m.severity.as_str());
    o.str("action", m.action.as_str());
    o.str("mode", m.mode.as_str());
    o.bool("notify", m.notify);
    o.close();
    Ok(())
}

/// The record text; empty if it could not be written (it always can: every part is plain data).
fn finish(written: serde_json::Result<()>, out: Vec<u8>) -> String {
    match written {
        Ok(()) => String::from_utf8(out).unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Values recorded per change; the rest are counted in `values_total`.
const MAX_VALUES: usize = 20;
/// Changes recorded per request; the total is in `changes_total`. Events are never cut: they are
/// what `scimguard report` rebuilds state from. A 1 MiB Bulk of creates keeps a record of ~0.2 MB
/// instead of ~1.5 MB (Envoy copies filter state into the access log).
pub(crate) const MAX_CHANGES: usize = 100;
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
    let mut out = Vec::with_capacity(512);
    let written = access_record_to(&mut out, req, access);
    finish(written, out)
}

fn access_record_to(
    out: &mut Vec<u8>,
    req: &RequestFacts,
    access: &AccessFacts,
) -> serde_json::Result<()> {
    let mut o = Object::open(out);
    o.str("kind", "access");
    o.value("v", &RECORD_VERSION)?;
    common(&mut o, req, access.actor.as_deref())?;
    o.str("route", &clean(&access.route));
    o.value("status", &access.status)?;
    o.value("duration_ms", &access.duration_ms)?;
    o.bool("sampled", access.sampled);
    o.close();
    Ok(())
}

fn clean(s: &str) -> Cow<'_, str> {
    printable_cow(s)
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
