//! The shape of the crate, read from its sources (docs/design.md#architecture):
//! - `journal/` and `layout/` sit on `fs/` and never name each other;
//! - `fs/` names none of the modules above it, and `core/` names none of the effect layer;
//! - inside every folder, the files that name each other form no circle;
//! - no file under `src/` is longer than 400 lines.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, recursively.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The code of a file without its comments (line comments and doc comments), so that doc
/// links do not count as uses.
fn code(path: &Path) -> String {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first segment of every path that follows `prefix` in `code`: for
/// `use super::{a::X, b}` and `super::c::f()` with prefix `super::`, `a`, `b` and `c`.
fn names_after(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        rest = &rest[at + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut start = 0;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        names.insert(first_ident(&group[start..i]));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        names.insert(first_ident(&group[start..i]));
                        start = i + 1;
                    }
                    _ => {}
                }
            }
        } else {
            names.insert(first_ident(rest));
        }
    }
    names.remove("");
    names
}

fn first_ident(s: &str) -> String {
    s.trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// The module path of a file relative to `src/`: `journal/log.rs` is `["journal", "log"]`,
/// `fs/sim/mod.rs` is `["fs", "sim"]`, `lib.rs` is `[]`.
fn module_of(path: &Path) -> Vec<String> {
    let rel = path.strip_prefix(src()).unwrap();
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// Every module a file names: through `crate::` (absolute) and `super::` (resolved).
fn uses(path: &Path) -> BTreeSet<Vec<String>> {
    let code = code(path);
    let module = module_of(path);
    let mut out = BTreeSet::new();
    for name in names_after(&code, "crate::") {
        out.insert(vec![name.clone()]);
        // Two levels, so that sibling files inside a top-level folder are seen too.
        for second in names_after(&code, &format!("crate::{name}::")) {
            out.insert(vec![name.clone(), second]);
        }
    }
    if let Some(parent) = module.split_last().map(|(_, p)| p.to_vec()) {
        for name in names_after(&code, "super::") {
            let mut target = parent.clone();
            target.push(name);
            out.insert(target);
        }
    }
    out
}

#[test]
fn the_layers_name_only_what_lies_below_them() {
    let forbidden: [(&str, &[&str]); 4] = [
        (
            "journal",
            &["layout", "snapshotter", "service", "snapshots"],
        ),
        (
            "layout",
            &["journal", "snapshotter", "service", "snapshots"],
        ),
        (
            "fs",
            &["journal", "layout", "snapshotter", "service", "snapshots"],
        ),
        (
            "core",
            &["fs", "journal", "layout", "snapshotter", "service"],
        ),
    ];
    let mut wrong = Vec::new();
    for path in sources(&src()) {
        let module = module_of(&path);
        let Some(top) = module.first() else { continue };
        for (layer, above) in forbidden {
            if top != layer {
                continue;
            }
            for used in uses(&path) {
                if above.contains(&used[0].as_str()) {
                    wrong.push(format!(
                        "{} names crate::{}",
                        path.display(),
                        used.join("::")
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn no_folder_holds_a_circle() {
    // Edges between sibling modules: the folder, then module -> modules it names.
    let mut folders: BTreeMap<Vec<String>, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    let paths = sources(&src());
    let modules: BTreeSet<Vec<String>> = paths.iter().map(|p| module_of(p)).collect();
    for path in &paths {
        let module = module_of(path);
        let Some((name, folder)) = module.split_last() else {
            continue;
        };
        let edges = folders
            .entry(folder.to_vec())
            .or_default()
            .entry(name.clone())
            .or_default();
        for used in uses(path) {
            // The sibling that `used` lies in, if it lies in this folder.
            if used.len() > folder.len() && used[..folder.len()] == *folder {
                let sibling = &used[folder.len()];
                let mut as_module = folder.to_vec();
                as_module.push(sibling.clone());
                if sibling != name && modules.contains(&as_module) {
                    edges.insert(sibling.clone());
                }
            }
        }
    }
    let mut circles = Vec::new();
    for (folder, graph) in &folders {
        for start in graph.keys() {
            // Depth-first search for a way back to `start`.
            let mut stack: Vec<Vec<String>> = vec![vec![start.clone()]];
            let mut seen = BTreeSet::new();
            while let Some(way) = stack.pop() {
                let last = way.last().unwrap();
                for next in graph.get(last).into_iter().flatten() {
                    if next == start {
                        let mut circle = way.clone();
                        circle.push(start.clone());
                        circles.push(format!("{}: {}", folder.join("/"), circle.join(" -> ")));
                    } else if seen.insert(next.clone()) {
                        let mut longer = way.clone();
                        longer.push(next.clone());
                        stack.push(longer);
                    }
                }
            }
        }
    }
    assert!(circles.is_empty(), "{circles:#?}");
}

#[test]
fn no_source_file_exceeds_400_lines() {
    let long: Vec<String> = sources(&src())
        .into_iter()
        .filter_map(|path| {
            let lines = fs::read_to_string(&path).unwrap().lines().count();
            (lines > 400).then(|| format!("{}: {lines} lines", path.display()))
        })
        .collect();
    assert!(long.is_empty(), "{long:#?}");
}

/// The checks above would pass on an empty tree: they must see the files and the uses
/// they judge.
#[test]
fn the_graph_sees_the_crate() {
    let log = src().join("journal/log.rs");
    let used = uses(&log);
    assert!(
        used.contains(&vec!["journal".to_owned(), "group".to_owned()]),
        "{used:?}"
    );
    assert!(used.contains(&vec!["core".to_owned()]), "{used:?}");
    assert!(sources(&src()).len() > 40);
    let grouped = names_after("use super::{a::X, b, c::{d, e}};", "super::");
    assert_eq!(grouped, ["a", "b", "c"].map(String::from).into());
}
