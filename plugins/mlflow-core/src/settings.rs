//! HF's MLflow environment variables, read once at `configure`, with HF's
//! rules: an empty value is unset, a boolean is true when its upper-cased
//! value is 1, ON, YES or TRUE, and `DISABLE_MLFLOW_INTEGRATION` counts only
//! when it is TRUE. Also the credentials mlflow's REST client sends.

use crate::pyrepr::py_str;
use serde_json::Value;

/// Every variable the plugin reads (its `Capability::Env` list, in the
/// order `crates/sandbox/src/integrations/` grants them).
pub const ENV_VARS: &[&str] = &[
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

/// What the environment asks of the plugin.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    /// `MLFLOW_TRACKING_URI`, without a trailing `/`.
    pub tracking_uri: Option<String>,
    /// `MLFLOW_EXPERIMENT_NAME` (unset: the Default experiment, id "0").
    pub experiment_name: Option<String>,
    /// `MLFLOW_TAGS`, a JSON object; values as Python's `str()`.
    pub tags: Vec<(String, String)>,
    pub nested_run: bool,
    /// `MLFLOW_RUN_ID`: resume this run instead of starting one.
    pub run_id: Option<String>,
    pub flatten_params: bool,
    /// `MLFLOW_MAX_LOG_PARAMS`, when it is all digits (HF ignores anything else).
    pub max_log_params: Option<usize>,
    pub log_artifacts: bool,
    pub disabled: bool,
    /// The `Authorization` header: Basic from username and password, else
    /// Bearer from the token (mlflow's order).
    pub authorization: Option<String>,
    /// What was set but not usable, for the user.
    pub warnings: Vec<String>,
}

/// HF's truthy values for its environment switches.
pub fn truthy(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_uppercase().as_str(),
        "1" | "ON" | "YES" | "TRUE"
    )
}

impl Settings {
    /// Reads the settings through `get` (the environment, in the plugin).
    /// Fails only on a value HF would crash on (`MLFLOW_TAGS` that is not a
    /// JSON object), with the fix.
    pub fn read(get: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let var = |name: &str| get(name).filter(|v| !v.is_empty());
        let flag = |name: &str| var(name).is_some_and(|v| truthy(&v));
        let mut s = Settings {
            tracking_uri: var("MLFLOW_TRACKING_URI").map(|u| u.trim_end_matches('/').to_string()),
            experiment_name: var("MLFLOW_EXPERIMENT_NAME"),
            nested_run: flag("MLFLOW_NESTED_RUN"),
            run_id: var("MLFLOW_RUN_ID"),
            flatten_params: flag("MLFLOW_FLATTEN_PARAMS"),
            log_artifacts: flag("HF_MLFLOW_LOG_ARTIFACTS"),
            disabled: var("DISABLE_MLFLOW_INTEGRATION")
                .is_some_and(|v| v.eq_ignore_ascii_case("TRUE")),
            ..Settings::default()
        };
        if let Some(tags) = var("MLFLOW_TAGS") {
            s.tags = parse_tags(&tags)?;
        }
        if let Some(max) = var("MLFLOW_MAX_LOG_PARAMS") {
            match max.parse() {
                Ok(n) if max.bytes().all(|b| b.is_ascii_digit()) => s.max_log_params = Some(n),
                _ => s.warnings.push(format!(
                    "MLFLOW_MAX_LOG_PARAMS={max:?} is not a number of digits; all params are logged"
                )),
            }
        }
        let (user, password) = (
            var("MLFLOW_TRACKING_USERNAME"),
            var("MLFLOW_TRACKING_PASSWORD"),
        );
        s.authorization = match (user, password, var("MLFLOW_TRACKING_TOKEN")) {
            (Some(u), Some(p), _) => {
                Some(format!("Basic {}", base64(format!("{u}:{p}").as_bytes())))
            }
            (_, _, Some(token)) => Some(format!("Bearer {token}")),
            (Some(_), None, None) | (None, Some(_), None) => {
                s.warnings.push(
                    "only one of MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD is set; no credentials are sent (set both)".into(),
                );
                None
            }
            (None, None, None) => None,
        };
        Ok(s)
    }
}

/// `MLFLOW_TAGS` as (key, `str(value)`) pairs.
fn parse_tags(text: &str) -> Result<Vec<(String, String)>, String> {
    let fix = r#"set it to a JSON object, e.g. MLFLOW_TAGS='{"team": "nlp", "stage": "dev"}'"#;
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map.iter().map(|(k, v)| (k.clone(), py_str(v))).collect()),
        Ok(_) => Err(format!("MLFLOW_TAGS={text:?} is not a JSON object; {fix}")),
        Err(e) => Err(format!(
            "MLFLOW_TAGS={text:?} is not valid JSON ({e}); {fix}"
        )),
    }
}

/// Standard base64 with padding (RFC 4648), for HTTP Basic credentials.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(vars: &[(&str, &str)]) -> Result<Settings, String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::read(|k| map.get(k).cloned())
    }

    #[test]
    fn unset_and_empty_values_mean_defaults() {
        let s = read(&[("MLFLOW_EXPERIMENT_NAME", ""), ("MLFLOW_RUN_ID", "")]).unwrap();
        assert_eq!(s, Settings::default());
    }

    #[test]
    fn booleans_follow_hf() {
        for v in ["1", "on", "Yes", "TRUE"] {
            assert!(read(&[("MLFLOW_NESTED_RUN", v)]).unwrap().nested_run, "{v}");
        }
        for v in ["0", "false", "y"] {
            assert!(
                !read(&[("MLFLOW_FLATTEN_PARAMS", v)])
                    .unwrap()
                    .flatten_params,
                "{v}"
            );
        }
        // Only TRUE disables, as HF's is_mlflow_available.
        assert!(
            read(&[("DISABLE_MLFLOW_INTEGRATION", "true")])
                .unwrap()
                .disabled
        );
        assert!(
            !read(&[("DISABLE_MLFLOW_INTEGRATION", "1")])
                .unwrap()
                .disabled
        );
    }

    #[test]
    fn uri_loses_its_trailing_slash() {
        let s = read(&[("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000/")]).unwrap();
        assert_eq!(s.tracking_uri.as_deref(), Some("http://127.0.0.1:5000"));
    }

    #[test]
    fn tags_are_a_json_object_with_python_str_values() {
        let s = read(&[(
            "MLFLOW_TAGS",
            r#"{"team": "nlp", "n": 3, "x": 1.0, "ok": true, "none": null}"#,
        )])
        .unwrap();
        let tags: HashMap<_, _> = s.tags.into_iter().collect();
        assert_eq!(tags["team"], "nlp");
        assert_eq!(tags["n"], "3");
        assert_eq!(tags["x"], "1.0");
        assert_eq!(tags["ok"], "True");
        assert_eq!(tags["none"], "None");
        let err = read(&[("MLFLOW_TAGS", "[1]")]).unwrap_err();
        assert!(
            err.contains("not a JSON object") && err.contains("MLFLOW_TAGS='{"),
            "{err}"
        );
        let err = read(&[("MLFLOW_TAGS", "{team: nlp}")]).unwrap_err();
        assert!(err.contains("not valid JSON"), "{err}");
    }

    #[test]
    fn max_log_params_must_be_digits() {
        assert_eq!(
            read(&[("MLFLOW_MAX_LOG_PARAMS", "12")])
                .unwrap()
                .max_log_params,
            Some(12)
        );
        let s = read(&[("MLFLOW_MAX_LOG_PARAMS", "-1")]).unwrap();
        assert_eq!(s.max_log_params, None);
        assert_eq!(s.warnings.len(), 1);
    }

    #[test]
    fn credentials_basic_before_bearer() {
        let s = read(&[
            ("MLFLOW_TRACKING_USERNAME", "user"),
            ("MLFLOW_TRACKING_PASSWORD", "pass"),
            ("MLFLOW_TRACKING_TOKEN", "tok"),
        ])
        .unwrap();
        assert_eq!(s.authorization.as_deref(), Some("Basic dXNlcjpwYXNz"));
        let s = read(&[("MLFLOW_TRACKING_TOKEN", "tok")]).unwrap();
        assert_eq!(s.authorization.as_deref(), Some("Bearer tok"));
        let s = read(&[("MLFLOW_TRACKING_USERNAME", "user")]).unwrap();
        assert_eq!((s.authorization, s.warnings.len()), (None, 1));
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected, "{input}");
        }
    }
}
