//! The host resources a plugin holds handles on (WIT `resource`s), mapped
//! to these types by every version's `bindgen!` in `bindings/` and
//! implemented in `host.rs`.

/// A plugin's handle on the log history.
pub struct LogHistoryHandle;
/// A plugin's handle on the model statistics.
pub struct ModelStatsHandle;
/// A progress bar a plugin drives.
pub struct BarHandle {
    pub(super) bar: indicatif::ProgressBar,
    pub(super) leave: bool,
    pub(super) closed: bool,
}
