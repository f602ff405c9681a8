//! `scimguard test PATH` (being built).
use std::path::PathBuf;
#[derive(clap::Args)]
pub struct Args {
    /// A case file or a directory of them.
    pub path: PathBuf,
}
pub fn run(_a: &Args) -> u8 {
    2
}
