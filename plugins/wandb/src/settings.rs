//! The W&B environment variables HF's `WandbCallback` and `wandb.init` read,
//! turned into this plugin's settings: offline only (a W&B server is out of
//! the sandbox's reach), `WANDB_PROJECT` (default `huggingface`),
//! `WANDB_ENTITY`, `WANDB_RUN_ID`; `WANDB_LOG_MODEL` and `WANDB_WATCH` are
//! recognised but not carried out, with a warning. Pure: the caller passes
//! the variable lookup.

/// What the plugin does.
#[derive(Debug, PartialEq)]
pub enum Mode {
    /// Writes an offline run.
    Offline(Settings),
    /// `WANDB_MODE=disabled`: does nothing, as `wandb.init` does.
    Disabled,
}

#[derive(Debug, PartialEq)]
pub struct Settings {
    pub project: String,
    pub entity: String,
    /// `WANDB_RUN_ID`, else a fresh 8-character id.
    pub run_id: Option<String>,
    /// Things the user asked for that this plugin does not do.
    pub warnings: Vec<String>,
}

/// Reads the settings; an error says what to set.
pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Mode, String> {
    let get = |k: &str| get(k).filter(|v| !v.is_empty());
    match get("WANDB_MODE").as_deref() {
        Some("offline" | "dryrun") => {}
        Some("disabled") => return Ok(Mode::Disabled),
        other => {
            let what = match other {
                Some(mode) => format!("WANDB_MODE={mode}"),
                None => "WANDB_MODE is not set, which is wandb's online mode".into(),
            };
            return Err(format!(
                "{what}: trainbox's wandb plugin writes offline runs only (a W&B server is out of the sandbox's reach); \
                 set WANDB_MODE=offline, then upload the run with `wandb sync wandb/offline-run-…` where W&B is reachable"
            ));
        }
    }
    let run_id = get("WANDB_RUN_ID");
    if let Some(id) = &run_id {
        check_run_id(id)?;
    }
    let mut warnings = Vec::new();
    if let Some(v @ ("end" | "checkpoint")) = get("WANDB_LOG_MODEL").as_deref() {
        warnings.push(format!(
            "WANDB_LOG_MODEL={v}: model artifacts are not written by trainbox's wandb plugin; the checkpoints stay in output_dir"
        ));
    }
    if let Some(v @ ("all" | "parameters" | "gradients")) = get("WANDB_WATCH").as_deref() {
        warnings.push(format!(
            "WANDB_WATCH={v}: gradient and parameter histograms are not logged by trainbox's wandb plugin"
        ));
    }
    Ok(Mode::Offline(Settings {
        project: get("WANDB_PROJECT").unwrap_or_else(|| "huggingface".into()),
        entity: get("WANDB_ENTITY").unwrap_or_default(),
        run_id,
        warnings,
    }))
}

/// wandb's rule for run ids: at most 64 characters, none of `/\#?%:`.
fn check_run_id(id: &str) -> Result<(), String> {
    if id.chars().count() > 64 {
        return Err(format!(
            "WANDB_RUN_ID={id:?}: a run id has at most 64 characters"
        ));
    }
    if let Some(c) = id.chars().find(|c| "/\\#?%:".contains(*c)) {
        return Err(format!(
            "WANDB_RUN_ID={id:?}: a run id may not contain {c:?} (nor any of /\\#?%:)"
        ));
    }
    Ok(())
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

    #[test]
    fn offline_with_hf_defaults() {
        assert_eq!(
            env(&[("WANDB_MODE", "offline")]).unwrap(),
            Mode::Offline(Settings {
                project: "huggingface".into(),
                entity: String::new(),
                run_id: None,
                warnings: vec![],
            })
        );
        let Mode::Offline(s) = env(&[
            ("WANDB_MODE", "dryrun"),
            ("WANDB_PROJECT", "p"),
            ("WANDB_ENTITY", "e"),
            ("WANDB_RUN_ID", "abc123"),
        ])
        .unwrap() else {
            panic!("offline")
        };
        assert_eq!((s.project.as_str(), s.entity.as_str()), ("p", "e"));
        assert_eq!(s.run_id.as_deref(), Some("abc123"));
    }

    #[test]
    fn online_or_unset_mode_fails_naming_the_fix() {
        for pairs in [vec![], vec![("WANDB_MODE", "online")]] {
            let err = env(&pairs).unwrap_err();
            assert!(err.contains("set WANDB_MODE=offline"), "{err}");
        }
        assert!(env(&[]).unwrap_err().starts_with("WANDB_MODE is not set"));
        assert_eq!(env(&[("WANDB_MODE", "disabled")]).unwrap(), Mode::Disabled);
    }

    #[test]
    fn bad_run_ids_are_refused() {
        let err = env(&[("WANDB_MODE", "offline"), ("WANDB_RUN_ID", "a/b")]).unwrap_err();
        assert!(err.contains("may not contain '/'"), "{err}");
        let long = "x".repeat(65);
        assert!(env(&[("WANDB_MODE", "offline"), ("WANDB_RUN_ID", &long)]).is_err());
    }

    #[test]
    fn log_model_and_watch_warn() {
        let Mode::Offline(s) = env(&[
            ("WANDB_MODE", "offline"),
            ("WANDB_LOG_MODEL", "end"),
            ("WANDB_WATCH", "all"),
        ])
        .unwrap() else {
            panic!("offline")
        };
        assert_eq!(s.warnings.len(), 2);
        let Mode::Offline(s) =
            env(&[("WANDB_MODE", "offline"), ("WANDB_LOG_MODEL", "false")]).unwrap()
        else {
            panic!("offline")
        };
        assert!(s.warnings.is_empty());
    }
}
