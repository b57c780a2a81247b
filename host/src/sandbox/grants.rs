//! What a plugin asks for ([`Capability`], from `describe`) against what the
//! user granted it ([`Grants`], from the run config): every capability
//! asked for must be granted, or loading fails with [`NotGranted`], which
//! names the setting to add. Nothing is granted by default beyond the
//! plugin's own directory, its capped stdout and stderr.

use super::http_policy::normalize_origin;
use std::fmt;
use std::path::{Path, PathBuf};

/// A capability a plugin asks for in `describe`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capability {
    ReadDir(String),
    WriteDir(String),
    Http(String),
    Env(String),
}

impl Capability {
    /// The text the plugin supplied (a guest path, an origin, a variable).
    pub fn text(&self) -> &str {
        match self {
            Capability::ReadDir(t)
            | Capability::WriteDir(t)
            | Capability::Http(t)
            | Capability::Env(t) => t,
        }
    }

    /// Whether `grants` grant it.
    pub fn is_granted(&self, grants: &Grants) -> bool {
        match self {
            Capability::ReadDir(g) => grants.dirs.iter().any(|d| &d.guest == g),
            Capability::WriteDir(g) => grants.dirs.iter().any(|d| &d.guest == g && d.writable),
            Capability::Env(v) => grants.env.contains(v),
            Capability::Http(o) => normalize_origin(o).is_ok_and(|o| grants.http.contains(&o)),
        }
    }

    /// The run-config setting that grants it to `plugin`.
    pub fn fix(&self, plugin: &str) -> String {
        match self {
            Capability::ReadDir(g) => {
                format!("plugins.{plugin}.read_dirs = {{ \"{g}\" = \"<host dir>\" }}")
            }
            Capability::WriteDir(g) => {
                format!("plugins.{plugin}.write_dirs = {{ \"{g}\" = \"<host dir>\" }}")
            }
            Capability::Env(v) => format!("plugins.{plugin}.env = [\"{v}\"]"),
            Capability::Http(o) => format!("plugins.{plugin}.allow_http = [\"{o}\"]"),
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Capability::ReadDir(p) => write!(f, "read-dir {p}"),
            Capability::WriteDir(p) => write!(f, "write-dir {p}"),
            Capability::Http(o) => write!(f, "http {o}"),
            Capability::Env(v) => write!(f, "env {v}"),
        }
    }
}

/// A directory granted to a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirGrant {
    pub host: PathBuf,
    /// The path the plugin sees.
    pub guest: String,
    pub writable: bool,
}

/// What the user grants a plugin beyond its own directory.
///
/// The default grants nothing: no directory, no environment variable, no
/// HTTP origin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    pub dirs: Vec<DirGrant>,
    /// Environment variables, by name, passed with their current value.
    pub env: Vec<String>,
    /// Origins (`scheme://host:port`) the plugin may send HTTP requests to.
    pub http: Vec<String>,
}

/// A plugin asked for a capability the user did not grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotGranted {
    pub path: PathBuf,
    pub plugin: String,
    pub capability: Capability,
    /// The setting to add, e.g. `plugins.mlflow.allow_http = ["http://127.0.0.1:5000"]`.
    pub fix: String,
    /// The plugin file, when its table must also name it (`path`) for
    /// grants to reach it.
    pub needs_path: Option<Box<Path>>,
}

impl fmt::Display for NotGranted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: plugin {} asks for `{}`, which is not granted; add {} to the run config",
            self.path.display(),
            self.plugin,
            self.capability,
            self.fix
        )?;
        match &self.needs_path {
            Some(p) => write!(
                f,
                ", beside plugins.{}.path = {:?} (grants reach only the file named there)",
                self.plugin,
                p.display().to_string()
            ),
            None => Ok(()),
        }
    }
}

impl std::error::Error for NotGranted {}

/// Checks that every capability `plugin` (loaded from `path`) asks for is
/// granted; the error names the first that is not, and the grant to add.
pub fn check(
    path: &Path,
    plugin: &str,
    asked: &[Capability],
    grants: &Grants,
) -> Result<(), NotGranted> {
    match asked.iter().find(|c| !c.is_granted(grants)) {
        None => Ok(()),
        Some(cap) => Err(NotGranted {
            path: path.to_path_buf(),
            plugin: plugin.to_string(),
            capability: cap.clone(),
            fix: cap.fix(plugin),
            needs_path: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants() -> Grants {
        Grants {
            dirs: vec![
                DirGrant {
                    host: "/data".into(),
                    guest: "/data".into(),
                    writable: false,
                },
                DirGrant {
                    host: "/tmp/out".into(),
                    guest: "/out".into(),
                    writable: true,
                },
            ],
            env: vec!["MLFLOW_TRACKING_URI".into()],
            http: vec!["http://127.0.0.1:5000".into()],
        }
    }

    #[test]
    fn granted_capabilities_pass() {
        let asked = [
            Capability::ReadDir("/data".into()),
            Capability::ReadDir("/out".into()),
            Capability::WriteDir("/out".into()),
            Capability::Env("MLFLOW_TRACKING_URI".into()),
            Capability::Http("http://127.0.0.1:5000".into()),
            Capability::Http("HTTP://127.0.0.1:5000/".into()),
        ];
        assert_eq!(check(Path::new("p.wasm"), "p", &asked, &grants()), Ok(()));
    }

    #[test]
    fn nothing_is_granted_by_default() {
        for cap in [
            Capability::ReadDir("/".into()),
            Capability::WriteDir(".".into()),
            Capability::Env("HOME".into()),
            Capability::Http("http://127.0.0.1:80".into()),
        ] {
            assert!(!cap.is_granted(&Grants::default()), "{cap}");
        }
    }

    #[test]
    fn a_read_grant_is_not_a_write_grant() {
        let asked = [Capability::WriteDir("/data".into())];
        let err = check(Path::new("p.wasm"), "p", &asked, &grants()).unwrap_err();
        assert_eq!(err.capability, asked[0]);
        assert_eq!(
            err.to_string(),
            "p.wasm: plugin p asks for `write-dir /data`, which is not granted; add plugins.p.write_dirs = { \"/data\" = \"<host dir>\" } to the run config"
        );
    }

    #[test]
    fn the_error_names_the_grant_to_add() {
        let cases = [
            (
                Capability::Env("SECRET".into()),
                "plugins.p.env = [\"SECRET\"]",
            ),
            (
                Capability::Http("http://127.0.0.1:9".into()),
                "plugins.p.allow_http = [\"http://127.0.0.1:9\"]",
            ),
            (
                Capability::ReadDir("/etc".into()),
                "plugins.p.read_dirs = { \"/etc\" = \"<host dir>\" }",
            ),
        ];
        for (cap, fix) in cases {
            let err = check(Path::new("p.wasm"), "p", &[cap], &grants()).unwrap_err();
            assert_eq!(err.fix, fix);
        }
    }

    #[test]
    fn an_origin_that_does_not_parse_is_never_granted() {
        let cap = Capability::Http("not a url".into());
        assert!(!cap.is_granted(&grants()));
    }
}
