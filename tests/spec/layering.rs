//! The host's module map holds: dependencies flow one way (`cli` →
//! `session` → `trainer` → `callbacks` → `sandbox`, with `args`, `state`, `event`,
//! `view`, `pyjson`, `report` and `ui` as leaf data), and no two modules, nor two
//! files of one module, import each other in a circle. The sandbox and the
//! leaf data it speaks in are their own crate, `crates/sandbox`
//! (`trainbox-sandbox`), without libtorch, so that the Python host links the
//! same code: its map is checked the same way, and it names no tensor and
//! depends on no libtorch crate. Read from the sources, so a new `use` that
//! breaks the map fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The sandbox crate's sources.
fn sandbox_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/sandbox/src")
}

/// The sandbox crate's top-level modules, which the host re-exports under
/// their own names (`crate::sandbox`, `crate::state`, …).
fn sandbox_modules() -> BTreeSet<String> {
    import_graph(&sandbox_src(), &BTreeSet::new())
        .keys()
        .map(|m| m.split('/').next().unwrap().to_string())
        .collect()
}

/// The host's graph: its own files, and the sandbox crate's modules as the
/// host names them (`crate::sandbox::…` or `trainbox_sandbox::sandbox::…`).
fn host_graph() -> BTreeMap<String, BTreeSet<String>> {
    import_graph(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &sandbox_modules(),
    )
}

/// Module path (`sandbox/plugin`) -> the modules its code (not its tests)
/// names, read from the sources under `src`; `external` are more module
/// names the code may reach through `crate::` (re-exported from the sandbox
/// crate), where `trainbox_sandbox::` is read as `crate::`.
fn import_graph(src: &Path, external: &BTreeSet<String>) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    collect(src, &mut files);
    let sources: Vec<(Vec<String>, String)> = files
        .iter()
        .map(|file| {
            let rel = file.strip_prefix(src).unwrap().with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|p| p == "mod") {
                parts.pop();
            }
            let text = std::fs::read_to_string(file).unwrap();
            (parts, text.replace("trainbox_sandbox::", "crate::"))
        })
        .filter(|(parts, _)| parts != &["lib"] && parts != &["main"])
        .collect();
    let mut modules: BTreeSet<String> = sources.iter().map(|(p, _)| p.join("/")).collect();
    modules.extend(external.iter().cloned());
    sources
        .iter()
        .map(|(parts, text)| (parts.join("/"), module_imports(parts, text, &modules)))
        .collect()
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

/// The modules (of `modules`) that the code of the file `parts` names
/// through `crate::…` or `super::…` paths, grouped imports included; a path
/// into the file's own parent (`super::Trainer`) is not an edge.
fn module_imports(parts: &[String], text: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let code = text.split("#[cfg(test)]").next().unwrap();
    let me = parts.join("/");
    let mut deps = BTreeSet::new();
    for (start, inline_depth) in path_starts(code) {
        for path in expand(&code[start..]) {
            let (mut base, rest): (Vec<String>, &[String]) = if path[0] == "crate" {
                (Vec::new(), &path[1..])
            } else {
                let supers = path.iter().take_while(|p| *p == "super").count();
                // Inside an inline `mod x { … }`, the first `super` is the file.
                let ups = supers.saturating_sub(inline_depth);
                if ups > parts.len() {
                    continue;
                }
                (parts[..parts.len() - ups].to_vec(), &path[supers..])
            };
            // The deepest module the path reaches.
            let mut target = None;
            for seg in rest {
                base.push(seg.clone());
                if modules.contains(&base.join("/")) {
                    target = Some(base.join("/"));
                } else {
                    break;
                }
            }
            if let Some(t) = target {
                if t != me && !me.starts_with(&format!("{t}/")) {
                    deps.insert(t);
                }
            }
        }
    }
    deps
}

/// Where each `crate::` or `super::` path starts, with the number of inline
/// `mod x { … }` blocks around it (a `super` inside one names that block).
fn path_starts(code: &str) -> Vec<(usize, usize)> {
    let bytes = code.as_bytes();
    let mut starts = Vec::new();
    let mut depth = 0usize;
    let mut inline_mods: Vec<usize> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !code.is_char_boundary(i) {
            i += 1;
            continue;
        }
        let rest = &code[i..];
        let boundary = i == 0
            || !(bytes[i - 1].is_ascii_alphanumeric()
                || bytes[i - 1] == b'_'
                || bytes[i - 1] == b':');
        if boundary && (rest.starts_with("crate::") || rest.starts_with("super::")) {
            starts.push((i, inline_mods.len()));
            // Skip the whole `super::super::` run.
            while code[i..].starts_with("super::") || code[i..].starts_with("crate::") {
                i += 7;
            }
            continue;
        }
        if boundary && rest.starts_with("mod ") {
            let name_end = rest[4..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .map(|n| n + 4);
            if let Some(end) = name_end {
                if rest[end..].trim_start().starts_with('{') {
                    inline_mods.push(depth + 1);
                }
            }
        }
        match bytes[i] {
            b'{' => depth += 1,
            b'}' => {
                if inline_mods.last() == Some(&depth) {
                    inline_mods.pop();
                }
                depth = depth.saturating_sub(1);
            }
            _ => {}
        }
        i += 1;
    }
    starts
}

/// The paths of the `use`-like tree at the start of `text`:
/// `crate::a::{b, c::{d, e as f}}` gives `crate::a::b`, `crate::a::c::d`
/// and `crate::a::c::e`.
fn expand(text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    tree(text, &[], &mut out);
    out
}

fn ws(s: &str) -> usize {
    s.len() - s.trim_start().len()
}

fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// Parses one path tree of `s` after `prefix`; returns the bytes it took.
fn tree(s: &str, prefix: &[String], out: &mut Vec<Vec<String>>) -> usize {
    let mut path = prefix.to_vec();
    let mut i = 0;
    loop {
        i += ws(&s[i..]);
        if s[i..].starts_with('{') {
            i += 1;
            loop {
                i += ws(&s[i..]);
                if s[i..].starts_with('}') {
                    return i + 1;
                }
                i += tree(&s[i..], &path, out);
                i += ws(&s[i..]);
                if let Some(rest) = s[i..].strip_prefix("as ") {
                    i += 3 + ws(rest);
                    i += ident(&s[i..]).len();
                    i += ws(&s[i..]);
                }
                match s[i..].chars().next() {
                    Some(',') => i += 1,
                    Some('}') => return i + 1,
                    _ => return i,
                }
            }
        }
        let name = ident(&s[i..]);
        if name.is_empty() {
            if path.len() > prefix.len() {
                out.push(path);
            }
            return i;
        }
        path.push(name.to_string());
        i += name.len();
        match s[i..].strip_prefix("::") {
            Some(_) => i += 2,
            None => {
                out.push(path);
                return i;
            }
        }
    }
}

/// The graph with every file folded into its top-level module
/// (`sandbox/plugin` -> `sandbox`), without self-edges.
fn top_level(graph: &BTreeMap<String, BTreeSet<String>>) -> BTreeMap<String, BTreeSet<String>> {
    let top = |m: &str| m.split('/').next().unwrap().to_string();
    let mut folded: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, deps) in graph {
        let entry = folded.entry(top(module)).or_default();
        for d in deps {
            if top(d) != top(module) {
                entry.insert(top(d));
            }
        }
    }
    folded
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
    let graph = host_graph();
    assert_eq!(find_cycle(&graph), None, "import circle between files");
    assert_eq!(
        find_cycle(&top_level(&graph)),
        None,
        "import circle between top-level modules"
    );
    let graph = import_graph(&sandbox_src(), &BTreeSet::new());
    assert!(
        graph["sandbox/store"].contains("sandbox/grants"),
        "sibling imports are seen: {:?}",
        graph["sandbox/store"]
    );
    assert!(
        graph["sandbox/bindings/since_v0_2_0"].contains("sandbox/resources"),
        "paths inside inline modules are seen: {:?}",
        graph["sandbox/bindings/since_v0_2_0"]
    );
    assert_eq!(find_cycle(&graph), None, "import circle between files");
    assert_eq!(
        find_cycle(&top_level(&graph)),
        None,
        "import circle between top-level modules"
    );
}

#[test]
fn dependencies_flow_from_the_cli_down_to_the_sandbox_and_leaf_data() {
    let graph = top_level(&host_graph());
    let deps = |m: &str| graph.get(m).cloned().unwrap_or_default();
    assert!(
        deps("cli").contains("trainer"),
        "the graph reads the sources"
    );
    assert!(
        deps("session").contains("sandbox"),
        "the sandbox crate's modules are seen: {:?}",
        deps("session")
    );
    let leaves = [
        "args",
        "state",
        "event",
        "view",
        "pyjson",
        "ui",
        "suggest",
        "torchscript",
        "datasets",
        "atomic_file",
        "device",
        "report",
    ];
    for leaf in leaves {
        for dep in deps(leaf) {
            assert!(
                leaves.contains(&dep.as_str()),
                "leaf module {leaf} imports {dep}"
            );
        }
    }
    let forbidden = [
        // A run with its plugins (the library's one call) sits under the
        // command line and over the loop and the sandbox.
        ("session", ["cli"].as_slice()),
        (
            "callbacks",
            ["trainer", "flow", "cli", "tasks", "session"].as_slice(),
        ),
        // The loop knows models and data only through its traits.
        (
            "trainer",
            [
                "sandbox",
                "cli",
                "tasks",
                "datasets",
                "torchscript",
                "session",
            ]
            .as_slice(),
        ),
        ("flow", ["trainer", "sandbox", "cli", "session"].as_slice()),
        (
            "tasks",
            ["sandbox", "callbacks", "cli", "session"].as_slice(),
        ),
        // The processes of a run know nothing of what they train.
        (
            "dist",
            [
                "trainer",
                "sandbox",
                "callbacks",
                "flow",
                "cli",
                "tasks",
                "session",
            ]
            .as_slice(),
        ),
    ];
    for (module, not) in forbidden {
        for dep in deps(module) {
            assert!(!not.contains(&dep.as_str()), "{module} imports {dep}");
        }
    }
}

/// The sandbox crate: the `report_to` integrations over the sandbox over
/// its leaf data, which never import either; no libtorch in its dependencies or its code; nothing of the host (a
/// dependency on `trainbox` would be a circle cargo refuses, the check says
/// why).
#[test]
fn the_sandbox_crate_is_the_sandbox_over_leaf_data_without_libtorch() {
    let graph = top_level(&import_graph(&sandbox_src(), &BTreeSet::new()));
    let deps = |m: &str| graph.get(m).cloned().unwrap_or_default();
    assert!(
        deps("sandbox").contains("state"),
        "the graph reads the sources: {graph:?}"
    );
    let leaves = [
        "run_args",
        "state",
        "event",
        "view",
        "pyjson",
        "ui",
        "atomic_file",
        "builtin_dir",
    ];
    assert!(
        !deps("sandbox").contains("integrations"),
        "the sandbox imports the integrations, which grant through it"
    );
    for module in graph.keys() {
        assert!(
            module == "sandbox" || module == "integrations" || leaves.contains(&module.as_str()),
            "crates/sandbox has a module {module} the map does not know"
        );
    }
    for leaf in leaves {
        for dep in deps(leaf) {
            assert!(
                leaves.contains(&dep.as_str()),
                "leaf module {leaf} of the sandbox crate imports {dep}"
            );
        }
    }
    let manifest = std::fs::read_to_string(sandbox_src().join("../Cargo.toml")).unwrap();
    let manifest: toml::Table = manifest.parse().unwrap();
    for section in ["dependencies", "build-dependencies"] {
        let names: Vec<&String> = manifest
            .get(section)
            .and_then(|d| d.as_table())
            .map(|d| d.keys().collect())
            .unwrap_or_default();
        for forbidden in ["tch", "torch-sys", "trainbox-torch-ext", "trainbox"] {
            assert!(
                !names.iter().any(|n| *n == forbidden),
                "crates/sandbox [{section}] has {forbidden}: the Python host must not link libtorch"
            );
        }
    }
    let mut files = Vec::new();
    collect(&sandbox_src(), &mut files);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for word in ["tch::", "torch_sys::", "trainbox_torch_ext::", "trainbox::"] {
            // A path that starts with it (`generated::trainbox::callback` is
            // the WIT package's bindings).
            let named = text.match_indices(word).any(|(i, _)| {
                let before = text[..i].chars().next_back();
                !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
            });
            assert!(
                !named,
                "{} names {word}: the sandbox crate knows no tensor and nothing of the host",
                file.display()
            );
        }
    }
}

#[test]
fn the_import_reader_sees_groups_renames_inline_modules_and_circles() {
    let paths = expand("crate::a::{b, c::{d, e as f}, self};");
    let text: Vec<String> = paths.iter().map(|p| p.join("::")).collect();
    assert_eq!(
        text,
        [
            "crate::a::b",
            "crate::a::c::d",
            "crate::a::c::e",
            "crate::a::self"
        ]
    );
    let modules: BTreeSet<String> = ["a", "a/x", "a/y", "b", "b/z"]
        .into_iter()
        .map(String::from)
        .collect();
    let parts = |m: &str| m.split('/').map(String::from).collect::<Vec<_>>();
    let code = "use super::{y, Thing};\nuse crate::b::z::Item;\nmod inner {\n    use super::super::y::W;\n}\nfn f() { crate::a::x::g() }\n#[cfg(test)]\nuse crate::b;";
    let deps = module_imports(&parts("a/x"), code, &modules);
    let want: BTreeSet<String> = ["a/y", "b/z"].into_iter().map(String::from).collect();
    assert_eq!(
        deps, want,
        "siblings, crate paths, inline modules; not tests or self"
    );
    let circle: BTreeMap<String, BTreeSet<String>> =
        [("a/x", vec!["b/z"]), ("b/z", vec![]), ("b/w", vec!["a/y"])]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
            .collect();
    assert_eq!(find_cycle(&circle), None, "no circle between files");
    let folded = top_level(&circle);
    assert!(find_cycle(&folded).is_some(), "a -> b -> a: {folded:?}");
}
