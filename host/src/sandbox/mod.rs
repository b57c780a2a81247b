//! The sandbox: loads plugin components and runs them with nothing but
//! what they were granted.
//!
//! One [`Sandbox`] holds the shared `Engine` (component model on,
//! concurrency support off, epoch interruption on), the epoch [`Ticker`],
//! the `Linker` with WASI and the trainbox imports, and the compile cache.
//! Loading is two steps: [`Sandbox::compile`] checks the file and asks the
//! plugin to describe itself (in a store with no grants at all), then
//! [`Sandbox::instantiate`] gives it its own store, directory, limits and
//! grants and configures it. Read next: `plugin.rs` (calls and faults),
//! `host.rs` (what the plugin may call), `limits.rs`, `output.rs`, `cache.rs`.

mod bindings;
mod cache;
mod clock;
mod host;
mod http_policy;
mod limits;
mod output;
mod plugin;

pub use bindings::{API_VERSION, PLUGIN_EXPORT};
pub use cache::default_dir as default_cache_dir;
pub use http_policy::normalize_origin;
pub use limits::PluginLimits;
pub use plugin::{OnError, PluginFault, WasmPlugin, MAX_RESTARTS};

use crate::args::TrainingArguments;
use crate::callbacks::{Event, EventSet, RunView};
use anyhow::{anyhow, bail, Context, Result};
use bindings::{wit, CallbackPre};
use cache::CompileCache;
use host::PluginHost;
use http_policy::HttpPolicy;
use limits::{arm, Ticker};
use output::{clean_line, Channel, PluginOutput};
use std::path::{Path, PathBuf};
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{FsPerms, WasiCtx};

/// Bytes one plugin instance may write at once to each of its streams
/// (stdout with `write-line`, and stderr); then 64 KiB a second. A restarted
/// instance starts with a full budget.
pub const OUTPUT_BUDGET: usize = 1 << 20;

/// The memory cap while a plugin describes itself, before its own cap is known.
const DESCRIBE_MEMORY: usize = 256 << 20;

/// A capability a plugin asks for in `describe`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capability {
    ReadDir(String),
    WriteDir(String),
    Http(String),
    Env(String),
}

impl std::fmt::Display for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Capability::ReadDir(p) => write!(f, "read-dir {p}"),
            Capability::WriteDir(p) => write!(f, "write-dir {p}"),
            Capability::Http(o) => write!(f, "http {o}"),
            Capability::Env(v) => write!(f, "env {v}"),
        }
    }
}

/// What a plugin said of itself in `describe`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub api_version: String,
    pub events: EventSet,
    pub stateful: bool,
    pub capabilities: Vec<Capability>,
}

/// A directory granted to a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirGrant {
    pub host: PathBuf,
    /// The path the plugin sees.
    pub guest: String,
    pub writable: bool,
}

/// What the user grants a plugin beyond its own directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    pub dirs: Vec<DirGrant>,
    /// Environment variables, by name, passed with their current value.
    pub env: Vec<String>,
    /// Origins (`scheme://host:port`) the plugin may send HTTP requests to.
    pub http: Vec<String>,
}

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

/// A plugin asked for a capability the user did not grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotGranted {
    pub path: PathBuf,
    pub plugin: String,
    pub capability: Capability,
    /// The setting to add, e.g. `plugins.mlflow.allow_http = ["http://127.0.0.1:5000"]`.
    pub fix: String,
}

impl std::fmt::Display for NotGranted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: plugin {} asks for `{}`, which is not granted; add {} to the run config",
            self.path.display(),
            self.plugin,
            self.capability,
            self.fix
        )
    }
}

impl std::error::Error for NotGranted {}

/// A checked, compiled plugin that has described itself.
pub struct CompiledPlugin {
    pub path: PathBuf,
    pub info: PluginInfo,
    /// Whether the compiled form came from the cache.
    pub cached: bool,
    pub size: u64,
    pre: CallbackPre<PluginHost>,
}

/// The engine, ticker, linker and compile cache shared by every plugin.
pub struct Sandbox {
    engine: Engine,
    linker: Linker<PluginHost>,
    cache: CompileCache,
    view: RunView,
    enforce_limits: bool,
    _ticker: Option<Ticker>,
}

impl Sandbox {
    /// A sandbox whose plugins read `view`; compiled components are cached
    /// in `cache_dir` (none: no cache).
    pub fn new(view: RunView, cache_dir: Option<PathBuf>) -> Result<Sandbox> {
        Sandbox::build(view, cache_dir, true)
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
        let engine =
            Engine::new(&config).map_err(|e| anyhow!("creating the wasm engine: {e:#}"))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| anyhow!("linking WASI: {e:#}"))?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)
            .map_err(|e| anyhow!("linking WASI HTTP: {e:#}"))?;
        bindings::CallbackWorld::add_to_linker::<_, HasSelf<_>>(&mut linker, |h| h)
            .map_err(|e| anyhow!("linking the trainbox imports: {e:#}"))?;
        let ticker = enforce_limits.then(|| Ticker::start(&engine));
        Ok(Sandbox {
            engine,
            linker,
            cache: CompileCache::new(cache_dir),
            view,
            enforce_limits,
            _ticker: ticker,
        })
    }

    /// Checks and compiles a plugin file, and asks it to describe itself.
    pub fn compile(&self, path: &Path) -> Result<CompiledPlugin> {
        let bytes =
            std::fs::read(path).with_context(|| format!("reading plugin {}", path.display()))?;
        check_header(path, &bytes)?;
        let (component, cached) = self.cache.load(&self.engine, &bytes, path)?;
        let ty = component.component_type();
        let exports: Vec<String> = ty
            .exports(&self.engine)
            .map(|(n, _)| n.to_string())
            .collect();
        if !exports.iter().any(|e| e == PLUGIN_EXPORT) {
            if let Some(other) = exports
                .iter()
                .find(|e| e.starts_with("trainbox:callback/plugin"))
            {
                let version = other.rsplit('@').next().unwrap_or("an unknown version");
                bail!(
                    "{}: built for trainbox:callback@{version}, this host supports {API_VERSION}; rebuild the plugin with trainbox-sdk {API_VERSION}",
                    path.display()
                );
            }
            bail!(
                "{}: not a trainbox plugin: it does not export `{PLUGIN_EXPORT}` (it exports: {}); build it against wit/callback.wit",
                path.display(),
                if exports.is_empty() { "nothing".to_string() } else { exports.join(", ") }
            );
        }
        let instance_pre = self.linker.instantiate_pre(&component).map_err(|e| {
            anyhow!(
                "{}: needs imports this host does not provide: {e:#}",
                path.display()
            )
        })?;
        let pre =
            CallbackPre::new(instance_pre).map_err(|e| anyhow!("{}: {e:#}", path.display()))?;

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
        let stdout = PluginOutput::new(&label, Channel::Stdout, OUTPUT_BUDGET);
        let mut b = WasiCtx::builder();
        b.stdout(stdout.clone())
            .stderr(PluginOutput::new(&label, Channel::Stderr, OUTPUT_BUDGET));
        let mut store = self.store(&label, b.build(), stdout, &limits);
        arm(&mut store, limits.init_deadline);
        let bindings = pre.instantiate(&mut store).map_err(|e| {
            anyhow!(
                "{}: instantiation failed: {}",
                path.display(),
                PluginFault::classify(&e, limits.init_deadline)
            )
        })?;
        arm(&mut store, limits.init_deadline);
        let raw = bindings
            .trainbox_callback_plugin()
            .call_describe(&mut store)
            .map_err(|e| {
                anyhow!(
                    "{}: describe {}",
                    path.display(),
                    PluginFault::classify(&e, limits.init_deadline)
                )
            })?;
        let info = plugin_info(path, raw)?;
        Ok(CompiledPlugin {
            path: path.to_path_buf(),
            info,
            cached,
            size: bytes.len() as u64,
            pre,
        })
    }

    fn store(
        &self,
        name: &str,
        wasi: WasiCtx,
        stdout: PluginOutput,
        limits: &PluginLimits,
    ) -> Store<PluginHost> {
        let http = HttpPolicy::deny_all(name);
        new_store(
            &self.engine,
            name,
            (wasi, stdout),
            http,
            limits,
            self.view.clone(),
            self.enforce_limits,
        )
    }

    /// Gives a compiled plugin its store, directory and grants, and
    /// configures it. `instance` numbers duplicates of one plugin (0 first).
    pub fn instantiate(
        &self,
        compiled: &CompiledPlugin,
        settings: PluginSettings,
        args: &TrainingArguments,
        instance: usize,
    ) -> Result<WasmPlugin> {
        let info = &compiled.info;
        check_grants(&compiled.path, info, &settings.grants)?;
        let (label, dir_name) = if instance == 0 {
            (info.name.clone(), info.name.clone())
        } else {
            (
                format!("{}#{}", info.name, instance + 1),
                format!("{}-{}", info.name, instance + 1),
            )
        };
        let own_dir = Path::new(&args.output_dir).join("plugins").join(dir_name);
        std::fs::create_dir_all(&own_dir)
            .with_context(|| format!("creating {}", own_dir.display()))?;
        let own_dir = own_dir
            .canonicalize()
            .with_context(|| format!("resolving {}", own_dir.display()))?;

        let engine = self.engine.clone();
        let view = self.view.clone();
        let (name, grants, limits) = (label.clone(), settings.grants.clone(), settings.limits);
        let enforce = self.enforce_limits;
        let make_store = move || -> Result<Store<PluginHost>> {
            let io = wasi_ctx(&name, &own_dir, &grants)?;
            let http = HttpPolicy::new(&name, grants.http.clone(), limits.http_timeout);
            Ok(new_store(
                &engine,
                &name,
                io,
                http,
                &limits,
                view.clone(),
                enforce,
            ))
        };
        WasmPlugin::start(
            info.clone(),
            label,
            compiled.path.clone(),
            compiled.pre.clone(),
            settings,
            wit::TrainingArgs::from(args),
            Box::new(make_store),
        )
    }
}

/// A store for one plugin instance: its WASI context (with the stdout that
/// `write-line` shares), its memory cap and (when `enforce`) its deadline trap.
fn new_store(
    engine: &Engine,
    name: &str,
    (wasi, stdout): (WasiCtx, PluginOutput),
    http: HttpPolicy,
    limits: &PluginLimits,
    view: RunView,
    enforce: bool,
) -> Store<PluginHost> {
    let host = PluginHost::new(name, wasi, http, plugin::limiter(limits), view, stdout);
    let mut store = Store::new(engine, host);
    if enforce {
        store.limiter(|h| &mut h.limits);
        store.epoch_deadline_trap();
    }
    store
}

/// The WASI context of a plugin: its own directory as `.`, granted
/// directories and variables, capped stdout/stderr, no network, no stdin;
/// and its stdout, which `write-line` also writes to (one shared budget).
fn wasi_ctx(name: &str, own_dir: &Path, grants: &Grants) -> Result<(WasiCtx, PluginOutput)> {
    let mut b = WasiCtx::builder();
    let stdout = PluginOutput::new(name, Channel::Stdout, OUTPUT_BUDGET);
    b.stdout(stdout.clone());
    b.stderr(PluginOutput::new(name, Channel::Stderr, OUTPUT_BUDGET));
    b.allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    // The host is synchronous: file I/O runs on the calling thread instead of
    // hopping to a blocking thread pool. Set before the preopens, which copy it.
    b.allow_blocking_current_thread(true);
    b.wall_clock(clock::CoarseWallClock);
    b.monotonic_clock(clock::CoarseMonotonicClock::new());
    b.preopened_dir(own_dir, ".", FsPerms::ReadWrite)
        .map_err(|e| anyhow!("granting {}: {e:#}", own_dir.display()))?;
    for d in &grants.dirs {
        let perms = if d.writable {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        b.preopened_dir(&d.host, &d.guest, perms)
            .map_err(|e| anyhow!("granting {}: {e:#}", d.host.display()))?;
    }
    for var in &grants.env {
        if let Ok(value) = std::env::var(var) {
            b.env(var, value);
        }
    }
    Ok((b.build(), stdout))
}

/// Rejects a file that is not a component, with the reason.
fn check_header(path: &Path, bytes: &[u8]) -> Result<()> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        bail!("{}: not a WebAssembly file (no `\\0asm` header); expected a component built for wasm32-wasip2", path.display());
    }
    if bytes[4..8] == [1, 0, 0, 0] {
        bail!(
            "{}: is a core WebAssembly module, not a component; build it for wasm32-wasip2 or wrap it with `wasm-tools component new`",
            path.display()
        );
    }
    Ok(())
}

/// Checks and converts `describe`'s answer.
fn plugin_info(path: &Path, raw: wit::PluginInfo) -> Result<PluginInfo> {
    let name_ok = !raw.name.is_empty()
        && raw.name.len() <= 64
        && raw
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !name_ok {
        bail!(
            "{}: plugin name {} is invalid: use 1-64 lowercase letters, digits, '-' or '_'",
            path.display(),
            clean_line(&format!("{:?}", raw.name))
        );
    }
    if raw
        .api_version
        .split('.')
        .take(2)
        .ne(API_VERSION.split('.').take(2))
    {
        bail!(
            "{}: built for trainbox:callback@{}, this host supports {API_VERSION}; rebuild with trainbox-sdk {API_VERSION}",
            path.display(),
            clean_line(&raw.api_version)
        );
    }
    let capabilities: Vec<Capability> = raw
        .capabilities
        .into_iter()
        .map(|c| match c {
            wit::Capability::ReadDir(p) => Capability::ReadDir(p),
            wit::Capability::WriteDir(p) => Capability::WriteDir(p),
            wit::Capability::Http(o) => Capability::Http(o),
            wit::Capability::Env(v) => Capability::Env(v),
        })
        .collect();
    for c in &capabilities {
        let (Capability::ReadDir(text)
        | Capability::WriteDir(text)
        | Capability::Http(text)
        | Capability::Env(text)) = c;
        if clean_line(text) != *text {
            bail!(
                "{}: asks for a capability with control characters or over {} bytes: {}",
                path.display(),
                output::MAX_LINE,
                clean_line(&format!("{text:?}"))
            );
        }
    }
    Ok(PluginInfo {
        name: raw.name,
        version: clean_line(&raw.version),
        api_version: raw.api_version,
        events: raw.events.into_iter().map(Event::from).collect(),
        stateful: raw.stateful,
        capabilities,
    })
}

/// Every capability asked for must be granted; the error names the grant to add.
fn check_grants(path: &Path, info: &PluginInfo, grants: &Grants) -> Result<(), NotGranted> {
    for cap in &info.capabilities {
        let granted = match cap {
            Capability::ReadDir(g) => grants.dirs.iter().any(|d| &d.guest == g),
            Capability::WriteDir(g) => grants.dirs.iter().any(|d| &d.guest == g && d.writable),
            Capability::Env(v) => grants.env.contains(v),
            Capability::Http(o) => normalize_origin(o).is_ok_and(|o| grants.http.contains(&o)),
        };
        if !granted {
            let fix = match cap {
                Capability::ReadDir(g) => format!(
                    "plugins.{}.read_dirs = {{ \"{g}\" = \"<host dir>\" }}",
                    info.name
                ),
                Capability::WriteDir(g) => format!(
                    "plugins.{}.write_dirs = {{ \"{g}\" = \"<host dir>\" }}",
                    info.name
                ),
                Capability::Env(v) => format!("plugins.{}.env = [\"{v}\"]", info.name),
                Capability::Http(o) => format!("plugins.{}.allow_http = [\"{o}\"]", info.name),
            };
            return Err(NotGranted {
                path: path.to_path_buf(),
                plugin: info.name.clone(),
                capability: cap.clone(),
                fix,
            });
        }
    }
    Ok(())
}
