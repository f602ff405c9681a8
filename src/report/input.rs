//! One input line → audit records, or a reason to skip it.
//!
//! Accepts a record per line, a JSON array of records (a collector batch), `{"records":[…]}`, and a
//! record serialised into a JSON string. Valid JSON that is not an audit record (an Envoy access-log
//! line, `-` from an unset filter state) is *foreign* and skipped quietly; anything else is
//! *malformed* and reported with a short reason.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::when::parse_instant;

/// What one line held.
#[derive(Debug)]
pub enum Parsed {
    Records(Vec<Record>),
    /// Blank, or valid JSON that is not an audit record.
    Foreign,
    Malformed(String),
}

/// The fields of a `scim_write` or `access` record the report reads (see `audit::record`).
#[derive(Debug, Clone, Deserialize)]
pub struct Record {
    pub kind: Option<String>,
    pub time: Option<String>,
    #[serde(skip)]
    pub time_ms: u64,
    pub audit_id: Option<String>,
    pub actor: Option<String>,
    pub method: Option<String>,
    pub path: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    #[serde(default)]
    pub events: Vec<RawEvent>,
    #[serde(default)]
    pub changes: Vec<RawChange>,
    #[serde(default)]
    pub rules: Vec<RawRule>,
    pub decision: Option<String>,
    pub status: Option<u16>,
    /// A record cut to fit `audit.max_record_bytes`: its `events` are some of `events_total`,
    /// counted by type in `events_by_type` (absent when every event is listed).
    pub events_total: Option<u64>,
    #[serde(default)]
    pub events_by_type: BTreeMap<String, u64>,
    /// Present on a record cut to fit (what was cut, and the digest of the whole record).
    pub truncated: Option<Value>,
    /// A collector envelope: `{"records":[…]}`.
    pub records: Option<Vec<Record>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RawEvent {
    #[serde(rename = "type")]
    pub kind: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    #[serde(default)]
    pub members: Vec<String>,
    /// How many members the event had when its list was cut (the first ones are listed).
    pub members_total: Option<u64>,
    #[serde(default)]
    pub values: Vec<Value>,
    pub user_name: Option<String>,
    pub display_name: Option<String>,
    pub scope: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RawChange {
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub op: String,
    pub attribute: String,
    pub sub_attribute: Option<String>,
    pub filter: Option<String>,
    #[serde(default)]
    pub values: Vec<Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RawRule {
    pub id: String,
    pub severity: Option<String>,
    pub action: Option<String>,
    pub mode: Option<String>,
}

impl Record {
    pub fn is_write(&self) -> bool {
        self.kind.as_deref() == Some("scim_write")
    }

    /// Events of this record that are not listed (it was cut to fit).
    pub fn events_not_listed(&self) -> u64 {
        self.events_total
            .unwrap_or(0)
            .saturating_sub(self.events.len() as u64)
    }
}

impl RawEvent {
    /// How many members the event named, listed or not.
    pub fn member_count(&self) -> usize {
        self.members_total
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(0)
            .max(self.members.len())
    }
}

/// Classifies one line (without its newline).
pub fn parse_line(line: &str) -> Parsed {
    let t = line.trim();
    if t.is_empty() || t == "-" {
        return Parsed::Foreign;
    }
    let result = match t.as_bytes().first() {
        Some(b'[') => serde_json::from_str::<Vec<Record>>(t).map(Some),
        Some(b'{') => serde_json::from_str::<Record>(t).map(|r| Some(vec![r])),
        Some(b'"') => match serde_json::from_str::<String>(t) {
            Ok(inner) if inner.trim_start().starts_with(['{', '[']) => return parse_line(&inner),
            Ok(_) => Ok(None),
            Err(e) => Err(e),
        },
        _ => return Parsed::Malformed(not_json(t)),
    };
    match result {
        Ok(Some(records)) => collect(records),
        Ok(None) => Parsed::Foreign,
        Err(e) => classify_error(t, &e),
    }
}

/// Flattens envelopes and keeps the audit records; a line with none is foreign.
fn collect(records: Vec<Record>) -> Parsed {
    let mut out = Vec::new();
    let mut stack = records;
    stack.reverse();
    while let Some(mut r) = stack.pop() {
        if let Some(inner) = r.records.take() {
            stack.extend(inner.into_iter().rev());
            continue;
        }
        match r.kind.as_deref() {
            Some("scim_write" | "access") => {}
            _ => continue,
        }
        let Some(ms) = r.time.as_deref().and_then(parse_instant) else {
            let kind = r.kind.as_deref().unwrap_or_default();
            return match &r.time {
                Some(t) => {
                    Parsed::Malformed(format!("`{kind}` record with a bad `time`: `{}`", cut(t)))
                }
                None => Parsed::Malformed(format!("`{kind}` record without `time`")),
            };
        };
        r.time_ms = ms;
        out.push(r);
    }
    if out.is_empty() {
        Parsed::Foreign
    } else {
        Parsed::Records(out)
    }
}

/// The typed read failed: valid JSON that does not claim to be ours is foreign; ours is malformed.
fn classify_error(t: &str, typed: &serde_json::Error) -> Parsed {
    let Ok(value) = serde_json::from_str::<Value>(t) else {
        return Parsed::Malformed(not_json(t));
    };
    if claims_audit(&value) {
        Parsed::Malformed(format!("audit record with a bad field: {typed}"))
    } else {
        Parsed::Foreign
    }
}

fn claims_audit(v: &Value) -> bool {
    match v {
        Value::Array(items) => items.iter().any(claims_audit),
        Value::Object(o) => {
            matches!(
                o.get("kind").and_then(Value::as_str),
                Some("scim_write" | "access")
            ) || o.get("records").is_some_and(claims_audit)
        }
        _ => false,
    }
}

fn not_json(t: &str) -> String {
    match serde_json::from_str::<serde::de::IgnoredAny>(t) {
        Err(e) if e.is_eof() => format!("truncated JSON ({} bytes)", t.len()),
        Err(e) => format!("not JSON: {e}"),
        Ok(_) => "not an audit record".into(),
    }
}

fn cut(s: &str) -> String {
    s.chars().take(40).collect()
}

/// The string form of a role or entitlement value: the string itself, or `value` (else `display`)
/// of an object.
pub fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o
            .get("value")
            .or_else(|| o.get("display"))
            .and_then(Value::as_str)
            .map(str::to_string),
        _ => None,
    }
}

/// `value eq "admin"` (the common PATCH value filter) → `admin`.
pub fn filter_value(filter: &str) -> Option<String> {
    let f = filter.trim();
    f.get(..5).filter(|p| p.eq_ignore_ascii_case("value"))?;
    let rest = f.get(5..)?.trim_start();
    let rest = rest
        .get(..2)
        .filter(|op| op.eq_ignore_ascii_case("eq"))
        .and(rest.get(2..))?
        .trim_start();
    let inner = rest.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains('"') {
        return None;
    }
    Some(inner.to_string())
}
