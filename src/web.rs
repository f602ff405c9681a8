//! The wasm-bindgen shell (feature `web`, target `wasm32-unknown-unknown`): the engine for the
//! browser playground and for Node tooling. The only module that names `wasm_bindgen`.
//!
//! Owns: translating JavaScript strings to engine calls and engine values back to JSON strings.
//! Does not own: any judgement. Every function is a one-liner over `Engine`; `evaluate` returns
//! byte for byte what `scimguard eval` prints for the same policy and request, so a result seen in
//! the playground is the result the gateway and the CLI give.
//!
//! Strings in, strings out: JSON crosses the boundary as text so the JavaScript side needs no
//! generated types and a result can be compared with the CLI's output as it is.

use serde_json::{json, Value};
use wasm_bindgen::prelude::{wasm_bindgen, JsError};

use crate::scim::HttpRequest;
use crate::{suite, Engine, Evaluation, Facts};

/// Checks a policy document: `{"ok":true,"rules":N}`, or `{"ok":false,"errors":[…]}` with every
/// error's `rule`, `pointer`, `line`, `message` and `help`, as `scimguard validate` reports them.
#[wasm_bindgen]
pub fn validate(policy_json: &str) -> String {
    match Engine::from_json(policy_json) {
        Ok(engine) => json!({"ok": true, "rules": engine.policy().rules.len()}),
        Err(errors) => json!({"ok": false, "errors": errors}),
    }
    .to_string()
}

/// Judges one request (`{"method","path","headers","body"|"raw_body"}`) under a policy and returns
/// the `scimguard eval` line: `{"decision","risk","rules","events","changes","error"}`.
/// `facts_json` is optional host facts (`{"actor","group_names":{id: name}}`), as a case file's
/// `facts`; without it the result is byte for byte what `scimguard eval` prints.
///
/// # Errors
/// Throws when the policy is invalid (the message lists every error), or the request or the facts
/// are not what they should be (the message is the JSON reader's, with line and column).
#[wasm_bindgen]
pub fn evaluate(
    policy_json: &str,
    request_json: &str,
    facts_json: Option<String>,
) -> Result<String, JsError> {
    run(policy_json, request_json, facts_json.as_deref()).map(|e| e.to_json().to_string())
}

/// `evaluate`, plus what a reader needs to understand the result: the matched rules with their
/// descriptions, the actor the decision used, and the reply a client receives when blocked.
/// `{"result": <evaluate's object>, "matches": [...], "actor", "unknown_groups", "reply"}`.
///
/// # Errors
/// As `evaluate`.
#[wasm_bindgen]
pub fn explain(
    policy_json: &str,
    request_json: &str,
    facts_json: Option<String>,
) -> Result<String, JsError> {
    run(policy_json, request_json, facts_json.as_deref()).map(|e| explanation(&e).to_string())
}

/// Runs a case file (`{"policy","cases":[…]}`) against the given policy text (the file's `policy`
/// path is the caller's to resolve) with the runner `scimguard test` uses:
/// `[{"name","passed","failures":[…]}]`.
///
/// # Errors
/// Throws when the case file cannot be read or the policy is invalid.
#[wasm_bindgen]
pub fn run_cases(cases_json: &str, policy_json: &str) -> Result<String, JsError> {
    let results = suite::run_file(cases_json, |_| Ok(policy_json.to_string()))
        .map_err(|e| JsError::new(&e))?;
    let results: Vec<Value> = results
        .iter()
        .map(|r| json!({"name": r.name, "passed": r.passed(), "failures": r.failures}))
        .collect();
    Ok(Value::Array(results).to_string())
}

/// The requests of a case file as the runner judges them (file defaults merged, generated values
/// expanded): `[{"name","request"}]`, each request in `evaluate`'s input form.
///
/// # Errors
/// Throws when the case file cannot be read.
#[wasm_bindgen]
pub fn case_requests(cases_json: &str) -> Result<String, JsError> {
    let (_, requests) = suite::requests(cases_json).map_err(|e| JsError::new(&e))?;
    let requests: Vec<Value> = requests
        .iter()
        .map(|(name, request, _)| json!({"name": name, "request": request}))
        .collect();
    Ok(Value::Array(requests).to_string())
}

/// The engine's version (the crate version).
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

fn run(
    policy_json: &str,
    request_json: &str,
    facts_json: Option<&str>,
) -> Result<Evaluation, JsError> {
    let engine = Engine::from_json(policy_json).map_err(|e| JsError::new(&e.to_string()))?;
    let request: HttpRequest = serde_json::from_str(request_json)
        .map_err(|e| JsError::new(&format!("not a request: {e}")))?;
    let facts: Facts = match facts_json {
        Some(f) if !f.trim().is_empty() => {
            serde_json::from_str(f).map_err(|e| JsError::new(&format!("not host facts: {e}")))?
        }
        _ => Facts::default(),
    };
    Ok(engine.evaluate_request(&request, &facts))
}

fn explanation(e: &Evaluation) -> Value {
    json!({
        "result": e.to_json(),
        "matches": e.matches,
        "actor": e.actor,
        "unknown_groups": e.unknown_groups,
        "reply": e.reply().map(|r| json!({"status": r.status, "body": r.body})),
    })
}
