//! Stateful cases: a sequence of requests, each run through its own `Session` against one shared
//! `MemoryHost`, so that what spans requests (learned group names, lookups, the deprovision storm,
//! actor risk, created ids from `Location`, fleet refusals, operator endpoints) is tested as data by
//! `cargo test`, `scimguard test` and the playground alike.
//!
//! A case file may hold `"sequences": [{"name", "env"?, "steps": [step…]}]` beside (or instead of)
//! `cases`; `env` is the host's environment (the `engine::offload` switches).
//! A step is:
//! - `request`: as in a case (`method`, `path`, `headers`, `body` | `raw_body`);
//! - `after_secs` (default 1): seconds on the host's clock since the previous step (the first step
//!   runs at 1,700,000,000 s);
//! - `properties`: host properties during this step only (`xds.route_name`, a JWT claim under
//!   `metadata.filter_metadata…`), as strings;
//! - `lookups`: answers to group-name lookups, by group id: `{"status", "body"}` (an id without an
//!   answer times out);
//! - `response`: what the upstream answers if the request reaches it (`status`, default 200;
//!   `headers`; `body`);
//! - `expect`: `decision` (absent for a request that is not judged: a read, an operator call),
//!   `risk`, `rules`, `events`, `changes`, `error` as in a case, and
//!   `status` (what the client got), `upstream` (whether the request reached the upstream),
//!   `lookups` (the ids looked up, in order), `headers` (request headers the upstream got: a
//!   value, or `null` for absent), `response_headers` (set on the client's response by the
//!   session: on its own reply, or on the upstream's response), `record`
//!   (a subset of the audit record), `shipped` (lines queued for the collector), `notified`
//!   (whether a notification was queued), `counts` (counter totals so far, by metric name),
//!   `properties_read` (host properties the step read, in order: what its host calls cost).
//!
//! With `SCIMGUARD_AUDIT_LOG_FIELDS=access_log` in `env`, `record` is checked on the line the
//! shipped audit log writes: Envoy's client address and status, then the session's record.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::check::{check_changes, check_eq, check_error, check_set, field, is_subset};
use super::{CaseResult, ExpectError};
use crate::engine::{strip_ours, Engine, Head, MemoryHost, Offload, Outputs, Session, Step};
use crate::scim::HttpRequest;

/// Where the host's clock starts (epoch seconds).
const START_SECS: u64 = 1_700_000_000;
/// The client's address.
const SOURCE_IP: &str = "192.0.2.10";
/// Steps a request may take before the runner calls it held forever.
const MAX_STEPS: usize = 16;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sequence {
    name: String,
    /// The host's environment: the `engine::offload` switches (`SCIMGUARD_RESPONSE_TAGS`).
    #[serde(default)]
    env: BTreeMap<String, String>,
    steps: Vec<SequenceStep>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SequenceStep {
    request: HttpRequest,
    #[serde(default = "one")]
    after_secs: u64,
    #[serde(default)]
    properties: BTreeMap<String, String>,
    #[serde(default)]
    lookups: BTreeMap<String, Upstream>,
    #[serde(default)]
    response: Option<Upstream>,
    expect: StepExpect,
}

fn one() -> u64 {
    1
}

/// An upstream answer (to the request, or to a lookup).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Upstream {
    #[serde(default = "ok")]
    status: u16,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: Option<Value>,
}

fn ok() -> u16 {
    200
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepExpect {
    #[serde(default)]
    decision: Option<String>,
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
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    upstream: Option<bool>,
    #[serde(default)]
    lookups: Option<Vec<String>>,
    #[serde(default)]
    headers: Option<BTreeMap<String, Option<String>>>,
    #[serde(default)]
    response_headers: Option<BTreeMap<String, Option<String>>>,
    #[serde(default)]
    record: Option<Value>,
    #[serde(default)]
    shipped: Option<usize>,
    #[serde(default)]
    notified: Option<bool>,
    #[serde(default)]
    counts: Option<BTreeMap<String, u64>>,
    #[serde(default)]
    properties_read: Option<Vec<String>>,
}

/// What one step did, as the host saw it.
#[derive(Debug, Default)]
struct Observed {
    evaluation: Value,
    status: Option<u16>,
    upstream: bool,
    lookups: Vec<String>,
    /// The request headers the upstream got (after removals and tags).
    headers: BTreeMap<String, String>,
    response_headers: BTreeMap<String, String>,
    outputs: Outputs,
    /// The audit log's line, as the shipped log format writes it.
    record: Option<String>,
}

/// Runs a sequence: one result per step, named `<sequence> / step <n>`.
pub fn run(engine: &Engine, sequence: &Sequence) -> Vec<CaseResult> {
    let engine = match Offload::from_env(|k| sequence.env.get(k).cloned()) {
        Ok(offload) => engine.clone().with_offload(offload),
        Err(e) => {
            let name = format!("{} / env", sequence.name);
            return vec![CaseResult {
                name,
                failures: vec![e],
            }];
        }
    };
    let engine = &engine;
    let mut host = MemoryHost::at(START_SECS * 1_000_000_000);
    host.set_property("source.address", Some(&format!("{SOURCE_IP}:50000")));
    sequence
        .steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            host.now_ns = host
                .now_ns
                .saturating_add(step.after_secs.saturating_mul(1_000_000_000));
            let name = format!("{} / step {}", sequence.name, i + 1);
            let failures = match observe(engine, &mut host, step) {
                Ok(seen) => compare(&step.expect, &seen, &host),
                Err(e) => vec![e],
            };
            CaseResult { name, failures }
        })
        .collect()
}

/// Feeds one request through a fresh session as a host would, answering lookups and playing the
/// upstream from the step.
fn observe(
    engine: &Engine,
    host: &mut MemoryHost,
    step: &SequenceStep,
) -> Result<Observed, String> {
    for (k, v) in &step.properties {
        host.set_property(k, Some(v));
    }
    host.reads.clear();
    let mut seen = Observed::default();
    let request = &step.request;
    let pairs: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    let (headers, _removed) = strip_ours(pairs);
    seen.headers = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let body = request.body_bytes();
    let head = Head {
        method: request.method.clone(),
        path: request.path.clone(),
        headers,
    };
    let mut session = Session::new();
    let mut next = session.on_request_headers(engine, host, head, body.is_none());
    for _ in 0..MAX_STEPS {
        next = match next {
            Step::Pause => {
                session.on_request_body(engine, host, body.as_ref().map_or(0, Vec::len), true)
            }
            Step::ReadBody(_) => session.on_body(engine, host, Ok(body.as_deref())),
            Step::Lookup(lookups) => {
                answer_lookups(engine, host, &mut session, &mut seen, step, lookups)?
            }
            Step::Reply {
                status, headers, ..
            } => {
                seen.status = Some(status);
                let set = headers.into_iter().map(|(k, v)| (k.to_string(), v));
                seen.response_headers.extend(set);
                break;
            }
            Step::Forward { headers, .. } => {
                seen.headers
                    .extend(headers.into_iter().map(|(k, v)| (k.to_string(), v)));
                seen.upstream = true;
                break;
            }
            Step::Continue => {
                seen.upstream = true;
                break;
            }
        };
    }
    if seen.status.is_none() && !seen.upstream {
        return Err(format!(
            "the request was still held after {MAX_STEPS} steps"
        ));
    }
    respond(
        engine,
        host,
        &mut session,
        &mut seen,
        step.response.as_ref(),
    );
    host.set_int("response.code", i64::from(seen.status.unwrap_or(0)));
    seen.outputs = session.on_log(engine, host);
    host.properties.remove("response.code");
    for k in step.properties.keys() {
        host.properties.remove(k);
    }
    seen.evaluation = session
        .evaluation()
        .map(|e| e.to_json())
        .unwrap_or(Value::Null);
    seen.record = seen
        .outputs
        .record
        .as_ref()
        .map(|(r, _)| match engine.offload().log_fields {
            // envoy.yaml's audit log format: Envoy's client address and status, then the rest.
            true => format!(
                "{{\"source_ip\":\"{SOURCE_IP}\",\"status\":{},{r}",
                seen.status.unwrap_or(0)
            ),
            false => r.clone(),
        });
    Ok(seen)
}

fn answer_lookups(
    engine: &Engine,
    host: &mut MemoryHost,
    session: &mut Session,
    seen: &mut Observed,
    step: &SequenceStep,
    lookups: Vec<crate::engine::Lookup>,
) -> Result<Step, String> {
    let mut last = None;
    for lookup in lookups {
        seen.lookups.push(lookup.id.clone());
        let body = step
            .lookups
            .get(&lookup.id)
            .filter(|a| a.status == 200)
            .and_then(|a| a.body.as_ref())
            .map(Value::to_string);
        last = session.lookup_done(engine, host, &lookup.id, body.as_deref().map(str::as_bytes));
    }
    last.ok_or_else(|| "a lookup was never answered".to_string())
}

/// The response: the upstream's (a forwarded request) or our own reply (which passes through
/// untouched).
fn respond(
    engine: &Engine,
    host: &mut MemoryHost,
    session: &mut Session,
    seen: &mut Observed,
    upstream: Option<&Upstream>,
) {
    let default = Upstream {
        status: 200,
        ..Upstream::default()
    };
    let answer = match (seen.upstream, upstream) {
        (true, Some(u)) => u,
        (true, None) => &default,
        (false, _) => {
            let status = seen.status.unwrap_or(0).to_string();
            session.on_response_headers(engine, host, &[(":status".to_string(), status)], true);
            return;
        }
    };
    seen.status = Some(answer.status);
    let body = answer.body.as_ref().map(Value::to_string);
    let mut pairs = vec![(":status".to_string(), answer.status.to_string())];
    pairs.extend(
        answer
            .headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone())),
    );
    let given = match session.wants_response_headers() {
        true => pairs,
        false => Vec::new(),
    };
    let set = session.on_response_headers(engine, host, &given, body.is_none());
    seen.response_headers = set.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    if let Some(b) = body {
        if session.wants_response_body(b.len()) {
            session.on_response_body(host, Some(b.as_bytes()), true);
        }
    }
}

fn compare(e: &StepExpect, seen: &Observed, host: &MemoryHost) -> Vec<String> {
    let mut failures = Vec::new();
    let got = &seen.evaluation;
    let want = |s: &str| Value::String(s.to_string());
    if let Some(decision) = &e.decision {
        check_eq(
            &mut failures,
            "decision",
            field(got, "decision"),
            &want(decision),
        );
    }
    if let Some(risk) = &e.risk {
        check_eq(&mut failures, "risk", field(got, "risk"), &want(risk));
    }
    if let Some(rules) = &e.rules {
        check_set(&mut failures, "rules", field(got, "rules"), rules);
    }
    if let Some(events) = &e.events {
        check_set(&mut failures, "events", field(got, "events"), events);
    }
    if let Some(changes) = &e.changes {
        check_changes(&mut failures, field(got, "changes"), changes);
    }
    check_error(&mut failures, field(got, "error"), e.error.as_ref());
    let mut same = |what: &str, got: String, want: String| {
        if got != want {
            failures.push(format!("{what}: expected {want}, got {got}"));
        }
    };
    if let Some(status) = e.status {
        same(
            "status",
            format!("{:?}", seen.status),
            format!("{:?}", Some(status)),
        );
    }
    if let Some(upstream) = e.upstream {
        same("upstream", seen.upstream.to_string(), upstream.to_string());
    }
    if let Some(ids) = &e.lookups {
        same("lookups", format!("{:?}", seen.lookups), format!("{ids:?}"));
    }
    for (name, value) in e.headers.iter().flatten() {
        let got = seen.headers.get(name).filter(|_| seen.upstream);
        same(
            &format!("headers.{name}"),
            format!("{got:?}"),
            format!("{:?}", value.as_ref()),
        );
    }
    for (name, value) in e.response_headers.iter().flatten() {
        let got = seen.response_headers.get(name);
        same(
            &format!("response_headers.{name}"),
            format!("{got:?}"),
            format!("{:?}", value.as_ref()),
        );
    }
    if let Some(n) = e.shipped {
        same(
            "shipped",
            seen.outputs.ship.len().to_string(),
            n.to_string(),
        );
    }
    if let Some(notified) = e.notified {
        same(
            "notified",
            seen.outputs.notify.is_some().to_string(),
            notified.to_string(),
        );
    }
    let counts = host.counts();
    for (name, n) in e.counts.iter().flatten() {
        let got = counts.get(name.as_str()).copied().unwrap_or(0);
        same(&format!("counts.{name}"), got.to_string(), n.to_string());
    }
    if let Some(want) = &e.properties_read {
        same(
            "properties_read",
            format!("{:?}", host.reads),
            format!("{want:?}"),
        );
    }
    if let Some(want) = &e.record {
        let record = seen.record.as_deref();
        let record: Value = record
            .and_then(|r| serde_json::from_str(r).ok())
            .unwrap_or(Value::Null);
        if !is_subset(want, &record) {
            failures.push(format!("record: expected {want} to be part of {record}"));
        }
    }
    failures
}
