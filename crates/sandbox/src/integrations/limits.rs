//! The limits an integration needs beyond a plugin's defaults, where the
//! run config leaves them: only for the work a variable asks for.

use crate::sandbox::PluginLimits;

/// How long an event may take that copies a checkpoint (W&B's staged
/// artifacts, flyte's checkpoint sync): a real model's checkpoint takes
/// seconds to copy, far past the 100 ms an event gets.
pub(super) const COPY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(120);

/// How long a wandb event may take when `WANDB_WATCH` asks for the
/// histograms of every parameter and gradient (computed on the host; about
/// 2 ms per tensor of 37k values, 300 ms per event seen on a loaded machine).
pub(super) const WATCH_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// The limits of a plugin that copies checkpoints, where the run config
/// leaves the defaults (a value it sets is kept): [`COPY_DEADLINE`] for its
/// events, for `finish` (which may copy the final model) and for an HTTP
/// request (an upload's body is sent within it), and no
/// `disk_mb` cap, as the copies grow with every checkpoint (the disk's free
/// space, with the host's reserve, still caps them).
pub(super) fn copying_limits(limits: &mut PluginLimits) {
    let default = PluginLimits::default();
    if limits.deadline == default.deadline {
        limits.deadline = COPY_DEADLINE;
    }
    if limits.init_deadline == default.init_deadline {
        limits.init_deadline = COPY_DEADLINE;
    }
    if limits.disk_bytes == default.disk_bytes {
        limits.disk_bytes = 1 << 50;
    }
    // An upload's request lasts as long as its body takes to send.
    if limits.http_timeout == default.http_timeout {
        limits.http_timeout = COPY_DEADLINE;
    }
}

/// The limits `WANDB_LOG_MODEL` and `WANDB_WATCH` need, where the run
/// config leaves the defaults: [`copying_limits`] when it logs models,
/// [`WATCH_DEADLINE`] per event when it only watches. `get` reads an
/// environment variable.
pub(super) fn wandb_limits(limits: &mut PluginLimits, get: &dyn Fn(&str) -> Option<String>) {
    let log_model = matches!(
        get("WANDB_LOG_MODEL").as_deref(),
        Some("checkpoint" | "end")
    );
    let watch = matches!(
        get("WANDB_WATCH").as_deref(),
        Some("gradients" | "parameters" | "all")
    );
    if log_model {
        copying_limits(limits);
    } else if watch && limits.deadline == PluginLimits::default().deadline {
        limits.deadline = WATCH_DEADLINE;
    }
}
