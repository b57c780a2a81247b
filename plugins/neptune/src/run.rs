//! A neptune 1.14 offline run as `init_run(mode="offline")` keeps it:
//! `<data dir>/offline/run__<uuid>__<pid>__<8 random>/` with `metadata.json`,
//! the operations in `data-<first version>.log` (JSON Lines
//! `{"obj": operation, "version": n, "at": time}`, a new file past 64 MiB),
//! `last_put_version` (the last version written), an empty
//! `last_ack_version` (nothing sent yet) and an empty `upload_path/`. `neptune sync` sends it.
//!
//! The operations are neptune's, with its rules: an int assigned outside
//! 32 bits and a NaN or infinite float are skipped with neptune's warning,
//! a logged number is a float, a string is cut at 16384 characters.

use crate::warn;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use trainbox_sdk::python::{json_dumps, Py};
use trainbox_sdk::time::{random_u64, unix_now, Utc};

/// neptune's `DiskQueue` starts a new data file past this size.
const MAX_FILE_SIZE: u64 = 64 * 1024 * 1024;

/// neptune's `String.MAX_VALUE_LENGTH` (characters).
const MAX_STRING: usize = 16384;

/// neptune's client version whose format this is.
pub const CLIENT_VERSION: &str = "1.14.0.post2";

/// A value assigned to a field.
#[derive(Clone, Debug, PartialEq)]
pub enum Atom {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

/// What `metadata.json` tells of the run's machine.
pub struct Machine<'a> {
    pub pid: &'a str,
    pub os: &'a str,
}

/// An open offline run.
pub struct OfflineRun {
    /// The run's uuid (`containerId`).
    pub id: String,
    /// The run's folder name, `run__<uuid>__<pid>__<key>`.
    pub name: String,
    folder: PathBuf,
    /// The last version written (`last_put_version`).
    version: u64,
    /// The data file being written and its size.
    file: File,
    file_size: u64,
    /// Lines not yet written.
    pending: Vec<String>,
}

/// `str(uuid.uuid4())` from the sandbox's randomness.
fn uuid4() -> String {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&random_u64().to_le_bytes());
    bytes[8..].copy_from_slice(&random_u64().to_le_bytes());
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// neptune's `random_key(8)`: lowercase letters and digits.
fn random_key() -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..8)
        .map(|_| CHARS[(random_u64() % CHARS.len() as u64) as usize] as char)
        .collect()
}

/// neptune's `parse_path`: `/`-separated, empty parts dropped.
pub fn parse_path(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|p| !p.is_empty())
        .map(String::from)
        .collect()
}

/// `datetime.now(timezone.utc).isoformat()`: microseconds and `+00:00`.
fn iso_utc(unix: f64) -> String {
    let t = Utc::from_unix(unix.floor() as i64);
    let micros = ((unix - unix.floor()) * 1e6) as u32;
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{micros:06}+00:00",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

fn py_path(path: &[String]) -> Py {
    Py::List(path.iter().map(|p| Py::Str(p.clone())).collect())
}

fn data_file(folder: &Path, first_version: u64) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(folder.join(format!("data-{first_version}.log")))
}

impl OfflineRun {
    /// Creates the run's folder in `offline_root` (`<data dir>/offline`).
    pub fn create(offline_root: &Path, machine: &Machine) -> io::Result<OfflineRun> {
        let id = uuid4();
        let name = format!("run__{id}__{}__{}", machine.pid, random_key());
        let folder = offline_root.join(&name);
        fs::create_dir_all(&folder)?;
        let created = iso_utc(unix_now());
        let metadata = Py::Dict(vec![
            ("mode".into(), Py::Str("offline".into())),
            ("containerId".into(), Py::Str(id.clone())),
            ("containerType".into(), Py::Str("run".into())),
            ("structureVersion".into(), Py::Int(3)),
            ("os".into(), Py::Str(machine.os.into())),
            (
                "pythonVersion".into(),
                Py::Str(format!(
                    "none: written by trainbox's neptune plugin {}",
                    env!("CARGO_PKG_VERSION")
                )),
            ),
            (
                "neptuneClientVersion".into(),
                Py::Str(CLIENT_VERSION.into()),
            ),
            ("createdAt".into(), Py::Str(created)),
        ]);
        fs::write(folder.join("metadata.json"), json_dumps(&metadata, Some(2)))?;
        fs::write(folder.join("last_ack_version"), "")?;
        // neptune's `OperationStorage`: where uploaded files are staged.
        fs::create_dir_all(folder.join("upload_path"))?;
        let file = data_file(&folder, 1)?;
        let run = OfflineRun {
            id,
            name,
            folder,
            version: 0,
            file,
            file_size: 0,
            pending: Vec::new(),
        };
        fs::write(run.folder.join("last_put_version"), "0")?;
        Ok(run)
    }

    /// Queues one operation (`type`, then `path`, then its own fields).
    fn put(&mut self, kind: &str, path: &[String], fields: Vec<(String, Py)>) {
        self.version += 1;
        let mut obj = vec![
            ("type".to_string(), Py::Str(kind.into())),
            ("path".to_string(), py_path(path)),
        ];
        obj.extend(fields);
        let line = Py::Dict(vec![
            ("obj".into(), Py::Dict(obj)),
            ("version".into(), Py::Int(self.version.into())),
            ("at".into(), Py::Float(unix_now())),
        ]);
        self.pending.push(json_dumps(&line, None));
    }

    /// `run[path] = value`, by neptune's rules.
    pub fn assign(&mut self, path: &[String], value: Atom) {
        let shown = path.join("/");
        let (kind, v) = match value {
            Atom::Str(s) => {
                let s = if s.chars().count() > MAX_STRING {
                    warn(&format!(
                        "The string you're trying to log ({shown}) is longer than {MAX_STRING} characters; it is truncated, as neptune does"
                    ));
                    s.chars().take(MAX_STRING).collect()
                } else {
                    s
                };
                ("AssignString", Py::Str(s))
            }
            Atom::Bool(b) => ("AssignBool", Py::Bool(b)),
            Atom::Int(i) if i32::try_from(i).is_ok() => ("AssignInt", Py::Int(i.into())),
            Atom::Int(i) => {
                warn(&format!(
                    "The value you're trying to log ({shown}) is outside the range of 32-bit integers (-2147483648 to 2147483647) and will be skipped, as neptune does: {i}"
                ));
                return;
            }
            Atom::Float(f) if f.is_finite() => ("AssignFloat", Py::Float(f)),
            Atom::Float(f) => {
                warn(&format!(
                    "The value you're trying to log ({shown}) is a nonstandard float value ({}) and will be skipped, as neptune does",
                    trainbox_sdk::python::float_repr(f)
                ));
                return;
            }
        };
        self.put(kind, path, vec![("value".into(), v)]);
    }

    /// `run[path].log(value, step=step)` of a number.
    pub fn log_float(&mut self, path: &[String], value: f64, step: u64) {
        if !value.is_finite() {
            warn(&format!(
                "A value you're trying to log ({}) will be skipped because it's a non-standard float value ({}), as neptune does",
                path.join("/"),
                trainbox_sdk::python::float_repr(value)
            ));
            return;
        }
        let entry = Py::Dict(vec![
            ("value".into(), Py::Float(value)),
            ("step".into(), Py::Int(step.into())),
            ("ts".into(), Py::Float(unix_now())),
        ]);
        self.put(
            "LogFloats",
            path,
            vec![("values".into(), Py::List(vec![entry]))],
        );
    }

    /// `run[path].log(lines)`: a string series without steps.
    pub fn log_strings(&mut self, path: &[String], lines: &[String]) {
        let ts = unix_now();
        let values = lines
            .iter()
            .map(|l| {
                Py::Dict(vec![
                    (
                        "value".into(),
                        Py::Str(l.chars().take(MAX_STRING).collect()),
                    ),
                    ("step".into(), Py::None),
                    ("ts".into(), Py::Float(ts)),
                ])
            })
            .collect();
        self.put(
            "LogStrings",
            path,
            vec![("values".into(), Py::List(values))],
        );
    }

    /// Writes the queued operations and `last_put_version`.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let first = self.version + 1 - self.pending.len() as u64;
        let mut buf = String::new();
        for (i, line) in std::mem::take(&mut self.pending).into_iter().enumerate() {
            let size = line.len() as u64 + 1;
            if self.file_size > 0 && self.file_size + size > MAX_FILE_SIZE {
                self.file.write_all(buf.as_bytes())?;
                buf.clear();
                self.file = data_file(&self.folder, first + i as u64)?;
                self.file_size = 0;
            }
            buf.push_str(&line);
            buf.push('\n');
            self.file_size += size;
        }
        self.file.write_all(buf.as_bytes())?;
        self.file.flush()?;
        fs::write(
            self.folder.join("last_put_version"),
            self.version.to_string(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(folder: &Path) -> Vec<serde_json::Value> {
        fs::read_to_string(folder.join("data-1.log"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn neptunes_rules_and_its_layout() {
        let root = std::env::temp_dir().join(format!("neptune-run-test-{}", random_u64()));
        let machine = Machine {
            pid: "42",
            os: "Linux",
        };
        let mut run = OfflineRun::create(&root, &machine).unwrap();
        let folder = root.join(&run.name);
        let p = parse_path("finetuning//train/x/");
        assert_eq!(p, ["finetuning", "train", "x"]);
        run.assign(&p, Atom::Int(1 << 40));
        run.assign(&p, Atom::Float(f64::NAN));
        run.log_float(&p, f64::INFINITY, 1);
        run.assign(&p, Atom::Str("é".repeat(MAX_STRING + 1)));
        run.log_float(&p, 2.0, 7);
        run.flush().unwrap();
        let ops = lines(&folder);
        assert_eq!(ops.len(), 2, "{ops:?}");
        assert_eq!(ops[0]["obj"]["type"], "AssignString");
        assert_eq!(
            ops[0]["obj"]["value"].as_str().unwrap().chars().count(),
            MAX_STRING
        );
        assert_eq!(ops[1]["obj"]["values"][0]["step"], 7);
        assert_eq!(ops[1]["version"], 2);
        assert_eq!(
            fs::read_to_string(folder.join("last_put_version")).unwrap(),
            "2"
        );
        assert_eq!(
            fs::read_to_string(folder.join("last_ack_version")).unwrap(),
            ""
        );
        assert!(run.name.starts_with(&format!("run__{}__42__", run.id)));
        let meta: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(folder.join("metadata.json")).unwrap())
                .unwrap();
        assert_eq!(meta["structureVersion"], 3);
        assert!(meta["createdAt"].as_str().unwrap().ends_with("+00:00"));
        fs::remove_dir_all(&root).unwrap();
    }
}
