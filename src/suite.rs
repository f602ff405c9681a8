//! Test cases as data: the file format and the runner shared by `cargo test` and `scimguard test`.
//!
//! A case file is `{"description"?, "policy": "<path relative to this file>", "cases": [case…]}`;
//! a case is `{"name", "request": <request>, "facts"?: {"actor", "group_names"}, "expect": {…}}`.
//! `expect` holds `decision` (required), and optionally `risk`, `rules` (exact, any order), `events`
//! (the exact set of event kinds), `changes` (one object per change, each a subset of the actual
//! change) and `error` (`status`, `scimType`, `detail_contains`; without it the request must parse).
//! A file may also hold `sequences`: stateful cases, a request after another through the request
//! lifecycle against one in-memory host (see `sequence`).
//! The runner reads no file: the caller passes the file text and a policy loader.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::Value;

mod sequence;

use crate::engine::{Engine, Facts};
use crate::scim::HttpRequest;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    policy: String,
    #[serde(default)]
    cases: Vec<Case>,
    /// Stateful cases (`sequence`).
    #[serde(default)]
    sequences: Vec<sequence::Sequence>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    request: HttpRequest,
    #[serde(default)]
    facts: Facts,
    expect: Expect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    decision: String,
    #[serde(default)]
    risk: Option<String>,
    #[serde(default)]
    rules: Option<Vec<String>>,
    #[serde(default)]
    events: Option<Vec<String>>,
    #[serde(default)]
    changes: Option<Vec<Value>>,
    #[serde(default)]
    error: Option<ExpectError>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectError {
    status: u16,
    #[serde(default, rename = "scimType")]
    scim_type: Option<String>,
    #[serde(default)]
    detail_contains: Option<String>,
}

/// Which files hold cases: `*.cases.json` anywhere, and every `*.json` under a `cases` folder.
/// `scimguard test` and `cargo test` find their files by this one rule.
pub fn is_case_file(file_name: &str, under_cases_folder: bool) -> bool {
    file_name.ends_with(".cases.json") || (under_cases_folder && file_name.ends_with(".json"))
}

/// The folder name under which every `*.json` is a case file.
pub const CASES_FOLDER: &str = "cases";

/// The outcome of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseResult {
    pub name: String,
    /// Empty when the case passed; otherwise one line per mismatch.
    pub failures: Vec<String>,
}

impl CaseResult {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Runs every case of a case file. `load_policy` resolves the file's `policy` path to its text.
/// A file that cannot be read or whose policy is invalid is an `Err` with the reason.
pub fn run_file(
    text: &str,
    load_policy: impl Fn(&str) -> Result<String, String>,
) -> Result<Vec<CaseResult>, String> {
    let file: CaseFile = serde_json::from_str(text).map_err(|e| format!("not a case file: {e}"))?;
    let policy_text = load_policy(&file.policy)?;
    let engine =
        Engine::from_json(&policy_text).map_err(|e| format!("policy `{}`: {e}", file.policy))?;
    if file.cases.is_empty() && file.sequences.is_empty() {
        return Err("the file has no cases".into());
    }
    let cases = file.cases.iter().map(|c| run_case(&engine, c));
    let sequences = file
        .sequences
        .iter()
        .flat_map(|s| sequence::run(&engine, s));
    Ok(cases.chain(sequences).collect())
}

/// The requests of a case file with their case names, for front-ends that compare engines.
pub fn requests(text: &str) -> Result<(String, NamedRequests), String> {
    let file: CaseFile = serde_json::from_str(text).map_err(|e| format!("not a case file: {e}"))?;
    Ok((
        file.policy,
        file.cases
            .into_iter()
            .map(|c| (c.name, c.request, c.facts))
            .collect(),
    ))
}

fn run_case(engine: &Engine, case: &Case) -> CaseResult {
    let got = engine
        .evaluate_request(&case.request, &case.facts)
        .to_json();
    let mut failures = Vec::new();
    let e = &case.expect;
    check_eq(
        &mut failures,
        "decision",
        field(&got, "decision"),
        &Value::String(e.decision.clone()),
    );
    if let Some(risk) = &e.risk {
        check_eq(
            &mut failures,
            "risk",
            field(&got, "risk"),
            &Value::String(risk.clone()),
        );
    }
    if let Some(rules) = &e.rules {
        check_set(&mut failures, "rules", field(&got, "rules"), rules);
    }
    if let Some(events) = &e.events {
        check_set(&mut failures, "events", field(&got, "events"), events);
    }
    if let Some(changes) = &e.changes {
        check_changes(&mut failures, field(&got, "changes"), changes);
    }
    check_error(&mut failures, field(&got, "error"), e.error.as_ref());
    CaseResult {
        name: case.name.clone(),
        failures,
    }
}

fn check_eq(failures: &mut Vec<String>, what: &str, got: &Value, want: &Value) {
    if got != want {
        failures.push(format!("{what}: expected {want}, got {got}"));
    }
}

fn check_set(failures: &mut Vec<String>, what: &str, got: &Value, want: &[String]) {
    let got: BTreeSet<&str> = got
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let want: BTreeSet<&str> = want.iter().map(String::as_str).collect();
    if got != want {
        failures.push(format!("{what}: expected {want:?}, got {got:?}"));
    }
}

fn check_changes(failures: &mut Vec<String>, got: &Value, want: &[Value]) {
    let got = got.as_array().cloned().unwrap_or_default();
    if got.len() != want.len() {
        failures.push(format!(
            "changes: expected {} changes, got {}: {}",
            want.len(),
            got.len(),
            Value::Array(got)
        ));
        return;
    }
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if !is_subset(w, g) {
            failures.push(format!("changes[{i}]: expected {w} to be part of {g}"));
        }
    }
}

/// `want` is contained in `got`: objects by key, everything else by equality.
fn is_subset(want: &Value, got: &Value) -> bool {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => w
            .iter()
            .all(|(k, v)| g.get(k).is_some_and(|gv| is_subset(v, gv))),
        (Value::Array(w), Value::Array(g)) => {
            w.len() == g.len() && w.iter().zip(g).all(|(a, b)| is_subset(a, b))
        }
        _ => want == got,
    }
}

fn check_error(failures: &mut Vec<String>, got: &Value, want: Option<&ExpectError>) {
    match (want, got) {
        (None, Value::Null) => {}
        (None, g) => failures.push(format!("error: expected none, got {g}")),
        (Some(w), Value::Null) => {
            failures.push(format!("error: expected status {}, got none", w.status))
        }
        (Some(w), g) => {
            if field(g, "status").as_u64() != Some(u64::from(w.status)) {
                failures.push(format!(
                    "error.status: expected {}, got {}",
                    w.status,
                    field(g, "status")
                ));
            }
            if let Some(t) = &w.scim_type {
                if field(g, "scimType").as_str() != Some(t) {
                    failures.push(format!(
                        "error.scimType: expected {t}, got {}",
                        field(g, "scimType")
                    ));
                }
            }
            if let Some(d) = &w.detail_contains {
                if !field(g, "detail")
                    .as_str()
                    .is_some_and(|x| x.contains(d.as_str()))
                {
                    failures.push(format!(
                        "error.detail: expected it to contain `{d}`, got {}",
                        field(g, "detail")
                    ));
                }
            }
        }
    }
}

fn field<'v>(v: &'v Value, key: &str) -> &'v Value {
    v.get(key).unwrap_or(&Value::Null)
}

/// A case file's requests, by case name, with their facts.
pub type NamedRequests = Vec<(String, HttpRequest, Facts)>;

/// Totals over many files, for front-ends that print a summary.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
    /// File → reason it could not run.
    pub broken: BTreeMap<String, String>,
}
