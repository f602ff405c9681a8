//! The `scimguard` command line: the only place that reads files, standard input, the environment
//! and the clock, prints, and chooses exit codes. Every command calls the library; none judges.
//!
//! Exit codes: 0 success; 1 the input was judged and failed (invalid policy, a failing test case,
//! a malformed request in `eval`); 2 usage or I/O error.

mod eval_cmd;
mod report;
mod test_cmd;
mod validate_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "scimguard",
    version,
    about = "Judge SCIM 2.0 writes against declarative high-risk rules"
)]
#[command(
    after_help = "Exit codes: 0 success, 1 invalid policy / failing case / malformed input, 2 usage or I/O error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a policy file; print every error with its rule, JSON pointer and line.
    Validate(validate_cmd::ValidateArgs),
    /// Evaluate requests (one JSON object, or JSON lines) and print one result per line.
    Eval(eval_cmd::EvalArgs),
    /// Run test-case files (a file, or every *.json under a directory).
    Test(test_cmd::TestArgs),
    /// Build an access review from audit logs (JSON lines, plain or .gz).
    Report(report::ReportArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Validate(a) => validate_cmd::run(&a),
        Command::Eval(a) => eval_cmd::run(&a),
        Command::Test(a) => test_cmd::run(&a),
        Command::Report(a) => report::run(&a),
    };
    ExitCode::from(code)
}

/// Reads a file, or standard input for `-`.
pub fn read_input(path: &std::path::Path) -> Result<String, String> {
    use std::io::Read;
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| format!("cannot read standard input: {e}"))?;
        return Ok(s);
    }
    std::fs::read_to_string(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))
}
