//! The versions of the `trainbox:callback` contract this host serves, one
//! module each (as Zed's extension host does): `since_v0_2_0.rs`, the
//! latest, whose types the rest of the host works in, and
//! `since_v0_1_0.rs`, served by adapting it to the latest. A plugin's
//! version is read from its component's exports before it is instantiated
//! ([`ApiVersion::of_exports`]); after that the host calls it only through
//! [`Bindings`], whose methods convert, so there is one call path whatever
//! the version.
//!
//! A new version: freeze `wit/callback.wit` in `wit/<its version>/`, add a
//! `since_v…` module for the frozen one (its imports delegating to the
//! latest's, its types converted), a case to [`ApiVersion`],
//! [`BindingsPre`] and [`Bindings`], and its linker line in
//! [`add_to_linker`].

mod on_event;
pub mod since_v0_1_0;
mod since_v0_2_0;

use since_v0_2_0 as latest;

pub use latest::{entries, wit, wit_progress, wit_views};

use wasmtime::component::{HasSelf, InstancePre, Linker};
use wasmtime::Store;

/// The version of `trainbox:callback` this host implements (its latest).
pub const API_VERSION: &str = ApiVersion::LATEST.as_str();
/// The export a plugin of the latest version has.
pub const PLUGIN_EXPORT: &str = "trainbox:callback/plugin@0.2.0";

/// A version of the contract this host serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    /// The first contract, frozen in `wit/0.1.0/`.
    V0_1_0,
    /// The latest: 0.1.0 plus `views.model-stats.histogram`.
    V0_2_0,
}

impl ApiVersion {
    /// Every version served, oldest first.
    pub const ALL: [ApiVersion; 2] = [ApiVersion::V0_1_0, ApiVersion::V0_2_0];
    /// The version the SDK and the examples build against.
    pub const LATEST: ApiVersion = ApiVersion::V0_2_0;

    /// `0.1.0`, `0.2.0`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V0_1_0 => "0.1.0",
            ApiVersion::V0_2_0 => "0.2.0",
        }
    }

    /// The version that serves `version` (semver: for 0.x, the same
    /// minor; a later patch only documents more), if any.
    pub fn serving(version: &str) -> Option<ApiVersion> {
        let mut parts = version.split('.');
        let (major, minor) = (parts.next()?, parts.next()?);
        ApiVersion::ALL.into_iter().find(|v| {
            let mut own = v.as_str().split('.');
            own.next() == Some(major) && own.next() == Some(minor)
        })
    }

    /// The versions served, for messages: `0.1.0 and 0.2.0`.
    pub fn served() -> String {
        let all: Vec<&str> = ApiVersion::ALL.iter().map(|v| v.as_str()).collect();
        match all.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
            _ => all.join(""),
        }
    }

    /// The version of the `trainbox:callback/plugin@X` export among a
    /// component's exports: `Ok(None)` when it has none, `Err(X)` when X is
    /// not served.
    pub fn of_exports<'a>(
        exports: impl IntoIterator<Item = &'a str>,
    ) -> Option<Result<ApiVersion, String>> {
        let export = exports.into_iter().find(|e| {
            *e == "trainbox:callback/plugin" || e.starts_with("trainbox:callback/plugin@")
        })?;
        let version = export.split_once('@').map_or("", |(_, v)| v);
        Some(ApiVersion::serving(version).ok_or_else(|| version.to_string()))
    }
}

/// What a store's data must serve: the imports of every served version
/// (`PluginHost` implements the latest's in `host.rs`, `host_v0_1_0.rs`
/// the older ones through them).
pub trait Imports: latest::Imports + since_v0_1_0::Imports {}
impl<T: latest::Imports + since_v0_1_0::Imports> Imports for T {}

/// Links the imports of every served version.
pub fn add_to_linker<T: Imports>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    since_v0_1_0::Callback::add_to_linker::<_, HasSelf<_>>(linker, |h| h)?;
    latest::Callback::add_to_linker::<_, HasSelf<_>>(linker, |h| h)?;
    Ok(())
}

/// A plugin ready to be instantiated, as the bindings of its version.
pub enum BindingsPre<T: 'static> {
    V0_1(since_v0_1_0::CallbackPre<T>),
    V0_2(latest::CallbackPre<T>),
}

impl<T: 'static> Clone for BindingsPre<T> {
    fn clone(&self) -> Self {
        match self {
            BindingsPre::V0_1(pre) => BindingsPre::V0_1(pre.clone()),
            BindingsPre::V0_2(pre) => BindingsPre::V0_2(pre.clone()),
        }
    }
}

impl<T: Imports> BindingsPre<T> {
    /// The bindings of `version` for a component pre-instantiated by the linker.
    pub fn new(version: ApiVersion, pre: InstancePre<T>) -> wasmtime::Result<Self> {
        Ok(match version {
            ApiVersion::V0_1_0 => BindingsPre::V0_1(since_v0_1_0::CallbackPre::new(pre)?),
            ApiVersion::V0_2_0 => BindingsPre::V0_2(latest::CallbackPre::new(pre)?),
        })
    }

    /// A fresh instance in `store`.
    pub fn instantiate(&self, store: &mut Store<T>) -> wasmtime::Result<Bindings> {
        Ok(match self {
            BindingsPre::V0_1(pre) => Bindings::V0_1(pre.instantiate(store)?),
            BindingsPre::V0_2(pre) => {
                // As `pre.instantiate` does, keeping the instance to find
                // `on-event` in (called with its records lowered at once).
                let instance = pre.instance_pre().instantiate(&mut *store)?;
                let on_event = on_event::OnEvent::of(store, &instance)?;
                Bindings::V0_2(latest::Callback::new(&mut *store, &instance)?, on_event)
            }
        })
    }
}

/// A live plugin instance: its exports, called in the latest's types (and
/// the latest's `on-event` through `on_event.rs`).
pub enum Bindings {
    V0_1(since_v0_1_0::Callback),
    V0_2(latest::Callback, on_event::OnEvent),
}

impl Bindings {
    /// `describe`.
    pub fn describe<T: Send>(&self, s: &mut Store<T>) -> wasmtime::Result<wit::PluginInfo> {
        match self {
            Bindings::V0_1(b) => since_v0_1_0::describe(b, s),
            Bindings::V0_2(b, _) => b.trainbox_callback_plugin().call_describe(s),
        }
    }

    /// `configure`.
    pub fn configure<T: Send>(
        &self,
        s: &mut Store<T>,
        args: &wit::TrainingArgs,
        config: &[(String, String)],
    ) -> wasmtime::Result<Result<(), String>> {
        match self {
            Bindings::V0_1(b) => since_v0_1_0::configure(b, s, args, config),
            Bindings::V0_2(b, _) => b.trainbox_callback_plugin().call_configure(s, args, config),
        }
    }

    /// `on-event`.
    pub fn on_event<T: Send>(
        &self,
        s: &mut Store<T>,
        event: wit::Event,
        state: &wit::TrainerState,
        control: wit::TrainerControl,
        payload: &[wit::Entry],
    ) -> wasmtime::Result<wit::TrainerControl> {
        match self {
            Bindings::V0_1(b) => since_v0_1_0::on_event(b, s, event, state, control, payload),
            Bindings::V0_2(_, f) => f.call(s, event, state, control, payload),
        }
    }

    /// `save-state` (the same in every version).
    pub fn save_state<T: Send>(&self, s: &mut Store<T>) -> wasmtime::Result<String> {
        match self {
            Bindings::V0_1(b) => b.trainbox_callback_plugin().call_save_state(s),
            Bindings::V0_2(b, _) => b.trainbox_callback_plugin().call_save_state(s),
        }
    }

    /// `load-state` (the same in every version).
    pub fn load_state<T: Send>(
        &self,
        s: &mut Store<T>,
        state: &str,
    ) -> wasmtime::Result<Result<(), String>> {
        match self {
            Bindings::V0_1(b) => b.trainbox_callback_plugin().call_load_state(s, state),
            Bindings::V0_2(b, _) => b.trainbox_callback_plugin().call_load_state(s, state),
        }
    }

    /// `finish`.
    pub fn finish<T: Send>(
        &self,
        s: &mut Store<T>,
        outcome: &wit::RunOutcome,
    ) -> wasmtime::Result<()> {
        match self {
            Bindings::V0_1(b) => since_v0_1_0::finish(b, s, outcome),
            Bindings::V0_2(b, _) => b.trainbox_callback_plugin().call_finish(s, outcome),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_the_plugin_export() {
        let of = |e: &str| ApiVersion::of_exports([e, "wasi:cli/run@0.2.0"]);
        assert_eq!(
            of("trainbox:callback/plugin@0.1.0"),
            Some(Ok(ApiVersion::V0_1_0))
        );
        assert_eq!(
            of("trainbox:callback/plugin@0.2.0"),
            Some(Ok(ApiVersion::V0_2_0))
        );
        // A later patch of a served version is served by it (wasmtime's
        // export lookup is semver-aware the same way).
        assert_eq!(
            of("trainbox:callback/plugin@0.2.3"),
            Some(Ok(ApiVersion::V0_2_0))
        );
        assert_eq!(
            of("trainbox:callback/plugin@0.9.0"),
            Some(Err("0.9.0".into()))
        );
        assert_eq!(of("trainbox:callback/plugin"), Some(Err(String::new())));
        assert_eq!(ApiVersion::of_exports(["wasi:cli/run@0.2.0"]), None);
        assert_eq!(of("trainbox:callback/plugins@0.1.0"), None);
        assert_eq!(ApiVersion::served(), "0.1.0 and 0.2.0");
        assert_eq!(
            PLUGIN_EXPORT,
            format!("trainbox:callback/plugin@{API_VERSION}")
        );
    }
}
