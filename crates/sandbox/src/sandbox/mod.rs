//! The sandbox: loads plugin components and runs them with nothing but
//! what they were granted.
//!
//! One [`Sandbox`] holds the shared `Engine` (component model on,
//! concurrency support off, epoch interruption on), the epoch ticker, the
//! `Linker` with WASI and the trainbox imports, and the compile cache.
//! Loading is two steps: [`Sandbox::compile`] checks the file and asks the
//! plugin to describe itself (in a store with no grants at all), then
//! [`Sandbox::instantiate`] checks the grants, gives it its own store,
//! directory and limits, and configures it.
//!
//! Read next: `describe.rs` (what a plugin says of itself), `grants.rs`
//! (what it may have), `store.rs` (its WASI context), `call.rs` (the one
//! call path), `plugin.rs` (calls and the fault policy), `fault.rs`,
//! `report.rs`, `inspect.rs` (what both hosts say of plugin files), `host.rs` (what the plugin may call), `limits.rs`,
//! `output.rs`, `cache.rs`, `http_policy.rs`, `owners.rs` (who owns each
//! plugin directory), `wait.rs` (waits in host calls end at the
//! deadline), `fs/` (open files and the disk quota). This module knows training
//! only through the leaf data types (`run_args`, `state`, `event`, `view`) and
//! the conversions in `bindings/` (one module per version of the contract:
//! the latest, and each older one adapted to it).

mod bindings;
mod cache;
mod call;
mod clock;
mod describe;
mod fault;
mod fs;
mod grants;
mod host;
mod host_v0_1_0;
mod http_policy;
mod inspect;
mod limits;
mod output;
mod owners;
mod plugin;
mod report;
mod resources;
mod store;
mod wait;

pub use bindings::{ApiVersion, API_VERSION, PLUGIN_EXPORT};
pub use cache::{
    cache_usage, clear_cache, default_dir as default_cache_dir, CacheUsage,
    DEFAULT_MAX_BYTES as CACHE_MAX_BYTES,
};
pub use describe::PluginInfo;
pub use fault::{OnError, PluginFault};
pub use fs::fds::{
    open_file_limit, raise_open_file_limit, share_among as share_open_files,
    shared_budget as plugins_file_budget,
};
pub use fs::free::reserve_for_host as reserve_disk_for_host;
pub use fs::Exceeded as FileLimitExceeded;
pub use grants::{
    narrow as narrow_grants, Capability, DirGrant, Grants, NotGranted, ANY_GRANTED_ORIGIN,
};
pub use http_policy::normalize_origin;
pub use inspect::wasm_files;
pub use limits::PluginLimits;
pub use owners::{read_owners, Owner, OWNERS_FILE};
pub use plugin::{EventRecords, WasmPlugin, MAX_RESTARTS};
pub use report::CallReport;
pub use store::OUTPUT_BUDGET;

use crate::run_args::RunArgs;
use crate::view::RunView;
use anyhow::{bail, Context, Result};
use bindings::{wit, BindingsPre};
use cache::CompileCache;
use call::call;
use host::PluginHost;
use report::Export;
use std::path::{Path, PathBuf};
use store::StoreFactory;
use wasmtime::component::Linker;
use wasmtime::{Config, Engine};

/// The memory cap while a plugin describes itself, before its own cap is known.
const DESCRIBE_MEMORY: usize = 256 << 20;

/// Everything the run configuration says about one plugin.
#[derive(Debug, Clone, Default)]
pub struct PluginSettings {
    /// `<name>.<key> = <value>` pairs handed to `configure`.
    pub config: Vec<(String, String)>,
    pub limits: PluginLimits,
    pub on_error: OnError,
    pub grants: Grants,
    /// Skip the plugin with a warning, instead of failing, when it asks for
    /// a capability that is not granted (`missing_grant = "skip"`).
    pub skip_if_not_granted: bool,
}

/// A checked, compiled plugin that has described itself.
pub struct CompiledPlugin {
    pub path: PathBuf,
    pub info: PluginInfo,
    /// Whether the compiled form came from the cache.
    pub cached: bool,
    pub size: u64,
    /// The sha256 of the file's content, in lowercase hex.
    pub sha256: String,
    /// The contract version it was built against (its export's).
    pub api: ApiVersion,
    pre: BindingsPre<PluginHost>,
    /// What loading it cost (its instantiation and `describe`).
    describe: CallReport,
}

/// The engine, ticker, linker and compile cache shared by every plugin.
pub struct Sandbox {
    engine: Engine,
    linker: Linker<PluginHost>,
    cache: CompileCache,
    stores: StoreFactory,
    /// This process's rank in a multi-process run (0 alone).
    rank: usize,
}

impl Sandbox {
    /// A sandbox whose plugins read `view`; compiled components are cached
    /// in `cache_dir` (none: no cache).
    pub fn new(view: RunView, cache_dir: Option<PathBuf>) -> Result<Sandbox> {
        Sandbox::build(view, cache_dir, true)
    }

    /// The rank of the process this sandbox serves (0 without a launcher).
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The sandbox of rank `rank` of a multi-process run: the plugins of a
    /// rank above 0 get the directories `plugins/<name>@rank<N>`, so that
    /// the ranks' copies of one plugin never share files.
    pub fn for_rank(mut self, rank: usize) -> Sandbox {
        self.rank = rank;
        self
    }

    /// A sandbox that enforces no deadline and no memory cap, to measure what
    /// the limits cost (`make bench`). Never use it for untrusted plugins.
    pub fn without_limits(view: RunView, cache_dir: Option<PathBuf>) -> Result<Sandbox> {
        Sandbox::build(view, cache_dir, false)
    }

    fn build(view: RunView, cache_dir: Option<PathBuf>, enforce_limits: bool) -> Result<Sandbox> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(enforce_limits);
        config.concurrency_support(false);
        let engine = Engine::new(&config)
            .map_err(anyhow::Error::from)
            .context("creating the wasm engine")?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(anyhow::Error::from)
            .context("linking WASI")?;
        // Files count against the plugin's open-file and disk limits.
        fs::add_to_linker(&mut linker)
            .map_err(anyhow::Error::from)
            .context("linking the limited wasi:filesystem")?;
        // Waits in wasi:io end at the call's deadline (epochs cannot stop them).
        wait::add_to_linker(&mut linker)
            .map_err(anyhow::Error::from)
            .context("linking deadline-bound wasi:io")?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)
            .map_err(anyhow::Error::from)
            .context("linking WASI HTTP")?;
        bindings::add_to_linker(&mut linker)
            .map_err(anyhow::Error::from)
            .context("linking the trainbox imports")?;
        if enforce_limits {
            limits::start_ticker(&engine);
        }
        Ok(Sandbox {
            stores: StoreFactory {
                engine: engine.clone(),
                view,
                enforce_limits,
            },
            engine,
            linker,
            cache: CompileCache::new(cache_dir),
            rank: 0,
        })
    }

    /// Checks and compiles a plugin file, and asks it to describe itself.
    pub fn compile(&self, path: &Path) -> Result<CompiledPlugin> {
        let bytes =
            std::fs::read(path).with_context(|| format!("reading plugin {}", path.display()))?;
        describe::check_header(path, &bytes)?;
        let (component, cached) = self.cache.load(&self.engine, &bytes, path)?;
        let ty = component.component_type();
        let exports: Vec<String> = ty
            .exports(&self.engine)
            .map(|(n, _)| n.to_string())
            .collect();
        // The version, from the export, before anything of it runs.
        let api = match ApiVersion::of_exports(exports.iter().map(String::as_str)) {
            Some(Ok(api)) => api,
            Some(Err(version)) => bail!(
                "{}: built for trainbox:callback@{}, which this host does not serve (it serves {}); rebuild the plugin with trainbox-sdk {}.x (against wit/callback.wit)",
                path.display(),
                clean_version(&version),
                ApiVersion::served(),
                API_VERSION.rsplit_once('.').map_or(API_VERSION, |(minor, _)| minor),
            ),
            None => bail!(
                "{}: not a trainbox plugin: it does not export `{PLUGIN_EXPORT}` (it exports: {}); build it against wit/callback.wit",
                path.display(),
                if exports.is_empty() { "nothing".to_string() } else { exports.join(", ") }
            ),
        };
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!(
                    "{}: needs imports this host does not provide",
                    path.display()
                )
            })?;
        let pre = BindingsPre::new(api, instance_pre)
            .map_err(anyhow::Error::from)
            .with_context(|| path.display().to_string())?;

        // Describe, in a store with no grants, the default deadline and a
        // generous memory cap (the plugin's own cap is not known yet).
        let limits = PluginLimits {
            memory_bytes: DESCRIBE_MEMORY,
            ..PluginLimits::default()
        };
        let label = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "plugin".into());
        let mut store = self.stores.bare(&label, &limits);
        let mut cost = CallReport::default();
        let init = limits.init_deadline;
        let bindings = call(&mut store, &mut cost, Export::Describe, init, |s| {
            pre.instantiate(s)
        })
        .with_context(|| format!("{}: instantiation failed", path.display()))?;
        let raw = call(&mut store, &mut cost, Export::Describe, init, |s| {
            bindings.describe(s)
        })
        .with_context(|| format!("{}: describe", path.display()))?;
        let info = describe::plugin_info(path, api, raw)?;
        Ok(CompiledPlugin {
            path: path.to_path_buf(),
            info,
            cached,
            size: bytes.len() as u64,
            sha256: sha256_hex(&bytes),
            api,
            pre,
            describe: cost,
        })
    }

    /// Compiles a plugin file into the compile cache, for a later run to
    /// load at once (`trainbox plugins precompile`); nothing of it runs.
    /// Returns `false` when the cache already held it. Safe to call from
    /// several threads at once (the engine is shared).
    pub fn precompile(&self, path: &Path) -> Result<bool> {
        let bytes =
            std::fs::read(path).with_context(|| format!("reading plugin {}", path.display()))?;
        describe::check_header(path, &bytes)?;
        self.cache.precompile(&self.engine, &bytes, path)
    }

    /// Gives a compiled plugin its store, directory and grants, and
    /// configures it. `instance` numbers duplicates of one plugin file (0
    /// first): instance 2 of `recorder` is `recorder#2`, in the directory
    /// `plugins/recorder#2`, a name no plugin can declare (and on rank 1
    /// of a multi-process run `recorder@rank1`). The directory must be
    /// free or belong to this file (see `owners.rs`).
    pub fn instantiate(
        &self,
        compiled: &CompiledPlugin,
        settings: PluginSettings,
        args: &RunArgs,
        instance: usize,
    ) -> Result<WasmPlugin> {
        let info = &compiled.info;
        grants::check(
            &compiled.path,
            &info.name,
            &info.capabilities,
            &settings.grants,
        )?;
        let mut label = if instance == 0 {
            info.name.clone()
        } else {
            format!("{}#{}", info.name, instance + 1)
        };
        if self.rank > 0 {
            label = format!("{label}@rank{}", self.rank);
        }
        let plugins_dir = Path::new(&args.output_dir).join("plugins");
        owners::claim(&plugins_dir, &label, &compiled.path, &compiled.sha256)?;
        let own_dir = plugins_dir.join(&label);
        std::fs::create_dir_all(&own_dir)
            .with_context(|| format!("creating {}", own_dir.display()))?;
        let own_dir = own_dir
            .canonicalize()
            .with_context(|| format!("resolving {}", own_dir.display()))?;
        owners::check_grants(&own_dir, settings.grants.dirs.iter())?;

        let stores = self.stores.clone();
        let (name, grants, limits) = (label.clone(), settings.grants.clone(), settings.limits);
        // What its writable grants hold now is the user's, not its quota's.
        let baseline = fs::disk::Baseline::measure(
            grants
                .dirs
                .iter()
                .filter(|d| d.writable)
                .map(|d| d.host.as_path()),
        );
        // Checked again at every restart: a granted path may have been
        // replaced since (by a symlink into the plugin folders).
        let make_store = move || {
            owners::check_grants(&own_dir, grants.dirs.iter())?;
            stores.granted(&name, &own_dir, &grants, &limits, &baseline)
        };
        let report = CallReport {
            label,
            ..compiled.describe.clone()
        };
        WasmPlugin::start(
            info.clone(),
            compiled.path.clone(),
            compiled.pre.clone(),
            settings,
            wit::TrainingArgs::from(args),
            Box::new(make_store),
            report,
        )
    }
}

/// A version string from a component, for a message: at most 32
/// characters, printable ones only.
fn clean_version(version: &str) -> String {
    if version.is_empty() {
        return "(no version)".into();
    }
    version
        .chars()
        .take(32)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect()
}

/// The sha256 of `bytes`, in lowercase hex.
fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
