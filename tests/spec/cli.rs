//! The command line: HF-style flags, config files, and errors that name the
//! flag, the file and the fix.

use crate::util::Run;

#[test]
fn help_lists_every_training_argument_with_its_default() {
    let done = Run::command("cli_help", &["train", "--help"]).ok();
    for flag in [
        "--logging_steps VALUE  (default: 500.0)",
        "--eval_strategy VALUE  (default: \"no\")",
        "--logging_first_step [true|false]",
    ] {
        assert!(
            done.stdout.contains(flag),
            "missing {flag:?} in:\n{}",
            done.stdout
        );
    }
    assert!(done.stdout.contains("--plugin_config NAME.KEY=VALUE"));
}

#[test]
fn unknown_flag_suggests_the_right_one() {
    let err = Run::command("cli_unknown_flag", &["train", "--loging_steps", "5"]).fails();
    assert!(
        err.contains("unrecognized flag --loging_steps (did you mean --logging_steps?)"),
        "{err}"
    );
}

#[test]
fn bad_values_name_the_flag_and_the_choices() {
    let err = Run::command("cli_bad_choice", &["train", "--lr_scheduler_type", "cosin"]).fails();
    assert!(
        err.contains("--lr_scheduler_type") && err.contains("'cosine'"),
        "{err}"
    );
    let err = Run::command("cli_bad_number", &["train", "--learning_rate", "fast"]).fails();
    assert!(err.contains("--learning_rate: expected a number"), "{err}");
    let err = Run::command("cli_bad_bool", &["train", "--logging_first_step", "maybe"]).fails();
    assert!(err.contains("truthy value expected"), "{err}");
}

#[test]
fn invalid_combinations_use_hf_messages() {
    let err = Run::command(
        "cli_fractional",
        &["train", "--task", "regression", "--logging_steps", "2.5"],
    )
    .fails();
    assert!(
        err.contains("--logging_steps must be an integer if bigger than 1: 2.5"),
        "{err}"
    );
    let err = Run::command(
        "cli_best_mismatch",
        &[
            "train",
            "--task",
            "regression",
            "--load_best_model_at_end",
            "--eval_strategy",
            "epoch",
        ],
    )
    .fails();
    assert!(
        err.contains("requires the save and eval strategy to match"),
        "{err}"
    );
}

#[test]
fn best_model_arguments_are_checked_as_hf() {
    // transformers 5.24: "`args.metric_for_best_model` must be provided when
    // using 'best' save_strategy or if `args.load_best_model_at_end` is set".
    let err = Run::command(
        "cli_best_no_metric",
        &["train", "--task", "regression", "--save_strategy", "best"],
    )
    .fails();
    assert_eq!(
        err.trim(),
        "trainbox: invalid training arguments: --metric_for_best_model must be provided when using --save_strategy best or --load_best_model_at_end (e.g. --metric_for_best_model loss)"
    );
    // HF: "... which cannot get guaranteed when mixing ratio and absolute
    // steps for save_steps 0.5 and eval_steps 5."
    let err = Run::command(
        "cli_best_mixed",
        &[
            "train",
            "--task",
            "regression",
            "--load_best_model_at_end",
            "--eval_strategy",
            "steps",
            "--eval_steps",
            "5",
            "--save_steps",
            "0.5",
        ],
    )
    .fails();
    assert!(
        err.contains("mixing ratio and absolute steps for save_steps 0.5 and eval_steps 5"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // HF: "... but found 0.25, which is not a multiple of 0.1."
    let err = Run::command(
        "cli_best_ratios",
        &[
            "train",
            "--task",
            "regression",
            "--load_best_model_at_end",
            "--eval_strategy",
            "steps",
            "--eval_steps",
            "0.1",
            "--save_steps",
            "0.25",
        ],
    )
    .fails();
    assert!(
        err.contains("but found 0.25, which is not a multiple of 0.1"),
        "{err}"
    );
}

#[test]
fn unknown_task_and_task_option_are_rejected_with_the_known_ones() {
    let err = Run::command("cli_task", &["train", "--task", "regresion"]).fails();
    assert!(err.contains("did you mean \"regression\""), "{err}");
    let err = Run::command(
        "cli_task_option",
        &["train", "--task", "regression", "--task_option", "size=3"],
    )
    .fails();
    assert!(
        err.contains("task regression has no such option") && err.contains("train_size"),
        "{err}"
    );
}

#[test]
fn toml_config_is_read_and_flags_override_it() {
    let run = Run::regression("cli_toml");
    std::fs::write(
        run.dir.join("run.toml"),
        "logging_steps = 6\nsave_steps = 12\nmax_steps = 12\n[task_options]\ntrain_size = 32\n",
    )
    .unwrap();
    let done = run
        .args(&["--config", "run.toml", "--logging_steps", "4"])
        .ok();
    let state = done.state("checkpoint-12/trainer_state.json");
    assert_eq!(state["logging_steps"], 4, "the flag wins over the file");
    assert_eq!(state["save_steps"], 12);
    assert_eq!(state["max_steps"], 12);
    assert_eq!(done.checkpoints(), [12]);
}

#[test]
fn json_config_is_read() {
    let run = Run::regression("cli_json");
    std::fs::write(
        run.dir.join("run.json"),
        r#"{"max_steps": 3, "save_strategy": "no", "logging_steps": 1}"#,
    )
    .unwrap();
    let done = run.args(&["--config", "run.json"]).ok();
    let logs = done
        .events()
        .iter()
        .filter(|e| e["event"] == "on_log")
        .count();
    assert_eq!(logs, 4, "three step logs and the summary");
    assert!(done.checkpoints().is_empty());
}

#[test]
fn config_file_errors_name_the_file_and_the_key() {
    let run = Run::command("cli_config_errors", &["train", "--config", "bad.toml"]);
    std::fs::write(run.dir.join("bad.toml"), "loging_steps = 5\n").unwrap();
    let err = run.fails();
    assert!(
        err.contains("bad.toml: unknown key \"loging_steps\" (did you mean \"logging_steps\"?)"),
        "{err}"
    );
    let run = Run::command("cli_config_syntax", &["train", "--config", "broken.toml"]);
    std::fs::write(run.dir.join("broken.toml"), "logging_steps = \n").unwrap();
    let err = run.fails();
    assert!(err.contains("broken.toml"), "{err}");
    let err = Run::command("cli_config_missing", &["train", "--config", "nowhere.toml"]).fails();
    assert!(err.contains("reading config file nowhere.toml"), "{err}");
}

#[test]
fn report_to_rejects_unknown_integrations() {
    let err = Run::regression("cli_report_to")
        .args(&["--report_to", "tensorbord"])
        .fails();
    let supported = [
        trainbox::cli::INTEGRATIONS,
        trainbox::session::integrations::BY_NAME_ONLY,
    ]
    .concat()
    .join(", ");
    assert!(
        err.contains(&format!(
            "--report_to tensorbord: tensorbord is not supported, only {supported} are supported"
        )),
        "{err}"
    );
    assert!(supported.starts_with(
        "comet_ml, dagshub, dvclive, mlflow, neptune, tensorboard, wandb, codecarbon"
    ));
}

#[test]
fn version_names_the_wit_package() {
    let done = Run::command("cli_version", &["--version"]).ok();
    assert!(
        done.stdout.contains("trainbox:callback@0.2.0"),
        "{}",
        done.stdout
    );
}

#[test]
fn cache_shows_its_directory_and_size_and_clear_empties_it() {
    let cache = crate::util::fresh_dir("cli_cache_dir");
    let compiled = cache.join("compiled");
    let cmd = |test: &str, args: &[&str]| {
        Run::command(test, args).env("TRAINBOX_CACHE", cache.to_str().unwrap())
    };
    let shown = cmd("cli_cache_empty", &["cache"]).ok().stdout;
    assert_eq!(
        shown,
        format!(
            "directory: {}\nentries:   0\nsize:      0 bytes (bound: 1.0 GiB; the least recently used go first)\n",
            compiled.display()
        )
    );
    let stopper = crate::util::plugin("stopper");
    cmd(
        "cli_cache_fill",
        &["plugins", "inspect", stopper.to_str().unwrap()],
    )
    .ok();
    let shown = cmd("cli_cache_full", &["cache", "show"]).ok().stdout;
    assert!(shown.contains("entries:   1\n"), "{shown}");
    let bytes: u64 = std::fs::read_dir(&compiled)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(bytes > 1024, "a compiled component is more than 1 KiB");
    let cleared = cmd("cli_cache_clear", &["cache", "clear"]).ok().stdout;
    assert!(
        cleared.starts_with("removed 1 entry (")
            && cleared.contains(&compiled.display().to_string()),
        "{cleared}"
    );
    assert_eq!(std::fs::read_dir(&compiled).unwrap().count(), 0);
    let shown = cmd("cli_cache_cleared", &["cache"]).ok().stdout;
    assert!(shown.contains("entries:   0\n"), "{shown}");
    let err = cmd("cli_cache_bad", &["cache", "purge"]).fails();
    assert_eq!(
        err.trim(),
        "trainbox: unknown cache command \"purge\"; usage: trainbox cache [show] | trainbox cache clear"
    );
}
