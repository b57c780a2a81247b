//! What a plugin asks for ([`Capability`], from `describe`) against what the
//! user granted it ([`Grants`], from the run config): every capability
//! asked for must be granted, or loading fails with [`NotGranted`], which
//! names the setting to add. Nothing is granted by default beyond the
//! plugin's own directory, its capped stdout and stderr.

use super::http_policy::normalize_origin;
use std::fmt;
use std::path::{Path, PathBuf};

/// The origin a plugin declares (`http("*")`) when it talks to a service
/// whose address the user gives (MLflow's tracking server, ...): it may
/// reach the origins the user grants it, and needs none.
pub const ANY_GRANTED_ORIGIN: &str = "*";

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
            // "Whatever origins the user grants", possibly none.
            Capability::Http(o) if o == ANY_GRANTED_ORIGIN => true,
            Capability::Http(o) => normalize_origin(o).is_ok_and(|o| grants.http.contains(&o)),
        }
    }

    /// The command-line flag that grants it to `plugin`.
    pub fn flag(&self, plugin: &str) -> String {
        match self {
            Capability::ReadDir(g) => format!("--plugin_grant {plugin}.read_dirs={g}=<host dir>"),
            Capability::WriteDir(g) => format!("--plugin_grant {plugin}.write_dirs={g}=<host dir>"),
            Capability::Env(v) => format!("--plugin_grant {plugin}.env={v}"),
            Capability::Http(o) => format!("--plugin_grant {plugin}.allow_http={o}"),
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

/// The user's grants that the plugin declared in `describe`, and a line for
/// each grant it did not declare, which is left out: a directory only at a
/// guest path it asks for (read-only when it asks only to read), a variable
/// it asks for, an origin it asks for (any granted one with
/// [`ANY_GRANTED_ORIGIN`]).
pub fn narrow(asked: &[Capability], grants: Grants) -> (Grants, Vec<String>) {
    let mut unused = Vec::new();
    let mut kept = Grants::default();
    for mut d in grants.dirs {
        let writes = asked.contains(&Capability::WriteDir(d.guest.clone()));
        let reads = writes || asked.contains(&Capability::ReadDir(d.guest.clone()));
        if !reads {
            let key = if d.writable {
                "write_dirs"
            } else {
                "read_dirs"
            };
            unused.push(format!("{key} {:?}", d.guest));
            continue;
        }
        if d.writable && !writes {
            unused.push(format!(
                "write access to {:?} (it asks only to read it)",
                d.guest
            ));
            d.writable = false;
        }
        kept.dirs.push(d);
    }
    for var in grants.env {
        if asked.contains(&Capability::Env(var.clone())) {
            kept.env.push(var);
        } else {
            unused.push(format!("env {var:?}"));
        }
    }
    let any_origin = asked.contains(&Capability::Http(ANY_GRANTED_ORIGIN.into()));
    for origin in grants.http {
        let declared = any_origin
            || asked.iter().any(|c| match c {
                Capability::Http(o) => normalize_origin(o).is_ok_and(|o| o == origin),
                _ => false,
            });
        if declared {
            kept.http.push(origin);
        } else {
            unused.push(format!("allow_http {origin:?}"));
        }
    }
    (kept, unused)
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
                ", beside plugins.{}.path = {:?} (grants reach only the file named there); on the command line: --plugin_grant {}.path={} {}",
                self.plugin,
                p.display().to_string(),
                self.plugin,
                p.display(),
                self.capability.flag(&self.plugin)
            ),
            None => write!(
                f,
                " (on the command line: {})",
                self.capability.flag(&self.plugin)
            ),
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
    fn only_declared_capabilities_are_granted() {
        let asked = [
            Capability::ReadDir("/out".into()),
            Capability::Env("MLFLOW_TRACKING_URI".into()),
        ];
        let (kept, unused) = narrow(&asked, grants());
        assert_eq!(kept.dirs.len(), 1);
        assert_eq!(kept.dirs[0].guest, "/out");
        assert!(
            !kept.dirs[0].writable,
            "a read declaration gets read access"
        );
        assert_eq!(kept.env, ["MLFLOW_TRACKING_URI"]);
        assert!(kept.http.is_empty());
        assert_eq!(
            unused,
            [
                "read_dirs \"/data\"",
                "write access to \"/out\" (it asks only to read it)",
                "allow_http \"http://127.0.0.1:5000\""
            ]
        );
        // "The origin the user grants": any granted origin, and none needed.
        let any = [Capability::Http(ANY_GRANTED_ORIGIN.into())];
        assert_eq!(narrow(&any, grants()).0.http, ["http://127.0.0.1:5000"]);
        assert!(any[0].is_granted(&Grants::default()));
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
            "p.wasm: plugin p asks for `write-dir /data`, which is not granted; add plugins.p.write_dirs = { \"/data\" = \"<host dir>\" } to the run config (on the command line: --plugin_grant p.write_dirs=/data=<host dir>)"
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
