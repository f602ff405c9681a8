//! The `scimguard` command line (in progress).
fn main() {}
