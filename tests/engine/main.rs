//! Integration tests of the pure engine (one binary): the shared case files, policy error
//! messages, the `eval` output contract, redaction, and never-panic properties.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod bound;
mod cases;
mod compact;
mod errors;
mod members;
mod names;
mod notify;
mod ocsf;
mod properties;
mod records;
mod roundtrip;
mod schema;

use scimguard::scim::HttpRequest;
use scimguard::{Engine, Facts};
use serde_json::Value;

/// The shipped default policy as JSON, for tests that adjust it.
pub fn default_policy() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/policies/default.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The default policy, compiled after `edit` changed its JSON.
pub fn default_engine_with(edit: impl FnOnce(&mut Value)) -> Engine {
    let mut policy = default_policy();
    edit(&mut policy);
    Engine::from_json(&policy.to_string()).unwrap()
}

/// The default policy, compiled.
pub fn default_engine() -> Engine {
    default_engine_with(|_| {})
}

/// Every request of the shared case files (tests/cases, policies/default.cases.json), named
/// `file: case`, for the properties that must hold on all of them.
pub fn shared_requests() -> Vec<(String, HttpRequest, Facts)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(root.join("tests/cases"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.push(root.join("policies/default.cases.json"));
    let mut out = Vec::new();
    for f in files {
        let (_, reqs) = scimguard::suite::requests(&std::fs::read_to_string(&f).unwrap()).unwrap();
        let stem = f.file_name().unwrap().to_string_lossy().to_string();
        out.extend(
            reqs.into_iter()
                .map(|(name, r, facts)| (format!("{stem}: {name}"), r, facts)),
        );
    }
    assert!(
        out.len() > 100,
        "expected the shared cases, got {}",
        out.len()
    );
    out
}
