//! The rules of `docs/architecture.md`, checked on the source: the import
//! graph of the crate's modules has no circle, the transport never reaches
//! up into the hub or the sign-in flow, and no module but the hub (and the
//! binary) imports the hub.
//!
//! The graph is read from `crate::…` paths in `src/` (comments left out):
//! a node is a top-level module, or `transport/<part>` inside the
//! transport.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The node a source file belongs to (`None` for `lib.rs` and `main.rs`).
fn node_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let parts: Vec<&str> = parts
        .iter()
        .map(String::as_str)
        .filter(|p| *p != "mod")
        .collect();
    match parts.as_slice() {
        ["lib"] | ["main"] => None,
        ["transport", part, ..] => Some(format!("transport/{part}")),
        [top, ..] => Some(top.to_string()),
        [] => None,
    }
}

fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The nodes named by the `crate::` paths of `text`.
fn imports(text: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = BTreeSet::new();
    let mut add = |first: &str, rest: &str| {
        if first == "transport" {
            let rest = rest.strip_prefix("::").unwrap_or("");
            let second = ident(rest);
            if !second.is_empty() && second.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                found.insert(format!("transport/{second}"));
                return;
            }
        }
        found.insert(first.to_string());
    };
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(inner) = rest.strip_prefix('{') {
            // `crate::{a, b::{c, d}, e}`: the first name of each item.
            let mut depth = 0;
            let mut item_start = true;
            let mut end = inner.len();
            for (j, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        end = j;
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && (c.is_ascii_alphabetic() || c == '_') => {
                        let name = ident(&inner[j..]);
                        add(name, &inner[j + name.len()..]);
                        item_start = false;
                    }
                    _ => {}
                }
            }
            rest = &inner[end..];
        } else {
            let name = ident(rest);
            add(name, &rest[name.len()..]);
        }
    }
    found
}

fn graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph = Graph::new();
    for file in files {
        let Some(node) = node_of(&src, &file) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        let deps = graph.entry(node.clone()).or_default();
        for dep in imports(&text) {
            if dep != node {
                deps.insert(dep);
            }
        }
    }
    graph
}

/// A circle through `start`, if there is one.
fn circle(graph: &Graph, start: &str) -> Option<Vec<String>> {
    fn walk(
        graph: &Graph,
        at: &str,
        start: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in graph.get(at).into_iter().flatten() {
            if next == start {
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(graph, next, start, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_string()];
    let mut seen = BTreeSet::new();
    walk(graph, start, start, &mut path, &mut seen).then_some(path)
}

#[test]
fn the_reader_sees_nested_and_single_imports() {
    let found = imports(
        "use crate::body::{self, Body};\nuse crate::{demo, login::{a, b}, path};\n// crate::hidden\nlet x = crate::transport::upstream::Fault::Timeout; crate::transport::Upstream::new(true);",
    );
    let want: BTreeSet<String> = [
        "body",
        "demo",
        "login",
        "path",
        "transport/upstream",
        "transport",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(found, want);
}

#[test]
fn the_module_graph_has_no_circle() {
    let graph = graph();
    assert!(graph.contains_key("app") && graph.contains_key("transport/downstream"));
    let circles: Vec<Vec<String>> = graph.keys().filter_map(|n| circle(&graph, n)).collect();
    assert!(
        circles.is_empty(),
        "import circles (each from a module back to itself): {circles:?}"
    );
}

#[test]
fn the_transport_never_reaches_the_hub_or_the_flow() {
    let graph = graph();
    let above = [
        "app",
        "state",
        "signin",
        "login",
        "authorize",
        "session",
        "store",
        "mail",
        "pages",
    ];
    for (node, deps) in &graph {
        if node.starts_with("transport") {
            let bad: Vec<&String> = deps
                .iter()
                .filter(|d| above.contains(&d.as_str()))
                .collect();
            assert!(bad.is_empty(), "{node} imports {bad:?}");
        }
    }
}

#[test]
fn only_the_binary_imports_the_hub() {
    let graph = graph();
    let importers: Vec<&String> = graph
        .iter()
        .filter(|(_, deps)| deps.contains("app"))
        .map(|(node, _)| node)
        .collect();
    assert!(importers.is_empty(), "{importers:?} import the hub");
}
