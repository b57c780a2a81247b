//! The logger integrations that ship with trainbox (`--report_to`), as HF's
//! `INTEGRATION_TO_CALLBACK`: each is a plugin in the built-in folder that
//! runs with only what it needs, granted here because the user named it:
//! HF's environment variables by name, the one directory it writes, and for
//! MLflow the one origin of `MLFLOW_TRACKING_URI`. Facts about the machine
//! that a plugin cannot see (host name, process id, CPU) come in its config.
//! Both hosts grant them here: `trainbox train --report_to` and the Python
//! package's `PluginCallback(report_to=...)`.

mod env;
pub mod fresh;
mod grants;
mod limits;
mod settings;
#[cfg(test)]
mod tests;

use anyhow::{bail, Result};

pub use settings::settings;

/// What of the run's `TrainingArguments` the integrations' grants read;
/// each host makes it from its own arguments (`trainbox train`'s, HF's).
#[derive(Clone, Debug, PartialEq)]
pub struct IntegrationArgs {
    /// `output_dir`: the run's folder (checkpoints lent to uploaders,
    /// TensorBoard's `runs/`, MLflow's local store).
    pub output_dir: String,
    /// `logging_dir` (HF 4's field): TensorBoard writes right there.
    pub logging_dir: Option<String>,
    /// `project`: trackio's project name.
    pub project: String,
}

impl Default for IntegrationArgs {
    /// HF's defaults.
    fn default() -> Self {
        IntegrationArgs {
            output_dir: "trainer_output".into(),
            logging_dir: None,
            project: "huggingface".into(),
        }
    }
}

/// The shipped integrations, in HF's `"all"` order. Each is a plugin of
/// that name in the built-in folder.
pub const INTEGRATIONS: &[&str] = &[
    "comet_ml",
    "dagshub",
    "dvclive",
    "mlflow",
    "neptune",
    "tensorboard",
    "wandb",
    "codecarbon",
    "clearml",
    "trackio",
];

/// Integrations selected only by name: HF's `"all"` leaves them out.
pub const BY_NAME_ONLY: &[&str] = &["flyte", "azure_ml"];

/// The integrations `report_to` asks for, in order (`all` expands to every
/// shipped one whose configuration is present, see [`missing_for_all`]); an
/// unknown name is an error listing the supported ones. When `all` leaves
/// integrations out, one line says which and what each needs.
pub fn selected(report_to: &[String]) -> Result<Vec<&'static str>> {
    let get = |v: &str| std::env::var(v).ok().filter(|v| !v.is_empty());
    if report_to.iter().any(|n| n == "all") {
        let skipped: Vec<String> = INTEGRATIONS
            .iter()
            .filter_map(|i| missing_for_all(i, &get).map(|why| format!("{i} ({why})")))
            .collect();
        if !skipped.is_empty() {
            crate::ui::info(&format!(
                "--report_to all: not loading {}: their configuration is not set",
                skipped.join(", ")
            ));
        }
    }
    select(report_to, &get)
}

/// [`selected`] with `get` reading the environment.
fn select(report_to: &[String], get: &dyn Fn(&str) -> Option<String>) -> Result<Vec<&'static str>> {
    let mut out: Vec<&'static str> = Vec::new();
    for name in report_to {
        let names: Vec<&'static str> = if name == "all" {
            INTEGRATIONS
                .iter()
                .copied()
                .filter(|i| missing_for_all(i, get).is_none())
                .collect()
        } else {
            match INTEGRATIONS.iter().chain(BY_NAME_ONLY).find(|i| *i == name) {
                Some(i) => vec![*i],
                None => bail!(
                    "--report_to {name}: {name} is not supported, only {} are supported (or \"all\", \"none\")",
                    [INTEGRATIONS, BY_NAME_ONLY].concat().join(", ")
                ),
            }
        };
        for n in names {
            if !out.contains(&n) {
                out.push(n);
            }
        }
    }
    Ok(out)
}

/// Why `--report_to all` leaves integration `name` out (what to set), or
/// `None` when it takes it. HF 5.24's `get_available_reporting_integrations`
/// takes every installed one; every one is "installed" here, so `all` takes
/// those whose configuration is present, the ones that can log with what
/// is set: the local ones always (tensorboard, dvclive, codecarbon,
/// clearml's offline session, trackio's local project unless a Space or
/// server is named, mlflow: its server, else a local store), and the
/// others once their offline mode or their server is set. `get` reads an
/// environment variable (an empty one is unset).
fn missing_for_all(name: &str, get: &dyn Fn(&str) -> Option<String>) -> Option<&'static str> {
    let falsy = |v: &str| {
        matches!(
            v.trim().to_lowercase().as_str(),
            "f" | "false" | "no" | "n" | "off" | "0"
        )
    };
    match name {
        "comet_ml" if !get("COMET_START_ONLINE").is_some_and(|v| falsy(&v)) => {
            Some("set COMET_START_ONLINE=0")
        }
        "dagshub" if !get("MLFLOW_TRACKING_URI").is_some_and(|u| is_dagshub_uri(&u)) => {
            Some("set MLFLOW_TRACKING_URI=https://dagshub.com/<owner>/<repo>.mlflow")
        }
        "neptune" if !matches!(get("NEPTUNE_MODE").as_deref(), Some("offline" | "debug")) => {
            Some("set NEPTUNE_MODE=offline")
        }
        "wandb" if !matches!(get("WANDB_MODE").as_deref(), Some("offline" | "dryrun")) => {
            Some("set WANDB_MODE=offline")
        }
        "trackio" if get("TRACKIO_SPACE_ID").is_some() || get("TRACKIO_SERVER_URL").is_some() => {
            Some("unset TRACKIO_SPACE_ID and TRACKIO_SERVER_URL: it writes a local project only")
        }
        _ => None,
    }
}

/// Whether an MLflow tracking URI is a DagsHub repository's:
/// `http[s]://host/…/<owner>/<repo>.mlflow`.
fn is_dagshub_uri(uri: &str) -> bool {
    let Some(rest) = uri
        .strip_prefix("https://")
        .or_else(|| uri.strip_prefix("http://"))
    else {
        return false;
    };
    let parts: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    parts.len() >= 3
        && !parts[parts.len() - 2].is_empty()
        && parts[parts.len() - 1].len() > ".mlflow".len()
        && parts[parts.len() - 1].ends_with(".mlflow")
}
