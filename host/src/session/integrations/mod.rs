//! The logger integrations that ship with trainbox (`--report_to`), as HF's
//! `INTEGRATION_TO_CALLBACK`: each is a plugin in the built-in folder that
//! runs with only what it needs, granted here because the user named it:
//! HF's environment variables by name, the one directory it writes, and for
//! MLflow the one origin of `MLFLOW_TRACKING_URI`. Facts about the machine
//! that a plugin cannot see (host name, process id, CPU) come in its config.

mod env;
mod grants;
mod limits;
mod settings;
#[cfg(test)]
mod tests;

use anyhow::{bail, Result};

pub use settings::settings;

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
/// shipped one); an unknown name is an error listing the supported ones.
pub fn selected(report_to: &[String]) -> Result<Vec<&'static str>> {
    select(report_to, &|v| std::env::var(v).ok())
}

/// [`selected`] with `get` reading the environment.
fn select(report_to: &[String], get: &dyn Fn(&str) -> Option<String>) -> Result<Vec<&'static str>> {
    let mut out: Vec<&'static str> = Vec::new();
    for name in report_to {
        let names: Vec<&'static str> = if name == "all" {
            INTEGRATIONS
                .iter()
                .copied()
                .filter(|i| in_all(i, get))
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

/// Whether `--report_to all` takes integration `name`, as HF 5.24's
/// `get_available_reporting_integrations` takes every installed one, except
/// where HF's callback then fails for want of configuration: comet_ml only
/// once `COMET_API_KEY` is set (`is_comet_available`), dagshub only with a
/// DagsHub `MLFLOW_TRACKING_URI`, neptune only in a mode that works here
/// (`NEPTUNE_MODE` `offline` or `debug`; its default needs a server). `get`
/// reads an environment variable.
fn in_all(name: &str, get: &dyn Fn(&str) -> Option<String>) -> bool {
    match name {
        "comet_ml" => get("COMET_API_KEY").is_some(),
        "dagshub" => get("MLFLOW_TRACKING_URI").is_some_and(|u| is_dagshub_uri(&u)),
        "neptune" => matches!(get("NEPTUNE_MODE").as_deref(), Some("offline" | "debug")),
        _ => true,
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
