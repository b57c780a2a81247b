//! flyte: HF's `report_to="flyte"` integration (`FlyteCallback` of
//! transformers 5.24) for a trainbox run inside a Flyte task.
//!
//! - At train end it writes the "Log History" deck as HF makes it,
//!   `Deck("Log History", TableRenderer().to_html(pd.DataFrame(log_history)))`:
//!   a page holding the table style of flytekitplugins-deck-standard and
//!   pandas' `to_html(classes="table-class", index=False)` of the log
//!   history (see `table.rs`), as `log_history.html` in the task's deck
//!   folder, which the host grants as `/flyte-deck` from `FLYTE_DECK_DIR`.
//! - At each save it syncs the checkpoint to Flyte as HF's `on_save` does
//!   (`cp.save(output_dir/checkpoint-N)`, flytekit's `SyncCheckpoint`: the
//!   folder's files copied into the task's checkpoint folder, replacing
//!   those of the same name). It reads the checkpoint through the
//!   read-only `/output` grant and writes `/flyte-checkpoint`; the host
//!   grants both only when `FLYTE_CHECKPOINT_DIR` gives the task's
//!   checkpoint folder (and then says so in `checkpoint_dir`).
//!
//! Config: HF's constructor arguments `save_log_history` and
//! `sync_checkpoints` (`true`/`false`, both true by default); from the
//! host, `checkpoint_dir` (the guest folder to sync to), `hostname`, `pid`.

mod table;

use trainbox_sdk::{
    export_plugin, views, Callback, Capability, Config, Context, Event, TrainingArgs,
};

/// The task's deck folder, as the host grants it.
const DECK_DIR: &str = "/flyte-deck";
/// The deck's file in it.
const DECK_FILE: &str = "log_history.html";
/// The run's output_dir, granted read-only when checkpoints are synced.
const OUTPUT_DIR: &str = "/output";

/// The style of deck-standard's `TableRenderer`, in its own words: a thin
/// border on the table and each cell, padded cells, shaded even rows, a
/// hover shade and centred headers.
const STYLE: &str = "<style>
  .table-class { border: 1px solid #ccc; border-collapse: collapse; font-family: Arial, sans-serif; color: #333; }
  .table-class th, .table-class td { border: 1px solid #ccc; padding: 8px; }
  .table-class tr:nth-child(even) { background-color: #f2f2f2; }
  .table-class tr:hover { background-color: #ddd; }
  .table-class th { text-align: center; }
</style>
";

/// HF's `FlyteCallback(save_log_history, sync_checkpoints)`.
struct Flyte {
    save_log_history: bool,
    /// Where checkpoints are synced to, when they are.
    checkpoint_dir: Option<String>,
}

impl Default for Flyte {
    fn default() -> Self {
        Flyte {
            save_log_history: true,
            checkpoint_dir: None,
        }
    }
}

/// Copies the files below `from` into `to` (made as needed), replacing
/// those of the same name, as fsspec's recursive `put` does.
fn copy_tree(from: &str, to: &str) -> std::io::Result<u64> {
    std::fs::create_dir_all(to)?;
    let mut copied = 0;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let (src, dst) = (format!("{from}/{name}"), format!("{to}/{name}"));
        if entry.file_type()?.is_dir() {
            copied += copy_tree(&src, &dst)?;
        } else {
            copied += std::fs::copy(&src, &dst)?;
        }
    }
    Ok(copied)
}

impl Callback for Flyte {
    const NAME: &'static str = "flyte";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const EVENTS: &'static [Event] = &[Event::Save, Event::TrainEnd];

    fn capabilities() -> Vec<Capability> {
        vec![Capability::WriteDir(DECK_DIR.into())]
    }

    fn configure(&mut self, _args: &TrainingArgs, config: &Config) -> Result<(), String> {
        config.only(&[
            "save_log_history",
            "sync_checkpoints",
            "checkpoint_dir",
            "hostname",
            "pid",
        ])?;
        self.save_log_history = config.parse("save_log_history")?.unwrap_or(true);
        let sync: bool = config.parse("sync_checkpoints")?.unwrap_or(true);
        self.checkpoint_dir = match (sync, config.get("checkpoint_dir")) {
            (true, Some(dir)) => Some(dir.to_string()),
            (true, None) => {
                println!("FLYTE_CHECKPOINT_DIR is not set, so checkpoints are not synced to Flyte (set it to the task's checkpoint folder)");
                None
            }
            (false, _) => None,
        };
        Ok(())
    }

    fn on_save(&mut self, cx: &mut Context) {
        let Some(dest) = &self.checkpoint_dir else {
            return;
        };
        if !cx.state.is_world_process_zero {
            return;
        }
        let ckpt = format!("checkpoint-{}", cx.state.global_step);
        println!("syncing checkpoint in {ckpt} to Flyte");
        if let Err(e) = copy_tree(&format!("{OUTPUT_DIR}/{ckpt}"), dest) {
            eprintln!("warning: {ckpt} was not synced to Flyte's checkpoint folder: {e}");
        }
    }

    fn on_train_end(&mut self, cx: &mut Context) {
        if !self.save_log_history || !cx.state.is_world_process_zero {
            return;
        }
        let history = views::history();
        let rows: Vec<_> = (0..history.len()).filter_map(|i| history.get(i)).collect();
        let page = format!(
            "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>Log History</title>\n</head>\n<body>\n{STYLE}{}\n</body>\n</html>\n",
            table::to_html(&rows)
        );
        let path = format!("{DECK_DIR}/{DECK_FILE}");
        if let Err(e) = std::fs::write(&path, page) {
            eprintln!("warning: the Log History deck was not written to {path}: {e}");
        }
    }
}

export_plugin!(Flyte);
