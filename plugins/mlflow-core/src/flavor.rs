//! The three integrations built on the MLflow REST client: what each is
//! called, the variables it reads, and how its tracking URI is read.
//!
//! - `mlflow`: HF's `MLflowCallback`.
//! - `dagshub`: HF's `DagsHubCallback`, an `MLflowCallback` whose
//!   `MLFLOW_TRACKING_URI` must be `https://dagshub.com/<owner>/<repo>.mlflow`
//!   (owner and repo taken from the path, as HF does), with DagsHub's
//!   credentials and `HF_DAGSHUB_LOG_ARTIFACTS`.
//! - `azure_ml`: HF's `AzureMLCallback` (numbers of each log under their raw
//!   keys, nothing else) through the MLflow REST API Azure ML serves under an
//!   `azureml://<host>/mlflow/v2.0/subscriptions/…/workspaces/<ws>` URI.

use crate::settings;

/// Which integration a plugin is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Mlflow,
    DagsHub,
    AzureMl,
}

/// A plugin type's integration (the type parameter of [`crate::Plugin`]).
pub trait Flavor: 'static {
    const KIND: Kind;
    /// The plugin's name, as `--report_to` spells it.
    const NAME: &'static str;
}

/// `--report_to mlflow`.
pub struct Mlflow;
/// `--report_to dagshub`.
pub struct DagsHub;
/// `--report_to azure_ml`.
pub struct AzureMl;

impl Flavor for Mlflow {
    const KIND: Kind = Kind::Mlflow;
    const NAME: &'static str = "mlflow";
}
impl Flavor for DagsHub {
    const KIND: Kind = Kind::DagsHub;
    const NAME: &'static str = "dagshub";
}
impl Flavor for AzureMl {
    const KIND: Kind = Kind::AzureMl;
    const NAME: &'static str = "azure_ml";
}

/// What dagshub reads beyond mlflow's variables.
pub const DAGSHUB_ENV_VARS: &[&str] = &["HF_DAGSHUB_LOG_ARTIFACTS", "DAGSHUB_USER_TOKEN"];

/// What azure_ml reads: the URI, the token, and the run an Azure ML job
/// names (its `Run.get_context()`), or the experiment to make one in.
pub const AZURE_ENV_VARS: &[&str] = &[
    "MLFLOW_TRACKING_URI",
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_RUN_ID",
    "MLFLOW_EXPERIMENT_NAME",
];

impl Kind {
    /// The variables the plugin declares (in the order
    /// `crates/sandbox/src/integrations/` grants them).
    pub fn env_vars(self) -> Vec<&'static str> {
        match self {
            Kind::Mlflow => settings::ENV_VARS.to_vec(),
            Kind::DagsHub => [settings::ENV_VARS, DAGSHUB_ENV_VARS].concat(),
            Kind::AzureMl => AZURE_ENV_VARS.to_vec(),
        }
    }
}

/// DagsHub's `<owner>/<repo>` of a tracking URI, as HF's `DagsHubCallback`
/// reads it (`uri.split("/")[-2]` and `[-1].split(".")[0]`), or the error
/// HF's setup would stop with.
pub fn dagshub_repo(uri: Option<&str>) -> Result<(String, String), String> {
    let Some(uri) = uri else {
        return Err("DagsHubCallback requires the `MLFLOW_TRACKING_URI` environment variable to be set. Did you run `dagshub.init()`? (set MLFLOW_TRACKING_URI=https://dagshub.com/<owner>/<repo>.mlflow)".into());
    };
    let shape = || {
        format!("MLFLOW_TRACKING_URI={uri:?} is not a DagsHub repository's MLflow URI: DagsHubCallback takes the owner and the repository from https://dagshub.com/<owner>/<repo>.mlflow")
    };
    let rest = uri
        .strip_prefix("https://")
        .or_else(|| uri.strip_prefix("http://"))
        .ok_or_else(shape)?;
    let parts: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    match parts.as_slice() {
        [_host, .., owner, repo] if !owner.is_empty() => match repo.strip_suffix(".mlflow") {
            Some(name) if !name.is_empty() => {
                let name = name.split('.').next().unwrap_or(name);
                Ok((owner.to_string(), name.to_string()))
            }
            _ => Err(shape()),
        },
        _ => Err(shape()),
    }
}

/// The REST base of an Azure ML workspace URI: `azureml://H/P` is
/// `https://H/P`; `azureml+http://H/P` and `azureml+https://H/P` (the
/// test and self-hosted form, e.g. a local `mlflow server --static-prefix
/// /mlflow/v2.0/…`) keep their scheme. `None` for any other URI: outside
/// Azure ML.
pub fn azure_endpoint(uri: &str) -> Option<String> {
    let (scheme, rest) = if let Some(rest) = uri.strip_prefix("azureml://") {
        ("https", rest)
    } else if let Some(rest) = uri.strip_prefix("azureml+http://") {
        ("http", rest)
    } else {
        ("https", uri.strip_prefix("azureml+https://")?)
    };
    Some(format!("{scheme}://{rest}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dagshub_owner_and_repo_come_from_the_path() {
        let ok = |u: &str| dagshub_repo(Some(u)).unwrap();
        assert_eq!(
            ok("https://dagshub.com/alice/repo.mlflow"),
            ("alice".into(), "repo".into())
        );
        assert_eq!(
            ok("http://127.0.0.1:5000/bob/my-model.mlflow/"),
            ("bob".into(), "my-model".into())
        );
        // HF's split(".")[0].
        assert_eq!(ok("https://dagshub.com/o/a.b.mlflow").1, "a");
        for bad in [
            "https://dagshub.com/alice/repo",
            "https://dagshub.com/repo.mlflow",
            "https://dagshub.com/alice/.mlflow",
            "file:./mlruns",
            "dagshub.com/alice/repo.mlflow",
        ] {
            let err = dagshub_repo(Some(bad)).unwrap_err();
            assert!(
                err.contains("is not a DagsHub repository's MLflow URI"),
                "{bad}: {err}"
            );
        }
        let err = dagshub_repo(None).unwrap_err();
        assert!(err.contains("requires the `MLFLOW_TRACKING_URI`"), "{err}");
    }

    #[test]
    fn azureml_uris_map_to_https_and_the_test_form_keeps_http() {
        let ws = "/mlflow/v2.0/subscriptions/s/resourceGroups/g/providers/Microsoft.MachineLearningServices/workspaces/w";
        assert_eq!(
            azure_endpoint(&format!("azureml://westeurope.api.azureml.ms{ws}")).unwrap(),
            format!("https://westeurope.api.azureml.ms{ws}")
        );
        assert_eq!(
            azure_endpoint(&format!("azureml+http://127.0.0.1:5000{ws}")).unwrap(),
            format!("http://127.0.0.1:5000{ws}")
        );
        assert_eq!(
            azure_endpoint("azureml+https://h/x").unwrap(),
            "https://h/x"
        );
        assert_eq!(azure_endpoint("http://127.0.0.1:5000"), None);
        assert_eq!(azure_endpoint("file:./mlruns"), None);
    }

    #[test]
    fn each_flavor_declares_its_variables() {
        assert!(Kind::DagsHub.env_vars().contains(&"DAGSHUB_USER_TOKEN"));
        assert!(Kind::DagsHub
            .env_vars()
            .contains(&"MLFLOW_TRACKING_PASSWORD"));
        assert!(!Kind::Mlflow.env_vars().contains(&"DAGSHUB_USER_TOKEN"));
        assert!(!Kind::AzureMl
            .env_vars()
            .contains(&"MLFLOW_TRACKING_PASSWORD"));
    }
}
