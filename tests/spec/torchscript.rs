//! TorchScript modules exported in Python (scripted and traced), loaded by
//! the library, trained a few SGD steps with tch on their own parameters,
//! saved as `model.pt` and read back by `torch.jit.load` in Python.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::Tensor;
use trainbox::torchscript;

use crate::util::{fresh_dir, run_torch_python};

/// The models, the inputs and two files that are not modules.
const EXPORT: &str = r#"
import torch
from typing import Dict, Optional
from safetensors.torch import save_file


class Mlp(torch.nn.Module):
    """Scripted; returns the loss; a trailing optional argument."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))

    def forward(self, x: torch.Tensor, labels: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        return ((self.net(x).squeeze(-1) - labels) ** 2).mean()


class Classifier(torch.nn.Module):
    """Traced; returns (loss, logits) as HF's return_dict=False."""

    def __init__(self):
        super().__init__()
        self.head = torch.nn.Linear(4, 3)

    def forward(self, features, labels):
        logits = self.head(features)
        return torch.nn.functional.cross_entropy(logits, labels), logits


class Regressor(torch.nn.Module):
    """Scripted; returns a dict with loss (when labels are given) and logits;
    HF's optional arguments; dropout, so that train and eval mode differ."""

    def __init__(self):
        super().__init__()
        self.drop = torch.nn.Dropout(0.2)
        self.lin = torch.nn.Linear(4, 1)

    def forward(
        self, x: torch.Tensor, mask: Optional[torch.Tensor] = None, labels: Optional[torch.Tensor] = None
    ) -> Dict[str, torch.Tensor]:
        if mask is not None:
            x = x * mask
        logits = self.lin(self.drop(x)).squeeze(-1)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = torch.nn.functional.mse_loss(logits, labels)
        return out


class PerSample(torch.nn.Module):
    """Returns one loss per sample: not HF's contract."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return (self.lin(x).squeeze(-1) - labels) ** 2


def main(out):
    torch.manual_seed(0)
    x = torch.randn(16, 4)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.25
    cls = torch.argmax(x[:, :3], dim=1)
    save_file({"x": x, "y": y, "cls": cls}, f"{out}/inputs.safetensors")
    torch.jit.script(Mlp()).save(f"{out}/mlp.pt")
    torch.jit.trace(Classifier(), (x, cls)).save(f"{out}/classifier.pt")
    torch.jit.script(Regressor()).save(f"{out}/regressor.pt")
    torch.jit.script(PerSample()).save(f"{out}/per_sample.pt")
    torch.save(Mlp().state_dict(), f"{out}/state_dict.pt")
    with open(f"{out}/notes.pt", "w") as f:
        f.write("not a model\n")
"#;

/// Loads each trained `model.pt` in Python, runs it in eval mode on the
/// same inputs and prints its loss and how far its state_dict is from the
/// trained parameters Rust wrote.
const CHECK: &str = r#"
import json, sys, torch
from safetensors.torch import load_file

out = sys.argv[1]
data = load_file(f"{out}/inputs.safetensors")
cases = {"mlp": ("x", "y"), "classifier": ("x", "cls"), "regressor": ("x", "y")}
for name, (a, b) in cases.items():
    m = torch.jit.load(f"{out}/{name}-trained/model.pt")
    m.eval()
    with torch.no_grad():
        r = m(data[a], None, data[b]) if name == "regressor" else m(data[a], data[b])
    loss = r if isinstance(r, torch.Tensor) else (r["loss"] if isinstance(r, dict) else r[0])
    trained = load_file(f"{out}/{name}-trained/params.safetensors")
    state = m.state_dict()
    diff = max((state[k] - trained[k]).abs().max().item() for k in trained)
    print(json.dumps({"name": name, "loss": loss.item(), "keys": sorted(state), "diff": diff}))
"#;

fn export(test: &str) -> PathBuf {
    let dir = fresh_dir(test);
    std::fs::write(dir.join("models.py"), EXPORT).unwrap();
    run_torch_python(
        "import sys; sys.path.insert(0, sys.argv[1]); import models; models.main(sys.argv[1])",
        &[&dir],
    );
    dir
}

fn inputs(dir: &Path) -> BTreeMap<String, Tensor> {
    Tensor::read_safetensors(dir.join("inputs.safetensors"))
        .unwrap()
        .into_iter()
        .collect()
}

fn columns(data: &BTreeMap<String, Tensor>, pairs: &[(&str, &str)]) -> BTreeMap<String, Tensor> {
    pairs
        .iter()
        .map(|(column, from)| (column.to_string(), data[*from].shallow_clone()))
        .collect()
}

/// Trains `model` for `steps` SGD steps on `cols`; returns the eval-mode
/// loss before and after.
fn sgd(
    model: &mut torchscript::ScriptModel,
    cols: &BTreeMap<String, Tensor>,
    steps: usize,
) -> (f64, f64) {
    model.eval().unwrap();
    let first = tch::no_grad(|| model.forward(cols).unwrap().loss.double_value(&[]));
    model.train().unwrap();
    for _ in 0..steps {
        for (_, p) in model.named_parameters() {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
        let loss = model.forward(cols).unwrap().loss;
        loss.backward();
        tch::no_grad(|| {
            for (name, p) in model.named_parameters() {
                let g = p.grad();
                assert!(g.defined(), "{name} has no gradient");
                let _ = p.shallow_clone().f_sub_(&(g * 0.1)).unwrap();
            }
        });
    }
    model.eval().unwrap();
    let last = tch::no_grad(|| model.forward(cols).unwrap().loss.double_value(&[]));
    (first, last)
}

#[test]
fn scripted_and_traced_modules_train_and_load_back_in_python() {
    let dir = export("torchscript-train");
    let data = inputs(&dir);
    let cases = [
        (
            "mlp",
            [("x", "x"), ("labels", "y")],
            vec!["x", "labels", "mask"],
        ),
        (
            "classifier",
            [("features", "x"), ("labels", "cls")],
            vec!["features", "labels"],
        ),
        (
            "regressor",
            [("x", "x"), ("labels", "y")],
            vec!["x", "mask", "labels"],
        ),
    ];
    let mut losses = BTreeMap::new();
    for (name, pairs, args) in cases {
        let mut model = torchscript::load(dir.join(format!("{name}.pt"))).unwrap();
        assert_eq!(model.input_names(), args.as_slice(), "{name}");
        let names: Vec<&str> = model
            .named_parameters()
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        let mut stored: Vec<String> = model.var_store().variables().into_keys().collect();
        stored.sort();
        let mut sorted: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        sorted.sort();
        assert_eq!(
            stored, sorted,
            "{name}: the var store holds the module's names"
        );
        assert!(model
            .named_parameters()
            .iter()
            .all(|(_, p)| p.requires_grad()));
        let cols = columns(&data, &pairs);
        let out = model.forward(&cols).unwrap();
        if name != "mlp" {
            assert_eq!(out.logits.unwrap().size()[0], 16, "{name}: logits");
        }
        let (first, last) = sgd(&mut model, &cols, 30);
        assert!(last < 0.8 * first, "{name}: loss {first} -> {last}");
        let saved = dir.join(format!("{name}-trained"));
        std::fs::create_dir_all(&saved).unwrap();
        model.save(saved.join("model.pt")).unwrap();
        Tensor::write_safetensors(model.named_parameters(), saved.join("params.safetensors"))
            .unwrap();
        losses.insert(name.to_string(), (last, sorted));
    }
    let printed = run_torch_python(CHECK, &[&dir]);
    let mut seen = 0;
    for line in printed.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let name = v["name"].as_str().unwrap();
        let (loss, keys) = &losses[name];
        let py = v["loss"].as_f64().unwrap();
        assert!(
            (py - loss).abs() <= 1e-5 * loss.abs().max(1e-3),
            "{name}: python {py}, rust {loss}"
        );
        assert_eq!(
            v["diff"].as_f64().unwrap(),
            0.0,
            "{name}: state_dict = trained parameters"
        );
        let py_keys: Vec<String> = serde_json::from_value(v["keys"].clone()).unwrap();
        assert_eq!(&py_keys, keys, "{name}: parameter names");
        seen += 1;
    }
    assert_eq!(seen, 3, "{printed}");
}

fn error(result: anyhow::Result<impl std::fmt::Debug>) -> String {
    format!("{:#}", result.unwrap_err())
}

#[test]
fn bad_files_and_bad_columns_are_one_clear_error() {
    let dir = export("torchscript-bad");
    let data = inputs(&dir);
    for (file, why) in [
        ("notes.pt", "not a ZIP archive"),
        ("state_dict.pt", "constants.pkl"),
        ("missing.pt", "no such file"),
    ] {
        let err = error(torchscript::load(dir.join(file)));
        assert!(err.contains(why), "{err}");
        assert!(err.contains(file), "{err}");
        assert!(
            err.contains("torch.jit.trace(model, example_inputs).save"),
            "{err}"
        );
    }

    let classifier = dir.join("classifier.pt");
    let mut model = torchscript::load(&classifier).unwrap();
    let err = error(model.forward(&columns(&data, &[("features", "x")])));
    assert!(err.contains(&classifier.display().to_string()), "{err}");
    assert!(
        err.contains("no column `labels` for forward's argument `labels`"),
        "{err}"
    );
    // HF's model_input_names: other names for the same arguments.
    model
        .set_input_names(vec!["x".into(), "cls".into()])
        .unwrap();
    assert!(model
        .forward(&columns(&data, &[("x", "x"), ("cls", "cls")]))
        .is_ok());
    let err = error(model.forward(&columns(&data, &[("x", "x")])));
    assert!(
        err.contains("no column `cls` for forward's argument `labels`"),
        "{err}"
    );
    let err = error(model.set_input_names(vec!["a".into(), "b".into(), "c".into()]));
    assert!(
        err.contains("forward takes 2 arguments (features, labels)"),
        "{err}"
    );

    let err = error(
        torchscript::load(dir.join("per_sample.pt"))
            .unwrap()
            .forward(&columns(&data, &[("x", "x"), ("labels", "y")])),
    );
    assert!(
        err.contains("per_sample.pt") && err.contains("[16], not a scalar"),
        "{err}"
    );

    let mlp = torchscript::load(dir.join("mlp.pt")).unwrap();
    let mut cols = columns(&data, &[("x", "x"), ("labels", "y")]);
    cols.insert("x".into(), data["x"].to_kind(tch::Kind::Int64));
    let err = error(mlp.forward(&cols));
    assert!(
        err.contains("mlp.pt: forward failed on the columns x→x Int64[16, 4]"),
        "{err}"
    );
    assert!(err.contains("Error"), "{err}");
    assert!(
        !err.contains("Exception raised from"),
        "no C++ backtrace: {err}"
    );
    cols.insert("x".into(), Tensor::ones([16, 5], tch::kind::FLOAT_CPU));
    let err = error(mlp.forward(&cols));
    assert!(
        err.contains("mlp.pt: forward failed") && err.contains("16x5"),
        "{err}"
    );

    let regressor = torchscript::load(dir.join("regressor.pt")).unwrap();
    let err = error(regressor.forward(&columns(&data, &[("x", "x")])));
    assert!(
        err.contains("regressor.pt: forward returned a dict without a \"loss\""),
        "{err}"
    );
}

#[test]
fn train_mode_and_eval_mode_and_optional_arguments_reach_the_module() {
    let dir = export("torchscript-modes");
    let data = inputs(&dir);
    let mut model = torchscript::load(dir.join("regressor.pt")).unwrap();
    let cols = columns(&data, &[("x", "x"), ("labels", "y")]);
    let loss = |m: &torchscript::ScriptModel, cols: &BTreeMap<String, Tensor>| {
        tch::no_grad(|| m.forward(cols).unwrap().loss.double_value(&[]))
    };
    model.eval().unwrap();
    assert_eq!(loss(&model, &cols), loss(&model, &cols), "eval: no dropout");
    model.train().unwrap();
    assert_ne!(loss(&model, &cols), loss(&model, &cols), "train: dropout");
    // `mask` (between x and labels, default None) is passed when present,
    // None when not.
    model.eval().unwrap();
    let mut masked = columns(&data, &[("x", "x"), ("labels", "y")]);
    masked.insert("mask".into(), Tensor::zeros([16, 4], tch::kind::FLOAT_CPU));
    let mut zero_x = columns(&data, &[("labels", "y")]);
    zero_x.insert("x".into(), Tensor::zeros([16, 4], tch::kind::FLOAT_CPU));
    assert_eq!(loss(&model, &masked), loss(&model, &zero_x));
    assert_ne!(loss(&model, &masked), loss(&model, &cols));
}
