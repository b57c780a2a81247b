//! flyte: HF's `report_to="flyte"` integration (`FlyteCallback` of
//! transformers 5.24) for a trainbox run inside a Flyte task. At train end
//! it writes the "Log History" deck as HF makes it,
//! `Deck("Log History", TableRenderer().to_html(pd.DataFrame(log_history)))`:
//! a page holding the table style of flytekitplugins-deck-standard and
//! pandas' `to_html(classes="table-class", index=False)` of the log history
//! (see `table.rs`), as `log_history.html` in the task's deck folder, which
//! the host grants as `/flyte-deck` from `FLYTE_DECK_DIR`.
//!
//! Not done: HF's `on_save` checkpoint sync (`cp.save(checkpoint dir)`):
//! it needs a read grant on the checkpoints, and the sandbox refuses any
//! grant of `output_dir`, which holds the plugin folders.
//!
//! Config: none of its own (`hostname` and `pid` are accepted and unused).

mod table;

use trainbox_sdk::{
    export_plugin, views, Callback, Capability, Config, Context, Event, TrainingArgs,
};

/// The task's deck folder, as the host grants it.
const DECK_DIR: &str = "/flyte-deck";
/// The deck's file in it.
const DECK_FILE: &str = "log_history.html";

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

#[derive(Default)]
struct Flyte;

impl Callback for Flyte {
    const NAME: &'static str = "flyte";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const EVENTS: &'static [Event] = &[Event::TrainEnd];

    fn capabilities() -> Vec<Capability> {
        vec![Capability::WriteDir(DECK_DIR.into())]
    }

    fn configure(&mut self, _args: &TrainingArgs, config: &Config) -> Result<(), String> {
        config.only(&["hostname", "pid"])
    }

    fn on_train_end(&mut self, cx: &mut Context) {
        if !cx.state.is_world_process_zero {
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
