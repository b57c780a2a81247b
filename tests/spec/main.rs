//! The integration tests: they run the real `trainbox` binary with real
//! libtorch and real `.wasm` plugins built from `plugins/` (`make plugins`).
//! One binary, one module per area.

mod util;

/// The HF training loop as a test oracle: the expected events.
mod oracle;

/// The command line: flags, config files, errors that name the fix.
mod cli;
/// The versioned contract: 0.1.0 plugins on the 0.2.0 host, unserved versions, histograms.
mod contract_versions;
/// Dataset files: Parquet, safetensors, JSON lines, CSV; padding as HF's collators.
mod datasets;
/// Data parallel under torchrun: N×B as 1×N·B, agreed stops, resume, dead ranks.
mod distributed;
/// The early-stopping plugin against HF's EarlyStoppingCallback logic.
mod early_stopping;
/// Event order, steps, epochs, flags and keys against the oracle (spec §5-6).
mod event_flow;
/// The Hugging Face examples (tiny GPT-2, tiny BERT) exported and trained.
mod examples;
/// `--optim adamw_torch_fused` and `adamw_torch` against torch's two AdamW paths, bit for bit.
mod fused_adamw;
/// A plugin is its file: grants bound to it, unique names, owned directories.
mod identity;
/// TensorBoard, MLflow, DVCLive, W&B and CodeCarbon, against their real readers.
mod integrations;
/// SIGINT/SIGTERM mid-run, the resume command, one run per output_dir.
mod interrupt;
/// Plugins in Python, JavaScript and C; `trainbox plugin new`.
mod languages;
/// The host's module map: one-way dependencies, no import circles.
mod layering;
/// The library API: a user's own model and a native callback.
mod library;
/// Grants, outgoing HTTP, bad components, the compile cache, replay.
mod loading;
/// The loop's arguments: label smoothing and token counts against HF, workers, seeds, model-only saves.
mod loop_args;
/// HF 5.24's num_items_in_batch and causal-LM label smoothing against HF.
mod loss_kwargs;
/// `--optim` sgd, adagrad, rmsprop, adafactor against the HF Trainer; refused names.
mod optimizers;
/// A read-only grant on output_dir: checkpoints readable, plugin folders hidden.
mod output_grant;
/// `trainbox train --model`: TorchScript models on dataset files, checked from Python.
mod own_model;
/// `trainbox train --model`: columns bound to forward's arguments; bad models and dataset files.
mod own_model_errors;
/// A TorchScript model trained by trainbox and by the real HF Trainer, log for log.
mod own_model_parity;
/// Loading plugins: order, bad files, progress and printer output.
mod plugins;
/// Devices and mixed precision on the CPU: bf16 against float32, HF's checks, fp16 loss scaling.
mod precision;
/// `trainbox plugins precompile`: the compile cache filled ahead of a run.
mod precompile;
/// Python plugins: imports in functions, HTTP, tracebacks, build-time import errors.
mod python_plugins;
/// The end of a run: the summary, the learning curves, `trainbox report` on two runs.
mod report;
/// Open files and disk quotas; failed saves leave nothing half-written.
mod resources;
/// Exact resume, stateful plugins, bad checkpoints.
mod resume;
/// Hostile plugins: limits, faults, output caps, escapes, states.
mod sandbox;
/// Sandbox holes found from outside: tables, written state size, spoofed lines, rejected states.
mod sandbox_holes;
/// Every `--lr_scheduler_type` against transformers' own learning rates, bit for bit.
mod schedules;
/// The library's one call for a run with plugins (`trainbox::Run`).
mod session;
/// TorchScript modules from Python: trained through the library, read back by torch.
mod torchscript;
/// `trainer_state.json` and checkpoints, read back by transformers itself.
mod trainer_state;
/// The training-argument table the host, the WIT and the SDK follow, against transformers.
mod training_args;
/// Waiting in host calls (sleeps, polls, clock subscriptions) ends at the deadline.
mod waiting;
