//! Data-parallel training on torch's distributed engine (c10d), as HF's
//! Trainer does it under accelerate and `torchrun`.
//!
//! `launch.rs` reads what the launcher tells each process (`RANK`,
//! `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR`, torchrun's elastic
//! variables); `world.rs` joins the process group and holds the few
//! collectives the trainer needs (averaged gradients, summed numbers,
//! agreed control flags, gathered bytes, barriers); `shard.rs` gives each
//! process its whole batches of the one global order, as accelerate's
//! `BatchSamplerShard`. The collectives themselves are torch's (Gloo, NCCL),
//! through `trainbox-torch-ext`.

pub mod launch;
pub mod shard;
mod world;

pub use launch::Launch;
pub use world::World;
