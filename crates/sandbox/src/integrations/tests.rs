//! The integrations' names, variables, grants and limits.

use super::grants::*;
use super::limits::*;
use super::*;
use crate::sandbox::{Capability, PluginInfo, PluginLimits, PluginSettings};
use std::path::Path;

/// An environment of these variables only.
fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |k| {
        vars.iter()
            .find(|(v, _)| *v == k)
            .map(|(_, x)| x.to_string())
    }
}

#[test]
fn all_takes_what_is_configured_enough_to_work() {
    let none = select(&["all".into()], &env(&[])).unwrap();
    assert_eq!(
        none,
        [
            "dvclive",
            "mlflow",
            "tensorboard",
            "codecarbon",
            "clearml",
            "trackio"
        ],
        "the local ones, and mlflow's local store"
    );
    let vars = [
        ("COMET_START_ONLINE", "0"),
        (
            "MLFLOW_TRACKING_URI",
            "https://dagshub.com/alice/repo.mlflow",
        ),
        ("NEPTUNE_MODE", "offline"),
        ("WANDB_MODE", "offline"),
    ];
    assert_eq!(select(&["all".into()], &env(&vars)).unwrap(), INTEGRATIONS);
    // A project for neptune's online default is not enough: it needs a
    // server; nor is comet's API key: online mode is refused.
    let online = [
        ("NEPTUNE_PROJECT", "w/p"),
        ("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000"),
        ("COMET_API_KEY", "k"),
        ("WANDB_MODE", "disabled"),
        ("TRACKIO_SPACE_ID", "me/space"),
    ];
    let some = select(&["all".into()], &env(&online)).unwrap();
    assert_eq!(
        some,
        ["dvclive", "mlflow", "tensorboard", "codecarbon", "clearml"],
        "{some:?}"
    );
    assert_eq!(
        missing_for_all("neptune", &env(&[("NEPTUNE_MODE", "debug")])),
        None
    );
    assert_eq!(
        missing_for_all("neptune", &env(&[("NEPTUNE_MODE", "async")])),
        Some("set NEPTUNE_MODE=offline")
    );
    assert_eq!(
        missing_for_all("comet_ml", &env(&[("COMET_START_ONLINE", "false")])),
        None
    );
    // Named, an integration loads whatever is set (and says what it lacks).
    assert_eq!(select(&["wandb".into()], &env(&[])).unwrap(), ["wandb"]);
}

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
    assert_eq!(watch.deadline, WATCH_DEADLINE);
    assert_eq!(
        (watch.init_deadline, watch.disk_bytes),
        (default.init_deadline, default.disk_bytes)
    );
    let models = limits(&[("WANDB_LOG_MODEL", "checkpoint")], default);
    assert_eq!(
        (models.deadline, models.init_deadline),
        (COPY_DEADLINE, COPY_DEADLINE)
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
    let tmp = std::env::temp_dir().join(format!("trainbox-wandb-grants-{}", std::process::id()));
    let args = IntegrationArgs {
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
    let args = IntegrationArgs::default();
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

#[test]
fn azure_ml_sends_its_token_in_the_clear_only_to_loopback() {
    let origin = |uri: &str| mlflow_origin("azure_ml", Some(uri.into()));
    let ws = "/mlflow/v2.0/subscriptions/s/resourceGroups/r/providers/Microsoft.MachineLearningServices/workspaces/w";
    assert_eq!(
        origin(&format!("azureml+http://127.0.0.1:5000{ws}"))
            .unwrap()
            .as_deref(),
        Some("http://127.0.0.1:5000")
    );
    let err = origin(&format!("azureml+http://example.com{ws}"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("in the clear") && err.contains("azureml://"),
        "{err}"
    );
    assert_eq!(
        origin(&format!("azureml://westeurope.api.azureml.ms{ws}"))
            .unwrap()
            .as_deref(),
        Some("https://westeurope.api.azureml.ms:443")
    );
}
