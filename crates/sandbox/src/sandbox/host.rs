//! What the host gives a plugin: its store data ([`PluginHost`]), and the
//! `views` and `progress` imports. Views read the shared [`RunView`] only
//! when the plugin asks, and never let the plugin change anything.

use super::bindings::{wit, wit_progress, wit_views};
use super::fs::{FsGuard, LimitedStore};
use super::http_policy::HttpPolicy;
use super::limits::Limiter;
use super::output::{clean_line, PluginOutput};
use super::resources::{BarHandle, LogHistoryHandle, ModelStatsHandle};
use crate::view::{Histogram, RunView, TensorStats, MAX_HISTOGRAM_BINS};
use std::time::Instant;
use wasmtime::component::{Resource, ResourceTable, ResourceTableError};
use wasmtime_wasi::filesystem::WasiFilesystemCtxView;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Most resources (files, streams, HTTP objects, views, bars) a plugin may
/// hold at once: they live in host memory, outside its memory cap (an
/// unsent HTTP body holds up to 128 KiB, a header set up to
/// [`HTTP_FIELDS_BYTES`]).
pub const MAX_RESOURCES: usize = 1024;
/// Most bytes of one set of HTTP headers a plugin builds (wasmtime's
/// default is 128 KiB).
pub const HTTP_FIELDS_BYTES: usize = 16 << 10;
/// Most progress bars one plugin instance may have open at once.
pub const MAX_OPEN_BARS: usize = 32;
/// Most bars one plugin instance may leave drawn (`leave`) when closed:
/// each stays on the terminal.
pub const MAX_LEFT_BARS: usize = 1000;

/// The data of one plugin's `Store`.
pub struct PluginHost {
    pub(super) name: String,
    pub(super) wasi: WasiCtx,
    pub(super) table: ResourceTable,
    pub(super) limits: Limiter,
    pub(super) view: RunView,
    pub(super) http_ctx: WasiHttpCtx,
    /// The plugin's HTTP grant and timeouts (wasi-http's hooks).
    pub(super) http: HttpPolicy,
    /// When the current call into the plugin must end.
    pub(super) call_deadline: Option<Instant>,
    /// Its open files and disk usage, against its limits (`fs/`).
    pub(super) fs: FsGuard,
    /// The plugin's stdout, where `progress.write-line` prints too.
    stdout: PluginOutput,
    /// Its stderr, whose last lines a panicking call's fault quotes.
    pub(super) stderr: PluginOutput,
    bars_open: usize,
    bars_left: usize,
}

/// A plugin's two output streams.
pub(super) struct Outputs {
    pub stdout: PluginOutput,
    pub stderr: PluginOutput,
}

impl PluginHost {
    pub(super) fn new(
        name: &str,
        wasi: WasiCtx,
        http: HttpPolicy,
        limits: Limiter,
        view: RunView,
        outputs: Outputs,
    ) -> Self {
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        PluginHost {
            name: name.to_string(),
            wasi,
            table,
            limits,
            view,
            http_ctx: {
                let mut ctx = WasiHttpCtx::new();
                ctx.set_field_size_limit(HTTP_FIELDS_BYTES);
                ctx
            },
            http,
            call_deadline: None,
            fs: FsGuard::none(),
            stdout: outputs.stdout,
            stderr: outputs.stderr,
            bars_open: 0,
            bars_left: 0,
        }
    }

    fn push<T: Send + 'static>(&mut self, value: T) -> wasmtime::Result<Resource<T>> {
        self.table.push(value).map_err(|e| match e {
            ResourceTableError::Full => wasmtime::format_err!(
                "plugin {:?} holds more than {MAX_RESOURCES} handles (views, bars, streams); it must drop the ones it no longer needs",
                self.name
            ),
            other => other.into(),
        })
    }

    fn delete<T: 'static>(&mut self, handle: Resource<T>) -> wasmtime::Result<T> {
        Ok(self.table.delete(handle)?)
    }
}

impl LimitedStore for PluginHost {
    fn files(&mut self) -> (WasiFilesystemCtxView<'_>, &mut FsGuard) {
        let fs = WasiFilesystemCtxView {
            ctx: self.wasi.filesystem(),
            table: &mut self.table,
        };
        (fs, &mut self.fs)
    }
}

impl WasiView for PluginHost {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for PluginHost {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        self.http.deadline = self.call_deadline;
        WasiHttpCtxView {
            ctx: &mut self.http_ctx,
            table: &mut self.table,
            hooks: &mut self.http,
        }
    }
}

impl wit::Host for PluginHost {}

impl From<TensorStats> for wit_views::TensorStats {
    fn from(s: TensorStats) -> Self {
        wit_views::TensorStats {
            numel: s.numel,
            norm: s.norm,
            mean: s.mean,
            std: s.std,
            min: s.min,
            max: s.max,
            nonfinite: s.nonfinite,
        }
    }
}

impl From<Histogram> for wit_views::Histogram {
    fn from(h: Histogram) -> Self {
        wit_views::Histogram {
            min: h.min,
            max: h.max,
            counts: h.counts,
        }
    }
}

impl wit_views::Host for PluginHost {
    fn history(&mut self) -> wasmtime::Result<Resource<LogHistoryHandle>> {
        self.push(LogHistoryHandle)
    }

    fn model(&mut self) -> wasmtime::Result<Resource<ModelStatsHandle>> {
        self.push(ModelStatsHandle)
    }

    fn dataloaders(&mut self) -> wasmtime::Result<wit_views::DataloaderLengths> {
        let view = self.view.lock();
        Ok(wit_views::DataloaderLengths {
            train: view.train_batches,
            eval: view.eval_batches,
        })
    }
}

impl wit_views::HostLogHistory for PluginHost {
    fn len(&mut self, _: Resource<LogHistoryHandle>) -> wasmtime::Result<u32> {
        Ok(self.view.lock().log_history.len() as u32)
    }

    fn get(
        &mut self,
        _: Resource<LogHistoryHandle>,
        index: u32,
    ) -> wasmtime::Result<Option<Vec<wit::Entry>>> {
        Ok(self
            .view
            .lock()
            .log_history
            .get(index as usize)
            .map(|logs| super::bindings::entries(&logs)))
    }

    fn drop(&mut self, handle: Resource<LogHistoryHandle>) -> wasmtime::Result<()> {
        self.delete(handle).map(|_| ())
    }
}

impl wit_views::HostModelStats for PluginHost {
    fn parameter_names(&mut self, _: Resource<ModelStatsHandle>) -> wasmtime::Result<Vec<String>> {
        Ok(self.view.lock().parameters.names())
    }

    fn parameter_count(&mut self, _: Resource<ModelStatsHandle>) -> wasmtime::Result<u64> {
        Ok(self.view.lock().parameters.count())
    }

    fn parameter(
        &mut self,
        _: Resource<ModelStatsHandle>,
        name: String,
    ) -> wasmtime::Result<Option<wit_views::TensorStats>> {
        Ok(self
            .view
            .lock()
            .parameters
            .stats(&name, false)
            .map(Into::into))
    }

    fn gradient(
        &mut self,
        _: Resource<ModelStatsHandle>,
        name: String,
    ) -> wasmtime::Result<Option<wit_views::TensorStats>> {
        Ok(self
            .view
            .lock()
            .parameters
            .stats(&name, true)
            .map(Into::into))
    }

    fn histogram(
        &mut self,
        _: Resource<ModelStatsHandle>,
        name: String,
        kind: wit_views::TensorKind,
        bins: u32,
    ) -> wasmtime::Result<Option<wit_views::Histogram>> {
        // A fault, not a clamp: a plugin that asks for 0 bins or a million
        // has a bug, and a silently different histogram would hide it.
        if bins == 0 || bins > MAX_HISTOGRAM_BINS {
            wasmtime::bail!(
                "plugin {:?} asked for a histogram of {bins} bins; views.model-stats.histogram takes 1 to {MAX_HISTOGRAM_BINS}",
                self.name
            );
        }
        let grad = matches!(kind, wit_views::TensorKind::Gradient);
        Ok(self
            .view
            .lock()
            .parameters
            .histogram(&name, grad, bins)
            .map(Into::into))
    }

    fn grad_norm(&mut self, _: Resource<ModelStatsHandle>) -> wasmtime::Result<Option<f64>> {
        let view = self.view.lock();
        Ok(match &view.grad_norm_source {
            Some(source) => source.grad_norm(),
            None => view.grad_norm,
        })
    }

    fn learning_rates(&mut self, _: Resource<ModelStatsHandle>) -> wasmtime::Result<Vec<f64>> {
        let view = self.view.lock();
        Ok(match &view.learning_rates_source {
            Some(source) => source.learning_rates(),
            None => view.learning_rates.clone(),
        })
    }

    fn drop(&mut self, handle: Resource<ModelStatsHandle>) -> wasmtime::Result<()> {
        self.delete(handle).map(|_| ())
    }
}

impl wit_progress::Host for PluginHost {
    fn write_line(&mut self, line: String) -> wasmtime::Result<()> {
        self.stdout.write_line(&line);
        Ok(())
    }
}

impl wit_progress::HostBar for PluginHost {
    fn new(
        &mut self,
        total: u64,
        label: String,
        leave: bool,
    ) -> wasmtime::Result<Resource<BarHandle>> {
        if self.bars_open >= MAX_OPEN_BARS {
            wasmtime::bail!(
                "plugin {:?} has more than {MAX_OPEN_BARS} progress bars open; it must close them",
                self.name
            );
        }
        if leave && self.bars_left >= MAX_LEFT_BARS {
            wasmtime::bail!(
                "plugin {:?} left more than {MAX_LEFT_BARS} progress bars drawn",
                self.name
            );
        }
        self.bars_open += 1;
        self.bars_left += usize::from(leave);
        // A labelled bar is attributed, as lines are: a label left drawn
        // must not pass for a host message. An unlabelled one (HF's look)
        // cannot.
        let label = clean_line(&label);
        let label = if label.trim().is_empty() {
            String::new()
        } else {
            format!("[{}] {label}", self.name)
        };
        let bar = crate::ui::bar(total, &label);
        self.push(BarHandle {
            bar,
            leave,
            closed: false,
        })
    }

    fn advance(&mut self, handle: Resource<BarHandle>, delta: u64) -> wasmtime::Result<()> {
        let bar = self.table.get(&handle)?;
        if !bar.closed {
            bar.bar.inc(delta);
        }
        Ok(())
    }

    fn close(&mut self, handle: Resource<BarHandle>) -> wasmtime::Result<()> {
        let bar = self.table.get_mut(&handle)?;
        if !bar.closed {
            bar.closed = true;
            crate::ui::finish_bar(&bar.bar, bar.leave);
            self.bars_open -= 1;
        }
        Ok(())
    }

    fn drop(&mut self, handle: Resource<BarHandle>) -> wasmtime::Result<()> {
        let bar = self.delete(handle)?;
        if !bar.closed {
            crate::ui::finish_bar(&bar.bar, bar.leave);
            self.bars_open -= 1;
        }
        Ok(())
    }
}
