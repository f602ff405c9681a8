//! The runner: judges one case's request with the engine and compares the answer with the case's
//! `expect`, returning one line per mismatch. Knows nothing of files or defaults.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{Case, CaseResult, ExpectError};
use crate::engine::Engine;

pub(super) fn run_case(engine: &Engine, case: &Case) -> CaseResult {
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

pub(super) fn check_eq(failures: &mut Vec<String>, what: &str, got: &Value, want: &Value) {
    if got != want {
        failures.push(format!("{what}: expected {want}, got {got}"));
    }
}

pub(super) fn check_set(failures: &mut Vec<String>, what: &str, got: &Value, want: &[String]) {
    let got: BTreeSet<&str> = got
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let want: BTreeSet<&str> = want.iter().map(String::as_str).collect();
    if got != want {
        failures.push(format!("{what}: expected {want:?}, got {got:?}"));
    }
}

pub(super) fn check_changes(failures: &mut Vec<String>, got: &Value, want: &[Value]) {
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
pub(super) fn is_subset(want: &Value, got: &Value) -> bool {
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

pub(super) fn check_error(failures: &mut Vec<String>, got: &Value, want: Option<&ExpectError>) {
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

pub(super) fn field<'v>(v: &'v Value, key: &str) -> &'v Value {
    v.get(key).unwrap_or(&Value::Null)
}
