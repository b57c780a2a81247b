//! The training-argument table that the host, the WIT and the SDK follow
//! (`trainbox_pyformat::args::TRAINING_ARGS`), against transformers itself:
//! the names are `TrainingArguments` fields and the defaults are what its
//! `to_dict()` holds. (The host's `to_json` and the SDK's are checked against
//! the table by their unit tests, the table against the WIT by its own.)

use crate::util::{run_torch_python, Run};
use trainbox_pyformat::args::TRAINING_ARGS;
use trainbox_pyformat::Json;

/// `TrainingArguments().to_dict()` and the dataclass's field names, from
/// transformers (devices pinned to the CPU, so that `accelerate` is not needed).
fn hf_defaults() -> &'static Json {
    static HF: std::sync::OnceLock<Json> = std::sync::OnceLock::new();
    HF.get_or_init(hf_defaults_from_python)
}

/// The dataclass's field names, in order.
fn field_names(hf: &std::collections::BTreeMap<String, Json>) -> Vec<&str> {
    hf["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect()
}

/// Asks transformers, once per test process (see [`hf_defaults`]).
fn hf_defaults_from_python() -> Json {
    let script = r#"
import dataclasses, json, warnings
warnings.simplefilter("ignore")
import torch
from transformers import TrainingArguments
TrainingArguments._setup_devices = property(lambda self: torch.device("cpu"))
print(json.dumps({
    "to_dict": TrainingArguments().to_dict(),
    "fields": [f.name for f in dataclasses.fields(TrainingArguments)],
    "types": {f.name: str(f.type) for f in dataclasses.fields(TrainingArguments)},
}))
"#;
    Json::parse(&run_torch_python(script, &[])).unwrap()
}

#[test]
fn training_args_table_is_transformers_fields_and_defaults() {
    let hf = hf_defaults().as_object().unwrap();
    let to_dict = hf["to_dict"].as_object().unwrap();
    let fields = field_names(hf);
    for field in TRAINING_ARGS {
        assert_eq!(
            fields.contains(&field.name),
            field.in_hf,
            "{}: in_hf says {}, transformers says otherwise",
            field.name,
            field.in_hf
        );
        if field.in_hf {
            assert_eq!(
                field.default.to_json(),
                to_dict[field.name],
                "{}: the table's default and TrainingArguments().to_dict()",
                field.name
            );
        }
    }
}

/// Every field of transformers' `TrainingArguments` is known to trainbox:
/// implemented (in the table above) or in `UNSUPPORTED` with its reason and
/// HF's `to_dict()` default; no name is in both, and none is made up.
#[test]
fn every_hf_field_is_implemented_or_refused_with_a_reason() {
    use trainbox::args::UNSUPPORTED;
    let hf = hf_defaults().as_object().unwrap();
    let to_dict = hf["to_dict"].as_object().unwrap();
    let fields = field_names(hf);
    assert_eq!(fields.len(), 114, "transformers 5.24 has 114 fields");
    let implemented = |n: &str| TRAINING_ARGS.iter().any(|f| f.name == n && f.in_hf);
    let refused = |n: &str| UNSUPPORTED.iter().any(|u| u.name == n);
    let missing: Vec<&str> = fields
        .iter()
        .copied()
        .filter(|n| !implemented(n) && !refused(n))
        .collect();
    assert!(
        missing.is_empty(),
        "HF fields trainbox does not know: {missing:?}"
    );
    for u in UNSUPPORTED {
        assert!(fields.contains(&u.name), "{} is not an HF field", u.name);
        assert!(
            !implemented(u.name),
            "{} is implemented and refused",
            u.name
        );
        assert!(u.why.len() > 20, "{}: give a reason", u.name);
        let ty = hf["types"].as_object().unwrap()[u.name]
            .as_str()
            .unwrap()
            .to_string();
        let is_bool = ty.contains("bool") && !ty.contains("dict") && !ty.contains("str");
        assert_eq!(u.takes_bool(), is_bool, "{}: HF types it {ty}", u.name);
        let ours = Json::parse(u.default).unwrap();
        assert_eq!(ours, to_dict[u.name], "{}: HF's to_dict() default", u.name);
    }
}

/// On the command line an unsupported field is one line naming why; at
/// HF's default it is accepted; a typo of it is suggested as itself.
#[test]
fn unsupported_flags_are_refused_by_the_binary() {
    let err = Run::regression("unsupported_flag")
        .args(&["--max_steps", "2", "--push_to_hub"])
        .fails();
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("push_to_hub")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains("does not support push_to_hub"), "{err}");
    assert!(lines[0].contains("Hugging Face Hub"), "{err}");
    Run::regression("unsupported_flag_default")
        .args(&[
            "--max_steps",
            "2",
            "--push_to_hub",
            "false",
            "--torch_compile",
            "False",
        ])
        .ok();
}

/// A JSON written by HF's `to_json_string()` and a YAML as
/// `HfArgumentParser.parse_yaml_file` reads train; fields trainbox does not
/// support are listed once in a warning, not failed one by one.
#[test]
fn hf_dumped_json_and_yaml_configs_train() {
    let dir = crate::util::fresh_dir("hf_config_files");
    let script = r#"
import json, sys, warnings, yaml
warnings.simplefilter("ignore")
import torch
from transformers import TrainingArguments
TrainingArguments._setup_devices = property(lambda self: torch.device("cpu"))
out = sys.argv[1]
args = TrainingArguments(output_dir=out + "/json-run", max_steps=6, logging_steps=2,
                         learning_rate=1e-2, save_strategy="no", hub_model_id="me/model",
                         disable_tqdm=True)
open(out + "/args.json", "w").write(args.to_json_string())
yaml.safe_dump({"output_dir": out + "/yaml-run", "max_steps": 4, "logging_steps": 2,
                "learning_rate": 1.0e-2, "save_strategy": "no", "push_to_hub": False,
                "torch_compile": True, "disable_tqdm": True}, open(out + "/args.yaml", "w"))
"#;
    run_torch_python(script, &[&dir]);
    for (file, run, steps, unsupported) in [
        ("args.json", "json-run", vec![2, 4, 6], "hub_model_id"),
        ("args.yaml", "yaml-run", vec![2, 4], "torch_compile"),
    ] {
        let done = Run::command(
            &format!("hf_config_files_{run}"),
            &[
                "train",
                "--task",
                "regression",
                "--config",
                dir.join(file).to_str().unwrap(),
            ],
        )
        .ok();
        let warnings: Vec<&str> = done
            .stderr
            .lines()
            .filter(|l| l.contains("not applied"))
            .collect();
        assert_eq!(warnings.len(), 1, "{file}: one warning\n{}", done.stderr);
        assert!(
            done.stderr.contains(&format!("  {unsupported} = ")),
            "{}",
            done.stderr
        );
        let state = crate::util::read_state(&dir.join(run).join("trainer_state.json"));
        let logged: Vec<u64> = state["log_history"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e.get("loss").is_some())
            .map(|e| e["step"].as_u64().unwrap())
            .collect();
        assert_eq!(logged, steps, "{file}");
    }
}

/// `--prediction_loss_only`: evaluation logs the loss and none of the
/// model's metrics, as HF's `prediction_step` returns `(loss, None, None)`.
#[test]
fn prediction_loss_only_evaluates_the_loss_alone() {
    let eval_keys = |test: &str, extra: &[&str]| -> Vec<String> {
        let run = Run::command(test, &[]);
        let out = run.out();
        let done = Run::command(
            test,
            &[
                "train",
                "--task",
                "sort",
                "--task_option",
                "train_size=64",
                "--task_option",
                "eval_size=32",
                "--max_steps",
                "2",
                "--eval_strategy",
                "steps",
                "--eval_steps",
                "2",
                "--disable_tqdm",
                "--output_dir",
                out.to_str().unwrap(),
            ],
        )
        .args(extra)
        .ok();
        let state = crate::util::read_state(&done.out.join("trainer_state.json"));
        let eval = state["log_history"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e.get("eval_loss").is_some())
            .expect("an evaluation was logged")
            .clone();
        let mut keys: Vec<String> = eval.as_object().unwrap().keys().cloned().collect();
        keys.retain(|k| !k.ends_with("_per_second") && !k.ends_with("runtime"));
        keys
    };
    let full = eval_keys("prediction_loss_only_off", &[]);
    assert!(full.contains(&"eval_accuracy".to_string()), "{full:?}");
    let loss_only = eval_keys("prediction_loss_only_on", &["--prediction_loss_only"]);
    assert_eq!(loss_only, ["epoch", "eval_loss", "step"]);
}
