//! The forward's argument names, read from the TorchScript archive itself
//! (tch does not expose a method's schema): the top module's class comes
//! from `data.pkl`, its `def forward(self: <class>, …)` from `code/`.

use anyhow::{bail, Context, Result};
use std::io::Read;
use std::path::Path;

/// One argument of `forward`, after `self`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    /// The argument's name (`input_ids`).
    pub name: String,
    /// Its TorchScript type as written (`Tensor`, `Optional[Tensor]`).
    pub ty: String,
    /// Its default as written (`None`), if it has one.
    pub default: Option<String>,
}

/// The arguments of the top module's `forward`, in order, read from the
/// archive at `path`.
pub fn forward_args(path: &Path) -> Result<Vec<Arg>> {
    let file = std::fs::File::open(path)?;
    let mut zip = zip::ZipArchive::new(file).context("not a zip archive")?;
    let class = top_class_of(&mut zip)?;
    let names: Vec<String> = zip.file_names().map(str::to_owned).collect();
    for name in names
        .iter()
        .filter(|n| n.contains("/code/") && n.ends_with(".py"))
    {
        let mut code = String::new();
        zip.by_name(name)?.read_to_string(&mut code)?;
        if let Some(args) = parse_forward(&code, &class)? {
            return Ok(args);
        }
    }
    bail!("no `def forward(self: {class}, …)` in the archive's code")
}

/// The qualified class of the top module of the archive at `path`
/// (`__torch__.transformers.models.gpt2.modeling_gpt2.GPT2LMHeadModel`).
pub fn top_class_of_file(path: &Path) -> Result<String> {
    let file = std::fs::File::open(path)?;
    let mut zip = zip::ZipArchive::new(file).context("not a zip archive")?;
    top_class_of(&mut zip)
}

/// The qualified class of the archive's top module, from its `data.pkl`.
pub(super) fn top_class_of(zip: &mut zip::ZipArchive<std::fs::File>) -> Result<String> {
    let pickle = zip
        .file_names()
        .find(|n| n.ends_with("/data.pkl") && !n.contains("/code/"))
        .map(str::to_owned)
        .context("no data.pkl")?;
    let mut data = Vec::new();
    zip.by_name(&pickle)?.take(4096).read_to_end(&mut data)?;
    top_class(&data).context("data.pkl does not start with the module's class")
}

/// The qualified class of the pickled top object: protocol 2, then a
/// GLOBAL opcode `c<module>\n<name>\n`.
fn top_class(data: &[u8]) -> Option<String> {
    let rest = data.strip_prefix(b"\x80\x02c")?;
    let text = std::str::from_utf8(&rest[..rest.len().min(1024)])
        .or_else(|e| std::str::from_utf8(&rest[..e.valid_up_to()]))
        .ok()?;
    let mut lines = text.splitn(3, '\n');
    let module = lines.next()?;
    let name = lines.next()?;
    lines.next()?;
    Some(format!("{module}.{name}"))
}

/// The arguments of `def forward(self: <class>, …)` in `code`, if it
/// defines that method.
fn parse_forward(code: &str, class: &str) -> Result<Option<Vec<Arg>>> {
    // `def forward(<self>: <class>, …)`: the first argument may have any name.
    let typed = format!(": {class}");
    let Some(rest) = code.match_indices("def forward(").find_map(|(i, head)| {
        let after = &code[i + head.len()..];
        let name_len = after
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let tail = after[name_len..].strip_prefix(typed.as_str())?;
        tail.starts_with([',', ')']).then_some(tail)
    }) else {
        return Ok(None);
    };
    let mut depth = 0i32;
    let mut args = Vec::new();
    let mut start = 0;
    for (i, c) in rest.char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ']' | '}' => depth -= 1,
            ')' if depth == 0 => {
                push_arg(&rest[start..i], &mut args)?;
                return Ok(Some(args));
            }
            ')' => depth -= 1,
            ',' if depth == 0 => {
                push_arg(&rest[start..i], &mut args)?;
                start = i + 1;
            }
            _ => {}
        }
    }
    bail!("the signature of forward does not end")
}

fn push_arg(text: &str, args: &mut Vec<Arg>) -> Result<()> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(());
    }
    let (name, ty) = text
        .split_once(':')
        .with_context(|| format!("argument `{text}` has no type"))?;
    let (ty, default) = match ty.split_once('=') {
        Some((ty, d)) => (ty, Some(d.trim().to_owned())),
        None => (ty, None),
    };
    args.push(Arg {
        name: name.trim().to_owned(),
        ty: ty.trim().to_owned(),
        default,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_class_is_the_first_global() {
        let data = b"\x80\x02c__torch__.___torch_mangle_3\nM\nq\x00)\x81}(X";
        assert_eq!(
            top_class(data).as_deref(),
            Some("__torch__.___torch_mangle_3.M")
        );
        assert_eq!(top_class(b"\x80\x04junk"), None);
    }

    #[test]
    fn forward_reads_names_types_and_defaults() {
        let code = "class M2(Module):\n  def forward(self: __torch__.M2,\n    x: Tensor) -> Tensor:\n    return x\n\
                    class M(Module):\n  def forward(self: __torch__.M,\n    input_ids: Tensor,\n    \
                    mask: Optional[Tensor]=None,\n    extra: Dict[str, Tensor]) -> Tuple[Tensor, Tensor]:\n";
        let args = parse_forward(code, "__torch__.M").unwrap().unwrap();
        let names: Vec<&str> = args.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["input_ids", "mask", "extra"]);
        assert_eq!(args[1].ty, "Optional[Tensor]");
        assert_eq!(args[1].default.as_deref(), Some("None"));
        assert_eq!(args[2].ty, "Dict[str, Tensor]");
        assert_eq!(args[0].default, None);
        assert_eq!(parse_forward(code, "__torch__.X").unwrap(), None);
        let none = parse_forward("def forward(self: __torch__.M) -> int:", "__torch__.M");
        assert_eq!(none.unwrap().unwrap(), []);
    }
}
