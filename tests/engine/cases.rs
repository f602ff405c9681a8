//! Runs every case file through `scimguard::suite`, the same runner `scimguard test` uses.

use std::path::{Path, PathBuf};

fn case_files(dir: &Path, in_cases: bool, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if p.is_dir() {
            case_files(&p, in_cases || name == scimguard::suite::CASES_FOLDER, out);
        } else if scimguard::suite::is_case_file(&name, in_cases) {
            out.push(p);
        }
    }
}

fn run_dir(dir: &str, top_is_cases: bool) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files = Vec::new();
    case_files(&root, top_is_cases, &mut files);
    assert!(!files.is_empty(), "no case files under {dir}");
    let mut failures = Vec::new();
    let mut total = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let base = file.parent().unwrap().to_path_buf();
        let results = scimguard::suite::run_file(&text, |p| {
            std::fs::read_to_string(base.join(p)).map_err(|e| e.to_string())
        })
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for r in results {
            total += 1;
            if !r.passed() {
                failures.push(format!(
                    "{}: {}\n    {}",
                    file.display(),
                    r.name,
                    r.failures.join("\n    ")
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
    total
}

#[test]
fn default_policy_cases() {
    assert!(run_dir("policies", false) >= 40);
}

#[test]
fn golden_cases() {
    assert!(run_dir("tests/cases", true) >= 80);
}
