//! The logger integrations that ship with trainbox (`--report_to`), as HF's
//! `INTEGRATION_TO_CALLBACK`: each is a plugin in the built-in folder that
//! runs with only what it needs, granted here because the user named it:
//! HF's environment variables by name, the one directory it writes, and for
//! MLflow the one origin of `MLFLOW_TRACKING_URI`. Facts about the machine
//! that a plugin cannot see (host name, process id, CPU) come in its config.

use crate::args::TrainingArguments;
use crate::sandbox::{
    normalize_origin, Capability, DirGrant, PluginInfo, PluginLimits, PluginSettings,
};
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};

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

/// mlflow's variables, which dagshub (an `MLflowCallback`) reads too.
const MLFLOW_ENV: &[&str] = &[
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
];

/// The environment variables `--report_to` may grant each integration: the
/// ones HF's callback reads. A plugin gets those of them it declares; a
/// variable it declares beyond these must be granted by the user.
fn allowed_env(name: &str) -> &'static [&'static str] {
    match name {
        "dvclive" => &["HF_DVCLIVE_LOG_MODEL"],
        "mlflow" => MLFLOW_ENV,
        // mlflow's, and DagsHub's own two.
        "dagshub" => &[
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
            "HF_DAGSHUB_LOG_ARTIFACTS",
            "DAGSHUB_USER_TOKEN",
        ],
        // What an Azure ML job sets for MLflow: the workspace URI, the
        // token, the job's run (or the experiment to make one in).
        "azure_ml" => &[
            "MLFLOW_TRACKING_URI",
            "MLFLOW_TRACKING_TOKEN",
            "MLFLOW_RUN_ID",
            "MLFLOW_EXPERIMENT_NAME",
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
        "neptune" => &[
            "NEPTUNE_MODE",
            "NEPTUNE_PROJECT",
            "NEPTUNE_MONITORING_NAMESPACE",
        ],
        // Read only to refuse a Space or a server (the plugin writes locally).
        "trackio" => &["TRACKIO_SPACE_ID", "TRACKIO_SERVER_URL"],
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
        // HF takes dagshub whenever it is installed, then fails without a
        // DagsHub URI; here only with one.
        "dagshub" => {
            is_set("MLFLOW_TRACKING_URI")
                && std::env::var("MLFLOW_TRACKING_URI").is_ok_and(|u| is_dagshub_uri(&u))
        }
        // HF takes neptune whenever it is installed, then fails without a
        // project and token; here once it is configured at all.
        "neptune" => is_set("NEPTUNE_MODE") || is_set("NEPTUNE_PROJECT"),
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

/// The origin of the MLflow server `MLFLOW_TRACKING_URI` names, to grant:
/// an `http[s]://` URI's, or, for azure_ml, the REST host of an
/// `azureml://` workspace URI (`https`; `azureml+http://` and
/// `azureml+https://` keep their scheme: the test and self-hosted form).
/// None for any other URI (the plugin says what is wrong with it).
fn mlflow_origin(name: &str, uri: Option<String>) -> Result<Option<String>> {
    let Some(uri) = uri else {
        return Ok(None);
    };
    let http = match uri.strip_prefix("azureml://") {
        _ if name != "azure_ml" => Some(uri.clone()),
        Some(rest) => Some(format!("https://{rest}")),
        None => uri.strip_prefix("azureml+").map(String::from),
    };
    let Some(http) = http.filter(|u| u.starts_with("http://") || u.starts_with("https://")) else {
        return Ok(None);
    };
    let origin_part = http.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
    let origin = normalize_origin(&origin_part).map_err(|e| anyhow!("MLFLOW_TRACKING_URI: {e}"))?;
    Ok(Some(origin))
}

/// Whether the MLflow integration `name` uploads checkpoints, and so reads
/// `output_dir`: only when asked for (`HF_MLFLOW_LOG_ARTIFACTS`; dagshub's
/// `HF_DAGSHUB_LOG_ARTIFACTS` uploads `output_dir` at train end; azure_ml
/// never). `flag` tells whether one of HF's switches is on.
fn uploads_output(name: &str, flag: impl Fn(&str) -> bool) -> bool {
    match name {
        "mlflow" => flag("HF_MLFLOW_LOG_ARTIFACTS"),
        "dagshub" => flag("HF_MLFLOW_LOG_ARTIFACTS") || flag("HF_DAGSHUB_LOG_ARTIFACTS"),
        _ => false,
    }
}

/// Whether HF's switch `var` is on (`1`, `ON`, `YES`, `TRUE`, any case).
fn env_flag(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_uppercase().as_str(),
            "1" | "ON" | "YES" | "TRUE"
        )
    })
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
        "mlflow" | "dagshub" | "azure_ml" => {
            if let Some(origin) = mlflow_origin(name, std::env::var("MLFLOW_TRACKING_URI").ok())? {
                s.grants.http.push(origin);
            }
            if uploads_output(name, env_flag) {
                s.grants.dirs.push(output_grant(args)?);
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
        }
        "trackio" => {
            let grant = dir_grant(&trackio_dir(&|k| std::env::var(k).ok())?, "/trackio")?;
            add_config(
                &mut s,
                vec![("trackio_dir", grant.host.display().to_string())],
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

/// `WANDB_LOG_MODEL`'s grants, only when it asks for model artifacts
/// (HF 5.24's `checkpoint` or `end`; the plugin refuses any other value but
/// `false`): `output_dir` read-only as `/output` (the checkpoints and the
/// final model it reads) and wandb's staging folder
/// (`$WANDB_DATA_DIR/artifacts/staging`, else under the XDG data folder, as
/// `wandb.env.get_data_dir`) writable as `/wandb-staging`, whose host path
/// the plugin records for `wandb sync` (config `staging_dir`). `get` reads
/// an environment variable.
fn wandb_model_grants(
    s: &mut PluginSettings,
    args: &TrainingArguments,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<()> {
    let get = |k: &str| get(k).filter(|v| !v.is_empty());
    if !matches!(
        get("WANDB_LOG_MODEL").as_deref(),
        Some("checkpoint" | "end")
    ) {
        return Ok(());
    }
    let output = Path::new(&args.output_dir);
    std::fs::create_dir_all(output).with_context(|| format!("creating {}", output.display()))?;
    let output = output
        .canonicalize()
        .with_context(|| format!("resolving {}", output.display()))?;
    s.grants.dirs.push(DirGrant {
        host: output,
        guest: "/output".into(),
        writable: false,
    });
    let data = match get("WANDB_DATA_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => match get("XDG_DATA_HOME") {
            Some(xdg) => PathBuf::from(xdg).join("wandb"),
            None => {
                let home = get("HOME")
                    .context("WANDB_LOG_MODEL: neither WANDB_DATA_DIR nor HOME is set; set WANDB_DATA_DIR to the folder wandb stages artifacts in")?;
                PathBuf::from(home).join(".local/share/wandb")
            }
        },
    };
    let staging = dir_grant(&data.join("artifacts/staging"), "/wandb-staging")?;
    add_config(s, vec![("staging_dir", staging.host.display().to_string())]);
    s.grants.dirs.push(staging);
    Ok(())
}

/// How long a wandb event may take when `WANDB_LOG_MODEL` or `WANDB_WATCH`
/// asks for work (copying a checkpoint, a histogram of every parameter).
const WANDB_DEADLINE: std::time::Duration = std::time::Duration::from_secs(120);

/// The limits `WANDB_LOG_MODEL` and `WANDB_WATCH` need, where the run
/// config leaves the defaults (a value it sets is kept): staging a
/// checkpoint's copy at `save` (the final model's at `finish`) and taking
/// the histograms of every parameter and gradient block the loop as they do
/// in wandb, longer than the 100 ms an event gets (`deadline_ms`, and the
/// 10 s of `finish`: both become 120 s); and the staged copies grow with
/// every checkpoint, so `disk_mb` no longer caps them (the disk's free
/// space still does). `get` reads an environment variable.
fn wandb_limits(limits: &mut PluginLimits, get: &dyn Fn(&str) -> Option<String>) {
    let default = PluginLimits::default();
    let log_model = matches!(
        get("WANDB_LOG_MODEL").as_deref(),
        Some("checkpoint" | "end")
    );
    let watch = matches!(
        get("WANDB_WATCH").as_deref(),
        Some("gradients" | "parameters" | "all")
    );
    if (log_model || watch) && limits.deadline == default.deadline {
        limits.deadline = WANDB_DEADLINE;
    }
    if log_model && limits.init_deadline == default.init_deadline {
        limits.init_deadline = WANDB_DEADLINE;
    }
    if log_model && limits.disk_bytes == default.disk_bytes {
        limits.disk_bytes = 1 << 50;
    }
}

/// trackio's folder: `TRACKIO_DIR`, else `$HF_HOME/trackio`, `HF_HOME`
/// defaulting as huggingface_hub's to `$XDG_CACHE_HOME/huggingface`, else
/// `~/.cache/huggingface` (`get` reads a variable; empty counts as unset).
fn trackio_dir(get: &dyn Fn(&str) -> Option<String>) -> Result<PathBuf> {
    let var = |k: &str| get(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = var("TRACKIO_DIR") {
        return Ok(dir);
    }
    let hf_home = match var("HF_HOME") {
        Some(dir) => dir,
        None => match var("XDG_CACHE_HOME") {
            Some(cache) => cache.join("huggingface"),
            None => var("HOME")
                .context("--report_to trackio: none of TRACKIO_DIR, HF_HOME and HOME is set; set TRACKIO_DIR to trackio's folder")?
                .join(".cache/huggingface"),
        },
    };
    Ok(hf_home.join("trackio"))
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

    #[test]
    fn all_takes_neptune_once_a_mode_or_project_is_set() {
        assert!(!in_all("neptune", |_| false));
        assert!(!in_all("neptune", |v| v == "NEPTUNE_API_TOKEN"));
        assert!(in_all("neptune", |v| v == "NEPTUNE_MODE"));
        assert!(in_all("neptune", |v| v == "NEPTUNE_PROJECT"));
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
    fn trackio_dir_is_trackio_dir_else_under_hf_home_as_huggingface_hub() {
        let dir = |vars: &[(&str, &str)]| {
            let vars: Vec<(String, String)> = vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            trackio_dir(&move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
        };
        let home = [("HOME", "/h")];
        assert_eq!(
            dir(&home).unwrap(),
            Path::new("/h/.cache/huggingface/trackio")
        );
        let xdg = [("HOME", "/h"), ("XDG_CACHE_HOME", "/c")];
        assert_eq!(dir(&xdg).unwrap(), Path::new("/c/huggingface/trackio"));
        let hf = [("HOME", "/h"), ("HF_HOME", "/hf"), ("TRACKIO_DIR", "")];
        assert_eq!(dir(&hf).unwrap(), Path::new("/hf/trackio"));
        let own = [("HF_HOME", "/hf"), ("TRACKIO_DIR", "/t")];
        assert_eq!(dir(&own).unwrap(), Path::new("/t"));
        let err = dir(&[]).unwrap_err().to_string();
        assert!(err.contains("set TRACKIO_DIR"), "{err}");
    }

    #[test]
    fn wandb_gets_time_and_disk_only_for_models_and_watching() {
        let limits = |vars: &[(&str, &str)], start: PluginLimits| {
            let mut l = start;
            let env = |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            };
            wandb_limits(&mut l, &env);
            l
        };
        let default = PluginLimits::default();
        assert_eq!(limits(&[], default), default);
        assert_eq!(
            limits(
                &[("WANDB_LOG_MODEL", "false"), ("WANDB_WATCH", "false")],
                default
            ),
            default
        );
        let watch = limits(&[("WANDB_WATCH", "all")], default);
        assert_eq!(watch.deadline, WANDB_DEADLINE);
        assert_eq!(
            (watch.init_deadline, watch.disk_bytes),
            (default.init_deadline, default.disk_bytes)
        );
        let models = limits(&[("WANDB_LOG_MODEL", "checkpoint")], default);
        assert_eq!(
            (models.deadline, models.init_deadline),
            (WANDB_DEADLINE, WANDB_DEADLINE)
        );
        assert!(models.disk_bytes > 1 << 40);
        // What the run config sets is kept.
        let set = PluginLimits {
            deadline: std::time::Duration::from_millis(250),
            ..default
        };
        assert_eq!(
            limits(&[("WANDB_LOG_MODEL", "end")], set).deadline,
            set.deadline
        );
    }

    #[test]
    fn wandb_sees_output_dir_only_when_it_logs_models() {
        let tmp =
            std::env::temp_dir().join(format!("trainbox-wandb-grants-{}", std::process::id()));
        let args = TrainingArguments {
            output_dir: tmp.join("out").display().to_string(),
            ..Default::default()
        };
        let data = tmp.join("data").display().to_string();
        let grants = |log_model: Option<&str>| {
            let mut s = PluginSettings::default();
            let env = |k: &str| match k {
                "WANDB_LOG_MODEL" => log_model.map(String::from),
                "WANDB_DATA_DIR" => Some(data.clone()),
                _ => None,
            };
            wandb_model_grants(&mut s, &args, &env).unwrap();
            s
        };
        for off in [None, Some("false"), Some("")] {
            let s = grants(off);
            assert!(s.grants.dirs.is_empty() && s.config.is_empty(), "{off:?}");
        }
        for on in ["checkpoint", "end"] {
            let s = grants(Some(on));
            let out = &s.grants.dirs[0];
            assert_eq!((out.guest.as_str(), out.writable), ("/output", false));
            assert_eq!(out.host, tmp.join("out").canonicalize().unwrap());
            let staging = &s.grants.dirs[1];
            assert_eq!(
                (staging.guest.as_str(), staging.writable),
                ("/wandb-staging", true)
            );
            let host = tmp.join("data/artifacts/staging").canonicalize().unwrap();
            assert_eq!(staging.host, host);
            assert_eq!(
                s.config,
                [("staging_dir".to_string(), host.display().to_string())]
            );
        }
        std::fs::remove_dir_all(&tmp).unwrap();
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
    fn dagshub_uris_are_told_apart_and_azure_ml_is_by_name_only() {
        assert!(is_dagshub_uri("https://dagshub.com/alice/repo.mlflow"));
        assert!(is_dagshub_uri("http://127.0.0.1:5000/alice/repo.mlflow/"));
        assert!(!is_dagshub_uri("https://dagshub.com/alice/repo"));
        assert!(!is_dagshub_uri("https://dagshub.com/.mlflow"));
        assert!(!is_dagshub_uri("http://127.0.0.1:5000"));
        assert!(!is_dagshub_uri("file:./x.mlflow"));
        assert!(!selected(&["all".into()]).unwrap().contains(&"azure_ml"));
        let origin = |name: &str, uri: &str| mlflow_origin(name, Some(uri.into())).unwrap();
        let ws = "/mlflow/v2.0/subscriptions/s/resourceGroups/g/providers/Microsoft.MachineLearningServices/workspaces/w";
        assert_eq!(
            origin(
                "azure_ml",
                &format!("azureml://westeurope.api.azureml.ms{ws}")
            )
            .as_deref(),
            Some("https://westeurope.api.azureml.ms:443")
        );
        assert_eq!(
            origin("azure_ml", &format!("azureml+http://127.0.0.1:5000{ws}")).as_deref(),
            Some("http://127.0.0.1:5000")
        );
        assert_eq!(origin("azure_ml", "http://127.0.0.1:5000"), None);
        assert_eq!(origin("mlflow", "azureml://h/x"), None);
        assert_eq!(
            origin("dagshub", "https://dagshub.com/a/r.mlflow").as_deref(),
            Some("https://dagshub.com:443")
        );
        // output_dir is read only when checkpoints are uploaded.
        assert!(!uploads_output("mlflow", |_| false));
        assert!(uploads_output("mlflow", |v| v == "HF_MLFLOW_LOG_ARTIFACTS"));
        assert!(!uploads_output("mlflow", |v| v == "HF_DAGSHUB_LOG_ARTIFACTS"));
        assert!(uploads_output("dagshub", |v| v == "HF_DAGSHUB_LOG_ARTIFACTS"));
        assert!(!uploads_output("azure_ml", |_| true));
        assert_eq!(selected(&["azure_ml".into()]).unwrap(), ["azure_ml"]);
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
        let neptune = ["NEPTUNE_MODE", "NEPTUNE_PROJECT"]
            .iter()
            .any(|v| std::env::var_os(v).is_some());
        let expected: Vec<&str> = INTEGRATIONS
            .iter()
            .copied()
            .filter(|i| configured || *i != "comet_ml")
            .filter(|i| neptune || *i != "neptune")
            .filter(|i| {
                *i != "dagshub"
                    || std::env::var("MLFLOW_TRACKING_URI").is_ok_and(|u| is_dagshub_uri(&u))
            })
            .collect();
        assert_eq!(all, expected);
        assert_eq!(
            selected(&["tensorboard".into(), "all".into()]).unwrap()[0],
            "tensorboard"
        );
        let err = selected(&["tensorbord".into()]).unwrap_err().to_string();
        assert!(
            err.contains(
                "tensorbord is not supported, only comet_ml, dagshub, dvclive, mlflow, neptune, tensorboard, wandb, codecarbon"
            ),
            "{err}"
        );
    }
}
