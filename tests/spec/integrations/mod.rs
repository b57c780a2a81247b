//! The logger integrations of `--report_to`, each checked against the real
//! reader or server of its tool, installed in the readers environment
//! (`make test-env`).

mod clearml;
mod codecarbon;
mod comet_ml;
mod dvclive;
mod flyte;
mod mlflow;
mod stopped;
mod tensorboard;
mod wandb;
