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
mod layout;
mod members;
mod names;
mod notify;
mod ocsf;
mod properties;
mod records;
mod roundtrip;
mod schema;
mod session;

use std::path::{Path, PathBuf};

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

/// The case files under `dir` (relative to the crate), found as `scimguard test` finds them.
pub fn case_files(dir: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let list = |d: &Path| -> std::io::Result<Vec<scimguard::suite::DirItem>> {
        std::fs::read_dir(d)?
            .map(|e| {
                let path = e?.path();
                Ok(scimguard::suite::DirItem {
                    is_dir: path.is_dir(),
                    path,
                })
            })
            .collect()
    };
    let files = scimguard::suite::case_files(&root, list).unwrap();
    assert!(!files.is_empty(), "no case files under {dir}");
    files
}

/// Every request of the shared case files (tests/cases, policies/default.cases.json), named
/// `file: case`, for the properties that must hold on all of them.
pub fn shared_requests() -> Vec<(String, HttpRequest, Facts)> {
    let mut files = case_files("tests/cases");
    files.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/default.cases.json"));
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
