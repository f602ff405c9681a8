//! `scimguard eval --policy POLICY [INPUT...]`: one JSON result per request, in order.
use std::path::PathBuf;

use scimguard::scim::HttpRequest;
use scimguard::{Engine, Facts};

#[derive(clap::Args)]
pub struct Args {
    /// The policy file (JSON).
    #[arg(long)]
    pub policy: PathBuf,
    /// Request files: one JSON request object, or JSON lines of requests. `-` (default) is stdin.
    pub inputs: Vec<PathBuf>,
}

pub fn run(a: &Args) -> u8 {
    let engine = match crate::read_input(&a.policy).map(|t| Engine::from_json(&t)) {
        Ok(Ok(e)) => e,
        Ok(Err(errors)) => {
            eprint!("{}: {errors}", a.policy.display());
            return 1;
        }
        Err(e) => {
            eprintln!("scimguard: {e}");
            return 2;
        }
    };
    let inputs = if a.inputs.is_empty() { vec![PathBuf::from("-")] } else { a.inputs.clone() };
    let mut code = 0;
    for input in &inputs {
        let text = match crate::read_input(input) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("scimguard: {e}");
                return 2;
            }
        };
        for (line_no, request) in requests(&text) {
            match request {
                Ok(r) => println!("{}", engine.evaluate_request(&r, &Facts::default()).to_json()),
                Err(e) => {
                    eprintln!("{}:{line_no}: not a request: {e}", input.display());
                    code = 1;
                }
            }
        }
    }
    code
}

/// One request object (possibly pretty-printed), or JSON lines.
fn requests(text: &str) -> Vec<(usize, Result<HttpRequest, serde_json::Error>)> {
    if let Ok(single) = serde_json::from_str::<HttpRequest>(text) {
        return vec![(1, Ok(single))];
    }
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, serde_json::from_str::<HttpRequest>(l)))
        .collect()
}
