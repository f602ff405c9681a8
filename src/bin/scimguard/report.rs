//! `scimguard report` (being built).
#[derive(clap::Args)]
pub struct Args {}
pub fn run(_a: &Args) -> u8 {
    eprintln!("scimguard report: not built yet");
    2
}
