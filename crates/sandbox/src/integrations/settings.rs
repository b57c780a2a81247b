//! One integration's settings: the user's, plus its variables, grants,
//! limits and the machine's facts it cannot see.

use super::env::{env_flag, is_allowed};
use super::grants::{
    add_config, clearml_model_grants, dir_grant, lend_checkpoints, mlflow_origin, trackio_dir,
    uploads_output, wandb_model_grants,
};
use super::limits::wandb_limits;
use super::IntegrationArgs;
use crate::sandbox::{Capability, DirGrant, PluginInfo, PluginSettings};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// The grants and config of integration `name` (the plugin `info`
/// describes), on top of the user's settings: the variables of HF's
/// callback that the plugin declares, and the folders and origin it needs.
pub fn settings(
    name: &str,
    info: &PluginInfo,
    args: &IntegrationArgs,
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
            if is_allowed(name, var) && !s.grants.env.contains(var) {
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
            // --logging_dir (HF 4's field) wins, and is used as HF 4 did: the
            // events go right there.
            let fixed_dir = args
                .logging_dir
                .as_ref()
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("TENSORBOARD_LOGGING_DIR").map(PathBuf::from));
            let fixed = fixed_dir.is_some();
            let root = fixed_dir.unwrap_or_else(|| Path::new(&args.output_dir).join("runs"));
            s.grants.dirs.push(dir_grant(&root, "/tensorboard")?);
            add_config(&mut s, vec![("logdir_is_run", fixed.to_string())]);
        }
        "mlflow" | "dagshub" | "azure_ml" => {
            let uri = std::env::var("MLFLOW_TRACKING_URI")
                .ok()
                .filter(|u| !u.is_empty());
            if name == "mlflow" && uri.is_none() {
                // The local store the plugin writes in its own folder, as
                // the user names it (for mlflow ui and the runs' artifact_uri).
                let store = std::path::absolute(Path::new(&args.output_dir))
                    .with_context(|| format!("resolving {}", args.output_dir))?
                    .join("plugins/mlflow/mlruns");
                add_config(&mut s, vec![("store_dir", store.display().to_string())]);
            }
            if let Some(origin) = mlflow_origin(name, uri)? {
                s.grants.http.push(origin);
            }
            if uploads_output(name, env_flag) {
                // A checkpoint's upload takes seconds, as HF's log_artifacts.
                lend_checkpoints(&mut s, args)?;
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
                lend_checkpoints(&mut s, args)?;
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
        "neptune" => {
            // neptune 1.14 keeps runs in NEPTUNE_DATA_DIRECTORY, default
            // .neptune relative to the working directory.
            let dir = std::env::var_os("NEPTUNE_DATA_DIRECTORY")
                .filter(|d| !d.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(".neptune"));
            let grant = dir_grant(&cwd.join(dir), "/neptune")?;
            let os = machine_facts().into_iter().filter(|(k, _)| *k == "os");
            add_config(&mut s, os.collect());
            add_config(&mut s, vec![("data_dir", grant.host.display().to_string())]);
            s.grants.dirs.push(grant);
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
            wandb_model_grants(&mut s, args, &|k| std::env::var(k).ok())?;
            wandb_limits(&mut s.limits, &|k| std::env::var(k).ok());
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
            clearml_model_grants(&mut s, args, &|k| std::env::var(k).ok())?;
        }
        "trackio" => {
            let grant = dir_grant(&trackio_dir(&|k| std::env::var(k).ok())?, "/trackio")?;
            // HF: trackio.init(project=args.project, ...); a plugin_config wins.
            add_config(
                &mut s,
                vec![
                    ("trackio_dir", grant.host.display().to_string()),
                    ("project", args.project.clone()),
                ],
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

pub(super) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// What codecarbon reads of the machine, which a plugin cannot see.
pub(super) fn machine_facts() -> Vec<(&'static str, String)> {
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
