//! `on-event` called with its records lowered in one copy each.
//!
//! The arguments of `on-event` take more than 16 flat values, so the
//! canonical ABI passes them in the guest's memory, and wasmtime's derived
//! lowering writes each field of `trainer-state` and `trainer-control` on
//! its own, looking the guest's memory up again for every one: about half
//! of a call into a trivial plugin. Here the two records are laid out once
//! in a host buffer, in the exact bytes the derived lowering writes
//! ([`StateImage`], [`ControlImage`]), and copied in at once; the strings of
//! the state (`best-model-checkpoint`, `trial-name`), which need the
//! guest's allocator, are lowered by wasmtime as before when present.
//! The function is type-checked against the component once, at
//! instantiation, with the same WIT types as the generated bindings: the
//! contract and what the guest receives are unchanged
//! (`images_are_the_bytes_wasmtime_writes` checks the bytes).

use super::latest::wit;
use super::PLUGIN_EXPORT;
use wasmtime::component::__internal::{
    bad_type_info, CanonicalAbiInfo, ComponentVariant, InstanceType, InterfaceType, LowerContext,
};
use wasmtime::component::{ComponentType, Func, Instance, Lower, TypedFunc};
use wasmtime::{AsContextMut, Store};

/// Bytes of `trainer-state` in the guest's memory.
const STATE_SIZE: usize = <wit::TrainerState as ComponentType>::SIZE32;
/// Bytes of `trainer-control` in the guest's memory.
const CONTROL_SIZE: usize = <wit::TrainerControl as ComponentType>::SIZE32;

/// The parameters of `on-event`, with the two records as images.
type Params<'a, 's> = (
    wit::Event,
    &'a StateImage<'s>,
    ControlImage,
    &'a [wit::Entry],
);

/// A plugin's `on-event`, checked to have the contract's type.
#[derive(Clone, Copy)]
pub struct OnEvent(Func);

impl OnEvent {
    /// The `on-event` export of a plugin of the latest contract.
    pub fn of<T: Send>(store: &mut Store<T>, instance: &Instance) -> wasmtime::Result<OnEvent> {
        let missing =
            || wasmtime::format_err!("the plugin does not export {PLUGIN_EXPORT}.on-event");
        let plugin = instance
            .get_export_index(store.as_context_mut(), None, PLUGIN_EXPORT)
            .ok_or_else(missing)?;
        let index = instance
            .get_export_index(store.as_context_mut(), Some(&plugin), "on-event")
            .ok_or_else(missing)?;
        let func = instance
            .get_func(store.as_context_mut(), index)
            .ok_or_else(missing)?;
        // The type check, once: the images have the records' WIT types.
        func.typed::<Params<'static, 'static>, (wit::TrainerControl,)>(&*store)?;
        Ok(OnEvent(func))
    }

    /// Calls it, as the generated `call_on_event` does.
    pub fn call<T: Send>(
        self,
        store: &mut Store<T>,
        event: wit::Event,
        state: &wit::TrainerState,
        control: wit::TrainerControl,
        payload: &[wit::Entry],
    ) -> wasmtime::Result<wit::TrainerControl> {
        // SAFETY: `of` checked the function against these parameter and
        // result types (the lifetimes do not change their layout).
        let typed =
            unsafe { TypedFunc::<Params<'_, '_>, (wit::TrainerControl,)>::new_unchecked(self.0) };
        let image = StateImage::new(state);
        let (returned,) =
            typed.call(store, (event, &image, ControlImage::new(control), payload))?;
        Ok(returned)
    }
}

/// Where each field of a record lies, as the canonical ABI places fields
/// one after another (what the derived lowering computes on every call).
struct Offsets<const F: usize>([usize; F]);

impl<const F: usize> Offsets<F> {
    /// The offsets of fields of these ABIs, in order.
    fn of(fields: [CanonicalAbiInfo; F]) -> Self {
        let mut offset = 0;
        Offsets(fields.map(|abi| abi.next_field32_size(&mut offset)))
    }
}

/// Writes a record's fields at their offsets, in order.
struct Layout<'o, const N: usize, const F: usize> {
    bytes: [u8; N],
    offsets: &'o Offsets<F>,
    field: usize,
}

impl<'o, const N: usize, const F: usize> Layout<'o, N, F> {
    fn new(offsets: &'o Offsets<F>) -> Self {
        Layout {
            bytes: [0; N],
            offsets,
            field: 0,
        }
    }

    /// The offset of the next field.
    fn next(&mut self) -> usize {
        let at = self.offsets.0[self.field];
        self.field += 1;
        at
    }

    fn put(&mut self, at: usize, bytes: &[u8]) {
        self.bytes[at..at + bytes.len()].copy_from_slice(bytes);
    }

    fn f64(&mut self, v: f64) {
        let at = self.next();
        self.put(at, &v.to_le_bytes());
    }

    fn u64(&mut self, v: u64) {
        let at = self.next();
        self.put(at, &v.to_le_bytes());
    }

    fn bool(&mut self, v: bool) {
        let at = self.next();
        self.put(at, &[u8::from(v)]);
    }

    /// An option of `T`: its case byte, then its payload where the ABI puts it.
    fn option<T: ComponentType>(&mut self, payload: Option<&[u8]>) -> usize {
        let at = self.next();
        match payload {
            None => self.put(at, &[0]),
            Some(bytes) => {
                self.put(at, &[1]);
                self.put(
                    at + <Option<T> as ComponentVariant>::PAYLOAD_OFFSET32,
                    bytes,
                );
            }
        }
        at
    }
}

/// The fields of `trainer-state`, in WIT order (the generated struct's).
const STATE_FIELDS: usize = 17;

/// Where the fields of `trainer-state` lie.
static STATE_OFFSETS: std::sync::LazyLock<Offsets<STATE_FIELDS>> = std::sync::LazyLock::new(|| {
    fn abi<T: ComponentType>() -> CanonicalAbiInfo {
        T::ABI
    }
    Offsets::of([
        abi::<f64>(),
        abi::<u64>(),
        abi::<u64>(),
        abi::<f64>(),
        abi::<f64>(),
        abi::<f64>(),
        abi::<Option<u32>>(),
        abi::<u64>(),
        abi::<u64>(),
        abi::<f64>(),
        abi::<Option<f64>>(),
        abi::<Option<u64>>(),
        abi::<Option<String>>(),
        abi::<bool>(),
        abi::<bool>(),
        abi::<bool>(),
        abi::<Option<String>>(),
    ])
});

/// Where the five flags of `trainer-control` lie.
static CONTROL_OFFSETS: std::sync::LazyLock<Offsets<5>> =
    std::sync::LazyLock::new(|| Offsets::of([<bool as ComponentType>::ABI; 5]));

/// `trainer-state` as the bytes wasmtime's derived lowering writes, fields
/// in WIT order (the generated struct's order); the strings as absent.
pub struct StateImage<'a> {
    state: &'a wit::TrainerState,
    bytes: [u8; STATE_SIZE],
    /// Where `best-model-checkpoint` and `trial-name` lie.
    checkpoint_at: usize,
    trial_at: usize,
}

/// The field indices of the strings in `trainer-state`.
const CHECKPOINT_FIELD: usize = 12;
const TRIAL_FIELD: usize = 16;

impl<'a> StateImage<'a> {
    /// The image of `s`.
    pub fn new(s: &'a wit::TrainerState) -> Self {
        let mut l = Layout::<STATE_SIZE, STATE_FIELDS>::new(&STATE_OFFSETS);
        l.f64(s.epoch);
        l.u64(s.global_step);
        l.u64(s.max_steps);
        l.f64(s.logging_steps);
        l.f64(s.eval_steps);
        l.f64(s.save_steps);
        l.option::<u32>(
            s.train_batch_size
                .map(u32::to_le_bytes)
                .as_ref()
                .map(|b| &b[..]),
        );
        l.u64(s.num_train_epochs);
        l.u64(s.num_input_tokens_seen);
        l.f64(s.total_flos);
        l.option::<f64>(s.best_metric.map(f64::to_le_bytes).as_ref().map(|b| &b[..]));
        l.option::<u64>(
            s.best_global_step
                .map(u64::to_le_bytes)
                .as_ref()
                .map(|b| &b[..]),
        );
        let checkpoint_at = l.option::<String>(None);
        l.bool(s.is_local_process_zero);
        l.bool(s.is_world_process_zero);
        l.bool(s.is_hyper_param_search);
        let trial_at = l.option::<String>(None);
        StateImage {
            state: s,
            bytes: l.bytes,
            checkpoint_at,
            trial_at,
        }
    }
}

unsafe impl ComponentType for StateImage<'_> {
    type Lower = <wit::TrainerState as ComponentType>::Lower;
    const ABI: CanonicalAbiInfo = <wit::TrainerState as ComponentType>::ABI;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        <wit::TrainerState as ComponentType>::typecheck(ty, types)
    }
}

unsafe impl Lower for StateImage<'_> {
    fn linear_lower_to_flat<T>(
        &self,
        cx: &mut LowerContext<'_, T>,
        ty: InterfaceType,
        dst: &mut std::mem::MaybeUninit<Self::Lower>,
    ) -> wasmtime::Result<()> {
        self.state.linear_lower_to_flat(cx, ty, dst)
    }

    fn linear_lower_to_memory<T>(
        &self,
        cx: &mut LowerContext<'_, T>,
        ty: InterfaceType,
        offset: usize,
    ) -> wasmtime::Result<()> {
        #[cfg(test)]
        tests::compare(cx, ty, offset, self);
        cx.as_slice_mut()[offset..][..STATE_SIZE].copy_from_slice(&self.bytes);
        let strings = [
            (
                &self.state.best_model_checkpoint,
                CHECKPOINT_FIELD,
                self.checkpoint_at,
            ),
            (&self.state.trial_name, TRIAL_FIELD, self.trial_at),
        ];
        for (value, field, at) in strings {
            if value.is_some() {
                let field_ty = match ty {
                    InterfaceType::Record(i) => cx.types[i].fields[field].ty,
                    _ => bad_type_info(),
                };
                value.linear_lower_to_memory(cx, field_ty, offset + at)?;
            }
        }
        Ok(())
    }
}

/// `trainer-control` as the bytes wasmtime's derived lowering writes.
#[derive(Clone, Copy)]
pub struct ControlImage {
    control: wit::TrainerControl,
    bytes: [u8; CONTROL_SIZE],
}

impl ControlImage {
    fn new(c: wit::TrainerControl) -> Self {
        let mut l = Layout::<CONTROL_SIZE, 5>::new(&CONTROL_OFFSETS);
        l.bool(c.should_training_stop);
        l.bool(c.should_epoch_stop);
        l.bool(c.should_save);
        l.bool(c.should_evaluate);
        l.bool(c.should_log);
        ControlImage {
            control: c,
            bytes: l.bytes,
        }
    }
}

unsafe impl ComponentType for ControlImage {
    type Lower = <wit::TrainerControl as ComponentType>::Lower;
    const ABI: CanonicalAbiInfo = <wit::TrainerControl as ComponentType>::ABI;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        <wit::TrainerControl as ComponentType>::typecheck(ty, types)
    }
}

unsafe impl Lower for ControlImage {
    fn linear_lower_to_flat<T>(
        &self,
        cx: &mut LowerContext<'_, T>,
        ty: InterfaceType,
        dst: &mut std::mem::MaybeUninit<Self::Lower>,
    ) -> wasmtime::Result<()> {
        self.control.linear_lower_to_flat(cx, ty, dst)
    }

    fn linear_lower_to_memory<T>(
        &self,
        cx: &mut LowerContext<'_, T>,
        ty: InterfaceType,
        offset: usize,
    ) -> wasmtime::Result<()> {
        #[cfg(test)]
        tests::compare_control(cx, ty, offset, self);
        #[cfg(not(test))]
        let _ = ty;
        cx.as_slice_mut()[offset..][..CONTROL_SIZE].copy_from_slice(&self.bytes);
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Differences between an image and wasmtime's own lowering, seen while
    /// [`CHECKING`] is set.
    pub static MISMATCHES: Mutex<Vec<String>> = Mutex::new(Vec::new());
    /// Images lowered while checking.
    pub static CHECKED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    /// Whether each image is compared with wasmtime's lowering first.
    pub static CHECKING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

    /// Lowers `value` wasmtime's way over a copy of `image` (so that padding
    /// keeps the image's bytes), and records where the two differ.
    fn check<T, V: Lower>(
        cx: &mut LowerContext<'_, T>,
        ty: InterfaceType,
        offset: usize,
        value: &V,
        image: &[u8],
        what: &str,
    ) {
        use std::sync::atomic::Ordering;
        if !CHECKING.load(Ordering::SeqCst) {
            return;
        }
        let saved = cx.as_slice_mut()[offset..][..image.len()].to_vec();
        cx.as_slice_mut()[offset..][..image.len()].copy_from_slice(image);
        value.linear_lower_to_memory(cx, ty, offset).unwrap();
        let lowered = cx.as_slice_mut()[offset..][..image.len()].to_vec();
        cx.as_slice_mut()[offset..][..image.len()].copy_from_slice(&saved);
        if lowered != image {
            MISMATCHES
                .lock()
                .unwrap()
                .push(format!("{what}: wasmtime {lowered:?}, image {image:?}"));
        }
        CHECKED.fetch_add(1, Ordering::SeqCst);
    }

    pub(super) fn compare<T>(
        cx: &mut LowerContext<'_, T>,
        ty: InterfaceType,
        offset: usize,
        image: &StateImage<'_>,
    ) {
        // Strings are lowered by wasmtime in both paths: compare without them.
        let mut plain = image.state.clone();
        plain.best_model_checkpoint = None;
        plain.trial_name = None;
        check(cx, ty, offset, &plain, &image.bytes, "trainer-state");
    }

    pub(super) fn compare_control<T>(
        cx: &mut LowerContext<'_, T>,
        ty: InterfaceType,
        offset: usize,
        image: &ControlImage,
    ) {
        check(
            cx,
            ty,
            offset,
            &image.control,
            &image.bytes,
            "trainer-control",
        );
    }

    /// Every field of the state set to a value of its own, so that a field
    /// written at another's offset shows.
    fn full_state() -> crate::state::TrainerState {
        crate::state::TrainerState {
            epoch: 1.25,
            global_step: 7,
            max_steps: 1 << 40,
            logging_steps: crate::state::Number::Float(0.5),
            eval_steps: crate::state::Number::Int(3),
            save_steps: crate::state::Number::Int(11),
            train_batch_size: Some(0x0102_0304),
            num_train_epochs: 13,
            num_input_tokens_seen: 0x0506_0708_090a,
            total_flos: -2.5e30,
            best_metric: Some(f64::MIN_POSITIVE),
            best_global_step: Some(u64::MAX - 1),
            best_model_checkpoint: Some("out/checkpoint-7".into()),
            is_local_process_zero: false,
            is_world_process_zero: true,
            is_hyper_param_search: true,
            trial_name: Some("trial é".into()),
            ..Default::default()
        }
    }

    /// The images hold the bytes wasmtime's own lowering writes, for every
    /// field, strings present or not, and the plugin reads them: the
    /// stopper (built by `make plugins`) stops at `global_step` 7.
    #[test]
    fn images_are_the_bytes_wasmtime_writes() {
        use crate::event::Event;
        use crate::state::{Logs, TrainerControl, Value};
        use std::sync::atomic::Ordering;
        let dir = std::env::var_os("TRAINBOX_PLUGIN_DIR").expect(
            "TRAINBOX_PLUGIN_DIR is needed (the built test plugins): run `make test`, or `make plugins` and set TRAINBOX_PLUGIN_DIR=build/plugins",
        );
        let path = std::path::Path::new(&dir).join("stopper.wasm");
        let sandbox = crate::sandbox::Sandbox::new(crate::view::RunView::default(), None).unwrap();
        let compiled = sandbox
            .compile(&path)
            .unwrap_or_else(|e| panic!("{}: {e:#} (run `make plugins`)", path.display()));
        let settings = crate::sandbox::PluginSettings {
            config: vec![("at_step".into(), "7".into())],
            ..Default::default()
        };
        let out = std::env::temp_dir().join(format!("trainbox-images-{}", std::process::id()));
        let args = crate::run_args::RunArgs::example(&out.to_string_lossy());
        let mut plugin = sandbox.instantiate(&compiled, settings, &args, 0).unwrap();
        let full = full_state();
        let bare = crate::state::TrainerState {
            global_step: 6,
            ..Default::default()
        };
        let mut payload = Logs::new();
        payload.insert("loss", Value::Float(0.5));
        let flags = [
            TrainerControl::from_flag_array([false, true, false, true, false]),
            TrainerControl::from_flag_array([false, false, true, false, true]),
        ];
        let before = CHECKED.load(Ordering::SeqCst);
        CHECKING.store(true, Ordering::SeqCst);
        let mut returned = Vec::new();
        for state in [&full, &bare] {
            for control in flags {
                for payload in [&payload, &Logs::new()] {
                    let r = plugin.handle_event(Event::StepEnd, state, control, payload);
                    returned.push((state.global_step, control, r.unwrap()));
                }
            }
        }
        CHECKING.store(false, Ordering::SeqCst);
        let mismatches = MISMATCHES.lock().unwrap().clone();
        assert!(mismatches.is_empty(), "{mismatches:#?}");
        // A state and a control per call, compared.
        assert!(CHECKED.load(Ordering::SeqCst) - before >= 16);
        for (step, control, got) in returned {
            let stopped = TrainerControl {
                should_training_stop: step >= 7,
                ..control
            };
            assert_eq!(got, stopped, "at step {step}");
        }
        drop(plugin);
        let _ = std::fs::remove_dir_all(&out);
    }
}
