//! Devices and mixed precision on the CPU (`docs/scale.md`): `--bf16`
//! trains the demo as float32 does, with float32 weights in checkpoints;
//! HF's checks of `--fp16`, `--bf16`, `--tf32` and `--use_cpu`; and the
//! `--fp16` loop (loss scaling, skipped steps, the scaler in checkpoints)
//! through the library, where float16 autocast can be forced on the CPU.

use crate::util::Run;
use anyhow::Result;
use std::cell::Cell;
use std::path::Path;
use tch::{nn, Kind, Tensor};
use trainbox::device::Precision;
use trainbox::{Batch, Model, TensorDataset, Trainer, TrainingArguments, Value};

/// The last evaluation of a run: (eval_accuracy, eval_loss).
fn last_eval(done: &crate::util::Done) -> (f64, f64) {
    let state = done.state("trainer_state.json");
    let eval = state["log_history"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|e| e.get("eval_accuracy").is_some())
        .expect("an evaluation")
        .clone();
    (
        eval["eval_accuracy"].as_f64().unwrap(),
        eval["eval_loss"].as_f64().unwrap(),
    )
}

/// The sort demo for 300 steps of 32 (about 6 s in float32 and 10 s in
/// bfloat16 on two cores), evaluated at the end, one checkpoint.
fn sort_run(test: &str, extra: &[&str]) -> crate::util::Done {
    let run = Run::command(test, &["train", "--task", "sort", "--disable_tqdm"]);
    let out = run.dir.join("out");
    run.args(&["--output_dir", out.to_str().unwrap()])
        .args(&["--max_steps", "300", "--learning_rate", "1e-3"])
        .args(&[
            "--per_device_train_batch_size",
            "32",
            "--logging_steps",
            "100",
        ])
        .args(&[
            "--task_option",
            "train_size=8192",
            "--task_option",
            "eval_size=512",
        ])
        .args(&["--eval_strategy", "steps", "--eval_steps", "300"])
        .args(&["--save_strategy", "steps", "--save_steps", "300"])
        .args(extra)
        .ok()
}

/// Measured: float32 0.9161 and bfloat16 0.9171 token accuracy (chance is
/// 0.1; 8192 evaluated tokens). The band, 0.02, is several times the
/// difference seen and the sampling error (±0.003), and far below what
/// learning gives (0.8).
#[test]
fn bf16_on_the_cpu_trains_the_demo_to_float32s_accuracy_with_float32_checkpoints() {
    let fp32 = sort_run("precision_sort_fp32", &[]);
    let bf16 = sort_run("precision_sort_bf16", &["--bf16", "--use_cpu"]);
    assert!(
        bf16.stderr
            .contains("training on cpu (mixed precision: bf16)"),
        "{}",
        bf16.stderr
    );
    let (acc32, loss32) = last_eval(&fp32);
    let (acc16, loss16) = last_eval(&bf16);
    assert!(acc32 > 0.85, "float32 learned to sort: {acc32}");
    assert!(
        (acc16 - acc32).abs() < 0.02,
        "bf16 {acc16} vs float32 {acc32}"
    );
    // Autocast really ran: the same seed and data give another loss.
    assert_ne!(loss16, loss32, "bf16 and float32 runs are identical");
    assert!(
        (loss16 - loss32).abs() < 0.1 * loss32,
        "{loss16} vs {loss32}"
    );
    // Master weights, optimizer moments and checkpoints stay float32.
    let ckpt = bf16.out.join("checkpoint-300");
    for file in ["model.safetensors", "optimizer.safetensors"] {
        let tensors = Tensor::read_safetensors(ckpt.join(file)).unwrap();
        assert!(!tensors.is_empty());
        for (name, t) in tensors {
            assert_eq!(t.kind(), Kind::Float, "{file}: {name}");
        }
    }
    assert!(
        !ckpt.join("scaler.safetensors").exists(),
        "bf16 scales no loss"
    );
    let args = crate::util::read_state(&ckpt.join("training_args.json"));
    assert_eq!(args["bf16"], true);
    assert_eq!(args["use_cpu"], true);
    assert_eq!(args["fp16"], false);
    assert_eq!(args["tf32"], serde_json::Value::Null);
}

#[test]
fn fp16_with_bf16_is_refused_with_hfs_error() {
    let err = Run::regression("precision_fp16_bf16")
        .args(&["--fp16", "--bf16", "--use_cpu"])
        .fails();
    assert!(
        err.contains("At most one of fp16 and bf16 can be True, but not both"),
        "{err}"
    );
}

#[test]
fn tf32_and_bf16_without_a_gpu_are_hfs_errors() {
    if tch::Cuda::is_available() {
        // On a GPU machine both are accepted (tools/gpu-check.sh runs them).
        return;
    }
    let err = Run::regression("precision_tf32").arg("--tf32").fails();
    assert!(
        err.contains("--tf32 requires Ampere or a newer GPU arch, cuda>=11 and torch>=1.7"),
        "{err}"
    );
    // `--tf32 false` asks for nothing that is missing.
    Run::regression("precision_tf32_false")
        .args(&["--tf32", "false", "--max_steps", "2"])
        .ok();
    let err = Run::regression("precision_bf16_gpu").arg("--bf16").fails();
    assert!(
        err.contains("Your setup doesn't support bf16/gpu. You need to assign use_cpu"),
        "{err}"
    );
}

/// What transformers 5.24 (with accelerate 1.15) does with each flag set
/// on this machine: HF's error, or whether it runs native AMP.
fn hf_outcomes(cases: &[&[&str]]) -> Vec<serde_json::Value> {
    let script = r#"
import json, sys, warnings
warnings.simplefilter("ignore")
import torch
from transformers import TrainingArguments, Trainer
class M(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.l = torch.nn.Linear(1, 1)
    def forward(self, x, labels=None):
        return {"loss": ((self.l(x).squeeze(-1) - labels) ** 2).mean()}
out = []
for case in json.loads(sys.argv[1]):
    kw = {}
    for flag in case:
        name, _, value = flag[2:].partition("=")
        kw[name] = value != "false"
    try:
        args = TrainingArguments(output_dir=sys.argv[2], report_to="none", **kw)
        data = [{"x": torch.ones(1), "labels": torch.tensor(1.0)}] * 4
        trainer = Trainer(model=M(), args=args, train_dataset=data)
        out.append({"error": None, "native_amp": trainer.accelerator.native_amp,
                    "scaler": trainer.accelerator.scaler is not None})
    except ValueError as e:
        out.append({"error": str(e)})
print(json.dumps(out))
"#;
    let dir = crate::util::fresh_dir("precision_hf_outcomes");
    let cases_json = serde_json::to_string(cases).unwrap();
    let out = std::process::Command::new(crate::util::torch_python())
        .args(["-c", script, &cases_json, dir.join("hf").to_str().unwrap()])
        .output()
        .expect("running the torch environment's python (make test-env)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// trainbox's checks of the precision flags are transformers' own, on the
/// machine the tests run on: the same cases fail with HF's message, and
/// the others run mixed precision exactly where HF runs native AMP.
#[test]
fn precision_flags_are_checked_as_transformers_checks_them() {
    let cases: &[&[&str]] = &[
        &["--bf16"],
        &["--bf16", "--use_cpu"],
        &["--fp16"],
        &["--fp16", "--use_cpu"],
        &["--fp16", "--bf16", "--use_cpu"],
        &["--tf32"],
        &["--tf32=false"],
        &["--use_cpu"],
    ];
    let hf = hf_outcomes(cases);
    for (case, hf) in cases.iter().zip(&hf) {
        let flags: Vec<String> = case
            .iter()
            .flat_map(|f| match f.split_once('=') {
                Some((name, value)) => vec![name.to_string(), value.to_string()],
                None => vec![f.to_string()],
            })
            .collect();
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let name = format!("precision_hf_{}", case.join("").replace(['-', '='], "_"));
        let (ok, _, stderr) = Run::regression(&name)
            .args(&["--max_steps", "1", "--save_strategy", "no"])
            .args(&flags)
            .outcome();
        match hf["error"].as_str() {
            Some(error) => {
                assert!(!ok, "{case:?}: HF refuses ({error}), trainbox ran");
                let first = error.split(". ").next().unwrap();
                assert!(
                    stderr.contains(first),
                    "{case:?}: HF says {error:?}; trainbox: {stderr}"
                );
            }
            None => {
                assert!(ok, "{case:?}: HF runs, trainbox failed: {stderr}");
                let amp = stderr.contains("(mixed precision: ");
                assert_eq!(amp, hf["native_amp"] == true, "{case:?}: {hf} vs {stderr}");
                let scaled = stderr.contains("(mixed precision: fp16)");
                assert_eq!(scaled, hf["scaler"] == true, "{case:?}: {hf} vs {stderr}");
            }
        }
    }
}

/// `--use_cpu` is accepted and changes nothing on the CPU; `--fp16` on the
/// CPU trains in float32, as accelerate does, with a warning: the logs of
/// all three runs are the same.
#[test]
fn use_cpu_is_accepted_and_fp16_on_the_cpu_is_float32() {
    let losses = |done: &crate::util::Done| -> Vec<serde_json::Value> {
        let state = done.state("trainer_state.json");
        state["log_history"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e.get("loss").cloned())
            .collect()
    };
    let run = |test: &str, extra: &[&str]| {
        Run::regression(test)
            .args(&["--logging_steps", "2", "--save_strategy", "no"])
            .args(extra)
            .ok()
    };
    let plain = run("precision_plain", &[]);
    let cpu = run("precision_use_cpu", &["--use_cpu"]);
    let fp16 = run("precision_fp16_cpu", &["--fp16"]);
    assert!(losses(&plain).len() >= 10);
    assert_eq!(losses(&plain), losses(&cpu));
    assert_eq!(losses(&plain), losses(&fp16));
    assert!(
        fp16.stderr.contains("--fp16 on the CPU") && fp16.stderr.contains("trains in float32"),
        "{}",
        fp16.stderr
    );
    assert!(!plain.stderr.contains("training on"), "{}", plain.stderr);
}

/// y = w·x on 4 features (its loss / 1000), whose loss is multiplied by 1e35 in update
/// `blow_up` (1-based): the scaled gradients overflow float32.
struct Overflowing {
    vs: nn::VarStore,
    layer: nn::Linear,
    calls: Cell<u64>,
    blow_up: u64,
}

impl Overflowing {
    fn new(blow_up: u64) -> Overflowing {
        tch::manual_seed(3);
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let layer = nn::linear(vs.root() / "layer", 4, 1, Default::default());
        Overflowing {
            vs,
            layer,
            calls: Cell::new(0),
            blow_up,
        }
    }
}

impl Model for Overflowing {
    fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }
    fn loss(&self, batch: &Batch, train: bool) -> Result<Tensor> {
        let out = batch.get("x")?.apply(&self.layer).squeeze_dim(-1);
        // Under float16 autocast the linear layer runs in float16.
        assert_eq!(out.kind(), Kind::Half, "autocast is on");
        // Small enough that 2^16 times its float16 gradients stay finite.
        let loss = out
            .to_kind(Kind::Float)
            .mse_loss(batch.get("labels")?, tch::Reduction::Mean)
            * 1e-3;
        if train {
            self.calls.set(self.calls.get() + 1);
            if self.calls.get() == self.blow_up {
                return Ok(loss * 1e35);
            }
        }
        Ok(loss)
    }
}

fn data() -> TensorDataset {
    tch::manual_seed(5);
    let x = Tensor::randn([32, 4], (Kind::Float, tch::Device::Cpu));
    let y = x.matmul(&Tensor::from_slice(&[1.0f32, -2.0, 0.5, 3.0]));
    TensorDataset::new([("x", x), ("labels", y)])
}

fn fp16_args(out: &Path, max_steps: i64) -> TrainingArguments {
    TrainingArguments {
        output_dir: out.to_string_lossy().into_owned(),
        max_steps,
        learning_rate: 0.1,
        logging_steps: 1.0,
        save_steps: 1.0,
        per_device_train_batch_size: 8,
        fp16: true,
        ..Default::default()
    }
}

fn train_fp16(out: &Path, max_steps: i64, resume: Option<&Path>) -> Trainer {
    let mut args = fp16_args(out, max_steps);
    args.resume_from_checkpoint = resume.map(|p| p.to_string_lossy().into_owned());
    // Each run's model blows up in its own third update.
    let blow_up = if resume.is_some() { u64::MAX } else { 3 };
    let mut trainer = Trainer::builder(args, Box::new(Overflowing::new(blow_up)), Box::new(data()))
        .precision(Precision::Float16)
        .build()
        .unwrap();
    trainer.train().unwrap();
    trainer
}

fn weights(ckpt: &Path) -> Vec<(String, Vec<f32>)> {
    let mut w: Vec<(String, Vec<f32>)> = Tensor::read_safetensors(ckpt.join("model.safetensors"))
        .unwrap()
        .into_iter()
        .map(|(n, t)| (n, Vec::<f32>::try_from(&t.reshape([-1])).unwrap()))
        .collect();
    w.sort_by(|a, b| a.0.cmp(&b.0));
    w
}

/// (scale, growth_tracker) of a checkpoint's scaler.
fn scaler(ckpt: &Path) -> (f64, i64) {
    let t = Tensor::read_safetensors(ckpt.join("scaler.safetensors")).unwrap();
    let get = |n: &str| t.iter().find(|(k, _)| k == n).unwrap().1.shallow_clone();
    (
        get("scale").double_value(&[0]),
        get("growth_tracker").int64_value(&[0]),
    )
}

/// torch.amp.GradScaler in the loop: an overflow skips the optimizer
/// step and the schedule (HF's `optimizer_step_was_skipped`) but not the
/// global step, halves the scale, and logs the non-finite grad norm; the
/// scaler's state is checkpointed and a resume continues it exactly.
#[test]
fn fp16_loss_scaling_skips_overflowing_steps_and_resumes() {
    let dir = crate::util::fresh_dir("precision_fp16_scaler");
    let out = dir.join("out");
    let trainer = train_fp16(&out, 5, None);
    assert_eq!(trainer.state().global_step, 5);
    let logs: Vec<_> = trainer
        .state()
        .log_history
        .iter()
        .filter(|l| l.get("loss").is_some())
        .collect();
    assert_eq!(logs.len(), 5);
    let at = |i: usize, key: &str| logs[i].get(key).and_then(Value::as_f64).unwrap();
    assert!(at(1, "grad_norm").is_finite());
    assert!(!at(2, "grad_norm").is_finite(), "step 3 overflowed");
    // The linear schedule did not move in step 3: steps 3 and 4 share the rate.
    assert!(at(0, "learning_rate") > at(1, "learning_rate"));
    assert!(at(1, "learning_rate") > at(2, "learning_rate"));
    assert_eq!(at(2, "learning_rate"), at(3, "learning_rate"));
    assert!(at(3, "learning_rate") > at(4, "learning_rate"));
    // The skipped step left the weights as they were.
    let ckpt = |n: u64| out.join(format!("checkpoint-{n}"));
    assert_eq!(weights(&ckpt(2)), weights(&ckpt(3)));
    assert_ne!(weights(&ckpt(3)), weights(&ckpt(4)));
    assert_eq!(scaler(&ckpt(2)), (65536.0, 2));
    assert_eq!(scaler(&ckpt(3)), (32768.0, 0));
    assert_eq!(scaler(&ckpt(5)), (32768.0, 2));
    // Resumed from step 3, the run ends where the one in one go did.
    let resumed_out = dir.join("resumed");
    std::fs::create_dir_all(&resumed_out).unwrap();
    let from = resumed_out.join("checkpoint-3");
    copy_dir(&ckpt(3), &from);
    let resumed = train_fp16(&resumed_out, 5, Some(&from));
    assert_eq!(resumed.state().global_step, 5);
    let end = resumed_out.join("checkpoint-5");
    assert_eq!(scaler(&end), scaler(&ckpt(5)));
    assert_eq!(weights(&end), weights(&ckpt(5)));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}
