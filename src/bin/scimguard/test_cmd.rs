//! `scimguard test PATH`: runs a case file, or every `*.json` case file under a directory.
use std::path::{Path, PathBuf};

use scimguard::suite::{self, Summary};

#[derive(clap::Args)]
pub struct TestArgs {
    /// A case file or a directory of them (searched recursively for `*.cases.json` and `cases/*.json`).
    pub path: PathBuf,
    /// Print passing cases too.
    #[arg(long, short)]
    pub verbose: bool,
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

/// Case files: the path itself, or `*.cases.json` and `cases/**/*.json` under a directory, sorted.
pub fn case_files(path: &Path) -> Result<Vec<PathBuf>, String> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let top_is_cases = path
        .file_name()
        .is_some_and(|n| n == scimguard::suite::CASES_FOLDER);
    walk(path, top_is_cases, &mut out)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    out.sort();
    Ok(out)
}

fn walk(dir: &Path, in_cases: bool, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let p = entry?.path();
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if p.is_dir() {
            walk(&p, in_cases || name == scimguard::suite::CASES_FOLDER, out)?;
        } else if scimguard::suite::is_case_file(&name, in_cases) {
            out.push(p);
        }
    }
    Ok(())
}
