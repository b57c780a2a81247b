//! The logger integrations of `--report_to`, each checked against the real
//! reader or server of its tool, installed in the readers environment
//! (`make test-env`).

/// HF's `rewrite_logs` in Python, for the reader scripts of the integrations
/// that use it (prefixed to them with [`with_rewrite_logs`]).
const REWRITE_LOGS: &str = r#"
def rewrite_logs(d):
    out = {}
    for k, v in d.items():
        if k.startswith("eval_"):
            out["eval/" + k[5:]] = v
        elif k.startswith("test_"):
            out["test/" + k[5:]] = v
        else:
            out["train/" + k] = v
    return out
"#;

/// `script` with [`REWRITE_LOGS`] defined before it.
fn with_rewrite_logs(script: &str) -> String {
    format!("{REWRITE_LOGS}\n{script}")
}

mod azure_ml;
mod clearml;
mod codecarbon;
mod comet_ml;
mod dagshub;
mod dvclive;
mod flyte;
mod mlflow;
mod mlflow_artifacts;
mod neptune;
mod report_to_all;
mod stopped;
mod tensorboard;
mod trackio;
mod wandb;
mod wandb_models;
mod wandb_watch;
