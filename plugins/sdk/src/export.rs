//! The glue `export_plugin!` expands to: one instance of the plugin type,
//! kept in a thread-local slot, behind the exports wit-bindgen generates.
//! Not for direct use.

use super::*;
use std::cell::RefCell;

pub use crate::wit::exports::trainbox::callback::plugin::{Guest, PluginInfo};

/// The plugin instance and the arguments it was configured with.
pub struct Slot<T> {
    plugin: Option<T>,
    args: Option<TrainingArgs>,
}

impl<T: Callback> Default for Slot<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Callback> Slot<T> {
    pub const fn new() -> Self {
        Slot {
            plugin: None,
            args: None,
        }
    }

    fn plugin(&mut self) -> &mut T {
        self.plugin.get_or_insert_with(T::default)
    }
}

pub fn describe<T: Callback>() -> PluginInfo {
    PluginInfo {
        name: T::NAME.into(),
        version: T::VERSION.into(),
        api_version: API_VERSION.into(),
        events: T::EVENTS.to_vec(),
        stateful: T::STATEFUL,
        capabilities: T::capabilities(),
    }
}

pub fn configure<T: Callback>(
    slot: &RefCell<Slot<T>>,
    args: TrainingArgs,
    config: Vec<(String, String)>,
) -> Result<(), String> {
    let mut slot = slot.borrow_mut();
    let result = slot.plugin().configure(&args, &Config(&config));
    slot.args = Some(args);
    result
}

pub fn on_event<T: Callback>(
    slot: &RefCell<Slot<T>>,
    event: Event,
    state: TrainerState,
    mut control: TrainerControl,
    payload: Vec<Entry>,
) -> TrainerControl {
    let mut slot = slot.borrow_mut();
    let Slot { plugin, args } = &mut *slot;
    let args = args.get_or_insert_with(crate::args::defaults);
    let plugin = plugin.get_or_insert_with(T::default);
    let mut cx = Context {
        event,
        args,
        state: &state,
        control: &mut control,
    };
    plugin.on_event(&mut cx, &Logs(&payload));
    control
}

pub fn save_state<T: Callback>(slot: &RefCell<Slot<T>>) -> String {
    slot.borrow_mut().plugin().save_state()
}

pub fn load_state<T: Callback>(slot: &RefCell<Slot<T>>, state: String) -> Result<(), String> {
    slot.borrow_mut().plugin().load_state(&state)
}

pub fn finish<T: Callback>(slot: &RefCell<Slot<T>>, outcome: RunOutcome) {
    slot.borrow_mut().plugin().finish(&outcome)
}

/// Exports a [`Callback`] type as the plugin of this component.
#[macro_export]
macro_rules! export_plugin {
    ($ty:ty) => {
        const _: () = {
            use $crate::__private as __p;
            thread_local! {
                static SLOT: ::core::cell::RefCell<__p::Slot<$ty>> = const { ::core::cell::RefCell::new(__p::Slot::new()) };
            }
            struct __TrainboxExport;
            impl __p::Guest for __TrainboxExport {
                fn describe() -> __p::PluginInfo {
                    __p::describe::<$ty>()
                }
                fn configure(args: $crate::TrainingArgs, config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>) -> ::core::result::Result<(), ::std::string::String> {
                    SLOT.with(|s| __p::configure::<$ty>(s, args, config))
                }
                fn on_event(event: $crate::Event, state: $crate::TrainerState, control: $crate::TrainerControl, payload: ::std::vec::Vec<$crate::Entry>) -> $crate::TrainerControl {
                    SLOT.with(|s| __p::on_event::<$ty>(s, event, state, control, payload))
                }
                fn save_state() -> ::std::string::String {
                    SLOT.with(|s| __p::save_state::<$ty>(s))
                }
                fn load_state(state: ::std::string::String) -> ::core::result::Result<(), ::std::string::String> {
                    SLOT.with(|s| __p::load_state::<$ty>(s, state))
                }
                fn finish(outcome: $crate::RunOutcome) {
                    SLOT.with(|s| __p::finish::<$ty>(s, outcome))
                }
            }
            $crate::wit::__export_callback_world!(__TrainboxExport with_types_in $crate::wit);
        };
    };
}
