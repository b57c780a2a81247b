//! The W&B environment variables HF's `WandbCallback` and `wandb.init` read,
//! turned into this plugin's settings: offline only (a W&B server is out of
//! the sandbox's reach), `WANDB_PROJECT` (default `huggingface`),
//! `WANDB_ENTITY`, `WANDB_RUN_ID`, `WANDB_LOG_MODEL` (HF 5.24's
//! `WandbLogModel`: `checkpoint`, `end` or `false`) and `WANDB_WATCH`
//! (`gradients`, `parameters`, `all` or `false`); any other value of those
//! two is an error naming the accepted ones. Pure: the caller passes the
//! variable lookup.

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
    pub log_model: LogModel,
    pub watch: Watch,
}

/// `WANDB_LOG_MODEL`, HF 5.24's `WandbLogModel`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LogModel {
    /// `false` (the default): no artifacts.
    Off,
    /// `end`: the final model at the end of training.
    End,
    /// `checkpoint`: every checkpoint, and the final model.
    Checkpoint,
}

impl LogModel {
    /// HF's `is_enabled`: `end` or `checkpoint`.
    pub fn is_enabled(self) -> bool {
        self != LogModel::Off
    }

    /// The variable's value.
    pub fn value(self) -> &'static str {
        match self {
            LogModel::Off => "false",
            LogModel::End => "end",
            LogModel::Checkpoint => "checkpoint",
        }
    }
}

/// `WANDB_WATCH`: what `wandb.watch(model, log=…)` logs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Watch {
    Off,
    Gradients,
    Parameters,
    All,
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
    let log_model = match get("WANDB_LOG_MODEL").as_deref() {
        None | Some("false") => LogModel::Off,
        Some("end") => LogModel::End,
        Some("checkpoint") => LogModel::Checkpoint,
        Some(v) => {
            return Err(format!(
                "WANDB_LOG_MODEL={v}: accepted values are checkpoint, end and false (HF 5.24's WandbLogModel; \
                 HF ignores any other value with a warning, trainbox refuses it)"
            ))
        }
    };
    let watch = match get("WANDB_WATCH").as_deref() {
        None | Some("false") => Watch::Off,
        Some("gradients") => Watch::Gradients,
        Some("parameters") => Watch::Parameters,
        Some("all") => Watch::All,
        Some(v) => {
            return Err(format!(
                "WANDB_WATCH={v}: accepted values are gradients, parameters, all and false"
            ))
        }
    };
    Ok(Mode::Offline(Settings {
        project: get("WANDB_PROJECT").unwrap_or_else(|| "huggingface".into()),
        entity: get("WANDB_ENTITY").unwrap_or_default(),
        run_id,
        log_model,
        watch,
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
                log_model: LogModel::Off,
                watch: Watch::Off,
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
    fn log_model_and_watch_values() {
        let Mode::Offline(s) = env(&[
            ("WANDB_MODE", "offline"),
            ("WANDB_LOG_MODEL", "checkpoint"),
            ("WANDB_WATCH", "all"),
        ])
        .unwrap() else {
            panic!("offline")
        };
        assert_eq!((s.log_model, s.watch), (LogModel::Checkpoint, Watch::All));
        let Mode::Offline(s) = env(&[
            ("WANDB_MODE", "offline"),
            ("WANDB_LOG_MODEL", "false"),
            ("WANDB_WATCH", "false"),
        ])
        .unwrap() else {
            panic!("offline")
        };
        assert_eq!((s.log_model, s.watch), (LogModel::Off, Watch::Off));
        assert!(!s.log_model.is_enabled());
    }

    #[test]
    fn bad_log_model_or_watch_names_the_variable_and_the_values() {
        let err = env(&[("WANDB_MODE", "offline"), ("WANDB_LOG_MODEL", "true")]).unwrap_err();
        assert!(
            err.starts_with("WANDB_LOG_MODEL=true: accepted values are checkpoint, end and false"),
            "{err}"
        );
        let err = env(&[("WANDB_MODE", "offline"), ("WANDB_WATCH", "grads")]).unwrap_err();
        assert!(
            err.starts_with(
                "WANDB_WATCH=grads: accepted values are gradients, parameters, all and false"
            ),
            "{err}"
        );
    }
}
