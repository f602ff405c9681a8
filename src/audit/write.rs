//! Writing audit records: a judged request (`Judged`), what the host knows about it (`RequestFacts`,
//! `Completion`) and the policy's `Stamp` in; the `record::Record` they make, serialised as one JSON
//! line, out. This runs on every SCIM write inside the filter: the record borrows every string it
//! can from the judged request, is serialised by `json` (serde_json's output, faster), and a record that fits is serialised once and only its length is
//! checked; only one that does not is written again, cut (`bound::record`).
//!
//! Does not own: the format itself (`record`), or how a cut is planned (`bound`).

use std::borrow::Cow;

use crate::scim::json::Json;

use super::bound::Line;
use super::facts::RequestFacts;
use super::record::{
    AccessRecord, ChangeEntry, ErrorEntry, EventEntry, PolicyEntry, Record, RecordHead, RuleEntry,
    Tally, Truncation, WriteRecord, RECORD_VERSION,
};
use super::time::rfc3339_ms;
use crate::policy::settings::AuditSettings;
use crate::policy::{Decision, Mode, PolicyId, RuleMatch, Severity};
use crate::scim::endpoint::{printable_cow, without_query};
use crate::scim::{Change, Event, Normalized, Operation, ScimError};

/// What the host learned once the stream completed.
#[derive(Debug, Clone, Default)]
pub struct Completion {
    /// The status the client received (upstream's, or our local reply's).
    pub status: Option<u16>,
    /// The id of a resource the request created, from `Location` or the response body.
    pub created_id: Option<String>,
    pub duration_ms: Option<u64>,
}

/// Who writes a record's `source_ip` and `status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HostFields {
    /// The record: a whole JSON object.
    #[default]
    InRecord,
    /// The audit access log's format, from the host's own fields, before the record (Envoy:
    /// `{"source_ip":"%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%","status":%RESPONSE_CODE%,` then
    /// the filter state): the record is the rest of the object, without its `{` and those two.
    InLog,
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
    /// Who writes `source_ip` and `status` (the access log, for the copy that goes there).
    pub host_fields: HostFields,
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
    /// The policy as records name it.
    fn entry(&self) -> PolicyEntry<'_> {
        PolicyEntry {
            sha256: Cow::Borrowed(&self.policy.sha256),
            version: self.policy.version,
        }
    }
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
    /// Who writes `source_ip` and `status`.
    pub host_fields: HostFields,
}

/// The `scim_write` record as one JSON line (no trailing newline), at most `stamp.max_bytes` long:
/// see `audit_line`.
pub fn write_record(j: &Judged<'_>, req: &RequestFacts, done: &Completion) -> String {
    audit_line(j, req, done).text
}

/// The `scim_write` record as one JSON line, and whether it had to be cut to fit
/// `stamp.max_bytes` (`bound::record`).
pub fn audit_line(j: &Judged<'_>, req: &RequestFacts, done: &Completion) -> Line {
    let operations = j.normalized.map_or(&[][..], |n| n.operations.as_slice());
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

/// The `access` record as one JSON line. Every field is short (request strings are cut to 200
/// characters by `printable`), so an access record is far below any `max_record_bytes`.
pub fn access_record(req: &RequestFacts, access: &AccessFacts, stamp: &Stamp) -> String {
    let in_record = access.host_fields == HostFields::InRecord;
    let record = Record::Access(AccessRecord {
        head: head(
            req,
            (access.actor.as_deref(), access.host_fields),
            stamp,
            None,
        ),
        route: clean(&access.route),
        status: in_record.then_some(access.status),
        duration_ms: access.duration_ms,
        sampled: access.sampled,
    });
    let mut out = Vec::with_capacity(512);
    let written = super::json::to_vec_end(&mut out, &record);
    finish(rest(written, &mut out, access.host_fields), out)
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
/// Values recorded per change; the rest are counted in `values_total`.
const MAX_VALUES: usize = 20;
/// Changes recorded per request; the total is in `changes_total`. Events are never cut: they are
/// what `scimguard report` rebuilds state from. A 1 MiB Bulk of creates keeps a record of ~0.2 MB
/// instead of ~1.5 MB (Envoy copies filter state into the access log).
pub(crate) const MAX_CHANGES: usize = 100;
/// Characters kept of a string value (longer ones end with `…`); also of every request string in
/// a record cut to fit.
pub(super) const MAX_STRING: usize = 256;

/// The record, whole or cut, serialised at the end of `out`.
pub(super) fn write_record_to(
    out: &mut Vec<u8>,
    j: &Judged<'_>,
    req: &RequestFacts,
    done: &Completion,
    cut: Option<&Cut>,
) -> serde_json::Result<()> {
    let written = super::json::to_vec_end(out, &Record::ScimWrite(filled(j, req, done, cut)));
    rest(written, out, j.host_fields)
}

/// `HostFields::InLog`: the record as the rest of an object the access log's format opens, its
/// `{` removed (the two fields the log writes were left out).
fn rest(
    written: serde_json::Result<()>,
    out: &mut Vec<u8>,
    host_fields: HostFields,
) -> serde_json::Result<()> {
    if written.is_ok() && host_fields == HostFields::InLog && out.first() == Some(&b'{') {
        out.remove(0);
    }
    written
}

/// The record's fields, in the order they are written.
fn filled<'a>(
    j: &Judged<'a>,
    req: &'a RequestFacts,
    done: &'a Completion,
    cut: Option<&'a Cut>,
) -> WriteRecord<'a> {
    let n = j.normalized;
    let m = cut.map(|c| c.max_string);
    let operations = n.map_or(&[][..], |n| n.operations.as_slice());
    // A single create learns its id from the response: its events carry it.
    let created = n
        .filter(|n| !n.bulk && n.resource_id.is_none())
        .and(done.created_id.as_deref());
    let mut rec = WriteRecord {
        head: head(req, (j.actor, j.host_fields), j.stamp, m),
        resource_type: n.map(|n| Cow::Borrowed(n.resource_type.as_str())),
        resource_id: n
            .and_then(|n| n.resource_id.as_deref())
            .or(done.created_id.as_deref())
            .map(|id| fit(id, m)),
        bulk: n.is_some_and(|n| n.bulk),
        decision: Some(Cow::Borrowed(j.decision.as_str())),
        risk: Some(Cow::Borrowed(j.risk.map_or("none", Severity::as_str))),
        mode: Some(Cow::Borrowed(j.mode.as_str())),
        status: (j.host_fields == HostFields::InRecord).then_some(done.status),
        duration_ms: done.duration_ms,
        error: j.error.map(|e| ErrorEntry {
            status: e.status,
            scim_type: e.scim_type.map(Cow::Borrowed),
            detail: fit(&e.detail, m),
        }),
        ..WriteRecord::default()
    };
    match cut {
        None => whole_lists(&mut rec, operations, created),
        Some(cut) => cut_lists(&mut rec, cut, operations, created),
    }
    let rules_kept = match cut {
        Some(c) if c.minimal => MINIMAL_RULES,
        _ => usize::MAX,
    };
    rec.rules = j
        .matches
        .iter()
        .take(rules_kept)
        .map(|r| rule(r, m))
        .collect();
    rec.rules_total = (j.matches.len() > rules_kept).then_some(j.matches.len());
    unknown_groups(&mut rec, j.unknown_groups, m);
    rec.truncated = cut.map(|c| truncation(c, j, operations));
    rec
}

/// The fields every record has after `kind`. `max_string` cuts them further (cut records).
fn head<'a>(
    req: &'a RequestFacts,
    (actor, host_fields): (Option<&'a str>, HostFields),
    stamp: &'a Stamp,
    max_string: Option<usize>,
) -> RecordHead<'a> {
    // `clean` (printable) already cuts request strings to 200 characters.
    let m = max_string;
    RecordHead {
        v: RECORD_VERSION,
        time: Cow::Owned(rfc3339_ms(req.time_ms)),
        audit_id: fit(&req.audit_id, m),
        request_id: req.request_id.as_deref().map(clean),
        trace_id: req.trace_id.as_deref().map(|t| fit(t, m)),
        actor: actor.map(clean),
        source_ip: (host_fields == HostFields::InRecord)
            .then(|| req.source_ip.as_deref().map(|t| fit(t, m))),
        user_agent: req.user_agent.as_deref().map(clean),
        method: clean(&req.method),
        // Query strings can carry tokens (`?access_token=`); records keep the path only.
        path: clean(without_query(&req.path)),
        policy: stamp.entry(),
    }
}

/// Every event, and the first `MAX_CHANGES` changes (then `changes_total`).
fn whole_lists<'a>(
    rec: &mut WriteRecord<'a>,
    operations: &'a [Operation],
    created: Option<&'a str>,
) {
    let events = operations.iter().flat_map(|op| op.events.iter());
    rec.events = events.map(|e| event(e, created, None)).collect();
    let changes = operations.iter().flat_map(|op| op.changes.iter());
    rec.changes = changes.take(MAX_CHANGES).map(|c| change(c, None)).collect();
    let changes_total: usize = operations.iter().map(|o| o.changes.len()).sum();
    rec.changes_total = (changes_total > MAX_CHANGES).then_some(changes_total);
}

/// The events and changes a cut keeps, with the totals of what it left out.
fn cut_lists<'a>(
    rec: &mut WriteRecord<'a>,
    cut: &Cut,
    operations: &'a [Operation],
    created: Option<&'a str>,
) {
    let events = operations.iter().flat_map(|op| op.events.iter());
    rec.events = events
        .clone()
        .zip(cut.events.iter())
        .filter_map(|(e, k)| k.map(|k| event(e, created, Some((k, cut.max_string)))))
        .collect();
    if cut.events.iter().any(Option::is_none) {
        rec.events_total = Some(cut.events.len());
        let mut by_type = Tally::default();
        events.for_each(|e| by_type.bump(e.kind.as_str()));
        rec.events_by_type = by_type;
    }
    let changes = operations.iter().flat_map(|op| op.changes.iter());
    rec.changes = changes
        .zip(cut.changes.iter())
        .filter(|(_, k)| **k)
        .map(|(c, _)| change(c, Some(cut.max_string)))
        .collect();
    let changes_total: usize = operations.iter().map(|o| o.changes.len()).sum();
    rec.changes_total = (changes_total > rec.changes.len()).then_some(changes_total);
}

/// `group_names_unknown`: all of them, or (cut records) the first `CUT_UNKNOWN_GROUPS`, cut to
/// `max_string` characters, then their total.
fn unknown_groups<'a>(rec: &mut WriteRecord<'a>, names: &'a [String], max_string: Option<usize>) {
    let Some(m) = max_string else {
        rec.group_names_unknown = Cow::Borrowed(names);
        return;
    };
    rec.group_names_unknown = names
        .iter()
        .take(CUT_UNKNOWN_GROUPS)
        .map(|g| fit(g, Some(m)).into_owned())
        .collect();
    rec.group_names_unknown_total = (names.len() > CUT_UNKNOWN_GROUPS).then_some(names.len());
}

/// `truncated`: the size and digest of the whole record, and which lists were cut.
fn truncation<'a>(c: &'a Cut, j: &Judged<'_>, operations: &[Operation]) -> Truncation<'a> {
    let events = operations.iter().flat_map(|op| op.events.iter());
    let members_cut = events
        .zip(c.events.iter())
        .any(|(e, k)| k.is_some_and(|k| k < e.members.len()));
    let changes_total: usize = operations.iter().map(|o| o.changes.len()).sum();
    let lists = [
        ("events", c.events.iter().any(Option::is_none)),
        ("members", members_cut),
        (
            "changes",
            c.changes.iter().filter(|k| **k).count() < changes_total.min(MAX_CHANGES),
        ),
        ("rules", c.minimal && j.matches.len() > MINIMAL_RULES),
    ];
    Truncation {
        bytes: c.bytes,
        sha256: Cow::Borrowed(&c.sha256),
        cut: lists
            .iter()
            .filter(|(_, is)| *is)
            .map(|(name, _)| Cow::Borrowed(*name))
            .collect(),
        minimal: c.minimal,
    }
}

/// An event as `Event` serialises, with `created` as its id when it has none. `cut`: keep the
/// first `k` members (then `members_total`) and `MAX_VALUES` values, strings cut to `m` characters.
pub(super) fn event<'a>(
    e: &'a Event,
    created: Option<&'a str>,
    cut: Option<(usize, usize)>,
) -> EventEntry<'a> {
    let entry = EventEntry {
        kind: Cow::Borrowed(e.kind.as_str()),
        resource_type: Some(Cow::Borrowed(e.resource_type.as_str())),
        scope: e.scope.map(Cow::Borrowed),
        ..EventEntry::default()
    };
    let Some((k, m)) = cut else {
        return EventEntry {
            resource_id: e.resource_id.as_deref().or(created).map(Cow::Borrowed),
            bulk_id: e.bulk_id.as_deref().map(Cow::Borrowed),
            members: Cow::Borrowed(&e.members),
            values: Cow::Borrowed(&e.values),
            user_name: e.user_name.as_deref().map(Cow::Borrowed),
            display_name: e.display_name.as_deref().map(Cow::Borrowed),
            ..entry
        };
    };
    let short = |s: Option<&'a str>| s.map(|s| fit(s, Some(m)));
    EventEntry {
        resource_id: short(e.resource_id.as_deref().or(created)),
        bulk_id: short(e.bulk_id.as_deref()),
        members: e.members.iter().take(k).map(|s| shorten(s, m)).collect(),
        members_total: (k < e.members.len()).then_some(e.members.len()),
        values: cut_values(&e.values).0,
        user_name: short(e.user_name.as_deref()),
        display_name: short(e.display_name.as_deref()),
        ..entry
    }
}

/// A change as `Change` serialises, its values cut to the first `MAX_VALUES` (then followed by
/// `values_total`) with their strings cut to `MAX_STRING` characters. `max_string` (cut records)
/// also cuts the change's own strings.
pub(super) fn change<'a>(c: &'a Change, max_string: Option<usize>) -> ChangeEntry<'a> {
    let short = |s: Option<&'a str>| s.map(|s| fit(s, max_string));
    let (values, cut) = cut_values(&c.values);
    ChangeEntry {
        resource_type: Some(Cow::Borrowed(c.resource_type.as_str())),
        resource_id: short(c.resource_id.as_deref()),
        bulk_id: short(c.bulk_id.as_deref()),
        op: Cow::Borrowed(c.op.as_str()),
        attribute: fit(&c.attribute, max_string),
        sub_attribute: short(c.sub_attribute.as_deref()),
        filter: short(c.filter.as_deref()),
        values,
        flags: c.flags.iter().map(|f| Cow::Borrowed(*f)).collect(),
        values_total: cut.then_some(c.values.len()),
    }
}

fn rule(m: &RuleMatch, max_string: Option<usize>) -> RuleEntry<'_> {
    RuleEntry {
        id: fit(m.id.as_str(), max_string),
        severity: Some(Cow::Borrowed(m.severity.as_str())),
        action: Some(Cow::Borrowed(m.action.as_str())),
        mode: Some(Cow::Borrowed(m.mode.as_str())),
        notify: m.notify,
    }
}

/// `values`, or its first `MAX_VALUES` with strings cut to `MAX_STRING` characters when it has
/// more or longer ones; true if cut (the caller adds `values_total`). Borrowed unless a kept value
/// has a string to cut (a 100-member PATCH keeps its first 20 member objects without copying them).
fn cut_values<'a>(values: &'a [Json<'static>]) -> (Cow<'a, [Json<'static>]>, bool) {
    let kept = values.get(..MAX_VALUES).unwrap_or(values);
    let long = kept.iter().any(|v| has_long_string(v, 0));
    let cut = long || kept.len() < values.len();
    if !long {
        return (Cow::Borrowed(kept), cut);
    }
    let shortened = kept
        .iter()
        .map(|v| {
            let mut v = v.clone();
            cut_strings(&mut v, 0);
            v
        })
        .collect();
    (Cow::Owned(shortened), cut)
}

/// `s`, cut to `max` characters when given (records cut to fit).
fn fit(s: &str, max: Option<usize>) -> Cow<'_, str> {
    match max {
        // A string of at most `m` bytes has at most `m` characters: the common case costs nothing.
        Some(m) if s.len() > m => Cow::Owned(shorten(s, m)),
        _ => Cow::Borrowed(s),
    }
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

/// The record text; empty if it could not be written (it always can: every part is plain data).
pub(super) fn finish(written: serde_json::Result<()>, out: Vec<u8>) -> String {
    match written {
        Ok(()) => String::from_utf8(out).unwrap_or_default(),
        Err(_) => String::new(),
    }
}

fn clean(s: &str) -> Cow<'_, str> {
    printable_cow(s)
}

fn has_long_string(v: &Json<'_>, depth: usize) -> bool {
    match v {
        Json::Str(s) => s.len() > MAX_STRING,
        Json::Array(items) if depth < 3 => items.iter().any(|i| has_long_string(i, depth + 1)),
        Json::Object(map) if depth < 3 => map.iter().any(|(_, i)| has_long_string(i, depth + 1)),
        _ => false,
    }
}

fn cut_strings(v: &mut Json<'_>, depth: usize) {
    match v {
        Json::Str(s) if s.len() > MAX_STRING => {
            let s = s.to_mut();
            let mut end = MAX_STRING;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s.truncate(end);
            s.push('…');
        }
        Json::Array(items) if depth < 3 => items.iter_mut().for_each(|i| cut_strings(i, depth + 1)),
        Json::Object(map) if depth < 3 => {
            map.iter_mut().for_each(|(_, i)| cut_strings(i, depth + 1))
        }
        _ => {}
    }
}
