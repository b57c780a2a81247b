//! The logger integrations that ship with trainbox (`--report_to`), as HF's
//! `INTEGRATION_TO_CALLBACK`: each is a plugin in the built-in folder that
//! runs with only what it needs, granted here because the user named it:
//! HF's environment variables by name, the one directory it writes, and for
//! MLflow the one origin of `MLFLOW_TRACKING_URI`. Facts about the machine
//! that a plugin cannot see (host name, process id, CPU) come in its config.

use crate::args::TrainingArguments;
use crate::sandbox::{normalize_origin, Capability, DirGrant, PluginInfo, PluginSettings};
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};

/// The shipped integrations, in HF's `"all"` order. Each is a plugin of
/// that name in the built-in folder.
pub const INTEGRATIONS: &[&str] = &[
    "comet_ml",
    "dvclive",
    "mlflow",
    "tensorboard",
    "wandb",
    "codecarbon",
    "clearml",
];

/// Integrations selected only by name: HF's `"all"` leaves them out.
pub const BY_NAME_ONLY: &[&str] = &["flyte"];

/// The environment variables `--report_to` may grant each integration: the
/// ones HF's callback reads. A plugin gets those of them it declares; a
/// variable it declares beyond these must be granted by the user.
fn allowed_env(name: &str) -> &'static [&'static str] {
    match name {
        "dvclive" => &["HF_DVCLIVE_LOG_MODEL"],
        "mlflow" => &[
            "MLFLOW_TRACKING_URI",
            "MLFLOW_EXPERIMENT_NAME",
            "MLFLOW_TAGS",
            "MLFLOW_NESTED_RUN",
            "MLFLOW_RUN_ID",
            "MLFLOW_FLATTEN_PARAMS",
            "MLFLOW_MAX_LOG_PARAMS",
            "HF_MLFLOW_LOG_ARTIFACTS",
            "DISABLE_MLFLOW_INTEGRATION",
            "MLFLOW_TRACKING_USERNAME",
            "MLFLOW_TRACKING_PASSWORD",
            "MLFLOW_TRACKING_TOKEN",
        ],
        "tensorboard" => &["TENSORBOARD_LOGGING_DIR"],
        "wandb" => &[
            "WANDB_PROJECT",
            "WANDB_ENTITY",
            "WANDB_MODE",
            "WANDB_LOG_MODEL",
            "WANDB_WATCH",
            "WANDB_RUN_ID",
        ],
        "codecarbon" => &["CODECARBON_COUNTRY_ISO_CODE", "CODECARBON_REGION"],
        "comet_ml" => &[
            "COMET_START_ONLINE",
            "COMET_MODE",
            "COMET_PROJECT_NAME",
            "COMET_WORKSPACE",
            "COMET_EXPERIMENT_KEY",
            "COMET_LOG_ASSETS",
        ],
        "clearml" => &[
            "CLEARML_PROJECT",
            "CLEARML_TASK",
            "CLEARML_LOG_MODEL",
            "CLEARML_OFFLINE_MODE",
        ],
        _ => &[],
    }
}

/// The integrations `report_to` asks for, in order (`all` expands to every
/// shipped one); an unknown name is an error listing the supported ones.
pub fn selected(report_to: &[String]) -> Result<Vec<&'static str>> {
    let mut out: Vec<&'static str> = Vec::new();
    for name in report_to {
        let names: Vec<&'static str> = if name == "all" {
            INTEGRATIONS
                .iter()
                .copied()
                .filter(|i| in_all(i, |v| std::env::var_os(v).is_some()))
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
/// `get_available_reporting_integrations`: comet_ml only once configured
/// (`COMET_API_KEY` set; `is_comet_available`), every other shipped one
/// always. `is_set` tells whether an environment variable is set.
fn in_all(name: &str, is_set: impl Fn(&str) -> bool) -> bool {
    match name {
        "comet_ml" => is_set("COMET_API_KEY"),
        _ => true,
    }
}

/// A directory grant, created if missing.
fn dir_grant(host: &Path, guest: &str) -> Result<DirGrant> {
    std::fs::create_dir_all(host).with_context(|| format!("creating {}", host.display()))?;
    let host = host
        .canonicalize()
        .with_context(|| format!("resolving {}", host.display()))?;
    Ok(DirGrant {
        host,
        guest: guest.into(),
        writable: true,
    })
}

/// The run's `output_dir`, granted read-only as `/output` to an
/// integration that reads its checkpoints (flyte's sync, MLflow's and
/// W&B's model artifacts): only when the user's settings ask for them,
/// never by default. The plugin folders inside it stay hidden
/// (`sandbox/fs/hidden.rs`).
pub fn output_grant(args: &TrainingArguments) -> Result<DirGrant> {
    Ok(DirGrant {
        writable: false,
        ..dir_grant(Path::new(&args.output_dir), "/output")?
    })
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// `key=value` facts added to a plugin's config (the user's values win).
fn add_config(s: &mut PluginSettings, pairs: Vec<(&str, String)>) {
    for (k, v) in pairs {
        if !s.config.iter().any(|(key, _)| key == k) {
            s.config.push((k.to_string(), v));
        }
    }
}

/// The grants and config of integration `name` (the plugin `info`
/// describes), on top of the user's settings: the variables of HF's
/// callback that the plugin declares, and the folders and origin it needs.
pub fn settings(
    name: &str,
    info: &PluginInfo,
    args: &TrainingArguments,
    mut s: PluginSettings,
) -> Result<PluginSettings> {
    if info.name != name {
        bail!(
            "the {name} integration's plugin describes itself as {:?}; reinstall the built-in plugins (make plugins)",
            info.name
        );
    }
    for c in &info.capabilities {
        if let Capability::Env(var) = c {
            if allowed_env(name).contains(&var.as_str()) && !s.grants.env.contains(var) {
                s.grants.env.push(var.clone());
            }
        }
    }
    let cwd = std::env::current_dir().context("reading the current directory")?;
    add_config(
        &mut s,
        vec![
            ("hostname", host_name()),
            ("pid", std::process::id().to_string()),
        ],
    );
    match name {
        "tensorboard" => {
            // HF: TENSORBOARD_LOGGING_DIR, else output_dir/runs/<%b%d_%H-%M-%S>_<hostname>;
            // the plugin names the run folder, the host grants the folder above it.
            let root = match std::env::var_os("TENSORBOARD_LOGGING_DIR") {
                Some(dir) => PathBuf::from(dir),
                None => Path::new(&args.output_dir).join("runs"),
            };
            s.grants.dirs.push(dir_grant(&root, "/tensorboard")?);
            let fixed = std::env::var_os("TENSORBOARD_LOGGING_DIR").is_some();
            add_config(&mut s, vec![("logdir_is_run", fixed.to_string())]);
        }
        "mlflow" => {
            if let Ok(uri) = std::env::var("MLFLOW_TRACKING_URI") {
                if uri.starts_with("http://") || uri.starts_with("https://") {
                    let origin_part = uri.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
                    let origin = normalize_origin(&origin_part)
                        .map_err(|e| anyhow!("MLFLOW_TRACKING_URI: {e}"))?;
                    s.grants.http.push(origin);
                }
            }
        }
        "flyte" => {
            // HF's FlyteCallback works only inside a Flyte task; here, one
            // that gives its deck folder.
            let Some(deck) = std::env::var_os("FLYTE_DECK_DIR") else {
                bail!("--report_to flyte: FlyteCallback only works within a Flyte task; set FLYTE_DECK_DIR to the task's deck folder")
            };
            s.grants
                .dirs
                .push(dir_grant(Path::new(&deck), "/flyte-deck")?);
            // HF syncs each checkpoint to the task's checkpoint folder;
            // here, one the user gives.
            if let Some(dir) = std::env::var_os("FLYTE_CHECKPOINT_DIR") {
                s.grants
                    .dirs
                    .push(dir_grant(Path::new(&dir), "/flyte-checkpoint")?);
                s.grants.dirs.push(output_grant(args)?);
                add_config(
                    &mut s,
                    vec![("checkpoint_dir", "/flyte-checkpoint".to_string())],
                );
            }
        }
        "comet_ml" => {
            // comet's COMET_OFFLINE_DIRECTORY, default .cometml-runs (relative
            // to the working directory, as comet resolves it).
            let dir = std::env::var_os("COMET_OFFLINE_DIRECTORY")
                .filter(|d| !d.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(".cometml-runs"));
            s.grants.dirs.push(dir_grant(&cwd.join(dir), "/comet")?);
        }
        "dvclive" => s
            .grants
            .dirs
            .push(dir_grant(&cwd.join("dvclive"), "/dvclive")?),
        "wandb" => {
            let base = std::env::var_os("WANDB_DIR")
                .map(PathBuf::from)
                .unwrap_or(cwd);
            s.grants
                .dirs
                .push(dir_grant(&base.join("wandb"), "/wandb")?);
        }
        "clearml" => {
            // clearml keeps offline sessions in <cache>/offline, the cache
            // being CLEARML_CACHE_DIR or ~/.clearml/cache: here the variable,
            // else the run's own folder, never the home directory.
            let root = match std::env::var_os("CLEARML_CACHE_DIR") {
                Some(dir) => PathBuf::from(dir).join("offline"),
                None => Path::new(&args.output_dir).join("clearml/offline"),
            };
            let grant = dir_grant(&root, "/clearml")?;
            add_config(
                &mut s,
                vec![("offline_dir", grant.host.display().to_string())],
            );
            s.grants.dirs.push(grant);
        }
        "codecarbon" => {
            // The real folders, not /sys/class/powercap, whose entries are
            // symlinks into /sys/devices that a sandboxed plugin cannot follow.
            let powercap = std::env::var_os("TRAINBOX_POWERCAP_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/sys/devices/virtual/powercap"));
            if powercap.is_dir() {
                s.grants.dirs.push(DirGrant {
                    host: powercap,
                    guest: "/powercap".into(),
                    writable: false,
                });
            }
            add_config(&mut s, machine_facts());
        }
        _ => {}
    }
    Ok(s)
}

/// What codecarbon reads of the machine, which a plugin cannot see.
fn machine_facts() -> Vec<(&'static str, String)> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_default();
    let cpu_count = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let ram_kb: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    // Sockets, as `lscpu`'s "Socket(s)": distinct physical ids (at least 1).
    let mut sockets: Vec<&str> = cpuinfo
        .lines()
        .filter_map(|l| {
            l.strip_prefix("physical id")?
                .split_once(':')
                .map(|(_, v)| v.trim())
        })
        .collect();
    sockets.sort_unstable();
    sockets.dedup();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    vec![
        ("cpu_model", cpu_model),
        ("cpu_count", cpu_count.to_string()),
        ("cpu_sockets", sockets.len().max(1).to_string()),
        ("ram_total_gb", format!("{}", ram_kb / 1024.0 / 1024.0)),
        (
            "os",
            format!("Linux-{}-{}", kernel.trim(), std::env::consts::ARCH),
        ),
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn all_takes_comet_only_once_it_is_configured() {
        assert!(!in_all("comet_ml", |_| false));
        assert!(in_all("comet_ml", |v| v == "COMET_API_KEY"));
        assert!(in_all("tensorboard", |_| false));
    }

    use super::*;

    fn info(name: &str, env: &[&str]) -> PluginInfo {
        PluginInfo {
            name: name.into(),
            version: "0".into(),
            api_version: crate::sandbox::API_VERSION.into(),
            events: Default::default(),
            stateful: false,
            capabilities: env.iter().map(|v| Capability::Env(v.to_string())).collect(),
        }
    }

    #[test]
    fn integrations_get_only_hf_variables_they_declare() {
        let args = TrainingArguments::default();
        // (mlflow: the one integration that creates no folder here.)
        let s = settings(
            "mlflow",
            &info("mlflow", &["MLFLOW_RUN_ID", "AWS_SECRET_ACCESS_KEY"]),
            &args,
            PluginSettings::default(),
        )
        .unwrap();
        assert_eq!(s.grants.env, ["MLFLOW_RUN_ID"]);
        let err = settings(
            "mlflow",
            &info("stealer", &[]),
            &args,
            PluginSettings::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("describes itself as \"stealer\""), "{err}");
    }

    #[test]
    fn flyte_is_selected_by_name_only_as_in_hf() {
        assert!(!selected(&["all".into()]).unwrap().contains(&"flyte"));
        assert_eq!(
            selected(&["flyte".into(), "all".into()]).unwrap()[0],
            "flyte"
        );
    }

    #[test]
    fn report_to_expands_all_and_rejects_unknown_names() {
        let all = selected(&["all".into()]).unwrap();
        let configured = std::env::var_os("COMET_API_KEY").is_some();
        let expected: Vec<&str> = INTEGRATIONS
            .iter()
            .copied()
            .filter(|i| configured || *i != "comet_ml")
            .collect();
        assert_eq!(all, expected);
        assert_eq!(
            selected(&["tensorboard".into(), "all".into()]).unwrap()[0],
            "tensorboard"
        );
        let err = selected(&["tensorbord".into()]).unwrap_err().to_string();
        assert!(
            err.contains(
                "tensorbord is not supported, only comet_ml, dvclive, mlflow, tensorboard, wandb, codecarbon"
            ),
            "{err}"
        );
    }
}
