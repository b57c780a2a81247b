//! The training-argument table that the host, the WIT and the SDK follow
//! (`trainbox_pyformat::args::TRAINING_ARGS`), against transformers itself:
//! the names are `TrainingArguments` fields and the defaults are what its
//! `to_dict()` holds. (The host's `to_json` and the SDK's are checked against
//! the table by their unit tests, the table against the WIT by its own.)

use crate::util::run_torch_python;
use trainbox_pyformat::args::TRAINING_ARGS;
use trainbox_pyformat::Json;

/// `TrainingArguments().to_dict()` and the dataclass's field names, from
/// transformers (devices pinned to the CPU, so that `accelerate` is not needed).
fn hf_defaults() -> Json {
    let script = r#"
import dataclasses, json, warnings
warnings.simplefilter("ignore")
import torch
from transformers import TrainingArguments
TrainingArguments._setup_devices = property(lambda self: torch.device("cpu"))
print(json.dumps({
    "to_dict": TrainingArguments().to_dict(),
    "fields": [f.name for f in dataclasses.fields(TrainingArguments)],
}))
"#;
    Json::parse(&run_torch_python(script, &[])).unwrap()
}

#[test]
fn training_args_table_is_transformers_fields_and_defaults() {
    let hf = hf_defaults();
    let hf = hf.as_object().unwrap();
    let to_dict = hf["to_dict"].as_object().unwrap();
    let fields: Vec<&str> = hf["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
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
