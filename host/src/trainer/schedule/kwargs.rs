//! `--lr_scheduler_kwargs`, read as `get_scheduler(...,
//! scheduler_specific_kwargs=...)` passes them on: each schedule takes the
//! keyword arguments of its function (a key it does not take is the
//! `TypeError` HF would raise, said plainly); `constant` and
//! `constant_with_warmup` are called without them, as HF does.

use crate::pyjson::Json;
use std::collections::BTreeMap;

/// The keyword arguments of one schedule, checked as they are read.
pub(super) struct Kwargs<'a> {
    schedule: String,
    map: BTreeMap<&'a str, &'a Json>,
}

impl<'a> Kwargs<'a> {
    /// The arguments of `schedule`, which takes the keys `takes`.
    pub(super) fn new(
        schedule: &str,
        kwargs: Option<&'a Json>,
        takes: &[&str],
    ) -> Result<Kwargs<'a>, String> {
        let map: BTreeMap<&str, &Json> = match kwargs {
            None | Some(Json::Null) => BTreeMap::new(),
            Some(Json::Object(m)) => m.iter().map(|(k, v)| (k.as_str(), v)).collect(),
            Some(other) => {
                return Err(format!(
                    "--lr_scheduler_kwargs must be a dict, got {}",
                    other.to_compact()
                ))
            }
        };
        if let Some(key) = map.keys().find(|k| !takes.contains(k)) {
            let takes = if takes.is_empty() {
                "none".to_string()
            } else {
                takes.join(", ")
            };
            return Err(format!(
                "--lr_scheduler_kwargs: the {schedule} schedule takes no argument {key:?} (it takes {takes})"
            ));
        }
        Ok(Kwargs {
            schedule: schedule.to_string(),
            map,
        })
    }

    fn bad(&self, key: &str, what: &str) -> String {
        format!(
            "--lr_scheduler_kwargs: {key} of the {} schedule must be {what}, got {}",
            self.schedule,
            self.map[key].to_compact()
        )
    }

    /// A number (Python int or float; a bool counts as 0 or 1, as in Python).
    pub(super) fn number(&self, key: &str) -> Result<Option<f64>, String> {
        match self.map.get(key) {
            None | Some(Json::Null) => Ok(None),
            Some(Json::Bool(b)) => Ok(Some(f64::from(u8::from(*b)))),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| self.bad(key, "a number")),
        }
    }

    /// A number, or `default` when absent.
    pub(super) fn number_or(&self, key: &str, default: f64) -> Result<f64, String> {
        Ok(self.number(key)?.unwrap_or(default))
    }

    /// A whole number (steps, counts).
    pub(super) fn count(&self, key: &str) -> Result<Option<f64>, String> {
        match self.number(key)? {
            Some(v) if v.fract() != 0.0 => Err(self.bad(key, "a whole number")),
            v => Ok(v),
        }
    }

    /// A string.
    pub(super) fn text(&self, key: &str, default: &'a str) -> Result<&'a str, String> {
        match self.map.get(key) {
            None => Ok(default),
            Some(Json::Str(s)) => Ok(s.as_str()),
            Some(_) => Err(self.bad(key, "a string")),
        }
    }

    /// A boolean (a number counts by its truth, as in Python).
    pub(super) fn flag(&self, key: &str, default: bool) -> Result<bool, String> {
        match self.map.get(key) {
            None => Ok(default),
            Some(Json::Bool(b)) => Ok(*b),
            Some(v) => v
                .as_f64()
                .map(|f| f != 0.0)
                .ok_or_else(|| self.bad(key, "true or false")),
        }
    }

    /// One number per parameter group, or one for all: every group of
    /// trainbox shares the learning rate, so the values must be equal.
    pub(super) fn per_group(&self, key: &str, default: f64, groups: usize) -> Result<f64, String> {
        match self.map.get(key) {
            Some(Json::Array(items)) => {
                if items.len() != groups {
                    return Err(format!(
                        "--lr_scheduler_kwargs: expected {groups} {key}s, got {}",
                        items.len()
                    ));
                }
                let values: Option<Vec<f64>> = items.iter().map(Json::as_f64).collect();
                let values =
                    values.ok_or_else(|| self.bad(key, "a number or a list of numbers"))?;
                if values.windows(2).any(|w| w[0] != w[1]) {
                    return Err(format!(
                        "--lr_scheduler_kwargs: {key} differs between parameter groups, which trainbox does not support (its groups share one learning rate); give one number"
                    ));
                }
                Ok(values[0])
            }
            _ => self.number_or(key, default),
        }
    }
}
