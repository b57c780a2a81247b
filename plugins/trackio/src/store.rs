//! The project database: `<TRACKIO_DIR>/<project>.db`, written through
//! SQLite itself (rusqlite's bundled SQLite, compiled for WASI by clang).
//!
//! WASI has neither file locks nor shared memory, so the connection uses
//! SQLite's `unix-none` VFS (no locking) with `locking_mode = EXCLUSIVE`,
//! which keeps the WAL index in the plugin's memory: the file stays in
//! trackio's WAL journal mode, and each write opens, commits and closes,
//! which checkpoints the WAL into the database and removes it, so that
//! between writes the project is one file any trackio can read. trackio's
//! `<project>.lock` (a `flock`) cannot be taken from WASI: a trackio
//! process writing the same project at the same moment is not kept out.

use crate::schema;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

/// One row of the `metrics` table, as `trackio.log` leaves it.
pub struct MetricRow {
    pub timestamp: String,
    pub step: i64,
    /// The metrics as JSON (stored as a blob, as trackio's `orjson.dumps`).
    pub metrics: String,
    pub log_id: String,
}

/// The project database of one run.
pub struct Store {
    /// The file, as the plugin sees it.
    path: String,
    /// The file, as the user sees it (for messages).
    pub shown: String,
}

impl Store {
    /// Opens (or creates) the database of `project` (its canonical file
    /// name) in `dir` and brings it to trackio's schema. `shown_dir` is
    /// `dir` as the user knows it.
    pub fn open(dir: &str, shown_dir: &str, project: &str) -> Result<Store, String> {
        let file = format!("{}.db", canonical_project_name(project));
        let store = Store {
            path: format!("{dir}/{file}"),
            shown: format!("{shown_dir}/{file}"),
        };
        let mut db = store.connect()?;
        schema::init(&mut db, &store.shown, project)?;
        store.close(db)?;
        Ok(store)
    }

    fn connect(&self) -> Result<Connection, String> {
        let fail = |e: rusqlite::Error| format!("{}: {e}", self.shown);
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let db =
            Connection::open_with_flags_and_vfs(&self.path, flags, "unix-none").map_err(fail)?;
        db.execute_batch(
            "PRAGMA locking_mode = EXCLUSIVE; PRAGMA temp_store = MEMORY; PRAGMA synchronous = NORMAL;",
        )
        .map_err(fail)?;
        let mode: String = db
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(fail)?;
        if mode != "wal" {
            return Err(format!(
                "{}: SQLite kept journal mode {mode}, not wal",
                self.shown
            ));
        }
        Ok(db)
    }

    /// Closes `db`, which checkpoints and removes its WAL file.
    fn close(&self, db: Connection) -> Result<(), String> {
        db.close().map_err(|(_, e)| format!("{}: {e}", self.shown))
    }

    /// The id and next step of the latest run named `name`, as
    /// `trackio.init(name=…, resume="allow")` finds it: the run whose first
    /// metric is the latest, continuing after its largest step.
    pub fn resume(&self, name: &str) -> Result<Option<(String, i64)>, String> {
        let db = self.connect()?;
        let fail = |e: rusqlite::Error| format!("{}: {e}", self.shown);
        let id: Option<String> = db
            .query_row(
                "SELECT run_id, MIN(timestamp) AS created_at FROM metrics WHERE run_name = ?1 \
                 GROUP BY run_id, run_name ORDER BY created_at DESC LIMIT 1",
                [name],
                |r| r.get(0),
            )
            .optional()
            .map_err(fail)?;
        let found = match id {
            None => None,
            Some(id) => {
                let last: Option<i64> = db
                    .query_row(
                        "SELECT MAX(step) FROM metrics WHERE run_id = ?1",
                        [&id],
                        |r| r.get(0),
                    )
                    .map_err(fail)?;
                Some((id, last.map_or(0, |s| s + 1)))
            }
        };
        self.close(db)?;
        Ok(found)
    }

    /// Appends `row` for the run, with its config (the first write of a
    /// run) in the same transaction, as trackio's `bulk_log` does.
    pub fn write(
        &self,
        run_id: &str,
        run_name: &str,
        row: &MetricRow,
        config: Option<(&str, &str)>,
    ) -> Result<(), String> {
        let mut db = self.connect()?;
        let fail = |e: rusqlite::Error| format!("{}: {e}", self.shown);
        let tx = db.transaction().map_err(fail)?;
        tx.execute(
            "INSERT OR IGNORE INTO metrics (timestamp, run_id, run_name, step, metrics, log_id, space_id) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL)",
            params![
                row.timestamp,
                run_id,
                run_name,
                row.step,
                row.metrics.as_bytes(),
                row.log_id
            ],
        )
        .map_err(fail)?;
        if let Some((config, created_at)) = config {
            tx.execute(
                "INSERT OR REPLACE INTO configs (run_id, run_name, config, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![run_id, run_name, config.as_bytes(), created_at],
            )
            .map_err(fail)?;
        }
        tx.commit().map_err(fail)?;
        self.close(db)
    }
}

/// trackio's `canonical_project_name`: the letters, digits, `-` and `_` of
/// the name, `default` when none are left.
pub fn canonical_project_name(project: &str) -> String {
    let safe: String = project
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    if safe.is_empty() {
        "default".into()
    } else {
        safe
    }
}

/// trackio's `validate_project_name`: names that would share trackio's
/// files with a registry or with another project's sidecar files.
pub fn validate_project_name(project: &str) -> Result<(), String> {
    let canonical = canonical_project_name(project);
    if canonical.starts_with("registry-") {
        return Err(format!(
            "project {project:?}: names beginning with \"registry-\" are reserved for trackio registries; \
             choose another (--plugin_config trackio.project=NAME)"
        ));
    }
    const RESERVED: &[&str] = &[
        "_system",
        "_configs",
        "_traces",
        "_artifacts",
        "_artifact_versions",
        "_artifact_aliases",
        "_run_artifact_links",
        "_external_run_artifact_links",
    ];
    for suffix in RESERVED {
        if canonical.len() > suffix.len() && canonical.ends_with(suffix) {
            return Err(format!(
                "project {project:?}: its file name {canonical:?} ends with {suffix:?}, which trackio reserves \
                 for the side files of project {:?}; choose another (--plugin_config trackio.project=NAME)",
                &canonical[..canonical.len() - suffix.len()]
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names_as_trackio_canonicalizes_and_validates_them() {
        assert_eq!(canonical_project_name("my.model"), "mymodel");
        assert_eq!(canonical_project_name("a b/c-d_e"), "abc-d_e");
        assert_eq!(canonical_project_name("..."), "default");
        assert!(validate_project_name("huggingface").is_ok());
        assert!(validate_project_name("registry-x").is_err());
        assert!(validate_project_name("model_artifacts").is_err());
        assert!(validate_project_name("_configs").is_ok());
    }
}
