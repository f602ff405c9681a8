//! scimguard: edge enforcement for SCIM 2.0 provisioning.
//!
//! What it does: turns an HTTP view of a SCIM write (POST, PUT, PATCH, DELETE, Bulk) into an exact,
//! ordered list of attribute changes and lifecycle events (`scim`), judges them against declarative
//! high-risk rules (`policy`), and builds redacted audit records (`audit`). `engine` is the one façade
//! every front-end calls.
//!
//! What it does NOT do: no I/O, no clock, no environment. The pure core never names `proxy_wasm` or
//! `wasm_bindgen`; time, limits and configuration bytes come in as parameters. The shells translate:
//! `filter` (proxy-wasm, feature `filter`), `web` (wasm-bindgen, feature `web`), and the CLI in
//! `src/bin/` (feature `cli`).
//!
//! Dependency rule: `scim` ← `policy` ← `audit` ← `engine` ← shells.

pub mod audit;
pub mod engine;
pub mod policy;
pub mod report;
pub mod scim;
pub mod suite;

#[cfg(feature = "filter")]
pub mod filter;

#[cfg(feature = "web")]
pub mod web;

pub use engine::{Engine, Evaluation, Facts};
