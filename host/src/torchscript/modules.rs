//! The class of every submodule, read from the archive's code (`code/…py`
//! declares each class's submodules as `name : <class>` or, for
//! containers, `__annotations__["0"] = <class>`), so that parameters can be
//! told apart by the type of module they sit in, as HF tells the weights of
//! an `nn.LayerNorm` apart for weight decay and an `nn.Embedding` for
//! its estimate of floating-point operations.

use anyhow::{Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;

/// The class a layer norm's code declares (any mangled copy of it).
const LAYER_NORM: (&str, &str) = ("__torch__.torch.nn.modules.normalization", "LayerNorm");
/// The class of an embedding.
const EMBEDDING: (&str, &str) = ("__torch__.torch.nn.modules.sparse", "Embedding");

/// Each class's attributes (name, declared type), by qualified class name.
type Classes = BTreeMap<String, Vec<(String, String)>>;

/// Parameters told apart by the modules they sit in.
#[derive(Debug, Clone, Default)]
pub struct ParamKinds {
    /// In an `nn.LayerNorm` (at any depth): HF exempts them from weight decay.
    pub in_layer_norm: BTreeSet<String>,
    /// In an `nn.Embedding`: HF's flos estimate leaves them out.
    pub in_embedding: BTreeSet<String>,
}

/// Sorts the parameters `params` of the module at `path` by their modules.
pub fn classify(path: &Path, params: &[String]) -> Result<ParamKinds> {
    let (top, classes) = read_classes(path)?;
    let mut kinds = ParamKinds::default();
    for p in params {
        let path = ancestors(&top, &classes, p);
        if path.iter().any(|c| is_class(c, LAYER_NORM)) {
            kinds.in_layer_norm.insert(p.clone());
        }
        if path.iter().any(|c| is_class(c, EMBEDDING)) {
            kinds.in_embedding.insert(p.clone());
        }
    }
    Ok(kinds)
}

/// Whether `class` is torch's `(module, name)` class or a mangled copy.
fn is_class(class: &str, (want_module, want_name): (&str, &str)) -> bool {
    let Some((module, name)) = class.rsplit_once('.') else {
        return false;
    };
    name == want_name
        && (module == want_module
            || module
                .strip_prefix(want_module)
                .is_some_and(|rest| rest.starts_with(".___torch_mangle_")))
}

/// The classes of the modules on the way to parameter `param`
/// (`body.1.weight`: the class of `body`, then of `body.1`).
fn ancestors(
    top: &str,
    classes: &BTreeMap<String, Vec<(String, String)>>,
    param: &str,
) -> Vec<String> {
    let mut parts: Vec<&str> = param.split('.').collect();
    parts.pop();
    let mut class = top.to_string();
    let mut out = Vec::new();
    for part in parts {
        let Some(next) = classes
            .get(&class)
            .and_then(|attrs| attrs.iter().find(|(n, _)| n == part))
        else {
            break;
        };
        class = next.1.clone();
        out.push(class.clone());
    }
    out
}

/// The top module's class, and each class's attributes (name, type).
fn read_classes(path: &Path) -> Result<(String, Classes)> {
    let file = std::fs::File::open(path)?;
    let mut zip = zip::ZipArchive::new(file).context("not a zip archive")?;
    let top = super::schema::top_class_of(&mut zip)?;
    let names: Vec<String> = zip.file_names().map(str::to_owned).collect();
    let mut classes = BTreeMap::new();
    for name in names.iter().filter(|n| n.ends_with(".py")) {
        let Some((_, module)) = name.split_once("/code/") else {
            continue;
        };
        let module = module.trim_end_matches(".py").replace('/', ".");
        let mut code = String::new();
        zip.by_name(name)?.read_to_string(&mut code)?;
        parse_classes(&module, &code, &mut classes);
    }
    Ok((top, classes))
}

/// The classes `code` (the file of `module`) defines, with the attributes
/// each declares at the top of its body.
fn parse_classes(module: &str, code: &str, out: &mut Classes) {
    let mut current: Option<&mut Vec<(String, String)>> = None;
    for line in code.lines() {
        if let Some(rest) = line.strip_prefix("class ") {
            let name = rest.split(['(', ':']).next().unwrap_or("").trim();
            current = Some(out.entry(format!("{module}.{name}")).or_default());
            continue;
        }
        let Some(attrs) = current.as_deref_mut() else {
            continue;
        };
        let Some(body) = line.strip_prefix("  ") else {
            current = None;
            continue;
        };
        if body.starts_with(' ') || body.starts_with("def ") {
            continue;
        }
        if let Some(rest) = body.strip_prefix("__annotations__[\"") {
            if let Some((key, ty)) = rest.split_once("\"] = ") {
                attrs.push((key.to_string(), ty.trim().to_string()));
            }
        } else if let Some((name, ty)) = body.split_once(" : ") {
            let ty = ty.split(" = ").next().unwrap_or(ty).trim();
            attrs.push((name.trim().to_string(), ty.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_and_mangled_classes_are_followed() {
        let mut classes = BTreeMap::new();
        parse_classes(
            "__torch__",
            "class B(Module):\n  training : bool\n  body : __torch__.c.Seq\n  def forward(self: __torch__.B, x: Tensor) -> Tensor:\n    return x\n",
            &mut classes,
        );
        parse_classes(
            "__torch__.c",
            "class Seq(Module):\n  __annotations__[\"0\"] = __torch__.torch.nn.modules.linear.Linear\n  __annotations__[\"1\"] = __torch__.torch.nn.modules.normalization.___torch_mangle_3.LayerNorm\n",
            &mut classes,
        );
        let path = ancestors("__torch__.B", &classes, "body.1.weight");
        assert_eq!(path.len(), 2);
        assert!(is_class(&path[1], LAYER_NORM));
        assert!(!ancestors("__torch__.B", &classes, "body.0.weight")
            .iter()
            .any(|c| is_class(c, LAYER_NORM)));
    }
}
