//! A reader of the few WIT shapes that hand-written lists must stay in step
//! with: the cases of an `enum` and the fields of a `record`. For tests on
//! both sides (`include_str!` the `.wit` file, compare, fail when one side
//! falls behind); not a WIT parser.

/// The cases of `enum <name> { ... }` in `wit`, in order (`["init-end", ...]`).
///
/// # Panics
///
/// When `wit` declares no such enum.
pub fn enum_cases(wit: &str, name: &str) -> Vec<String> {
    items(wit, "enum", name)
}

/// The field names of `record <name> { ... }` in `wit`, in order
/// (`["output-dir", ...]`).
///
/// # Panics
///
/// When `wit` declares no such record.
pub fn record_fields(wit: &str, name: &str) -> Vec<String> {
    items(wit, "record", name)
        .into_iter()
        .map(|f| match f.split_once(':') {
            Some((name, _)) => name.trim().to_string(),
            None => f,
        })
        .collect()
}

/// The comma-separated items of `<keyword> <name> { ... }`, comments dropped.
fn items(wit: &str, keyword: &str, name: &str) -> Vec<String> {
    let mut lines = wit.lines().map(|l| match l.find("//") {
        Some(i) => &l[..i],
        None => l,
    });
    let header = format!("{keyword} {name} {{");
    lines
        .by_ref()
        .find(|l| l.trim() == header)
        .unwrap_or_else(|| panic!("no `{header}` in the WIT text"));
    let mut body = String::new();
    for line in lines {
        if let Some(end) = line.find('}') {
            body.push_str(&line[..end]);
            break;
        }
        body.push_str(line);
        body.push('\n');
    }
    // Split on the commas outside `<...>` (`tuple<string, string>`).
    let (mut out, mut item, mut depth) = (Vec::new(), String::new(), 0usize);
    for c in body.chars() {
        match c {
            '<' => depth += 1,
            '>' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut item));
                continue;
            }
            _ => {}
        }
        item.push(c);
    }
    out.push(item);
    out.into_iter()
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const WIT: &str = "interface types {\n    /// The events.\n    enum event {\n        /// First.\n        init-end,\n        log,   // last\n    }\n    record args {\n        output-dir: string,\n        /// Unset: none.\n        eval-steps: option<f64>,\n        report-to: list<string>,\n        config: list<tuple<string, string>>\n    }\n}\n";

    #[test]
    fn enum_cases_and_record_fields_come_in_order() {
        assert_eq!(enum_cases(WIT, "event"), ["init-end", "log"]);
        assert_eq!(
            record_fields(WIT, "args"),
            ["output-dir", "eval-steps", "report-to", "config"]
        );
    }
}
