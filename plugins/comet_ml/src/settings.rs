//! The Comet environment variables HF's `CometCallback` and `comet_ml.start`
//! read, as this plugin's settings. Offline only (comet.com is out of the
//! sandbox's reach): `COMET_START_ONLINE` must be false. HF's `COMET_MODE`
//! (`get`, `get_or_create`, `create`; anything else disables logging with
//! HF's warning), `COMET_PROJECT_NAME`, `COMET_WORKSPACE`,
//! `COMET_EXPERIMENT_KEY`; `COMET_LOG_ASSETS` is recognised, not carried
//! out. Pure: the caller passes the variable lookup.

/// What the plugin does.
#[derive(Debug, PartialEq)]
pub enum Mode {
    /// Writes an offline archive.
    Offline(Settings),
    /// An invalid `COMET_MODE`: HF logs nothing (the message says why).
    Disabled(String),
}

#[derive(Debug, PartialEq)]
pub struct Settings {
    pub project_name: Option<String>,
    pub workspace: Option<String>,
    /// `COMET_EXPERIMENT_KEY`, else a fresh key.
    pub experiment_key: Option<String>,
    /// comet's `resume_strategy` (HF's `COMET_MODE`, default `get_or_create`).
    pub resume_strategy: String,
    /// Things the user asked for that this plugin does not do.
    pub warnings: Vec<String>,
}

/// comet's boolean settings (everett's `parse_bool`).
fn parse_bool(var: &str, value: &str) -> Result<bool, String> {
    match value.trim().to_lowercase().as_str() {
        "t" | "true" | "yes" | "y" | "on" | "1" => Ok(true),
        "f" | "false" | "no" | "n" | "off" | "0" => Ok(false),
        _ => Err(format!(
            "{var}={value:?} is not a boolean: use 0 or 1 (or false/true, no/yes, off/on)"
        )),
    }
}

/// Reads the settings; an error says what to set.
pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Mode, String> {
    let set = |k: &str| get(k).filter(|v| !v.is_empty());
    let online = match set("COMET_START_ONLINE") {
        Some(v) => parse_bool("COMET_START_ONLINE", &v)?,
        None => true,
    };
    if online {
        let what = match set("COMET_START_ONLINE") {
            Some(v) => format!("COMET_START_ONLINE={v}"),
            None => "COMET_START_ONLINE is not set, which is comet_ml's online mode".into(),
        };
        return Err(format!(
            "{what}: trainbox's comet_ml plugin writes offline archives only (comet.com is out of the sandbox's reach); \
             set COMET_START_ONLINE=0, then upload the archive with `comet upload <COMET_OFFLINE_DIRECTORY>/<key>-<id>.zip` where Comet is reachable"
        ));
    }
    // HF: `COMET_MODE` lowercased; get, get_or_create or create, else disabled.
    let resume_strategy = match get("COMET_MODE").map(|m| m.to_lowercase()) {
        Some(m) if ["get", "get_or_create", "create"].contains(&m.as_str()) => m,
        Some(m) if !m.is_empty() => {
            return Ok(Mode::Disabled(format!(
                "Invalid COMET_MODE env value {m:?}, Comet logging is disabled \
                 (HF reads COMET_MODE as get, get_or_create or create; offline is COMET_START_ONLINE=0)"
            )))
        }
        _ => "get_or_create".into(),
    };
    let experiment_key = set("COMET_EXPERIMENT_KEY");
    if let Some(key) = &experiment_key {
        if !(32..=50).contains(&key.len()) || !key.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!(
                "COMET_EXPERIMENT_KEY={key:?}: an experiment key is 32 to 50 letters and digits"
            ));
        }
    } else if resume_strategy == "get" {
        return Err(
            "COMET_MODE=get needs COMET_EXPERIMENT_KEY (the experiment to append to), as comet_ml.start does; \
             set it, or use COMET_MODE=get_or_create"
                .into(),
        );
    }
    let mut warnings = Vec::new();
    let assets = get("COMET_LOG_ASSETS").unwrap_or_default().to_uppercase();
    if assets == "TRUE" || assets == "1" {
        warnings.push(format!(
            "COMET_LOG_ASSETS={assets}: the checkpoints are not added to the Comet archive \
             (the plugin cannot read output_dir); metrics and parameters are logged"
        ));
    }
    Ok(Mode::Offline(Settings {
        project_name: set("COMET_PROJECT_NAME"),
        workspace: set("COMET_WORKSPACE"),
        experiment_key,
        resume_strategy,
        warnings,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Result<Mode, String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        from_env(|k| {
            pairs
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        })
    }

    fn offline(pairs: &[(&str, &str)]) -> Settings {
        match env(pairs).unwrap() {
            Mode::Offline(s) => s,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn offline_with_comets_defaults() {
        let s = offline(&[("COMET_START_ONLINE", "0")]);
        assert_eq!(s.resume_strategy, "get_or_create");
        assert_eq!(
            (s.project_name, s.workspace, s.experiment_key),
            (None, None, None)
        );
        let s = offline(&[
            ("COMET_START_ONLINE", "False"),
            ("COMET_MODE", "CREATE"),
            ("COMET_PROJECT_NAME", "p"),
            ("COMET_LOG_ASSETS", "true"),
        ]);
        assert_eq!(s.resume_strategy, "create");
        assert_eq!(s.project_name.as_deref(), Some("p"));
        assert_eq!(s.warnings.len(), 1);
    }

    #[test]
    fn online_fails_naming_the_fix() {
        for pairs in [vec![], vec![("COMET_START_ONLINE", "1")]] {
            let err = env(&pairs).unwrap_err();
            assert!(err.contains("set COMET_START_ONLINE=0"), "{err}");
        }
        let err = env(&[("COMET_START_ONLINE", "maybe")]).unwrap_err();
        assert!(err.contains("is not a boolean"), "{err}");
    }

    #[test]
    fn hfs_comet_mode() {
        let Mode::Disabled(why) =
            env(&[("COMET_START_ONLINE", "0"), ("COMET_MODE", "offline")]).unwrap()
        else {
            panic!("disabled")
        };
        assert!(
            why.starts_with("Invalid COMET_MODE env value \"offline\", Comet logging is disabled")
        );
        let err = env(&[("COMET_START_ONLINE", "0"), ("COMET_MODE", "get")]).unwrap_err();
        assert!(err.contains("needs COMET_EXPERIMENT_KEY"), "{err}");
        let key = "a".repeat(32);
        let s = offline(&[
            ("COMET_START_ONLINE", "0"),
            ("COMET_MODE", "get"),
            ("COMET_EXPERIMENT_KEY", &key),
        ]);
        assert_eq!(s.experiment_key, Some(key));
        assert!(env(&[
            ("COMET_START_ONLINE", "0"),
            ("COMET_EXPERIMENT_KEY", "short")
        ])
        .is_err());
    }
}
