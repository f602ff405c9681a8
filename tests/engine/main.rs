//! Integration tests of the pure engine (one binary): the shared case files, policy error
//! messages, the `eval` output contract, redaction, and never-panic properties.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod cases;
mod errors;
mod notify;
mod ocsf;
mod properties;
mod records;
