//! Size bounds: no audit output is longer than `audit.max_record_bytes` (default 64 KiB).
//!
//! Why: log shippers cap a line (Vector's file source, Fluent Bit's tail input, Splunk's
//! `TRUNCATE`) and drop or cut what is longer, and the longest records are the ones that matter
//! (a blocked 1 MiB Bulk, a PATCH adding 100,000 members to an admin group).
//!
//! Owns: cutting the record (`record`), an OCSF event (`ocsf`) and a notification
//! (`notification`) to fit, and saying so in the output. Every cut output carries the size and the
//! SHA-256 of the whole output it was cut from, so it still pins what was judged, and totals for
//! every list it shortened. Does not own: writing the whole outputs (`record`, `ocsf`, `notify`).
//!
//! Cost: an output that fits is serialised once and its length compared; only one that does not
//! is hashed and written again.
//!
//! The record keeps first what a reviewer needs: its rules, decision and ids, then the events of
//! the notable operations (a matched rule holds on them, or they target a privileged group), then
//! the other events; every kept event first without members, then as many members as fit, in
//! request order. `events_total`, `events_by_type`, `members_total` and `changes_total` count
//! what was left out. When even that does not fit (it always does for the sizes a policy accepts),
//! a last-resort record without events or changes is written; if that failed too, the line would be
//! dropped (`Fit::Dropped`, which the filter counts): never silently.

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::facts::RequestFacts;
use super::write::{
    change, event, finish, shorten, write_record_to, Completion, Cut, Judged, MAX_CHANGES,
    MAX_STRING,
};
use crate::policy::hex;

/// One output line and how it was made to fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub text: String,
    pub fit: Fit,
}

/// How an output was made to fit `audit.max_record_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// Whole: it fit.
    Whole,
    /// Lists and strings were cut (the output says what, with totals and the digest).
    Cut,
    /// Only the last-resort form fit.
    Minimal,
    /// Nothing fit: `text` is empty. Cannot happen for a bound the policy accepts; counted if it does.
    Dropped,
}

impl Line {
    pub fn whole(text: String) -> Line {
        Line {
            text,
            fit: Fit::Whole,
        }
    }

    fn checked(text: String, fit: Fit, max: usize) -> Option<Line> {
        (!text.is_empty() && text.len() <= max).then_some(Line { text, fit })
    }

    fn dropped() -> Line {
        Line {
            text: String::new(),
            fit: Fit::Dropped,
        }
    }
}

/// Bytes kept free below the bound when planning a cut (the plan estimates list separators).
const SLACK: usize = 64;

/// The record cut to fit, given the whole record `full` that did not.
pub(super) fn record(j: &Judged<'_>, req: &RequestFacts, done: &Completion, full: &[u8]) -> Line {
    let max = j.stamp.max_bytes;
    let mut cut = Cut {
        max_string: MAX_STRING,
        bytes: full.len(),
        sha256: hex(&Sha256::digest(full)),
        ..Cut::default()
    };
    plan(j, req, done, &mut cut);
    if let Some(line) = Line::checked(write(j, req, done, &cut), Fit::Cut, max) {
        return line;
    }
    cut.minimal = true;
    cut.max_string = 64;
    cut.events.iter_mut().for_each(|k| *k = None);
    cut.changes.iter_mut().for_each(|k| *k = false);
    Line::checked(write(j, req, done, &cut), Fit::Minimal, max).unwrap_or_else(Line::dropped)
}

fn write(j: &Judged<'_>, req: &RequestFacts, done: &Completion, cut: &Cut) -> String {
    let mut out = Vec::with_capacity(j.stamp.max_bytes.min(1 << 20));
    let written = write_record_to(&mut out, j, req, done, Some(cut));
    finish(written, out)
}

/// Chooses the events, members and changes that fit (module docs for the order).
fn plan(j: &Judged<'_>, req: &RequestFacts, done: &Completion, cut: &mut Cut) {
    let ops = j.normalized.map_or(&[][..], |n| n.operations.as_slice());
    let notable = |op: usize| j.notable.binary_search(&op).is_ok();
    // (operation, event) and (operation, change) in request order.
    let events: Vec<_> = ops
        .iter()
        .enumerate()
        .flat_map(|(i, op)| op.events.iter().map(move |e| (i, e)))
        .collect();
    let changes: Vec<_> = ops
        .iter()
        .enumerate()
        .flat_map(|(i, op)| op.changes.iter().map(move |c| (i, c)))
        .take(MAX_CHANGES)
        .collect();
    cut.events = vec![None; events.len()];
    cut.changes = vec![false; changes.len()];
    // What is left with no event and no change at all.
    let fixed = write(j, req, done, cut).len();
    let mut room = j.stamp.max_bytes.saturating_sub(fixed + SLACK);
    let created = j
        .normalized
        .filter(|n| !n.bulk && n.resource_id.is_none())
        .and(done.created_id.as_deref());
    let m = cut.max_string;
    // Changes: at most a quarter of the room, the notable operations' first.
    let mut change_room = room / 4;
    for idx in by_priority(changes.iter().map(|(op, _)| notable(*op))) {
        let Some((_, c)) = changes.get(idx) else {
            continue;
        };
        let cost = size(&change(c, Some(m)));
        if cost <= change_room {
            change_room -= cost;
            room -= cost;
            if let Some(k) = cut.changes.get_mut(idx) {
                *k = true;
            }
        }
    }
    // Events: the notable operations' first, each group first without members, then with as
    // many members as fit, in order.
    for notable_group in [true, false] {
        let group: Vec<usize> = (0..events.len())
            .filter(|&i| {
                events
                    .get(i)
                    .is_some_and(|(op, _)| notable(*op) == notable_group)
            })
            .collect();
        for &idx in &group {
            let Some((_, e)) = events.get(idx) else {
                continue;
            };
            let cost = size(&event(e, created, Some((0, m))));
            if cost <= room {
                room -= cost;
                if let Some(k) = cut.events.get_mut(idx) {
                    *k = Some(0);
                }
            }
        }
        for &idx in &group {
            let (Some((_, e)), Some(Some(0))) = (events.get(idx), cut.events.get(idx)) else {
                continue;
            };
            let k = members_that_fit(&e.members, m, &mut room);
            if let Some(slot) = cut.events.get_mut(idx) {
                *slot = Some(k);
            }
        }
    }
}

/// How many of `members` (cut to `m` characters) fit in `room`, which is reduced by what they use.
fn members_that_fit(members: &[String], m: usize, room: &mut usize) -> usize {
    // `"members":[` and `]` with a comma, once per event.
    let mut used = 13;
    let mut k = 0;
    for member in members {
        let cost = json_len(&shorten(member, m)) + 1;
        if used + cost > *room {
            break;
        }
        used += cost;
        k += 1;
    }
    if k > 0 {
        *room -= used;
    }
    k
}

/// The length of `v` as JSON, with the comma that separates it from the next list item.
fn size(v: &impl Serialize) -> usize {
    let mut out = Vec::new();
    super::json::to_vec_end(&mut out, v).map_or(usize::MAX, |()| out.len() + 1)
}

/// The length of `s` as a JSON string (quotes and escapes included).
fn json_len(s: &str) -> usize {
    2 + s
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..0x20 => 6,
            _ => 1,
        })
        .sum::<usize>()
}

/// Indexes `0..n`: those flagged true first, each group in order.
fn by_priority(flags: impl Iterator<Item = bool>) -> Vec<usize> {
    let flags: Vec<bool> = flags.collect();
    let first = flags
        .iter()
        .enumerate()
        .filter(|(_, f)| **f)
        .map(|(i, _)| i);
    let rest = flags
        .iter()
        .enumerate()
        .filter(|(_, f)| !**f)
        .map(|(i, _)| i);
    first.chain(rest).collect()
}

/// An OCSF event as one line of at most `max` bytes. A cut event says so in
/// `metadata.is_truncated` / `metadata.untruncated_size` (kilobytes, rounded up) and in
/// `unmapped.truncated` (`bytes`, `sha256`, and the total of each list it shortened).
pub fn ocsf(event: &Value, max: usize) -> Line {
    fit_value(event, max, &[], |v, marker, full| {
        if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("is_truncated".into(), Value::Bool(true));
            meta.insert("untruncated_size".into(), Value::from(full.div_ceil(1000)));
        }
        put(v, "unmapped", marker);
    })
}

/// A notification (CloudEvent) as one body of at most `max` bytes. A cut one says so in
/// `data.truncated`; its OCSF copies (`data.ocsf`) are shortened first.
pub fn notification(ce: &Value, max: usize) -> Line {
    fit_value(ce, max, &["data", "ocsf"], |v, marker, _| {
        put(v, "data", marker);
    })
}

/// Inserts `truncated` into the object at `key` of `v`.
fn put(v: &mut Value, key: &str, marker: Value) {
    if let Some(o) = v.get_mut(key).and_then(Value::as_object_mut) {
        o.insert("truncated".into(), marker);
    }
}

/// `v` serialised; if longer than `max`: strings cut to `MAX_STRING` characters, then the array at
/// `first` and then the largest array, again and again, shortened until it fits, each with its
/// total in the marker `mark` places; last resort: every array emptied, strings cut to 64.
fn fit_value(
    v: &Value,
    max: usize,
    first: &[&str],
    mark: impl Fn(&mut Value, Value, usize),
) -> Line {
    let full = v.to_string();
    if full.len() <= max {
        return Line::whole(full);
    }
    let digest = hex(&Sha256::digest(full.as_bytes()));
    let marker = |totals: &Map<String, Value>, minimal: bool| {
        let mut m = Map::new();
        m.insert("bytes".into(), Value::from(full.len()));
        m.insert("sha256".into(), Value::from(digest.as_str()));
        m.insert("cut".into(), Value::Object(totals.clone()));
        if minimal {
            m.insert("minimal".into(), Value::Bool(true));
        }
        Value::Object(m)
    };
    let mut cut = v.clone();
    cut_strings(&mut cut, MAX_STRING);
    let mut totals = Map::new();
    // Each round removes at least one item, usually far more: bounded by the items there are.
    loop {
        let mut marked = cut.clone();
        mark(&mut marked, marker(&totals, false), full.len());
        let text = marked.to_string();
        if text.len() <= max {
            return Line {
                text,
                fit: Fit::Cut,
            };
        }
        let excess = text.len() - max;
        if !shorten_one(&mut cut, first, excess, &mut totals) {
            break;
        }
    }
    // Every list emptied: the totals are those of the whole output's outermost lists.
    let mut minimal = v.clone();
    let mut totals = Map::new();
    empty_arrays(&mut minimal, "", &mut totals);
    cut_strings(&mut minimal, 64);
    mark(&mut minimal, marker(&totals, true), full.len());
    Line::checked(minimal.to_string(), Fit::Minimal, max).unwrap_or_else(Line::dropped)
}

/// Shortens one array: the one at `first` while it has items, else the largest (by serialised
/// size). Removes about enough items to shed `excess` bytes, at most half of them (at least one).
/// Records the array's original length under its JSON pointer. False when no array has items.
fn shorten_one(
    v: &mut Value,
    first: &[&str],
    excess: usize,
    totals: &mut Map<String, Value>,
) -> bool {
    let at_first = first
        .iter()
        .try_fold(&*v, |v, k| v.get(k))
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    let pointer = if at_first {
        first.iter().fold(String::new(), |p, k| format!("{p}/{k}"))
    } else {
        match largest_array(v, String::new()) {
            Some((pointer, _)) => pointer,
            None => return false,
        }
    };
    let Some(items) = v.pointer_mut(&pointer).and_then(Value::as_array_mut) else {
        return false;
    };
    let len = items.len();
    let bytes: usize = items.iter().map(|i| i.to_string().len() + 1).sum();
    let per_item = (bytes / len.max(1)).max(1);
    let remove = excess.div_ceil(per_item).clamp(1, len.div_ceil(2));
    items.truncate(len - remove);
    totals.entry(pointer).or_insert_with(|| Value::from(len));
    true
}

/// The JSON pointer and serialised size of the largest non-empty array in `v`.
fn largest_array(v: &Value, at: String) -> Option<(String, usize)> {
    let mut best: Option<(String, usize)> = None;
    let mut consider = |c: Option<(String, usize)>| {
        if let Some((p, n)) = c {
            if best.as_ref().is_none_or(|(_, b)| n > *b) {
                best = Some((p, n));
            }
        }
    };
    match v {
        Value::Array(items) => {
            if !items.is_empty() {
                consider(Some((at.clone(), v.to_string().len())));
            }
            for (i, item) in items.iter().enumerate() {
                consider(largest_array(item, format!("{at}/{i}")));
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                let key = k.replace('~', "~0").replace('/', "~1");
                consider(largest_array(item, format!("{at}/{key}")));
            }
        }
        _ => {}
    }
    best
}

/// Empties every array of `v`, recording the length of each non-empty one.
fn empty_arrays(v: &mut Value, at: &str, totals: &mut Map<String, Value>) {
    match v {
        Value::Array(items) => {
            if !items.is_empty() {
                totals
                    .entry(at.to_string())
                    .or_insert_with(|| Value::from(items.len()));
            }
            items.clear();
        }
        Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                let key = k.replace('~', "~0").replace('/', "~1");
                empty_arrays(item, &format!("{at}/{key}"), totals);
            }
        }
        _ => {}
    }
}

/// Cuts every string in `v` to `max` characters.
fn cut_strings(v: &mut Value, max: usize) {
    match v {
        Value::String(s) if s.len() > max => *s = shorten(s, max),
        Value::Array(items) => items.iter_mut().for_each(|i| cut_strings(i, max)),
        Value::Object(map) => map.values_mut().for_each(|i| cut_strings(i, max)),
        _ => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(fields: usize, text: usize, list: usize) -> Value {
        let mut e = Map::new();
        for i in 0..fields {
            e.insert(format!("f{i}"), Value::from("y".repeat(text)));
        }
        e.insert("metadata".into(), json!({"version": "1.8.0"}));
        e.insert(
            "unmapped".into(),
            json!({"rules": ["r1"], "ids": (0..list).map(|i| format!("id-{i:08}")).collect::<Vec<_>>()}),
        );
        Value::Object(e)
    }

    #[test]
    fn the_largest_list_is_shortened_with_its_total() {
        let line = ocsf(&event(2, 10, 10_000), 4096);
        assert_eq!(line.fit, Fit::Cut);
        assert!(line.text.len() <= 4096);
        let v: Value = serde_json::from_str(&line.text).unwrap();
        assert_eq!(v["metadata"]["is_truncated"], true);
        let t = &v["unmapped"]["truncated"];
        assert_eq!(t["cut"], json!({"/unmapped/ids": 10_000}));
        assert_eq!(t["sha256"].as_str().unwrap().len(), 64);
        assert_eq!(v["unmapped"]["rules"], json!(["r1"]), "small lists stay");
        assert_eq!(
            v["unmapped"]["ids"][0], "id-00000000",
            "the first items stay"
        );
    }

    #[test]
    fn the_last_resort_empties_every_list_and_cuts_strings_further() {
        // Thirty 1000-character strings: cut to 256 they are still too long, and no list helps.
        let line = ocsf(&event(30, 1000, 3), 4096);
        assert_eq!(line.fit, Fit::Minimal);
        assert!(line.text.len() <= 4096, "{}", line.text.len());
        let v: Value = serde_json::from_str(&line.text).unwrap();
        assert_eq!(v["unmapped"]["truncated"]["minimal"], true);
        assert_eq!(v["unmapped"]["ids"], json!([]));
        assert_eq!(v["f0"].as_str().unwrap().chars().count(), 65);
    }

    #[test]
    fn what_cannot_fit_is_dropped_not_cut_silently() {
        let line = ocsf(&event(300, 1000, 3), 4096);
        assert_eq!(line, Line::dropped());
    }
}
