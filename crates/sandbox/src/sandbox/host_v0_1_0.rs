//! The imports of `trainbox:callback@0.1.0` as the plugin host serves them:
//! each by calling the latest version's (`host.rs`), its answer converted
//! (`bindings/since_v0_1_0.rs`). Apart from `bindings`, so that the
//! bindings need nothing of the host.

use super::bindings::since_v0_1_0::{old, old_progress, old_views};
use super::bindings::{wit_progress as new_progress, wit_views as new_views};
use super::host::PluginHost;
use super::resources::{BarHandle, LogHistoryHandle, ModelStatsHandle};
use wasmtime::component::Resource;

impl old::Host for PluginHost {}

impl old_views::Host for PluginHost {
    fn history(&mut self) -> wasmtime::Result<Resource<LogHistoryHandle>> {
        new_views::Host::history(self)
    }

    fn model(&mut self) -> wasmtime::Result<Resource<ModelStatsHandle>> {
        new_views::Host::model(self)
    }

    fn dataloaders(&mut self) -> wasmtime::Result<old_views::DataloaderLengths> {
        new_views::Host::dataloaders(self).map(Into::into)
    }
}

impl old_views::HostLogHistory for PluginHost {
    fn len(&mut self, h: Resource<LogHistoryHandle>) -> wasmtime::Result<u32> {
        new_views::HostLogHistory::len(self, h)
    }

    fn get(
        &mut self,
        h: Resource<LogHistoryHandle>,
        index: u32,
    ) -> wasmtime::Result<Option<Vec<old::Entry>>> {
        let entries = new_views::HostLogHistory::get(self, h, index)?;
        Ok(entries.map(|e| e.into_iter().map(Into::into).collect()))
    }

    fn drop(&mut self, h: Resource<LogHistoryHandle>) -> wasmtime::Result<()> {
        new_views::HostLogHistory::drop(self, h)
    }
}

impl old_views::HostModelStats for PluginHost {
    fn parameter_names(&mut self, h: Resource<ModelStatsHandle>) -> wasmtime::Result<Vec<String>> {
        new_views::HostModelStats::parameter_names(self, h)
    }

    fn parameter_count(&mut self, h: Resource<ModelStatsHandle>) -> wasmtime::Result<u64> {
        new_views::HostModelStats::parameter_count(self, h)
    }

    fn parameter(
        &mut self,
        h: Resource<ModelStatsHandle>,
        name: String,
    ) -> wasmtime::Result<Option<old_views::TensorStats>> {
        Ok(new_views::HostModelStats::parameter(self, h, name)?.map(Into::into))
    }

    fn gradient(
        &mut self,
        h: Resource<ModelStatsHandle>,
        name: String,
    ) -> wasmtime::Result<Option<old_views::TensorStats>> {
        Ok(new_views::HostModelStats::gradient(self, h, name)?.map(Into::into))
    }

    fn grad_norm(&mut self, h: Resource<ModelStatsHandle>) -> wasmtime::Result<Option<f64>> {
        new_views::HostModelStats::grad_norm(self, h)
    }

    fn learning_rates(&mut self, h: Resource<ModelStatsHandle>) -> wasmtime::Result<Vec<f64>> {
        new_views::HostModelStats::learning_rates(self, h)
    }

    fn drop(&mut self, h: Resource<ModelStatsHandle>) -> wasmtime::Result<()> {
        new_views::HostModelStats::drop(self, h)
    }
}

impl old_progress::Host for PluginHost {
    fn write_line(&mut self, line: String) -> wasmtime::Result<()> {
        new_progress::Host::write_line(self, line)
    }
}

impl old_progress::HostBar for PluginHost {
    fn new(
        &mut self,
        total: u64,
        label: String,
        leave: bool,
    ) -> wasmtime::Result<Resource<BarHandle>> {
        new_progress::HostBar::new(self, total, label, leave)
    }

    fn advance(&mut self, h: Resource<BarHandle>, delta: u64) -> wasmtime::Result<()> {
        new_progress::HostBar::advance(self, h, delta)
    }

    fn close(&mut self, h: Resource<BarHandle>) -> wasmtime::Result<()> {
        new_progress::HostBar::close(self, h)
    }

    fn drop(&mut self, h: Resource<BarHandle>) -> wasmtime::Result<()> {
        new_progress::HostBar::drop(self, h)
    }
}
