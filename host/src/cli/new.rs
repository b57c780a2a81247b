//! `trainbox plugin new NAME --lang rust|python|js|c [--dir DIR]`: a
//! ready-to-build plugin folder: the source of a small plugin that prints the
//! loss, the WIT contract (or, for Rust, the SDK this binary embeds), a
//! Makefile, a README with the build and test commands, and a sample trace
//! to `trainbox replay`.

use anyhow::{bail, Context, Result};
use serde_json::json;
use std::path::PathBuf;

const WIT: &str = include_str!("../../../wit/callback.wit");
const README: &str = include_str!("../../templates/README.md.in");

/// A file of `plugins/python-sdk`, which Python plugins build with.
macro_rules! py_sdk {
    ($path:literal) => {
        include_str!(concat!("../../../plugins/python-sdk/", $path))
    };
}

/// The files of each language's template: (path in the new folder, contents).
fn template(lang: &str) -> Option<(&'static str, Vec<(&'static str, &'static str)>)> {
    Some(match lang {
        "rust" => (
            "Rust",
            vec![
                (
                    "Cargo.toml",
                    include_str!("../../templates/rust/Cargo.toml"),
                ),
                ("src/lib.rs", include_str!("../../templates/rust/lib.rs")),
                ("Makefile", include_str!("../../templates/rust/Makefile")),
            ],
        ),
        "python" => (
            "Python",
            vec![
                ("app.py", include_str!("../../templates/python/app.py")),
                ("Makefile", include_str!("../../templates/python/Makefile")),
                ("wit/callback.wit", WIT),
                // trainbox's Python build and helpers (plugins/python-sdk).
                ("sdk/trainbox_build.py", py_sdk!("trainbox_build.py")),
                ("sdk/trainbox_runtime.py", py_sdk!("trainbox_runtime.py")),
                ("sdk/trainbox_http.py", py_sdk!("trainbox_http.py")),
                ("sdk/wit/world.wit", py_sdk!("wit/world.wit")),
                (
                    "sdk/wit/deps/http/package.wit",
                    py_sdk!("wit/deps/http/package.wit"),
                ),
                (
                    "sdk/wit/deps/http/types.wit",
                    py_sdk!("wit/deps/http/types.wit"),
                ),
                (
                    "sdk/wit/deps/http/handler.wit",
                    py_sdk!("wit/deps/http/handler.wit"),
                ),
                (
                    "sdk/wit/deps/io/error.wit",
                    py_sdk!("wit/deps/io/error.wit"),
                ),
                ("sdk/wit/deps/io/poll.wit", py_sdk!("wit/deps/io/poll.wit")),
                (
                    "sdk/wit/deps/io/streams.wit",
                    py_sdk!("wit/deps/io/streams.wit"),
                ),
                (
                    "sdk/wit/deps/clocks/monotonic-clock.wit",
                    py_sdk!("wit/deps/clocks/monotonic-clock.wit"),
                ),
            ],
        ),
        "js" => (
            "JavaScript",
            vec![
                ("app.js", include_str!("../../templates/js/app.js")),
                ("Makefile", include_str!("../../templates/js/Makefile")),
                ("wit/callback.wit", WIT),
            ],
        ),
        "c" => (
            "C",
            vec![
                ("plugin.c", include_str!("../../templates/c/plugin.c")),
                ("Makefile", include_str!("../../templates/c/Makefile")),
                ("wit/callback.wit", WIT),
            ],
        ),
        _ => return None,
    })
}

/// What building a plugin of `lang` needs, and where its contract is, for
/// the generated README.
fn build_needs(lang: &str) -> (&'static str, &'static str) {
    match lang {
        "rust" => (
            "cargo and the wasm32-wasip2 target, `rustup target add wasm32-wasip2`; the SDK is \
             in `trainbox-sdk/` and the crate versions in `Cargo.lock`, so it builds offline \
             once those crates are in cargo's cache",
            "`trainbox-sdk/wit/callback.wit` and the SDK's documentation \
             (`cargo doc -p trainbox-sdk --open`)",
        ),
        "python" => (
            "componentize-py 0.25.1 in `~/.cache/trainbox/lang-tools/py`: \
             `python3 -m venv ~/.cache/trainbox/lang-tools/py && \
             ~/.cache/trainbox/lang-tools/py/bin/pip install componentize-py==0.25.1`, \
             or `make lang-tools` in a trainbox checkout; `make TOOLS=DIR` looks in DIR/py",
            "`wit/callback.wit`",
        ),
        _ => (
            "the tools `make lang-tools` installs in a trainbox checkout, \
             into `~/.cache/trainbox/lang-tools`; `make TOOLS=DIR` looks in DIR",
            "`wit/callback.wit`",
        ),
    }
}

/// A short trace in the recorder's format, with values: 2 epochs of 4
/// steps, a log every 2 steps, an evaluation (2 batches) per epoch.
pub fn sample_trace() -> String {
    let mut lines = Vec::new();
    let mut push = |event: &str,
                    step: u64,
                    epoch: f64,
                    max: u64,
                    flags: [bool; 5],
                    extra: serde_json::Value| {
        let mut line = json!({
            "event": event, "global_step": step, "epoch": epoch, "max_steps": max,
            "control": {
                "should_training_stop": flags[0], "should_epoch_stop": flags[1], "should_save": flags[2],
                "should_evaluate": flags[3], "should_log": flags[4],
            },
        });
        if let (Some(obj), Some(more)) = (line.as_object_mut(), extra.as_object()) {
            obj.extend(more.clone());
        }
        lines.push(line.to_string());
    };
    let none = json!({});
    let off = [false; 5];
    push("on_init_end", 0, 0.0, 0, off, none.clone());
    push("on_train_begin", 0, 0.0, 8, off, none.clone());
    let mut loss = 2.0;
    for e in 0..2u64 {
        push("on_epoch_begin", e * 4, e as f64, 8, off, none.clone());
        for s in 1..=4u64 {
            let step = e * 4 + s;
            let before = step - 1;
            let epoch = e as f64 + s as f64 / 4.0;
            push("on_step_begin", before, epoch - 0.25, 8, off, none.clone());
            push(
                "on_pre_optimizer_step",
                before,
                epoch - 0.25,
                8,
                off,
                none.clone(),
            );
            push(
                "on_optimizer_step",
                before,
                epoch - 0.25,
                8,
                off,
                none.clone(),
            );
            let log = step % 2 == 0;
            let last = step == 8;
            push(
                "on_step_end",
                step,
                epoch,
                8,
                [last, false, last, false, log],
                none.clone(),
            );
            if log {
                loss *= 0.7;
                let logs = json!({"loss": loss, "grad_norm": loss * 1.5, "learning_rate": 5e-5 * (8 - before) as f64 / 8.0, "epoch": epoch});
                let keys: Vec<&String> = logs.as_object().unwrap().keys().collect();
                push(
                    "on_log",
                    step,
                    epoch,
                    8,
                    [last, false, last, false, false],
                    json!({"log_keys": keys, "logs": logs}),
                );
            }
            if last {
                push(
                    "on_save",
                    step,
                    epoch,
                    8,
                    [true, false, false, false, false],
                    none.clone(),
                );
            }
        }
        let stop = e == 1;
        push(
            "on_epoch_end",
            e * 4 + 4,
            e as f64 + 1.0,
            8,
            [stop, false, false, true, false],
            none.clone(),
        );
        for _ in 0..2 {
            push(
                "on_prediction_step",
                e * 4 + 4,
                e as f64 + 1.0,
                8,
                [stop, false, false, true, false],
                none.clone(),
            );
        }
        let metrics = json!({"eval_loss": loss * 1.1, "eval_runtime": 0.01, "eval_samples_per_second": 6400.0, "eval_steps_per_second": 200.0, "epoch": e as f64 + 1.0});
        let keys: Vec<&String> = metrics.as_object().unwrap().keys().collect();
        push(
            "on_log",
            e * 4 + 4,
            e as f64 + 1.0,
            8,
            [stop, false, false, true, false],
            json!({"log_keys": keys, "logs": metrics}),
        );
        push(
            "on_evaluate",
            e * 4 + 4,
            e as f64 + 1.0,
            8,
            [stop, false, false, false, false],
            json!({"metric_keys": keys, "metrics": metrics}),
        );
    }
    let summary = json!({"train_runtime": 0.5, "train_samples_per_second": 1024.0, "train_steps_per_second": 16.0, "total_flos": 0.0, "train_loss": 1.0, "epoch": 2.0});
    let keys: Vec<&String> = summary.as_object().unwrap().keys().collect();
    push(
        "on_log",
        8,
        2.0,
        8,
        [true, false, false, false, false],
        json!({"log_keys": keys, "logs": summary}),
    );
    push(
        "on_train_end",
        8,
        2.0,
        8,
        [true, false, false, false, false],
        none,
    );
    lines.join("\n") + "\n"
}

/// Runs `trainbox plugin new`.
pub fn run(argv: &[String]) -> Result<i32> {
    let usage = "usage: trainbox plugin new NAME --lang rust|python|js|c [--dir DIR]";
    let [cmd, name, rest @ ..] = argv else {
        bail!("{usage}")
    };
    if cmd != "new" {
        bail!("{usage}");
    }
    let (mut lang, mut dir) = (None, None);
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--lang" => lang = it.next().cloned(),
            "--dir" => dir = it.next().map(PathBuf::from),
            other => bail!("unexpected argument {other:?}; {usage}"),
        }
    }
    let lang = lang.ok_or_else(|| anyhow::anyhow!("--lang is required; {usage}"))?;
    let Some((lang_name, files)) = template(&lang) else {
        bail!("--lang {lang}: not one of rust, python, js, c");
    };
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !valid || name.len() > 64 {
        bail!("plugin name {name:?} is invalid: use 1-64 lowercase letters, digits, '-' or '_'");
    }
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    if dir.exists()
        && dir
            .read_dir()
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        bail!(
            "{}: already exists and is not empty; choose another --dir",
            dir.display()
        );
    }
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{crate}}", &name.replace('-', "_"))
            .replace("{{sdk}}", super::sdk::SDK_PATH)
            .replace("{{lang}}", lang_name)
            .replace("{{lang_flag}}", &lang)
            .replace("{{build_needs}}", build_needs(&lang).0)
            .replace("{{contract}}", build_needs(&lang).1)
    };
    let mut all: Vec<(&str, String)> = files.iter().map(|(p, t)| (*p, fill(t))).collect();
    all.push(("README.md", fill(README)));
    all.push(("sample-trace.jsonl", sample_trace()));
    all.push((
        ".gitignore",
        "*.wasm\ntarget/\ngen/\n__pycache__/\n".to_string(),
    ));
    if lang == "rust" {
        // The SDK this binary embeds, and the crate versions it was built with.
        super::sdk::write(&dir)?;
        all.push(("Cargo.lock", super::sdk::CARGO_LOCK.to_string()));
    }
    for (path, text) in all {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    println!(
        "created {} ({lang_name}); build it with `make -C {}`",
        dir.display(),
        dir.display()
    );
    Ok(0)
}
