//! Each type name is defined once across `src/` (issue 13, point 5): two `Context`s or two
//! `Endpoint`s make a reader check the imports to know which one a line means.
//!
//! A definition is a `struct`, `enum`, `trait` or `union` item at any depth, or a `type` alias at
//! the top level of a file (an indented `type X = …;` is usually an associated type of an impl).
//! The scan reads the source text; it needs no parser because rustfmt puts every item on its own line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[test]
fn each_type_name_is_defined_once_in_src() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let defined = definitions_under(&root.join("src"), root);
    // The scan sees the crate's types at all (else it would pass on nothing).
    assert!(defined.contains_key("Engine"), "scan found no `Engine`");
    assert!(
        defined.len() > 100,
        "scan found only {} names",
        defined.len()
    );
    let twice: Vec<String> = defined
        .iter()
        .filter(|(_, at)| at.len() > 1)
        .map(|(name, at)| format!("`{name}`: {}", at.join(", ")))
        .collect();
    assert!(
        twice.is_empty(),
        "type names defined more than once in src/ (rename one so each explains itself):\n  {}",
        twice.join("\n  ")
    );
}

#[test]
fn the_scan_finds_items_and_skips_associated_types_and_comments() {
    let text = "pub struct A {\n}\nenum B { X }\n    pub(crate) struct C;\ntrait D {}\n\
                pub type E = u8;\nimpl Iterator for A {\n    type Item = u8;\n}\n// struct F\n\
                pub(super) union G { a: u8 }\nstruct A;\n";
    let names: Vec<&str> = names_in(text).map(|(_, n)| n).collect();
    assert_eq!(names, ["A", "B", "C", "D", "E", "G", "A"]);
}

/// Type name → `file:line` of each definition, for every `.rs` file under `dir`.
fn definitions_under(dir: &Path, root: &Path) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in rust_files(dir) {
        let text = std::fs::read_to_string(&file).unwrap();
        let shown = file
            .strip_prefix(root)
            .unwrap_or(&file)
            .display()
            .to_string();
        for (line, name) in names_in(&text) {
            out.entry(name.to_string())
                .or_default()
                .push(format!("{shown}:{line}"));
        }
    }
    out
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// (1-based line, name) of each type defined in `text`.
fn names_in(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().filter_map(|(i, line)| {
        let top_level = !line.starts_with([' ', '\t']);
        let rest = line.trim_start();
        let rest = match rest.strip_prefix("pub") {
            Some(r) if r.starts_with('(') => r.split_once(") ").map_or("", |(_, r)| r),
            Some(r) => r.strip_prefix(' ').unwrap_or(""),
            None => rest,
        };
        let (keyword, after) = rest.split_once(' ')?;
        let item = matches!(keyword, "struct" | "enum" | "trait" | "union");
        let alias = keyword == "type" && top_level;
        if !(item || alias) {
            return None;
        }
        let end = after
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let name = &after[..end];
        name.starts_with(|c: char| c.is_ascii_uppercase())
            .then_some((i + 1, name))
    })
}
