//! Test cases as data: the file format, its loader and the runner shared by `cargo test`,
//! `scimguard test` and the playground.
//!
//! A case file is `{"description"?, "policy": "<path relative to this file>", "defaults"?, "cases":
//! [case…]}`; a case is `{"name", "request": <request>, "facts"?: {"actor", "group_names"}, "expect":
//! {…}}`. `expect` holds `decision` (required), and optionally `risk`, `rules` (exact, any order),
//! `events` (the exact set of event kinds), `changes` (one object per change, each a subset of the
//! actual change) and `error` (`status`, `scimType`, `detail_contains`; without it the request must
//! parse).
//!
//! **Defaults.** `"defaults": {"request"?: {"method"?, "path"?, "headers"?}, "facts"?: {…}}` is
//! merged into every case before it is read: the `method`, `path`, each header and each fact a
//! case gives win over the default's (a case's `group_names` replaces the default map whole),
//! header names match case-insensitively (the case's spelling is kept), and a case's `null`
//! removes a default (`"headers": {"content-type": null}` sends no content type). The body is
//! never defaulted: it is what a case is about.
//!
//! **Generated values.** Inside a request `body`, `{"$repeat": N, "item": <template>}` stands for
//! a list of N copies of the template, where `{i}` inside any string of the template becomes the
//! copy's index (0, 1, …; the innermost `$repeat`'s when they nest). A body may expand to about
//! [`MAX_EXPANDED_BYTES`] of memory (16 MiB) and no more, so a file cannot ask for unbounded memory.
//!
//! **Sequences.** `"sequences": [{"name", "env"?, "steps": [step…]}]`, beside or instead of
//! `cases`, are stateful cases: each step a request through the whole request lifecycle
//! (`engine::Session`) against one in-memory host shared by the steps (see `sequence`; defaults
//! and generators do not apply to them).
//!
//! Loading ([`load`]) is separate from running ([`run`]): a front-end that only needs the
//! requests (engine comparisons, the playground) reads them with [`requests`]. Nothing here reads
//! a file: callers pass text, a policy loader and, to find case files, a directory lister.

mod check;
mod expand;
mod find;
mod load;
mod sequence;

use std::collections::BTreeMap;

use crate::engine::{Engine, Facts};
use crate::scim::HttpRequest;

pub use expand::MAX_EXPANDED_BYTES;
pub use find::{case_files, is_case_file, DirItem, CASES_FOLDER};
pub use load::load;

/// A loaded case file: the policy path it names, and its cases with defaults merged and
/// generated values expanded.
#[derive(Debug, Clone)]
pub struct Suite {
    /// The policy path as written, relative to the case file.
    pub policy: String,
    pub cases: Vec<Case>,
    /// Stateful cases: requests one after another against one in-memory host (`sequence`).
    pub sequences: Vec<sequence::Sequence>,
}

/// One case: a request with the host facts it is judged with, and what must come out.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub request: HttpRequest,
    pub facts: Facts,
    pub expect: Expect,
}

/// What a case expects of the engine's answer (see the module doc for each field).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    decision: String,
    #[serde(default)]
    risk: Option<String>,
    #[serde(default)]
    rules: Option<Vec<String>>,
    #[serde(default)]
    events: Option<Vec<String>>,
    #[serde(default)]
    changes: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    error: Option<ExpectError>,
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectError {
    status: u16,
    #[serde(default, rename = "scimType")]
    scim_type: Option<String>,
    #[serde(default)]
    detail_contains: Option<String>,
}

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
    let suite = load(text)?;
    let policy_text = load_policy(&suite.policy)?;
    let engine =
        Engine::from_json(&policy_text).map_err(|e| format!("policy `{}`: {e}", suite.policy))?;
    Ok(run(&engine, &suite))
}

/// Runs every case of a loaded file under `engine`.
pub fn run(engine: &Engine, suite: &Suite) -> Vec<CaseResult> {
    let cases = suite.cases.iter().map(|c| check::run_case(engine, c));
    let sequences = suite
        .sequences
        .iter()
        .flat_map(|s| sequence::run(engine, s));
    cases.chain(sequences).collect()
}

/// The requests of a case file with their case names, for front-ends that compare engines.
pub fn requests(text: &str) -> Result<(String, NamedRequests), String> {
    let suite = load(text)?;
    let named = suite
        .cases
        .into_iter()
        .map(|c| (c.name, c.request, c.facts))
        .collect();
    Ok((suite.policy, named))
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
