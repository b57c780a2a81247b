//! The neptune 1.14 settings that HF's `NeptuneCallback` leaves to
//! `neptune.init_run()`: `NEPTUNE_MODE` (neptune's default is `async`) and
//! `NEPTUNE_MONITORING_NAMESPACE`. Offline is the one mode that writes
//! something here: `async`, `sync` and `read-only` need app.neptune.ai,
//! out of the sandbox's reach, and are refused naming the fix; `debug`
//! keeps the run in memory, as neptune does. Pure: the caller passes the
//! variable lookup.

/// The variable neptune reads its connection mode from.
pub const MODE: &str = "NEPTUNE_MODE";

/// What the plugin does.
#[derive(Debug, PartialEq)]
pub enum Mode {
    /// Writes an offline run directory (`neptune sync` sends it).
    Offline,
    /// neptune's debug mode: the run lives in memory, nothing is written.
    Debug,
}

/// Reads `NEPTUNE_MODE`; an error says what to set.
pub fn mode(get: impl Fn(&str) -> Option<String>) -> Result<Mode, String> {
    let value = get(MODE).filter(|v| !v.is_empty());
    let server = |what: String| {
        Err(format!(
            "{what}: trainbox's neptune plugin writes offline runs only (app.neptune.ai is out of the sandbox's reach); \
             set {MODE}=offline, then send the run with `neptune sync --project <workspace>/<project>` where Neptune is reachable"
        ))
    };
    match value.as_deref() {
        Some("offline") => Ok(Mode::Offline),
        Some("debug") => Ok(Mode::Debug),
        None => server(format!(
            "{MODE} is not set, which is neptune's async mode (it streams to a Neptune server)"
        )),
        Some(m @ ("async" | "sync" | "read-only")) => {
            server(format!("{MODE}={m} needs a Neptune server"))
        }
        Some(m) => Err(format!(
            "{MODE}={m:?} is not a valid mode (neptune: '{m}' is not a valid Mode); \
             neptune's modes are offline, debug, async, sync and read-only, and here offline (or debug) works"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(v: Option<&str>) -> Result<Mode, String> {
        mode(|k| (k == MODE).then(|| v.map(String::from)).flatten())
    }

    #[test]
    fn offline_and_debug_work() {
        assert_eq!(with(Some("offline")), Ok(Mode::Offline));
        assert_eq!(with(Some("debug")), Ok(Mode::Debug));
    }

    #[test]
    fn server_modes_fail_naming_the_fix() {
        for v in [
            None,
            Some(""),
            Some("async"),
            Some("sync"),
            Some("read-only"),
        ] {
            let err = with(v).unwrap_err();
            assert!(err.contains("set NEPTUNE_MODE=offline"), "{err}");
        }
        assert!(with(None).unwrap_err().contains("neptune's async mode"));
        let err = with(Some("OFFLINE")).unwrap_err();
        assert!(err.contains("is not a valid Mode"), "{err}");
    }
}
