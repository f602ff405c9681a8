//! One input line → audit records, or a reason to skip it.
//!
//! Accepts a record per line, a JSON array of records (a collector batch), `{"records":[…]}`, and a
//! record serialised into a JSON string. Valid JSON that is not an audit record (an Envoy access-log
//! line, `-` from an unset filter state) is *foreign* and skipped quietly; anything else is
//! *malformed* and reported with a short reason.

use serde_json::Value;

use crate::scim::json::Json;

use super::when::parse_instant;
use crate::audit::record::Record;

/// What one line held.
#[derive(Debug)]
pub enum Parsed {
    Records(Vec<TimedRecord>),
    /// Blank, or valid JSON that is not an audit record.
    Foreign,
    Malformed(String),
}

/// An audit record (the writer's own type, `audit::record`), and its `time` as epoch milliseconds.
#[derive(Debug, Clone)]
pub struct TimedRecord {
    pub time_ms: u64,
    pub record: Record<'static>,
}

/// Classifies one line (without its newline).
pub fn parse_line(line: &str) -> Parsed {
    let t = line.trim();
    if t.is_empty() || t == "-" {
        return Parsed::Foreign;
    }
    // The common lines first, read straight into records; anything else item by item.
    let typed = match t.as_bytes().first() {
        Some(b'{') => serde_json::from_str::<Record>(t).map(|r| vec![r]),
        Some(b'[') => serde_json::from_str::<Vec<Record>>(t),
        Some(b'"') => {
            return match serde_json::from_str::<String>(t) {
                Ok(inner) if inner.trim_start().starts_with(['{', '[']) => parse_line(&inner),
                Ok(_) => Parsed::Foreign,
                Err(_) => Parsed::Malformed(not_json(t)),
            }
        }
        _ => return Parsed::Malformed(not_json(t)),
    };
    match typed {
        Ok(records) => timed(records),
        Err(_) => item_by_item(t),
    }
}

/// Each record with its instant; a record without a readable `time` makes the line malformed, and
/// a line with no record is foreign.
fn timed(records: Vec<Record<'static>>) -> Parsed {
    let mut out = Vec::with_capacity(records.len());
    for record in records {
        let time = &record.head().time;
        let Some(time_ms) = parse_instant(time) else {
            let kind = record.kind();
            return Parsed::Malformed(if time.is_empty() {
                format!("`{kind}` record without `time`")
            } else {
                format!("`{kind}` record with a bad `time`: `{}`", cut(time))
            });
        };
        out.push(TimedRecord { time_ms, record });
    }
    if out.is_empty() {
        Parsed::Foreign
    } else {
        Parsed::Records(out)
    }
}

/// A line that is not one record or an array of records: collector envelopes
/// (`{"records":[…]}`, nested), batches that mix records with other JSON, foreign JSON. Items that
/// claim to be records (`kind`) are read as records; one that does not read makes the line
/// malformed; the rest is skipped.
fn item_by_item(t: &str) -> Parsed {
    let Ok(value) = serde_json::from_str::<Value>(t) else {
        return Parsed::Malformed(not_json(t));
    };
    let mut records = Vec::new();
    match collect(value, &mut records) {
        Ok(()) => timed(records),
        Err(e) => Parsed::Malformed(format!("audit record with a bad field: {e}")),
    }
}

fn collect(v: Value, out: &mut Vec<Record<'static>>) -> Result<(), serde_json::Error> {
    match v {
        Value::Array(items) => items.into_iter().try_for_each(|i| collect(i, out)),
        Value::Object(mut o) => {
            if let Some(inner) = o.remove("records") {
                return collect(inner, out);
            }
            if claims_audit(&o) {
                out.push(serde_json::from_value(Value::Object(o))?);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn claims_audit(o: &serde_json::Map<String, Value>) -> bool {
    matches!(
        o.get("kind").and_then(Value::as_str),
        Some("scim_write" | "access")
    )
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
pub fn value_text(v: &Json<'_>) -> Option<String> {
    match v {
        Json::Str(s) => Some(s.to_string()),
        Json::Object(_) => v
            .get("value")
            .or_else(|| v.get("display"))
            .and_then(Json::as_str)
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
