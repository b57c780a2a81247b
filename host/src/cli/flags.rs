//! The flags of `trainbox train`: every training argument under its HF name
//! (`--logging_steps 5`, `--logging_first_step`, `--logging_first_step false`,
//! `--report_to a b`), plus the run's own flags below.

use super::config::{PluginSource, RunConfig};
use crate::args::{Kind, SetError, TrainingArguments, UNSUPPORTED};
use crate::pyjson::Json;
use crate::tasks::files::FLAGS as FILE_FLAGS;
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};

/// The flags that are not training arguments: name, value, help.
pub const RUN_FLAGS: &[(&str, &str, &str)] = &[
    (
        "config",
        "FILE",
        "read settings from a TOML or JSON file first (flags override it)",
    ),
    (
        "task",
        "NAME",
        "the built-in task to train: sort (default) or regression",
    ),
    (
        "task_option",
        "KEY=VALUE",
        "an option of the task (repeatable)",
    ),
    (
        "plugins",
        "DIR",
        "load every .wasm in DIR, sorted by file name (repeatable)",
    ),
    ("plugin", "PATH", "load one plugin (repeatable)"),
    (
        "plugin_config",
        "NAME.KEY=VALUE",
        "a configuration value for plugin NAME (repeatable)",
    ),
    (
        "plugin_grant",
        "NAME.KEY=VALUE",
        "a grant or limit for plugin NAME, any key of its [plugins.NAME] table (repeatable): path=FILE (grants need it), allow_http=ORIGIN, env=VAR, read_dirs=GUEST=DIR, write_dirs=GUEST=DIR, memory_mb=N, ...; FILE and DIR are relative to the current directory",
    ),
];

fn kind_of(name: &str) -> Option<Kind> {
    if RUN_FLAGS
        .iter()
        .chain(FILE_FLAGS)
        .any(|(n, _, _)| *n == name)
    {
        return Some(Kind::Single);
    }
    if let Some(f) = TrainingArguments::FIELDS.iter().find(|f| f.name == name) {
        return Some(f.kind);
    }
    // HF's fields that trainbox refuses parse as HF's do, so that the
    // refusal (or, at HF's default, nothing) follows.
    UNSUPPORTED
        .iter()
        .find(|u| u.name == name)
        .map(|u| match u.default_json() {
            _ if u.takes_bool() => Kind::Bool,
            Json::Array(_) => Kind::List,
            _ => Kind::Single,
        })
}

fn all_flag_names() -> impl Iterator<Item = &'static str> {
    RUN_FLAGS
        .iter()
        .chain(FILE_FLAGS)
        .map(|(n, _, _)| *n)
        .chain(SetError::known_names())
}

/// One parsed flag and its values.
struct Flag {
    name: String,
    values: Vec<String>,
}

fn split_flags(argv: &[String]) -> Result<Vec<Flag>> {
    let mut flags = Vec::new();
    let mut i = 0;
    while i < argv.len() {
        let token = &argv[i];
        let Some(body) = token.strip_prefix("--") else {
            bail!("unexpected argument {token:?}; flags look like --name value");
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (body.to_string(), None),
        };
        let Some(kind) = kind_of(&name) else {
            return Err(match crate::suggest::closest(&name, all_flag_names()) {
                Some(near) => anyhow!("unrecognized flag --{name} (did you mean --{near}?)"),
                None => anyhow!("unrecognized flag --{name}; see `trainbox train --help`"),
            });
        };
        i += 1;
        let mut values: Vec<String> = inline.into_iter().collect();
        let takes_next = |i: usize| i < argv.len() && !argv[i].starts_with("--");
        match kind {
            Kind::Bool if values.is_empty() && takes_next(i) => {
                values.push(argv[i].clone());
                i += 1;
            }
            Kind::Bool => {}
            Kind::Single if values.is_empty() => {
                if !takes_next(i) {
                    bail!("missing value for flag --{name}");
                }
                values.push(argv[i].clone());
                i += 1;
            }
            Kind::Single => {}
            Kind::List => {
                while takes_next(i) {
                    values.push(argv[i].clone());
                    i += 1;
                }
                if values.is_empty() {
                    bail!("missing value for flag --{name}");
                }
            }
        }
        flags.push(Flag { name, values });
    }
    Ok(flags)
}

fn key_value<'a>(flag: &str, text: &'a str) -> Result<(&'a str, &'a str)> {
    text.split_once('=')
        .ok_or_else(|| anyhow!("--{flag} {text:?}: expected KEY=VALUE"))
}

/// Parses `trainbox train` flags: the `--config` file first, then every
/// other flag in order.
pub fn parse_train(argv: &[String]) -> Result<RunConfig> {
    let flags = split_flags(argv)?;
    let mut cfg = RunConfig::default();
    for f in flags.iter().filter(|f| f.name == "config") {
        cfg.apply_file(&PathBuf::from(&f.values[0]))?;
    }
    // `--metric` repeats to build a list; given on the command line, that
    // list replaces the config file's, as every other flag does.
    if flags.iter().any(|f| f.name == "metric") {
        cfg.files.metrics.clear();
    }
    for Flag { name, values } in flags {
        let value = values.first().cloned().unwrap_or_default();
        match name.as_str() {
            "config" => {}
            "task" => {
                cfg.task = value;
                cfg.task_given = true;
            }
            "task_option" => {
                let (k, v) = key_value(&name, &value)?;
                cfg.task_options.insert(k.to_string(), v.to_string());
            }
            "plugins" => cfg.plugins.push(PluginSource::Dir(value.into())),
            "plugin" => cfg.plugins.push(PluginSource::File(value.into())),
            "plugin_config" => {
                let (k, v) = key_value(&name, &value)?;
                let (plugin, key) = k
                    .split_once('.')
                    .ok_or_else(|| anyhow!("--plugin_config {value:?}: expected NAME.KEY=VALUE"))?;
                cfg.set_plugin_config(plugin, key, v);
            }
            "plugin_grant" => {
                let (k, v) = key_value(&name, &value)?;
                let (plugin, key) = k
                    .split_once('.')
                    .ok_or_else(|| anyhow!("--plugin_grant {value:?}: expected NAME.KEY=VALUE"))?;
                let cwd = std::env::current_dir().context("reading the current directory")?;
                cfg.apply_plugin_flag(plugin, key, v, &cwd)
                    .with_context(|| format!("--plugin_grant {value:?}"))?;
            }
            _ if cfg.files.set(&name, &value, Path::new(""))? => {}
            _ => cfg
                .args
                .set(&name, &values)
                .with_context(|| format!("--{name}"))?,
        }
    }
    Ok(cfg)
}

/// `trainbox train --help`.
pub fn train_help() -> String {
    let mut out = String::from(
        "trainbox train: train a built-in task, or your own TorchScript model, with plugins\n\nUSAGE:\n    trainbox train [--config FILE] [FLAGS]\n\nRUN FLAGS:\n",
    );
    for (name, value, doc) in RUN_FLAGS {
        out.push_str(&format!("    --{name} {value}\n            {doc}\n"));
    }
    out.push_str("\nYOUR OWN MODEL AND DATA (see docs/train-your-own-model.md):\n");
    for (name, value, doc) in FILE_FLAGS {
        out.push_str(&format!("    --{name} {value}\n            {doc}\n"));
    }
    out.push_str("\nTRAINING ARGUMENTS (Hugging Face names and defaults):\n");
    for f in TrainingArguments::FIELDS {
        let default = TrainingArguments::default_json(f.name)
            .map(|d| d.to_compact())
            .unwrap_or_default();
        let value = match f.kind {
            Kind::Bool => " [true|false]",
            Kind::Single => " VALUE",
            Kind::List => " VALUE...",
        };
        out.push_str(&format!(
            "    --{}{value}  (default: {default})\n            {}\n",
            f.name, f.doc
        ));
    }
    out.push_str(
        "\nHF'S TRAINING ARGUMENTS THAT TRAINBOX DOES NOT SUPPORT (accepted at HF's default only):\n",
    );
    for u in UNSUPPORTED {
        out.push_str(&format!("    --{}\n            {}\n", u.name, u.why));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::SetError;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn hf_style_flags_parse() {
        let cfg = parse_train(&argv(
            "--logging_steps 5 --logging_first_step --eval_strategy=steps --report_to none --seed 7 --task regression --task_option train_size=16",
        ))
        .unwrap();
        assert_eq!(cfg.args.logging_steps, 5.0);
        assert!(cfg.args.logging_first_step);
        assert_eq!(cfg.args.eval_strategy, crate::args::IntervalStrategy::Steps);
        assert_eq!(cfg.args.seed, 7);
        assert_eq!(cfg.task, "regression");
        assert_eq!(cfg.task_options["train_size"], "16");
    }

    #[test]
    fn a_boolean_takes_an_explicit_value() {
        let cfg = parse_train(&argv("--logging_first_step false --disable_tqdm true")).unwrap();
        assert!(!cfg.args.logging_first_step);
        assert!(cfg.args.disable_tqdm);
    }

    #[test]
    fn unknown_flags_suggest_and_values_are_checked() {
        let err = parse_train(&argv("--loging_steps 5"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "unrecognized flag --loging_steps (did you mean --logging_steps?)"
        );
        let err = parse_train(&argv("--lr_scheduler_type cosin")).unwrap_err();
        assert!(err.downcast_ref::<SetError>().is_some(), "typed: {err:?}");
        let err = format!("{err:#}");
        assert!(err.starts_with("--lr_scheduler_type: "), "{err}");
        let err = parse_train(&argv("--max_steps")).unwrap_err().to_string();
        assert_eq!(err, "missing value for flag --max_steps");
    }

    #[test]
    fn unsupported_hf_fields_are_refused_with_their_reason() {
        let err = format!("{:#}", parse_train(&argv("--push_to_hub")).unwrap_err());
        assert!(
            err.starts_with("--push_to_hub: trainbox does not support push_to_hub"),
            "{err}"
        );
        assert!(err.contains("Hugging Face Hub"), "{err}");
        let err = format!(
            "{:#}",
            parse_train(&argv("--deepspeed ds.json")).unwrap_err()
        );
        assert!(err.contains("torchrun"), "{err}");
        // A `bool | None` field is a bare flag too.
        let err = format!(
            "{:#}",
            parse_train(&argv("--ddp_static_graph")).unwrap_err()
        );
        assert!(err.contains("does not support ddp_static_graph"), "{err}");
        // At HF's default there is nothing to refuse.
        parse_train(&argv("--push_to_hub false --hub_strategy every_save")).unwrap();
        // A near miss of an unsupported field names it, not another field.
        let err = parse_train(&argv("--push_to_hubb"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "unrecognized flag --push_to_hubb (did you mean --push_to_hub?)"
        );
    }

    #[test]
    fn plugin_grants_on_the_command_line() {
        let cfg = parse_train(&argv(
            "--plugin_grant probe.allow_http=HTTP://127.0.0.1:9/ --plugin_grant probe.write_dirs=/out=runs/x --plugin_grant probe.env=HOME --plugin_grant probe.memory_mb=32",
        ))
        .unwrap();
        let s = &cfg.plugin_settings["probe"];
        assert_eq!(s.grants.http, ["http://127.0.0.1:9"]);
        assert_eq!(s.grants.env, ["HOME"]);
        let d = &s.grants.dirs[0];
        assert_eq!(d.guest, "/out");
        assert!(d.writable);
        assert_eq!(d.host, std::env::current_dir().unwrap().join("runs/x"));
        assert_eq!(s.limits.memory_bytes, 32 << 20);
        for bad in [
            "--plugin_grant probe.allow_htp=x",
            "--plugin_grant probe.read_dirs=/data",
            "--plugin_grant probe.memory_mb=lots",
            "--plugin_grant allow_http=x",
        ] {
            let err = format!("{:#}", parse_train(&argv(bad)).unwrap_err());
            assert!(err.starts_with("--plugin_grant"), "{bad}: {err}");
        }
    }

    #[test]
    fn plugin_config_needs_a_plugin_name() {
        let cfg = parse_train(&argv("--plugin_config recorder.path=x.jsonl")).unwrap();
        assert_eq!(
            cfg.plugin_config["recorder"],
            vec![("path".to_string(), "x.jsonl".to_string())]
        );
        assert!(parse_train(&argv("--plugin_config path=x")).is_err());
    }
}
