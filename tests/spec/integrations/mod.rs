//! The logger integrations of `--report_to`, each checked against the real
//! reader or server of its tool, installed in the readers environment
//! (`make test-env`).

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
mod stopped;
mod tensorboard;
mod trackio;
mod wandb;
mod wandb_models;
mod wandb_watch;
