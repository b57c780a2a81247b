//! Joining the process group of a multi-process run.

use crate::args::TrainingArguments;
use crate::dist::{Launch, World};
use anyhow::Result;
use std::time::Duration;
use trainbox_torch_ext::c10d::{has_nccl, Backend};

/// Joins the run `launch` describes: over `--ddp_backend` (by default
/// NCCL when the run trains on CUDA and this build has it, else Gloo),
/// waiting at most `--ddp_timeout` seconds for the others.
pub fn join(launch: &Launch, args: &TrainingArguments, device: tch::Device) -> Result<World> {
    let backend = match args.ddp_backend.as_deref() {
        Some("nccl") => Backend::Nccl,
        Some(_) => Backend::Gloo,
        None if device.is_cuda() && has_nccl() => Backend::Nccl,
        None => Backend::Gloo,
    };
    if backend == Backend::Nccl && !device.is_cuda() {
        anyhow::bail!(
            "--ddp_backend nccl needs CUDA, and this run trains on the CPU; use --ddp_backend gloo"
        );
    }
    let world = World::join(
        launch,
        backend,
        Duration::from_secs(args.ddp_timeout),
        device,
    )?;
    if world.is_distributed() && world.is_world_zero() {
        crate::ui::info(&format!(
            "data parallel: {} processes over {} (this is rank 0)",
            world.size(),
            backend.name()
        ));
    }
    Ok(world)
}
