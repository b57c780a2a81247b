//! The host's module map holds: dependencies flow one way (`cli` →
//! `trainer` → `callbacks` → `sandbox`, with `args`, `state`, `event`,
//! `view`, `pyjson` and `ui` as leaf data), and no two modules, nor two
//! files of one module, import each other in a circle. Read from the
//! sources, so a new `use` that breaks the map fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path (`sandbox/plugin`) -> the modules its code (not its tests) names.
fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    collect(&src, &mut files);
    let module_of = |file: &Path| -> Vec<String> {
        let rel = file.strip_prefix(&src).unwrap().with_extension("");
        let mut parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if parts.last().is_some_and(|p| p == "mod") {
            parts.pop();
        }
        parts
    };
    let exists = |parts: &[String]| {
        let p = src.join(parts.join("/"));
        p.with_extension("rs").is_file() || p.join("mod.rs").is_file()
    };
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let parts = module_of(file);
        if parts == ["lib"] || parts == ["main"] {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        let me = parts.join("/");
        let deps = graph.entry(me.clone()).or_default();
        for path in paths_after(code, "crate::") {
            if path[0] != parts[0] {
                deps.insert(path[0].clone());
            }
        }
        // `super::x` and `super::super::x` name a sibling (or an uncle).
        for path in paths_after(code, "super::") {
            let ups = path.iter().take_while(|p| *p == "super").count();
            if parts.len() < ups || path.len() <= ups {
                continue;
            }
            let mut target: Vec<String> = parts[..parts.len() - ups].to_vec();
            target.push(path[ups].clone());
            if exists(&target) && target != parts {
                deps.insert(target.join("/"));
            }
        }
    }
    graph
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The `a::b::c` segments after each occurrence of `prefix`.
fn paths_after(code: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().last();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let segments: Vec<String> = rest
            .split("::")
            .map(|s| {
                s.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect::<String>()
            })
            .take_while(|s| !s.is_empty())
            .collect();
        let mut path = vec![prefix.trim_end_matches(':').to_string()];
        path.retain(|p| p == "super");
        path.extend(segments);
        if !path.is_empty() {
            found.push(path);
        }
    }
    found
}

/// A circle in the graph, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == node) {
            let mut cycle = path[i..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_two_modules_import_each_other_in_a_circle() {
    let graph = import_graph();
    assert!(
        graph.contains_key("sandbox/plugin"),
        "the graph reads the sources"
    );
    assert!(
        graph["sandbox/store"].contains("sandbox/grants"),
        "sibling imports are seen: {:?}",
        graph["sandbox/store"]
    );
    assert_eq!(find_cycle(&graph), None, "import circle");
}

#[test]
fn dependencies_flow_from_the_cli_down_to_the_sandbox_and_leaf_data() {
    let graph = import_graph();
    let top = |m: &str| graph.get(m).cloned().unwrap_or_default();
    let leaves = ["args", "state", "event", "view", "pyjson", "ui", "suggest"];
    for leaf in leaves {
        for dep in top(leaf) {
            assert!(
                leaves.contains(&dep.as_str()),
                "leaf module {leaf} imports {dep}"
            );
        }
    }
    let forbidden = [
        (
            "sandbox",
            ["callbacks", "trainer", "flow", "cli", "tasks"].as_slice(),
        ),
        ("callbacks", ["trainer", "flow", "cli", "tasks"].as_slice()),
        ("trainer", ["sandbox", "cli", "tasks"].as_slice()),
        ("flow", ["trainer", "sandbox", "cli"].as_slice()),
        ("tasks", ["sandbox", "callbacks", "cli"].as_slice()),
    ];
    for (module, not) in forbidden {
        for dep in top(module) {
            assert!(!not.contains(&dep.as_str()), "{module} imports {dep}");
        }
    }
}
