//! The MLflow REST client of HF's `MLflowCallback` (transformers 5.24),
//! shared by three plugins: `mlflow`, `dagshub` (HF's `DagsHubCallback`,
//! MLflow at `https://dagshub.com/<owner>/<repo>.mlflow`) and `azure_ml`
//! (HF's `AzureMLCallback` through Azure ML's MLflow API). Each plugin
//! crate is one line: `export_plugin!(Plugin<Flavor>)`.
//!
//! Every `runs/create` carries the tag `trainbox.create_id`, a random id of
//! the run. A create whose reply is lost (a timeout on a cold server) is not
//! sent again blindly: the plugin searches for that tag for up to 5 s, and
//! only then creates again; a duplicate the first create still makes is
//! deleted at `finish`.
//!
//! When `MLFLOW_RUN_ID` is set, `MLFLOW_EXPERIMENT_NAME` is not used (the
//! run stays in its experiment; HF would raise if they differ), the run is
//! set RUNNING and renamed to `args.run_name` when given, and params it
//! already has keep their value (MLflow refuses a change; each is reported).
//! With `MLFLOW_NESTED_RUN` as well, `MLFLOW_RUN_ID` names the active run
//! (the one a calling script started, as `with mlflow.start_run()` around
//! HF's `trainer.train()`), and a new run is nested under it.
//!
//! Modules: `flavor` (the three plugins), `settings` (the environment),
//! `params`, `metrics`, `pyrepr` (Python's `str()`), `wire` (REST requests
//! and replies), `engine` (the run's life, retries and counts), `net`
//! (wasi:http), `filestore` (the local `mlruns` store without a tracking URI), `plugin` (the callback).

mod engine;
mod filestore;
pub mod flavor;
mod metrics;
mod net;
mod params;
mod plugin;
mod pyrepr;
pub mod settings;
mod wire;

#[cfg(test)]
mod fake_server;

pub use flavor::{AzureMl, DagsHub, Mlflow};
pub use plugin::Plugin;
