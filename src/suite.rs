//! Test-case files shared by cargo test and scimguard test. (in progress)
