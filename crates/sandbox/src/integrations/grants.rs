//! The folders, origins and config facts an integration is granted beyond
//! its variables: each only where HF's callback needs it, most only when a
//! variable asks for it.

use super::IntegrationArgs;
use crate::sandbox::{normalize_origin, DirGrant, PluginSettings};
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};

/// The origin of the MLflow server `MLFLOW_TRACKING_URI` names, to grant:
/// an `http[s]://` URI's, or, for azure_ml, the REST host of an
/// `azureml://` workspace URI (`https`; `azureml+http://` and
/// `azureml+https://` keep their scheme: the test and self-hosted form).
/// None for any other URI (the plugin says what is wrong with it).
pub(super) fn mlflow_origin(name: &str, uri: Option<String>) -> Result<Option<String>> {
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
    let loopback = ["http://127.0.0.1:", "http://localhost:", "http://[::1]:"];
    if name == "azure_ml"
        && origin.starts_with("http://")
        && !loopback.iter().any(|l| origin.starts_with(l))
    {
        bail!(
            "MLFLOW_TRACKING_URI={uri}: azureml+http:// would send the workspace token in the clear to {origin}; it is for a server on 127.0.0.1 only: use azureml:// (or azureml+https://)"
        );
    }
    Ok(Some(origin))
}

/// Whether the MLflow integration `name` uploads checkpoints, and so reads
/// `output_dir`: only when asked for (`HF_MLFLOW_LOG_ARTIFACTS`; dagshub's
/// `HF_DAGSHUB_LOG_ARTIFACTS` uploads `output_dir` at train end; azure_ml
/// never). `flag` tells whether one of HF's switches is on.
pub(super) fn uploads_output(name: &str, flag: impl Fn(&str) -> bool) -> bool {
    match name {
        "mlflow" => flag("HF_MLFLOW_LOG_ARTIFACTS"),
        "dagshub" => flag("HF_MLFLOW_LOG_ARTIFACTS") || flag("HF_DAGSHUB_LOG_ARTIFACTS"),
        _ => false,
    }
}

/// A directory grant, created if missing (and removed again, if it is
/// still empty, when the run fails to start: [`super::fresh`]).
pub(super) fn dir_grant(host: &Path, guest: &str) -> Result<DirGrant> {
    super::fresh::note(host);
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
pub(super) fn output_grant(args: &IntegrationArgs) -> Result<DirGrant> {
    Ok(DirGrant {
        writable: false,
        ..dir_grant(Path::new(&args.output_dir), "/output")?
    })
}

/// Lends an integration that copies or uploads checkpoints what that
/// takes: [`output_grant`] and the
/// [`copying_limits`](super::limits::copying_limits).
pub(super) fn lend_checkpoints(s: &mut PluginSettings, args: &IntegrationArgs) -> Result<()> {
    s.grants.dirs.push(output_grant(args)?);
    super::limits::copying_limits(&mut s.limits);
    Ok(())
}

/// `key=value` facts added to a plugin's config (the user's values win).
pub(super) fn add_config(s: &mut PluginSettings, pairs: Vec<(&str, String)>) {
    for (k, v) in pairs {
        if !s.config.iter().any(|(key, _)| key == k) {
            s.config.push((k.to_string(), v));
        }
    }
}

/// `WANDB_LOG_MODEL`'s grants, only when it asks for model artifacts
/// (HF 5.24's `checkpoint` or `end`; the plugin refuses any other value but
/// `false`): `output_dir` read-only as `/output` (the checkpoints and the
/// final model it reads) and wandb's staging folder
/// (`$WANDB_DATA_DIR/artifacts/staging`, else under the XDG data folder, as
/// `wandb.env.get_data_dir`) writable as `/wandb-staging`, whose host path
/// the plugin records for `wandb sync` (config `staging_dir`). `get` reads
/// an environment variable.
pub(super) fn wandb_model_grants(
    s: &mut PluginSettings,
    args: &IntegrationArgs,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<()> {
    let get = |k: &str| get(k).filter(|v| !v.is_empty());
    if !matches!(
        get("WANDB_LOG_MODEL").as_deref(),
        Some("checkpoint" | "end")
    ) {
        return Ok(());
    }
    s.grants.dirs.push(output_grant(args)?);
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

/// `CLEARML_LOG_MODEL`'s grant, only when it is on by HF's test (`1`,
/// `ON`, `YES`, `TRUE`, any case, nothing trimmed; unset is off here, on in
/// HF, as output_dir is read only when asked for): `output_dir` read-only
/// as `/output` (the checkpoints the plugin packages into its session) and
/// [`copying_limits`](super::limits::copying_limits). `get` reads an
/// environment variable.
pub(super) fn clearml_model_grants(
    s: &mut PluginSettings,
    args: &IntegrationArgs,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<()> {
    let on = get("CLEARML_LOG_MODEL")
        .is_some_and(|v| matches!(v.to_uppercase().as_str(), "1" | "ON" | "YES" | "TRUE"));
    if on {
        lend_checkpoints(s, args)?;
    }
    Ok(())
}

/// trackio's folder: `TRACKIO_DIR`, else `$HF_HOME/trackio`, `HF_HOME`
/// defaulting as huggingface_hub's to `$XDG_CACHE_HOME/huggingface`, else
/// `~/.cache/huggingface` (`get` reads a variable; empty counts as unset).
pub(super) fn trackio_dir(get: &dyn Fn(&str) -> Option<String>) -> Result<PathBuf> {
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

#[cfg(test)]
mod clearml_tests {
    use super::*;
    use crate::sandbox::PluginLimits;

    #[test]
    fn clearml_sees_output_dir_only_when_it_logs_models() {
        let tmp =
            std::env::temp_dir().join(format!("trainbox-clearml-grants-{}", std::process::id()));
        let args = IntegrationArgs {
            output_dir: tmp.join("out").display().to_string(),
            ..Default::default()
        };
        let grants = |value: Option<&str>| {
            let mut s = PluginSettings::default();
            let env = |k: &str| value.filter(|_| k == "CLEARML_LOG_MODEL").map(String::from);
            clearml_model_grants(&mut s, &args, &env).unwrap();
            s
        };
        for off in [
            None,
            Some(""),
            Some("False"),
            Some("0"),
            Some(" TRUE"),
            Some("y"),
        ] {
            let s = grants(off);
            assert!(s.grants.dirs.is_empty(), "{off:?}");
            assert_eq!(
                s.limits.deadline,
                PluginLimits::default().deadline,
                "{off:?}"
            );
        }
        for on in ["True", "true", "1", "yes", "ON"] {
            let s = grants(Some(on));
            let [out] = &s.grants.dirs[..] else {
                panic!("{on}: {:?}", s.grants.dirs)
            };
            assert_eq!((out.guest.as_str(), out.writable), ("/output", false));
            assert_eq!(out.host, tmp.join("out").canonicalize().unwrap());
            assert_eq!(s.limits.deadline, super::super::limits::COPY_DEADLINE);
        }
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
