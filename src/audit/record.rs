//! The audit record: one JSON line per SCIM write (`kind: "scim_write"`) and one per sampled
//! application access (`kind: "access"`). This format is a contract: `scimguard report` and SIEM
//! pipelines read it. Add fields; never rename or remove one.

use std::borrow::Cow;

use serde_json::Value;

use super::bound::Line;
use super::facts::RequestFacts;
use super::json::{self, Object};
use super::time::rfc3339_ms;
use crate::policy::settings::AuditSettings;
use crate::policy::{Decision, Mode, PolicyId, RuleMatch, Severity};
use crate::scim::endpoint::{printable_cow, without_query};
use crate::scim::{Change, Event, Normalized, Operation, ScimError};

/// Record schema version.
pub const RECORD_VERSION: u32 = 1;

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
    /// Indexes of the operations a reviewer needs first (a matched rule holds on them, or they
    /// target a privileged group): kept first when an output is cut to fit.
    pub notable: &'a [usize],
    pub stamp: &'a Stamp,
}

/// What every audit output of one policy names and obeys, fixed when the policy is compiled: the
/// policy's identity and the longest line an output may be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub policy: PolicyId,
    /// `audit.max_record_bytes`.
    pub max_bytes: usize,
}

impl Default for Stamp {
    fn default() -> Self {
        Stamp {
            policy: PolicyId::default(),
            max_bytes: AuditSettings::DEFAULT_MAX_RECORD_BYTES,
        }
    }
}

impl Stamp {
    /// `{"sha256":"…","version":N}`, as records carry it.
    fn write(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        let mut o = Object::open(out);
        o.str("sha256", &self.policy.sha256);
        o.value("version", &self.policy.version)?;
        o.close();
        Ok(())
    }
}

/// The `scim_write` record as one JSON line (no trailing newline), at most `stamp.max_bytes` long:
/// see `audit_line`.
pub fn write_record(j: &Judged<'_>, req: &RequestFacts, done: &Completion) -> String {
    audit_line(j, req, done).text
}

/// The `scim_write` record as one JSON line, and whether it had to be cut to fit
/// `stamp.max_bytes` (`bound::record`).
///
/// Written field by field straight into one buffer from borrowed parts (no `Value` tree, no
/// intermediate structs): this runs on every SCIM write inside the filter. A record that fits is
/// written once and only its length is checked; only one that does not is written again, cut.
pub fn audit_line(j: &Judged<'_>, req: &RequestFacts, done: &Completion) -> Line {
    let n = j.normalized;
    let operations = n.map_or(&[][..], |n| n.operations.as_slice());
    let changes: usize = operations.iter().map(|o| o.changes.len()).sum();
    let members: usize = operations
        .iter()
        .flat_map(|o| o.events.iter())
        .map(|e| e.members.len())
        .sum();
    // Room for the usual record, so it is not regrown as it is written.
    let capacity = 768 + 256 * changes.min(MAX_CHANGES) + 48 * members;
    let mut out = Vec::with_capacity(capacity.min(j.stamp.max_bytes.saturating_mul(2)));
    let written = write_record_to(&mut out, j, req, done, None);
    if written.is_ok() && out.len() <= j.stamp.max_bytes {
        return Line::whole(finish(written, out));
    }
    super::bound::record(j, req, done, &out)
}

/// How a record is cut to fit (`bound::record` plans it; `None` writes the whole record).
#[derive(Debug, Clone, Default)]
pub(super) struct Cut {
    /// Per event, in request order: `None` left out, `Some(k)` kept with its first `k` members.
    pub events: Vec<Option<usize>>,
    /// Per change among the first `MAX_CHANGES`, in request order: kept or not.
    pub changes: Vec<bool>,
    /// Request strings are cut to this many characters (events, changes, error detail).
    pub max_string: usize,
    /// The last-resort record: no events or changes, at most `MINIMAL_RULES` rules.
    pub minimal: bool,
    /// Size and SHA-256 (hex) of the whole record this one was cut from.
    pub bytes: usize,
    pub sha256: String,
}

/// Rules the last-resort record lists (then `rules_total`).
pub(super) const MINIMAL_RULES: usize = 10;
/// Unknown group names a cut record lists (then `group_names_unknown_total`).
const CUT_UNKNOWN_GROUPS: usize = 20;

pub(super) fn write_record_to(
    out: &mut Vec<u8>,
    j: &Judged<'_>,
    req: &RequestFacts,
    done: &Completion,
    cut: Option<&Cut>,
) -> serde_json::Result<()> {
    let n = j.normalized;
    let max_string = cut.map(|c| c.max_string);
    let mut o = Object::open(out);
    o.str("kind", "scim_write");
    o.value("v", &RECORD_VERSION)?;
    common(&mut o, req, j.actor, j.stamp, cut.map(|c| c.max_string))?;
    o.opt_str("resource_type", n.map(|n| n.resource_type.as_str()));
    o.opt_str(
        "resource_id",
        n.and_then(|n| n.resource_id.as_deref())
            .or(done.created_id.as_deref())
            .map(|id| fit(id, max_string))
            .as_deref(),
    );
    o.bool("bulk", n.is_some_and(|n| n.bulk));
    // A single create learns its id from the response: its events carry it.
    let created = n
        .filter(|n| !n.bulk && n.resource_id.is_none())
        .and(done.created_id.as_deref());
    let operations = n.map_or(&[][..], |n| n.operations.as_slice());
    let events = operations.iter().flat_map(|op| op.events.iter());
    let changes = operations.iter().flat_map(|op| op.changes.iter());
    let changes_total: usize = operations.iter().map(|o| o.changes.len()).sum();
    match cut {
        None => {
            json::array(o.key("events"), events, |out, e| {
                event(out, e, created, None)
            })?;
            json::array(o.key("changes"), changes.take(MAX_CHANGES), |out, c| {
                change(out, c, None)
            })?;
            if changes_total > MAX_CHANGES {
                o.value("changes_total", &changes_total)?;
            }
        }
        Some(cut) => cut_lists(&mut o, cut, operations, created)?,
    }
    let rules_kept = match cut {
        Some(c) if c.minimal => MINIMAL_RULES,
        _ => usize::MAX,
    };
    json::array(
        o.key("rules"),
        j.matches.iter().take(rules_kept),
        |out, m| rule(out, m, cut.map(|c| c.max_string)),
    )?;
    if j.matches.len() > rules_kept {
        o.value("rules_total", &j.matches.len())?;
    }
    o.str("decision", j.decision.as_str());
    o.str("risk", j.risk.map_or("none", Severity::as_str));
    o.str("mode", j.mode.as_str());
    o.value("status", &done.status)?;
    o.value("duration_ms", &done.duration_ms)?;
    if let Some(e) = j.error {
        let mut err = Object::open(o.key("error"));
        err.value("status", &e.status)?;
        err.opt_str("scimType", e.scim_type);
        err.str("detail", &fit(&e.detail, max_string));
        err.close();
    }
    if !j.unknown_groups.is_empty() {
        let kept = if cut.is_some() {
            CUT_UNKNOWN_GROUPS
        } else {
            usize::MAX
        };
        let names: Vec<Cow<'_, str>> = j
            .unknown_groups
            .iter()
            .take(kept)
            .map(|g| fit(g, max_string))
            .collect();
        o.strs("group_names_unknown", names.iter().map(|g| g.as_ref()));
        if j.unknown_groups.len() > kept {
            o.value("group_names_unknown_total", &j.unknown_groups.len())?;
        }
    }
    if let Some(c) = cut {
        truncated(&mut o, c, j, operations)?;
    }
    o.close();
    Ok(())
}

/// The events and changes a cut keeps, with the totals of what it left out.
fn cut_lists(
    o: &mut Object<'_>,
    cut: &Cut,
    operations: &[Operation],
    created: Option<&str>,
) -> serde_json::Result<()> {
    let events = operations.iter().flat_map(|op| op.events.iter());
    let kept = events
        .zip(cut.events.iter())
        .filter_map(|(e, k)| k.map(|k| (e, k)));
    json::array(o.key("events"), kept, |out, (e, k)| {
        event(out, e, created, Some((k, cut.max_string)))
    })?;
    let events_total = cut.events.len();
    if cut.events.iter().any(Option::is_none) {
        o.value("events_total", &events_total)?;
        let mut by_type: Vec<(&str, usize)> = Vec::new();
        for e in operations.iter().flat_map(|op| op.events.iter()) {
            match by_type.iter_mut().find(|(k, _)| *k == e.kind.as_str()) {
                Some((_, n)) => *n += 1,
                None => by_type.push((e.kind.as_str(), 1)),
            }
        }
        let mut t = Object::open(o.key("events_by_type"));
        for (kind, n) in by_type {
            t.value(kind, &n)?;
        }
        t.close();
    }
    let changes = operations.iter().flat_map(|op| op.changes.iter());
    let kept = changes
        .zip(cut.changes.iter())
        .filter_map(|(c, k)| k.then_some(c));
    json::array(o.key("changes"), kept, |out, c| {
        change(out, c, Some(cut.max_string))
    })?;
    let changes_total: usize = operations.iter().map(|o| o.changes.len()).sum();
    if changes_total > cut.changes.iter().filter(|k| **k).count() {
        o.value("changes_total", &changes_total)?;
    }
    Ok(())
}

/// `truncated`: the size and digest of the whole record, and which lists were cut.
fn truncated(
    o: &mut Object<'_>,
    c: &Cut,
    j: &Judged<'_>,
    operations: &[Operation],
) -> serde_json::Result<()> {
    let events = operations.iter().flat_map(|op| op.events.iter());
    let members_cut = events
        .zip(c.events.iter())
        .any(|(e, k)| k.is_some_and(|k| k < e.members.len()));
    let changes_total: usize = operations.iter().map(|o| o.changes.len()).sum();
    let cut = [
        ("events", c.events.iter().any(Option::is_none)),
        ("members", members_cut),
        (
            "changes",
            c.changes.iter().filter(|k| **k).count() < changes_total.min(MAX_CHANGES),
        ),
        ("rules", c.minimal && j.matches.len() > MINIMAL_RULES),
    ];
    let mut t = Object::open(o.key("truncated"));
    t.value("bytes", &c.bytes)?;
    t.str("sha256", &c.sha256);
    t.strs(
        "cut",
        cut.iter().filter(|(_, is)| *is).map(|(name, _)| *name),
    );
    if c.minimal {
        t.bool("minimal", true);
    }
    t.close();
    Ok(())
}

/// The fields every record has after `kind` and `v`. `max_string` cuts them further (cut records).
fn common(
    o: &mut Object<'_>,
    req: &RequestFacts,
    actor: Option<&str>,
    stamp: &Stamp,
    max_string: Option<usize>,
) -> serde_json::Result<()> {
    // `clean` (printable) already cuts request strings to 200 characters.
    let m = max_string;
    o.str("time", &rfc3339_ms(req.time_ms));
    o.str("audit_id", &fit(&req.audit_id, m));
    o.opt_str(
        "request_id",
        req.request_id.as_deref().map(clean).as_deref(),
    );
    o.opt_str(
        "trace_id",
        req.trace_id.as_deref().map(|t| fit(t, m)).as_deref(),
    );
    o.opt_str("actor", actor.map(clean).as_deref());
    o.opt_str(
        "source_ip",
        req.source_ip.as_deref().map(|t| fit(t, m)).as_deref(),
    );
    o.opt_str(
        "user_agent",
        req.user_agent.as_deref().map(clean).as_deref(),
    );
    o.str("method", &clean(&req.method));
    // Query strings can carry tokens (`?access_token=`); records keep the path only.
    o.str("path", &clean(without_query(&req.path)));
    stamp.write(o.key("policy"))
}

/// An event as `Event` serialises, with `created` as its id when it has none. `cut`: keep the
/// first `k` members (then `members_total`) and `MAX_VALUES` values, strings cut to `m` characters.
pub(super) fn event(
    out: &mut Vec<u8>,
    e: &Event,
    created: Option<&str>,
    cut: Option<(usize, usize)>,
) -> serde_json::Result<()> {
    let mut o = Object::open(out);
    o.str("type", e.kind.as_str());
    o.str("resource_type", e.resource_type.as_str());
    let Some((k, m)) = cut else {
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
        return Ok(());
    };
    let short = |s| fit_opt(s, Some(m));
    o.some_str(
        "resource_id",
        short(e.resource_id.as_deref().or(created)).as_deref(),
    );
    o.some_str("bulk_id", short(e.bulk_id.as_deref()).as_deref());
    if k > 0 {
        let members: Vec<String> = e.members.iter().take(k).map(|s| shorten(s, m)).collect();
        o.strs("members", members.iter().map(String::as_str));
    }
    if k < e.members.len() {
        o.value("members_total", &e.members.len())?;
    }
    if !e.values.is_empty() {
        values(&mut o, &e.values)?;
    }
    o.some_str("user_name", short(e.user_name.as_deref()).as_deref());
    o.some_str("display_name", short(e.display_name.as_deref()).as_deref());
    o.some_str("scope", e.scope);
    o.close();
    Ok(())
}

/// A change as `Change` serialises, or cut to its first `MAX_VALUES` values (then followed by
/// `values_total`) with its strings cut to `MAX_STRING` characters. `max_string` (cut records)
/// also cuts the change's own strings.
pub(super) fn change(
    out: &mut Vec<u8>,
    c: &Change,
    max_string: Option<usize>,
) -> serde_json::Result<()> {
    let mut o = Object::open(out);
    o.str("resource_type", c.resource_type.as_str());
    let short = |s| fit_opt(s, max_string);
    o.some_str("resource_id", short(c.resource_id.as_deref()).as_deref());
    o.some_str("bulk_id", short(c.bulk_id.as_deref()).as_deref());
    o.str("op", c.op.as_str());
    o.str("attribute", &fit(&c.attribute, max_string));
    o.some_str(
        "sub_attribute",
        short(c.sub_attribute.as_deref()).as_deref(),
    );
    o.some_str("filter", short(c.filter.as_deref()).as_deref());
    let cut = values(&mut o, &c.values)?;
    if !c.flags.is_empty() {
        o.strs("flags", c.flags.iter().copied());
    }
    if cut {
        o.value("values_total", &c.values.len())?;
    }
    o.close();
    Ok(())
}

/// `values`, cut to the first `MAX_VALUES` with strings cut to `MAX_STRING` characters when
/// needed; true if cut (the caller adds `values_total`).
fn values(o: &mut Object<'_>, values: &[Value]) -> serde_json::Result<bool> {
    let cut = values.len() > MAX_VALUES || values.iter().any(|v| has_long_string(v, 0));
    if !cut {
        o.value("values", values)?;
        return Ok(false);
    }
    json::array(o.key("values"), values.iter().take(MAX_VALUES), |out, v| {
        if !has_long_string(v, 0) {
            return serde_json::to_writer(out, v);
        }
        let mut v = v.clone();
        cut_strings(&mut v, 0);
        serde_json::to_writer(out, &v)
    })?;
    Ok(true)
}

/// `s`, cut to `max` characters when given (records cut to fit).
fn fit(s: &str, max: Option<usize>) -> Cow<'_, str> {
    match max {
        // A string of at most `m` bytes has at most `m` characters: the common case costs nothing.
        Some(m) if s.len() > m => Cow::Owned(shorten(s, m)),
        _ => Cow::Borrowed(s),
    }
}

fn fit_opt(s: Option<&str>, max: Option<usize>) -> Option<Cow<'_, str>> {
    s.map(|s| fit(s, max))
}

/// `s` cut to `max` characters, ending with `…` when cut.
pub(super) fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some((end, _)) => {
            let mut t = s.get(..end).unwrap_or_default().to_string();
            t.push('…');
            t
        }
    }
}

fn rule(out: &mut Vec<u8>, m: &RuleMatch, max_string: Option<usize>) -> serde_json::Result<()> {
    let mut o = Object::open(out);
    o.str("id", &fit(m.id.as_str(), max_string));
    o.str("severity", m.severity.as_str());
    o.str("action", m.action.as_str());
    o.str("mode", m.mode.as_str());
    o.bool("notify", m.notify);
    o.close();
    Ok(())
}

/// The record text; empty if it could not be written (it always can: every part is plain data).
pub(super) fn finish(written: serde_json::Result<()>, out: Vec<u8>) -> String {
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
/// Characters kept of a string value (longer ones end with `…`); also of every request string in
/// a record cut to fit.
pub(super) const MAX_STRING: usize = 256;

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

/// The `access` record as one JSON line. Every field is short (request strings are cut to 200
/// characters by `printable`), so an access record is far below any `max_record_bytes`.
pub fn access_record(req: &RequestFacts, access: &AccessFacts, stamp: &Stamp) -> String {
    let mut out = Vec::with_capacity(512);
    let written = access_record_to(&mut out, req, access, stamp);
    finish(written, out)
}

fn access_record_to(
    out: &mut Vec<u8>,
    req: &RequestFacts,
    access: &AccessFacts,
    stamp: &Stamp,
) -> serde_json::Result<()> {
    let mut o = Object::open(out);
    o.str("kind", "access");
    o.value("v", &RECORD_VERSION)?;
    common(&mut o, req, access.actor.as_deref(), stamp, None)?;
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
