//! Runs every case file through `scimguard::suite`, the same runner `scimguard test` uses.

fn run_dir(dir: &str) -> usize {
    let mut failures = Vec::new();
    let mut total = 0;
    for file in crate::case_files(dir) {
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
    assert!(run_dir("policies") >= 40);
}

#[test]
fn golden_cases() {
    assert!(run_dir("tests/cases") >= 80);
}
