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
mod notify;
mod ocsf;
mod properties;
mod records;
mod schema;

use scimguard::Engine;
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
