//! The shell stays a shell: `src/filter` imports nothing of the crate but the engine, its files do
//! not import each other in a cycle, and it stays small (issue 13). Read from the source, so a
//! change that breaks the layout fails `cargo test` before any review.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// `src/filter/<name>.rs` → its text.
fn filter_files() -> BTreeMap<String, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/filter");
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().to_string();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

/// The `use` items of a file, joined across lines (`use a::{\n b,\n c};` is one item).
fn uses(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(c) = current.as_mut() {
            c.push_str(line);
        } else if line.starts_with("use ") {
            current = Some(line.to_string());
        }
        if current.as_ref().is_some_and(|c| c.ends_with(';')) {
            out.push(current.take().unwrap());
        }
    }
    out
}

#[test]
fn the_filter_imports_only_the_engine_from_the_crate() {
    for (name, text) in filter_files() {
        for u in uses(&text) {
            if let Some(rest) = u.strip_prefix("use crate::") {
                assert!(
                    rest.starts_with("engine"),
                    "src/filter/{name}.rs imports `{u}`: the filter talks to the engine only"
                );
            }
        }
    }
}

#[test]
fn the_filter_files_import_each_other_without_a_cycle() {
    let files = filter_files();
    let edges: BTreeMap<String, BTreeSet<String>> = files
        .iter()
        .map(|(name, text)| {
            let targets = uses(text)
                .iter()
                .filter_map(|u| u.strip_prefix("use super::"))
                .filter_map(|rest| rest.split([':', ';', '{']).next())
                .map(str::to_string)
                .filter(|t| files.contains_key(t))
                .collect();
            (name.clone(), targets)
        })
        .collect();
    // Depth-first search for a back edge.
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if done.contains(n) {
            return;
        }
        if let Some(i) = path.iter().position(|p| p == n) {
            panic!(
                "import cycle in src/filter: {} -> {n}",
                path[i..].join(" -> ")
            );
        }
        path.push(n.to_string());
        for t in edges.get(n).into_iter().flatten() {
            visit(t, edges, path, done);
        }
        path.pop();
        done.insert(n.to_string());
    }
    let mut done = BTreeSet::new();
    for n in edges.keys() {
        visit(n, &edges, &mut Vec::new(), &mut done);
    }
    assert!(edges.len() >= 5, "src/filter has {} files", edges.len());
}

#[test]
fn the_filter_stays_well_under_a_thousand_lines() {
    let lines: usize = filter_files().values().map(|t| t.lines().count()).sum();
    assert!(
        lines < 1000,
        "src/filter is {lines} lines: logic has leaked into the shell"
    );
}
