//! Which files hold cases, and the walk that finds them under a directory: the one finder behind
//! `scimguard test DIR` and `cargo test`.
//!
//! Why the walk lives in the pure core, with the directory listing lent by the caller: the rule
//! (`*.cases.json` anywhere, every `*.json` under a `cases` folder), the recursion and the order
//! are logic, and two shells each walking by the same rule had already drifted once. The caller's
//! `list` is the only I/O, a few lines over `std::fs::read_dir` in each shell; the walk itself is
//! tested here on an in-memory tree. A shared non-core module would have put file-system code in
//! the library, which only `src/bin/` may hold.

use std::path::{Path, PathBuf};

/// The folder name under which every `*.json` is a case file.
pub const CASES_FOLDER: &str = "cases";

/// Which files hold cases: `*.cases.json` anywhere, and every `*.json` under a `cases` folder.
pub fn is_case_file(file_name: &str, under_cases_folder: bool) -> bool {
    file_name.ends_with(".cases.json") || (under_cases_folder && file_name.ends_with(".json"))
}

/// One entry of a directory listing, as the caller's file system reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirItem {
    pub path: PathBuf,
    pub is_dir: bool,
}

/// Every case file under the directory `root` (recursively), sorted. `root` itself counts as a
/// `cases` folder when it is named so. `list` lists one directory; its first error stops the walk.
pub fn case_files<E>(
    root: &Path,
    mut list: impl FnMut(&Path) -> Result<Vec<DirItem>, E>,
) -> Result<Vec<PathBuf>, E> {
    let mut found = Vec::new();
    let mut pending = vec![(root.to_path_buf(), is_cases_folder(root))];
    while let Some((dir, in_cases)) = pending.pop() {
        for entry in list(dir.as_path())? {
            if entry.is_dir {
                let in_cases = in_cases || is_cases_folder(&entry.path);
                pending.push((entry.path, in_cases));
            } else if entry
                .path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| is_case_file(n, in_cases))
            {
                found.push(entry.path);
            }
        }
    }
    found.sort();
    Ok(found)
}

fn is_cases_folder(dir: &Path) -> bool {
    dir.file_name().is_some_and(|n| n == CASES_FOLDER)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// An in-memory tree: every path with its parent; directories end with `/`.
    fn lister(tree: &'static [&'static str]) -> impl FnMut(&Path) -> Result<Vec<DirItem>, String> {
        move |dir: &Path| {
            Ok(tree
                .iter()
                .filter_map(|p| {
                    let is_dir = p.ends_with('/');
                    let path = PathBuf::from(p.trim_end_matches('/'));
                    (path.parent() == Some(dir)).then_some(DirItem { path, is_dir })
                })
                .collect())
        }
    }

    const TREE: &[&str] = &[
        "r/policies/",
        "r/policies/default.json",
        "r/policies/default.cases.json",
        "r/tests/",
        "r/tests/cases/",
        "r/tests/cases/okta.json",
        "r/tests/cases/README.md",
        "r/tests/cases/more/",
        "r/tests/cases/more/deep.json",
        "r/tests/other.json",
    ];

    #[test]
    fn the_rule_applies_at_every_depth_and_the_result_is_sorted() {
        let all = case_files(Path::new("r"), lister(TREE)).unwrap();
        assert_eq!(
            all,
            [
                "r/policies/default.cases.json",
                "r/tests/cases/more/deep.json",
                "r/tests/cases/okta.json",
            ]
            .map(PathBuf::from)
        );
    }

    #[test]
    fn a_root_named_cases_is_a_cases_folder() {
        let under = case_files(Path::new("r/tests/cases"), lister(TREE)).unwrap();
        assert_eq!(under.len(), 2);
        let policies = case_files(Path::new("r/policies"), lister(TREE)).unwrap();
        assert_eq!(policies, [PathBuf::from("r/policies/default.cases.json")]);
    }

    #[test]
    fn a_listing_error_stops_the_walk() {
        let failing = |_: &Path| -> Result<Vec<DirItem>, String> { Err("denied".into()) };
        assert_eq!(case_files(Path::new("r"), failing).unwrap_err(), "denied");
    }
}
