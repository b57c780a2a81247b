//! The learning-rate schedules against transformers 5.24 itself, bit for
//! bit: HF's `get_scheduler` on a real torch optimizer gives the learning
//! rate of every step (LambdaLR: `base_lr * lr_lambda(step)` in Python
//! floats; ReduceLROnPlateau and GreedyLR stepped on a metric sequence);
//! trainbox's `Schedule` must give the same f64s, compared as bits. Every
//! `SchedulerType`, with and without warm-up, with `lr_scheduler_kwargs`.
//! Real runs of both trainers (`optimizers.rs`) compare the logged
//! `learning_rate`s bitwise too.

use serde_json::{json, Value};
use trainbox::args::{ArgValue, SchedulerType};
use trainbox::pyjson::Json;
use trainbox::trainer::schedule::Schedule;

use crate::util::{fresh_dir, run_torch_python};

/// For each case `{type, lr, warmup, total, kwargs, metrics}`: the bits of
/// the learning rate HF's scheduler gives before each step (LambdaLR:
/// steps 0..=total+1; metric-stepped: before each metric and after the last).
const HF_SCHEDULES: &str = r#"
import json, struct, sys
import torch
from transformers.optimization import get_scheduler

def bits(x):
    return struct.unpack("<Q", struct.pack("<d", float(x)))[0]

cases = json.load(open(sys.argv[1]))
out = []
for c in cases:
    p = torch.nn.Parameter(torch.zeros(1))
    # HF's two parameter groups (decay, no decay).
    q = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [p], "weight_decay": 0.1},
                           {"params": [q], "weight_decay": 0.0}], lr=c["lr"])
    sched = get_scheduler(c["type"], opt, num_warmup_steps=c["warmup"],
                          num_training_steps=c["total"],
                          scheduler_specific_kwargs=c["kwargs"])
    lrs = []
    if c["metrics"] is None:
        for _ in range(c["total"] + 2):
            lrs.append(bits(sched.get_last_lr()[0]))
            opt.step()
            sched.step()
    else:
        for m in c["metrics"]:
            lrs.append(bits(opt.param_groups[0]["lr"]))
            sched.step(m)
        lrs.append(bits(opt.param_groups[0]["lr"]))
    out.append(lrs)
print(json.dumps(out))
"#;

/// A case: the schedule, base learning rate, warm-up and total steps, the
/// kwargs and, for metric-stepped schedules, the metrics.
fn cases() -> Vec<Value> {
    let metrics = json!([
        1.0, 0.9, 0.95, 0.95, 0.95, 0.8, 0.8, 0.8, 0.8, 0.7, 0.71, 0.72, 0.73, 0.74, 0.5, 0.4, 0.3,
        0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1
    ]);
    let lambda = |t: &str, lr: f64, w: u64, total: u64, kwargs: Value| json!({"type": t, "lr": lr, "warmup": w, "total": total, "kwargs": kwargs, "metrics": null});
    let on_metric = |t: &str, lr: f64, kwargs: Value| json!({"type": t, "lr": lr, "warmup": 3, "total": 30, "kwargs": kwargs, "metrics": metrics});
    vec![
        lambda("linear", 5e-5, 0, 10, json!({})),
        lambda("linear", 3e-4, 7, 53, json!({})),
        lambda("linear", 0.1, 40, 30, json!({})),
        lambda("cosine", 5e-5, 5, 40, json!({})),
        lambda("cosine", 0.01, 0, 37, json!({"num_cycles": 1.5})),
        lambda(
            "cosine_with_restarts",
            2e-5,
            4,
            50,
            json!({"num_cycles": 3}),
        ),
        lambda("cosine_with_restarts", 1e-3, 0, 23, json!({})),
        lambda("polynomial", 5e-5, 3, 31, json!({})),
        lambda(
            "polynomial",
            1e-3,
            0,
            29,
            json!({"lr_end": 1e-6, "power": 2.0}),
        ),
        lambda(
            "polynomial",
            0.07,
            5,
            33,
            json!({"lr_end": 0.001, "power": 0.5}),
        ),
        lambda("constant", 5e-5, 4, 12, json!({})),
        lambda("constant_with_warmup", 3e-5, 6, 20, json!({})),
        lambda("inverse_sqrt", 1e-3, 10, 60, json!({})),
        lambda("inverse_sqrt", 1e-3, 4, 45, json!({"timescale": 25})),
        lambda("inverse_sqrt", 1e-3, 0, 15, json!({})),
        lambda("cosine_with_min_lr", 5e-5, 5, 41, json!({"min_lr": 1e-6})),
        lambda(
            "cosine_with_min_lr",
            2e-4,
            0,
            27,
            json!({"min_lr_rate": 0.1, "num_cycles": 0.75}),
        ),
        lambda(
            "cosine_warmup_with_min_lr",
            5e-5,
            6,
            35,
            json!({"min_lr_rate": 0.05}),
        ),
        lambda(
            "cosine_warmup_with_min_lr",
            1e-3,
            7,
            30,
            json!({"min_lr": 1e-5, "warmup_lr_rate": 0.1}),
        ),
        lambda(
            "warmup_stable_decay",
            5e-5,
            5,
            40,
            json!({"num_decay_steps": 10}),
        ),
        lambda(
            "warmup_stable_decay",
            1e-3,
            6,
            44,
            json!({"num_decay_steps": 12, "warmup_type": "cosine", "decay_type": "1-sqrt", "min_lr_ratio": 0.1}),
        ),
        lambda(
            "warmup_stable_decay",
            3e-4,
            4,
            30,
            json!({"num_decay_steps": 9, "num_stable_steps": 10, "warmup_type": "1-sqrt", "decay_type": "linear", "num_cycles": 1.0}),
        ),
        on_metric("reduce_lr_on_plateau", 0.1, json!({})),
        on_metric(
            "reduce_lr_on_plateau",
            0.1,
            json!({"patience": 1, "factor": 0.5, "cooldown": 1}),
        ),
        on_metric(
            "reduce_lr_on_plateau",
            0.3,
            json!({"mode": "max", "threshold_mode": "abs", "threshold": 0.01, "patience": 0, "factor": 0.3, "min_lr": 0.01}),
        ),
        on_metric(
            "greedy",
            0.1,
            json!({"patience": 1, "factor": 0.5, "min_lr": 0.02}),
        ),
        on_metric(
            "greedy",
            0.1,
            json!({"patience": 0, "factor": 0.7, "smooth": true, "window_size": 3, "warmup": 1, "cooldown": 1, "min_lr": 0.05, "max_lr": 0.2, "reset_start": 2}),
        ),
    ]
}

/// trainbox's learning rates of a case, as `HF_SCHEDULES` records HF's.
fn trainbox_lrs(case: &Value) -> Vec<u64> {
    let kind = SchedulerType::from_text(case["type"].as_str().unwrap()).unwrap();
    let kwargs = Json::parse(&case["kwargs"].to_string()).unwrap();
    let (lr, warmup, total) = (
        case["lr"].as_f64().unwrap(),
        case["warmup"].as_u64().unwrap(),
        case["total"].as_u64().unwrap(),
    );
    let mut s = Schedule::new(kind, lr, warmup, total, Some(&kwargs))
        .unwrap_or_else(|e| panic!("{case}: {e}"));
    match case["metrics"].as_array() {
        None => (0..total + 2).map(|step| s.lr(step).to_bits()).collect(),
        Some(metrics) => {
            let mut out = Vec::new();
            for m in metrics {
                out.push(s.lr(0).to_bits());
                s.step_on_metric(m.as_f64().unwrap());
            }
            out.push(s.lr(0).to_bits());
            out
        }
    }
}

#[test]
fn every_scheduler_type_gives_hfs_learning_rates_bit_for_bit() {
    let cases = cases();
    // Every SchedulerType is among the cases.
    for kind in SchedulerType::CHOICES {
        assert!(
            cases.iter().any(|c| c["type"] == *kind),
            "no case for {kind}"
        );
    }
    let dir = fresh_dir("schedules-bits");
    let file = dir.join("cases.json");
    std::fs::write(&file, Value::Array(cases.clone()).to_string()).unwrap();
    let hf: Vec<Vec<u64>> =
        serde_json::from_str(run_torch_python(HF_SCHEDULES, &[&file]).trim()).unwrap();
    assert_eq!(hf.len(), cases.len());
    for (case, want) in cases.iter().zip(&hf) {
        let got = trainbox_lrs(case);
        for (i, (w, g)) in want.iter().zip(&got).enumerate() {
            assert_eq!(
                w,
                g,
                "{case}: the learning rate at step {i} is HF's {} and trainbox's {}",
                f64::from_bits(*w),
                f64::from_bits(*g)
            );
        }
        assert_eq!(want.len(), got.len(), "{case}");
        // The schedule is not constant where it should move.
        if case["type"] != "constant" {
            assert!(
                want.windows(2).any(|w| w[0] != w[1]),
                "{case}: no change: {want:?}"
            );
        }
    }
}
