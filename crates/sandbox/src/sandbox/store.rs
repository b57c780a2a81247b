//! A plugin instance's `Store`: its WASI context (its own directory as `.`,
//! the granted directories and variables, capped stdout and stderr, coarse
//! clocks, no network sockets, no stdin), its HTTP policy, its memory cap
//! and its deadline trap. What the WASI context grants is exactly what
//! [`Grants`] say; see `grants.rs` for how they are checked first.

use super::clock;
use super::fs::disk::{Baseline, Usage};
use super::fs::{self, FsGuard};
use super::grants::Grants;
use super::host::{Outputs, PluginHost};
use super::http_policy::HttpPolicy;
use super::limits::{Limiter, PluginLimits};
use super::output::{Channel, PluginOutput};
use crate::view::RunView;
use anyhow::{Context, Result};
use std::path::Path;
use wasmtime::{Engine, Store};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

/// Bytes one plugin instance may write at once to each of its streams
/// (stdout with `write-line`, and stderr); then 64 KiB a second. A restarted
/// instance starts with a full budget.
pub const OUTPUT_BUDGET: usize = 1 << 20;

/// How a store is made: the engine, what the plugin may read, and whether
/// the limits are enforced (`false` only to measure what they cost).
#[derive(Clone)]
pub(super) struct StoreFactory {
    pub engine: Engine,
    pub view: RunView,
    pub enforce_limits: bool,
}

impl StoreFactory {
    /// A store that grants nothing at all (not even a directory): where a
    /// plugin describes itself.
    pub fn bare(&self, label: &str, limits: &PluginLimits) -> Store<PluginHost> {
        let (mut wasi, outputs) = output_only(label);
        self.store(
            label,
            wasi.build(),
            outputs,
            HttpPolicy::deny_all(label),
            limits,
        )
    }

    /// A store with the plugin's own directory and its grants.
    pub fn granted(
        &self,
        label: &str,
        own_dir: &Path,
        grants: &Grants,
        limits: &PluginLimits,
        baseline: &Baseline,
    ) -> Result<Store<PluginHost>> {
        let (wasi, outputs) = granted_ctx(label, own_dir, grants)?;
        let http = HttpPolicy::new(label, grants.http.clone(), limits.http_timeout);
        let mut store = self.store(label, wasi, outputs, http, limits);
        if self.enforce_limits {
            let quota = Usage {
                bytes: limits.disk_bytes,
                files: limits.disk_files,
            };
            store.data_mut().fs = FsGuard::new(limits.max_open_files, quota, own_dir, baseline);
            // Each HTTP connection is a socket: one of its descriptors too.
            let files = store.data().fs.open_files();
            store.data_mut().http.files = Some(files);
        } else {
            store.data_mut().fs = FsGuard::unlimited();
        }
        let hidden = fs::hidden::Hidden::new(own_dir, grants.dirs.iter().map(|d| d.host.as_path()));
        store.data_mut().fs.hide(hidden);
        Ok(store)
    }

    fn store(
        &self,
        label: &str,
        wasi: WasiCtx,
        outputs: Outputs,
        http: HttpPolicy,
        limits: &PluginLimits,
    ) -> Store<PluginHost> {
        let limiter = Limiter::new(limits.memory_bytes);
        let host = PluginHost::new(label, wasi, http, limiter, self.view.clone(), outputs);
        let mut store = Store::new(&self.engine, host);
        if self.enforce_limits {
            store.limiter(|h| &mut h.limits);
            store.epoch_deadline_trap();
        }
        store
    }
}

/// A WASI builder with only the capped stdout and stderr, and that stdout,
/// which `write-line` shares (one budget).
fn output_only(label: &str) -> (WasiCtxBuilder, Outputs) {
    let mut builder = WasiCtx::builder();
    let stdout = PluginOutput::new(label, Channel::Stdout, OUTPUT_BUDGET);
    let stderr = PluginOutput::new(label, Channel::Stderr, OUTPUT_BUDGET);
    builder.stdout(stdout.clone()).stderr(stderr.clone());
    (builder, Outputs { stdout, stderr })
}

/// The WASI context of a configured plugin: its own directory as `.`,
/// granted directories and variables, capped stdout/stderr, no network
/// sockets, no stdin, coarse clocks.
fn granted_ctx(label: &str, own_dir: &Path, grants: &Grants) -> Result<(WasiCtx, Outputs)> {
    let (mut builder, outputs) = output_only(label);
    let b = &mut builder;
    b.allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    // The host is synchronous: file I/O runs on the calling thread instead of
    // hopping to a blocking thread pool. Set before the preopens, which copy it.
    b.allow_blocking_current_thread(true);
    b.wall_clock(clock::CoarseWallClock);
    b.monotonic_clock(clock::CoarseMonotonicClock::new());
    b.preopened_dir(own_dir, ".", FsPerms::ReadWrite)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("granting {}", own_dir.display()))?;
    for d in &grants.dirs {
        let perms = if d.writable {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        b.preopened_dir(&d.host, &d.guest, perms)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("granting {}", d.host.display()))?;
    }
    for var in &grants.env {
        if let Ok(value) = std::env::var(var) {
            b.env(var, value);
        }
    }
    Ok((builder.build(), outputs))
}
