//! The environment variables each integration may be granted: those HF's
//! callback reads.

/// mlflow's variables, which dagshub (an `MLflowCallback`) reads too.
pub(super) const MLFLOW_ENV: &[&str] = &[
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
pub(super) fn allowed_env(name: &str) -> &'static [&'static str] {
    match name {
        "dvclive" => &["HF_DVCLIVE_LOG_MODEL"],
        "mlflow" => MLFLOW_ENV,
        // DagsHub's own two (and mlflow's: see `is_allowed`).
        "dagshub" => &["HF_DAGSHUB_LOG_ARTIFACTS", "DAGSHUB_USER_TOKEN"],
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

/// Whether HF's switch `var` is on (`1`, `ON`, `YES`, `TRUE`, any case).
pub(super) fn env_flag(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_uppercase().as_str(),
            "1" | "ON" | "YES" | "TRUE"
        )
    })
}

/// Whether integration `name` may be granted variable `var`: its own, and
/// for dagshub (an `MLflowCallback`) mlflow's too.
pub(super) fn is_allowed(name: &str, var: &str) -> bool {
    allowed_env(name).contains(&var) || (name == "dagshub" && MLFLOW_ENV.contains(&var))
}
