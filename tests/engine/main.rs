//! Integration tests of the pure engine (one binary): the shared case files, policy error
//! messages, the `eval` output contract, redaction, and never-panic properties.

mod cases;
mod errors;
mod properties;
mod records;
