//! `scimguard eval --policy POLICY [--format json|ocsf] [--detail] [INPUT...]`: one JSON result per request,
//! in order; with `--format ocsf`, the request's OCSF 1.8.0 events, one per line.
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use scimguard::audit::{Completion, RequestFacts};
use scimguard::scim::HttpRequest;
use scimguard::{Engine, Evaluation, Facts};

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EvalFormat {
    /// The evaluation (decision, risk, rules, events, changes, error).
    Json,
    /// OCSF 1.8.0 events, one JSON object per line (several per request; none for a read).
    Ocsf,
}

#[derive(clap::Args)]
pub struct EvalArgs {
    /// The policy file (JSON).
    #[arg(long)]
    pub policy: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "json")]
    pub format: EvalFormat,
    /// With `--format json`: also print `event_details`, each event with its resource, members,
    /// values and scope (the differential oracle, tests/differential/, compares these).
    #[arg(long)]
    pub detail: bool,
    /// Event time for `--format ocsf`, epoch milliseconds (default: now).
    #[arg(long)]
    pub time_ms: Option<u64>,
    /// Request files: one JSON request object, or JSON lines of requests. `-` (default) is stdin.
    pub inputs: Vec<PathBuf>,
}

pub fn run(a: &EvalArgs) -> u8 {
    let engine = match crate::read_input(&a.policy).map(|t| Engine::from_json(&t)) {
        Ok(Ok(e)) => e,
        Ok(Err(errors)) => {
            eprint!("{}: {errors}", a.policy.display());
            return 1;
        }
        Err(e) => {
            eprintln!("scimguard: {e}");
            return 2;
        }
    };
    let inputs = if a.inputs.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        a.inputs.clone()
    };
    let mut code = 0;
    let mut n = 0;
    for input in &inputs {
        let text = match crate::read_input(input) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("scimguard: {e}");
                return 2;
            }
        };
        for (line_no, request) in requests(&text) {
            match request {
                Ok(r) => {
                    n += 1;
                    let e = engine.evaluate_request(&r, &Facts::default());
                    match a.format {
                        EvalFormat::Json if a.detail => println!("{}", detailed(&e)),
                        EvalFormat::Json => println!("{}", e.to_json()),
                        EvalFormat::Ocsf => ocsf(&e, &r, n, a.time_ms),
                    }
                }
                Err(e) => {
                    eprintln!("{}:{line_no}: not a request: {e}", input.display());
                    code = 1;
                }
            }
        }
    }
    code
}

/// The evaluation's JSON with `event_details`: every event in full, not only its kind.
fn detailed(e: &Evaluation) -> serde_json::Value {
    let mut json = e.to_json();
    let events: Vec<&scimguard::scim::Event> = e.events().collect();
    if let Some(object) = json.as_object_mut() {
        object.insert(
            "event_details".to_string(),
            serde_json::to_value(events).unwrap_or_default(),
        );
    }
    json
}

/// Prints the OCSF events of one request as the filter would emit them after the reply (no upstream
/// here: the status is the block reply's, else unknown). Audit ids are `eval-<n>`.
fn ocsf(e: &Evaluation, r: &HttpRequest, n: usize, time_ms: Option<u64>) {
    let now = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0))
    };
    let facts = RequestFacts {
        time_ms: time_ms.unwrap_or_else(now),
        ..RequestFacts::from_headers(format!("eval-{n}"), &r.method, &r.path, &r.headers())
    };
    // Each event as the filter ships it: at most `audit.max_record_bytes` long.
    let ctx = scimguard::audit::ocsf::OcsfContext::default();
    for line in e.ocsf_lines(&facts, &Completion::default(), &ctx) {
        println!("{}", line.text);
    }
}

/// One request object (possibly pretty-printed), or JSON lines.
fn requests(text: &str) -> Vec<(usize, Result<HttpRequest, serde_json::Error>)> {
    if let Ok(single) = serde_json::from_str::<HttpRequest>(text) {
        return vec![(1, Ok(single))];
    }
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, serde_json::from_str::<HttpRequest>(l)))
        .collect()
}
