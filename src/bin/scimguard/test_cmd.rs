//! `scimguard test PATH`: runs a case file, or every case file under a directory (`--list` names
//! them); which files those are is `suite::case_files`' rule.
use std::path::{Path, PathBuf};

use scimguard::suite::{self, Summary};

#[derive(clap::Args)]
pub struct TestArgs {
    /// A case file or a directory of them (searched recursively for `*.cases.json` and `cases/*.json`).
    pub path: PathBuf,
    /// Print passing cases too.
    #[arg(long, short)]
    pub verbose: bool,
    /// Print the case files PATH holds, one a line, and run nothing.
    #[arg(long)]
    pub list: bool,
}

pub fn run(a: &TestArgs) -> u8 {
    let files = match case_files(&a.path) {
        Ok(f) if !f.is_empty() => f,
        Ok(_) => {
            eprintln!("scimguard: no case files under `{}`", a.path.display());
            return 2;
        }
        Err(e) => {
            eprintln!("scimguard: {e}");
            return 2;
        }
    };
    if a.list {
        for file in &files {
            println!("{}", file.display());
        }
        return 0;
    }
    let mut sum = Summary::default();
    for file in &files {
        let shown = file.display().to_string();
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                sum.broken.insert(shown, e.to_string());
                continue;
            }
        };
        let dir = file.parent().unwrap_or(Path::new("."));
        let load = |p: &str| {
            std::fs::read_to_string(dir.join(p))
                .map_err(|e| format!("cannot read policy `{p}`: {e}"))
        };
        match suite::run_file(&text, load) {
            Ok(results) => {
                for r in results {
                    if r.passed() {
                        sum.passed += 1;
                        if a.verbose {
                            println!("ok    {shown}: {}", r.name);
                        }
                    } else {
                        sum.failed += 1;
                        println!("FAIL  {shown}: {}", r.name);
                        for f in &r.failures {
                            println!("        {f}");
                        }
                    }
                }
            }
            Err(e) => {
                sum.broken.insert(shown, e);
            }
        }
    }
    for (file, why) in &sum.broken {
        println!("ERROR {file}: {why}");
    }
    println!(
        "{} passed, {} failed",
        sum.passed,
        sum.failed + sum.broken.len()
    );
    u8::from(sum.failed > 0 || !sum.broken.is_empty())
}

/// Case files: the path itself, or those under a directory by `suite::case_files`' rule.
pub fn case_files(path: &Path) -> Result<Vec<PathBuf>, String> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    suite::case_files(path, list_dir).map_err(|e| format!("cannot read `{}`: {e}", path.display()))
}

/// One directory's entries, for `suite::case_files` (the walk is the core's; listing is I/O).
fn list_dir(dir: &Path) -> std::io::Result<Vec<suite::DirItem>> {
    std::fs::read_dir(dir)?
        .map(|e| {
            let path = e?.path();
            Ok(suite::DirItem {
                is_dir: path.is_dir(),
                path,
            })
        })
        .collect()
}
