//! The project database's schema as trackio 0.43 keeps it: the statements
//! `SQLiteStorage.init_db` runs, in its order and with its text (SQLite
//! stores each `CREATE` as written, and `ADD COLUMN` appends to it), so that
//! `sqlite_master` reads the same as in a database trackio made, and
//! `PRAGMA user_version` is its `SCHEMA_VERSION`. trackio reruns these
//! statements on every write (they are idempotent), and so does the plugin.

use rusqlite::Connection;

/// trackio 0.43's `SCHEMA_VERSION` (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 2;

/// `CREATE TABLE IF NOT EXISTS` with trackio's layout: the statement on a
/// line of its own indented by 20 spaces, one column a line by 24.
fn table(name: &str, columns: &[&str]) -> String {
    let pad = " ".repeat(20);
    let cols: Vec<String> = columns.iter().map(|c| format!("    {pad}{c}")).collect();
    format!(
        "\n{pad}CREATE TABLE IF NOT EXISTS {name} (\n{}\n{pad})\n{pad}",
        cols.join(",\n")
    )
}

/// `CREATE [UNIQUE] INDEX IF NOT EXISTS` with trackio's layout (`head` is
/// `INDEX` or `UNIQUE INDEX`).
fn index(head: &str, name: &str, on: &str) -> String {
    let pad = " ".repeat(20);
    format!("\n{pad}CREATE {head} IF NOT EXISTS {name}\n{pad}ON {on}\n{pad}")
}

/// One statement of `init_db`; `may_fail` for the `ADD COLUMN`s that fail
/// once the column exists (trackio ignores that error).
struct Statement {
    sql: String,
    may_fail: bool,
}

fn run(sql: String) -> Statement {
    Statement {
        sql,
        may_fail: false,
    }
}

fn add_column(sql: String) -> Statement {
    Statement {
        sql,
        may_fail: true,
    }
}

/// `init_db`'s statements, in its order, for a database whose tables all
/// have `run_id` (every one at schema version 2).
fn statements() -> Vec<Statement> {
    let pad = " ".repeat(20);
    let mut s = vec![
        run(table(
            "metrics",
            &[
                "id INTEGER PRIMARY KEY AUTOINCREMENT",
                "run_id TEXT NOT NULL",
                "timestamp TEXT NOT NULL",
                "run_name TEXT NOT NULL",
                "step INTEGER NOT NULL",
                "metrics TEXT NOT NULL",
            ],
        )),
        run(table(
            "configs",
            &[
                "id INTEGER PRIMARY KEY AUTOINCREMENT",
                "run_id TEXT NOT NULL",
                "run_name TEXT NOT NULL",
                "config TEXT NOT NULL",
                "created_at TEXT NOT NULL",
                "UNIQUE(run_id)",
            ],
        )),
        run(table(
            "system_metrics",
            &[
                "id INTEGER PRIMARY KEY AUTOINCREMENT",
                "run_id TEXT NOT NULL",
                "timestamp TEXT NOT NULL",
                "run_name TEXT NOT NULL",
                "metrics TEXT NOT NULL",
            ],
        )),
        run(table(
            "traces",
            &[
                "id TEXT PRIMARY KEY",
                "run_id TEXT NOT NULL",
                "timestamp TEXT NOT NULL",
                "run_name TEXT NOT NULL",
                "step INTEGER NOT NULL",
                "key TEXT NOT NULL",
                "trace_index INTEGER",
                "messages TEXT NOT NULL",
                "metadata TEXT NOT NULL",
                "search_text TEXT NOT NULL",
                "log_id TEXT",
                "space_id TEXT",
                "spans TEXT NOT NULL DEFAULT '[]'",
            ],
        )),
        add_column("ALTER TABLE traces ADD COLUMN spans TEXT NOT NULL DEFAULT '[]'".into()),
        run(table(
            "project_metadata",
            &["key TEXT PRIMARY KEY", "value TEXT NOT NULL"],
        )),
        run(table(
            "pending_uploads",
            &[
                "id INTEGER PRIMARY KEY AUTOINCREMENT",
                "space_id TEXT NOT NULL",
                "run_id TEXT",
                "run_name TEXT",
                "step INTEGER",
                "file_path TEXT NOT NULL",
                "relative_path TEXT",
                "created_at TEXT NOT NULL",
            ],
        )),
        run(table(
            "alerts",
            &[
                "id INTEGER PRIMARY KEY AUTOINCREMENT",
                "run_id TEXT NOT NULL",
                "timestamp TEXT NOT NULL",
                "run_name TEXT NOT NULL",
                "title TEXT NOT NULL",
                "text TEXT",
                "level TEXT NOT NULL DEFAULT 'warn'",
                "step INTEGER",
                "alert_id TEXT",
            ],
        )),
        run(table(
            "artifacts",
            &[
                "id INTEGER PRIMARY KEY AUTOINCREMENT",
                "name TEXT NOT NULL UNIQUE",
                "type TEXT NOT NULL",
                "description TEXT",
                "created_at TEXT NOT NULL",
            ],
        )),
        run(table(
            "artifact_versions",
            &[
                "id INTEGER PRIMARY KEY AUTOINCREMENT",
                "artifact_id INTEGER NOT NULL REFERENCES artifacts(id)",
                "version INTEGER NOT NULL",
                "manifest_digest TEXT NOT NULL",
                "manifest TEXT NOT NULL",
                "metadata TEXT",
                "size_bytes INTEGER NOT NULL",
                "producer_run_id TEXT",
                "producer_run_name TEXT",
                "created_at TEXT NOT NULL",
                "UNIQUE(artifact_id, version)",
                "UNIQUE(artifact_id, manifest_digest)",
            ],
        )),
        run(table(
            "artifact_aliases",
            &[
                "artifact_id INTEGER NOT NULL REFERENCES artifacts(id)",
                "alias TEXT NOT NULL",
                "artifact_version_id INTEGER NOT NULL REFERENCES artifact_versions(id)",
                "PRIMARY KEY (artifact_id, alias)",
            ],
        )),
        run(table(
            "run_artifact_links",
            &[
                "id INTEGER PRIMARY KEY AUTOINCREMENT",
                "run_id TEXT",
                "run_name TEXT",
                "run_project TEXT",
                "artifact_version_id INTEGER NOT NULL REFERENCES artifact_versions(id)",
                "direction TEXT NOT NULL CHECK(direction IN ('input', 'output'))",
                "created_at TEXT NOT NULL",
            ],
        )),
        run(table(
            "external_run_artifact_links",
            &[
                "id INTEGER PRIMARY KEY AUTOINCREMENT",
                "run_id TEXT",
                "run_name TEXT",
                "source_project TEXT NOT NULL",
                "source_version_id INTEGER NOT NULL",
                "source_artifact TEXT NOT NULL",
                "source_type TEXT NOT NULL",
                "source_version INTEGER NOT NULL",
                "source_size_bytes INTEGER NOT NULL",
                "direction TEXT NOT NULL CHECK(direction IN ('input', 'output'))",
                "created_at TEXT NOT NULL",
            ],
        )),
        run(index(
            "INDEX",
            "idx_run_artifact_links_run",
            "run_artifact_links(run_id, run_name)",
        )),
        run(index(
            "INDEX",
            "idx_run_artifact_links_name",
            "run_artifact_links(run_name, run_id)",
        )),
        run(index(
            "INDEX",
            "idx_run_artifact_links_version",
            "run_artifact_links(artifact_version_id)",
        )),
        add_column("ALTER TABLE run_artifact_links ADD COLUMN run_project TEXT".into()),
        run("DROP INDEX IF EXISTS idx_run_artifact_links_unique".into()),
        run(format!(
            "CREATE UNIQUE INDEX IF NOT EXISTS\n{pad}idx_run_artifact_links_unique\n{pad}ON run_artifact_links(\n{pad}    COALESCE(run_project, ''), COALESCE(run_id, ''),\n{pad}    COALESCE(run_name, ''), artifact_version_id, direction\n{pad})"
        )),
        run(format!(
            "CREATE INDEX IF NOT EXISTS idx_run_artifact_links_project_run\n{pad}ON run_artifact_links(run_project, run_id, run_name)"
        )),
        run(format!(
            "CREATE INDEX IF NOT EXISTS idx_external_artifact_links_run\n{pad}ON external_run_artifact_links(run_id, run_name)"
        )),
        run(format!(
            "CREATE UNIQUE INDEX IF NOT EXISTS\n{pad}idx_external_artifact_links_unique\n{pad}ON external_run_artifact_links(\n{pad}    COALESCE(run_id, ''), COALESCE(run_name, ''),\n{pad}    source_project, source_version_id, direction\n{pad})"
        )),
        add_column("ALTER TABLE pending_uploads ADD COLUMN kind TEXT NOT NULL DEFAULT 'media'".into()),
        add_column("ALTER TABLE pending_uploads ADD COLUMN digest TEXT".into()),
        run(index("INDEX", "idx_pending_uploads_kind", "pending_uploads(kind)")),
        run(index("INDEX", "idx_metrics_run_step", "metrics(run_id, step)")),
        run(index(
            "INDEX",
            "idx_metrics_run_timestamp",
            "metrics(run_id, timestamp)",
        )),
        run(index("INDEX", "idx_configs_run_name", "configs(run_name)")),
        run(index(
            "INDEX",
            "idx_system_metrics_run_timestamp",
            "system_metrics(run_id, timestamp)",
        )),
        run(index("INDEX", "idx_traces_run_step", "traces(run_id, step)")),
        run(index(
            "INDEX",
            "idx_traces_run_timestamp",
            "traces(run_id, timestamp)",
        )),
        run(index("INDEX", "idx_traces_search", "traces(search_text)")),
        run(index("INDEX", "idx_alerts_run", "alerts(run_id)")),
        run(index("INDEX", "idx_alerts_timestamp", "alerts(timestamp)")),
        run(index(
            "UNIQUE INDEX",
            "idx_alerts_alert_id",
            "alerts(alert_id) WHERE alert_id IS NOT NULL",
        )),
    ];
    let pad24 = " ".repeat(24);
    for t in ["metrics", "system_metrics"] {
        s.push(add_column(format!(
            "ALTER TABLE {t} ADD COLUMN log_id TEXT"
        )));
        s.push(add_column(format!(
            "ALTER TABLE {t} ADD COLUMN space_id TEXT"
        )));
        s.push(run(format!(
            "CREATE UNIQUE INDEX IF NOT EXISTS idx_{t}_log_id\n{pad24}ON {t}(log_id) WHERE log_id IS NOT NULL"
        )));
        s.push(run(format!(
            "CREATE INDEX IF NOT EXISTS idx_{t}_pending\n{pad24}ON {t}(space_id) WHERE space_id IS NOT NULL"
        )));
    }
    s
}

/// The last statement, run after the version is set, as `init_db` does.
fn run_record_index() -> String {
    let pad24 = " ".repeat(24);
    format!("CREATE INDEX IF NOT EXISTS idx_metrics_run_record\n{pad24}ON metrics(run_id, run_name, timestamp)")
}

/// Brings the database `db` (at `path`, for messages) to trackio 0.43's
/// schema inside one transaction: a new database gets every table, index
/// and the schema version; one at version 2 gets what `init_db` would
/// re-add; any other is refused, since trackio would have to migrate it.
pub fn init(db: &mut Connection, path: &str, project: &str) -> Result<(), String> {
    let fail = |e: rusqlite::Error| format!("{path}: {e}");
    let tx = db.transaction().map_err(fail)?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(fail)?;
    let tables: i64 = tx
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .map_err(fail)?;
    if tables > 0 && version < SCHEMA_VERSION {
        return Err(format!(
            "{path} is a trackio database at schema version {version}, older than trackio 0.43's {SCHEMA_VERSION}; \
             let trackio 0.43 migrate it first (`python -c \"from trackio.sqlite_storage import SQLiteStorage; \
             SQLiteStorage.init_db('{project}')\"`), or use another project (--plugin_config trackio.project=NAME)"
        ));
    }
    if version > SCHEMA_VERSION {
        return Err(format!(
            "{path} is at trackio schema version {version}, newer than the {SCHEMA_VERSION} of trackio 0.43 \
             that this plugin writes; use another project (--plugin_config trackio.project=NAME)"
        ));
    }
    for st in statements() {
        match tx.execute_batch(&st.sql) {
            Ok(()) => {}
            Err(e) if st.may_fail && e.to_string().contains("duplicate column name") => {}
            Err(e) => return Err(format!("{path}: {e} (in `{}`)", st.sql.trim())),
        }
    }
    if version < SCHEMA_VERSION {
        // A new database: trackio sets version 1, then its migration to 2
        // finds every table with `run_id` and only records the version.
        tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))
            .map_err(fail)?;
    }
    tx.execute_batch(&run_record_index()).map_err(fail)?;
    tx.commit().map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_database_gets_the_version_and_a_second_init_changes_nothing() {
        let mut db = Connection::open_in_memory().unwrap();
        init(&mut db, ":memory:", "p").unwrap();
        let schema = |db: &Connection| -> Vec<String> {
            let mut q = db.prepare("SELECT sql FROM sqlite_master").unwrap();
            let rows = q.query_map([], |r| r.get::<_, Option<String>>(0)).unwrap();
            let mut all: Vec<String> = rows.map(|r| r.unwrap().unwrap_or_default()).collect();
            // trackio drops and re-creates one index each time: the order moves.
            all.sort();
            all
        };
        let first = schema(&db);
        init(&mut db, ":memory:", "p").unwrap();
        assert_eq!(schema(&db), first);
        let v: i64 = db
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, 2);
        assert!(first
            .iter()
            .any(|s| s.ends_with(", log_id TEXT, space_id TEXT)")));
    }

    #[test]
    fn an_older_or_newer_database_is_refused() {
        let mut db = Connection::open_in_memory().unwrap();
        db.execute_batch("CREATE TABLE metrics (id INTEGER); PRAGMA user_version = 1")
            .unwrap();
        let err = init(&mut db, "/trackio/p.db", "p").unwrap_err();
        assert!(err.contains("schema version 1, older"), "{err}");
        let mut db = Connection::open_in_memory().unwrap();
        db.execute_batch("PRAGMA user_version = 3").unwrap();
        let err = init(&mut db, "/trackio/p.db", "p").unwrap_err();
        assert!(err.contains("schema version 3, newer"), "{err}");
    }
}
