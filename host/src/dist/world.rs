//! The processes of a run and the collectives the trainer uses across them.
//! A single-process run is a world of one whose collectives do nothing.

use super::Launch;
use anyhow::{anyhow, Result};
use std::time::Duration;
use tch::{Device, Kind, Tensor};
use trainbox_torch_ext::c10d::{Backend, GroupOptions, ProcessGroup, ReduceOp};

/// Gradients are all-reduced in buckets of at most this many bytes, as
/// torch's DDP (`bucket_cap_mb` = 25).
const BUCKET_BYTES: i64 = 25 * 1024 * 1024;

/// This process's place in the run, and its process group when there are
/// several.
pub struct World {
    rank: usize,
    size: usize,
    local_rank: usize,
    group: Option<ProcessGroup>,
    /// Where the group's tensors live: the CPU for Gloo, the rank's GPU for NCCL.
    comm_device: Device,
    restart_count: u32,
}

impl Default for World {
    fn default() -> Self {
        World::single()
    }
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "World(rank {} of {})", self.rank, self.size)
    }
}

impl World {
    /// A run of one process.
    pub fn single() -> World {
        World {
            rank: 0,
            size: 1,
            local_rank: 0,
            group: None,
            comm_device: Device::Cpu,
            restart_count: 0,
        }
    }

    /// Joins the run `launch` describes over `backend`; waits at most
    /// `timeout` for the others (and for every later collective).
    pub fn join(
        launch: &Launch,
        backend: Backend,
        timeout: Duration,
        device: Device,
    ) -> Result<World> {
        let mut world = World {
            rank: launch.rank,
            size: launch.world_size,
            local_rank: launch.local_rank,
            group: None,
            comm_device: Device::Cpu,
            restart_count: launch.restart_count,
        };
        if launch.world_size == 1 {
            return Ok(world);
        }
        let device_index = match device {
            Device::Cuda(i) => i,
            _ => 0,
        };
        let group = ProcessGroup::new(&GroupOptions {
            host: launch.master_addr.clone(),
            port: launch.master_port,
            rank: launch.rank,
            world_size: launch.world_size,
            serve_store: launch.rank == 0 && !launch.agent_store,
            prefix: format!("trainbox/attempt_{}/", launch.restart_count),
            timeout,
            backend,
            device_index,
        })
        .map_err(|e| {
            anyhow!(
                "rank {} of {}: could not join the {} process group at {}:{} within {} s: {e}; \
                 every rank must start (check the other processes' errors, MASTER_ADDR and MASTER_PORT)",
                launch.rank,
                launch.world_size,
                backend.name(),
                launch.master_addr,
                launch.master_port,
                timeout.as_secs()
            )
        })?;
        world.comm_device = if backend == Backend::Nccl {
            device
        } else {
            Device::Cpu
        };
        world.group = Some(group);
        Ok(world)
    }

    /// `RANK`.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// `WORLD_SIZE`.
    pub fn size(&self) -> usize {
        self.size
    }

    /// `LOCAL_RANK`.
    pub fn local_rank(&self) -> usize {
        self.local_rank
    }

    /// HF's `is_world_process_zero`.
    pub fn is_world_zero(&self) -> bool {
        self.rank == 0
    }

    /// HF's `is_local_process_zero`.
    pub fn is_local_zero(&self) -> bool {
        self.local_rank == 0
    }

    /// Whether there are other processes.
    pub fn is_distributed(&self) -> bool {
        self.group.is_some()
    }

    /// How many times the launcher restarted the group (torchrun's
    /// `--max_restarts`).
    pub fn restart_count(&self) -> u32 {
        self.restart_count
    }

    /// The error of a failed collective: which, where, and the likely cause.
    fn failed(&self, what: &str, e: trainbox_torch_ext::Error) -> anyhow::Error {
        anyhow!(
            "rank {} of {}: {what} across the processes failed: {e}; another rank stopped or \
             cannot be reached (its own output says why)",
            self.rank,
            self.size
        )
    }

    /// Replaces each gradient by its mean over the ranks, in buckets of at
    /// most 25 MB, all in flight at once.
    pub fn average_gradients(&self, grads: &[Tensor]) -> Result<()> {
        let Some(group) = &self.group else {
            return Ok(());
        };
        tch::no_grad(|| {
            let mut buckets: Vec<(Vec<&Tensor>, Tensor)> = Vec::new();
            for chunk in buckets_of(grads) {
                let flat = Tensor::cat(
                    &chunk
                        .iter()
                        .map(|g| g.reshape([-1]).to_device(self.comm_device))
                        .collect::<Vec<_>>(),
                    0,
                );
                buckets.push((chunk, flat));
            }
            let works = buckets
                .iter()
                .map(|(_, flat)| group.all_reduce(flat, ReduceOp::Sum))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| self.failed("averaging the gradients", e))?;
            for work in works {
                work.wait()
                    .map_err(|e| self.failed("averaging the gradients", e))?;
            }
            let n = self.size as f64;
            for (chunk, flat) in buckets {
                let mut offset = 0;
                for g in chunk {
                    let numel = g.numel() as i64;
                    let part = flat.narrow(0, offset, numel).view_as(g) / n;
                    g.shallow_clone().copy_(&part);
                    offset += numel;
                }
            }
            Ok(())
        })
    }

    /// Sums `values` over the ranks, in place.
    pub fn sum(&self, what: &str, values: &mut [f64]) -> Result<()> {
        let Some(group) = &self.group else {
            return Ok(());
        };
        if values.is_empty() {
            return Ok(());
        }
        let t = Tensor::from_slice(values).to_device(self.comm_device);
        group
            .all_reduce(&t, ReduceOp::Sum)
            .and_then(|w| w.wait())
            .map_err(|e| self.failed(what, e))?;
        let summed = Vec::<f64>::try_from(&t.to_device(Device::Cpu))?;
        values.copy_from_slice(&summed);
        Ok(())
    }

    /// Sets each flag that is true on any rank, on every rank.
    pub fn any(&self, what: &str, flags: &mut [bool]) -> Result<()> {
        let Some(group) = &self.group else {
            return Ok(());
        };
        let ints: Vec<i32> = flags.iter().map(|&b| i32::from(b)).collect();
        let t = Tensor::from_slice(&ints).to_device(self.comm_device);
        group
            .all_reduce(&t, ReduceOp::Max)
            .and_then(|w| w.wait())
            .map_err(|e| self.failed(what, e))?;
        let agreed = Vec::<i32>::try_from(&t.to_device(Device::Cpu))?;
        for (flag, v) in flags.iter_mut().zip(agreed) {
            *flag = v != 0;
        }
        Ok(())
    }

    /// Overwrites `tensors` on every rank with rank 0's (the initial
    /// weights, as DDP does at start).
    pub fn broadcast_from_zero(&self, tensors: &[Tensor]) -> Result<()> {
        let Some(group) = &self.group else {
            return Ok(());
        };
        tch::no_grad(|| {
            for t in tensors {
                let on = t.to_device(self.comm_device).contiguous();
                group
                    .broadcast(&on, 0)
                    .and_then(|w| w.wait())
                    .map_err(|e| self.failed("broadcasting the initial weights", e))?;
                t.shallow_clone().copy_(&on);
            }
            Ok(())
        })
    }

    /// Every rank's `bytes`, in rank order.
    pub fn gather_bytes(&self, what: &str, bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
        let Some(group) = &self.group else {
            return Ok(vec![bytes.to_vec()]);
        };
        let fail = |e| self.failed(what, e);
        let len = Tensor::from_slice(&[bytes.len() as i64]).to_device(self.comm_device);
        let lens: Vec<Tensor> = (0..self.size)
            .map(|_| Tensor::zeros([1], (Kind::Int64, self.comm_device)))
            .collect();
        group
            .all_gather(&len, &lens)
            .and_then(|w| w.wait())
            .map_err(fail)?;
        let lens: Vec<usize> = lens.iter().map(|t| t.int64_value(&[0]) as usize).collect();
        let max = lens.iter().copied().max().unwrap_or(0).max(1);
        let mut padded = bytes.to_vec();
        padded.resize(max, 0);
        let mine = Tensor::from_slice(&padded).to_device(self.comm_device);
        let all: Vec<Tensor> = (0..self.size)
            .map(|_| Tensor::zeros([max as i64], (Kind::Uint8, self.comm_device)))
            .collect();
        group
            .all_gather(&mine, &all)
            .and_then(|w| w.wait())
            .map_err(fail)?;
        all.iter()
            .zip(lens)
            .map(|(t, n)| {
                let v = Vec::<u8>::try_from(&t.to_device(Device::Cpu))?;
                Ok(v[..n].to_vec())
            })
            .collect()
    }

    /// Waits until every rank got here.
    pub fn barrier(&self, what: &str) -> Result<()> {
        let Some(group) = &self.group else {
            return Ok(());
        };
        group.barrier().map_err(|e| self.failed(what, e))
    }
}

/// Consecutive gradients of one kind and device, at most [`BUCKET_BYTES`]
/// each (a larger gradient is a bucket of its own).
fn buckets_of(grads: &[Tensor]) -> Vec<Vec<&Tensor>> {
    let mut buckets: Vec<Vec<&Tensor>> = Vec::new();
    let mut bytes = 0;
    for g in grads {
        let size = g.numel() as i64 * g.kind().elt_size_in_bytes() as i64;
        let fits = buckets.last().is_some_and(|b| {
            let last = b[b.len() - 1];
            last.kind() == g.kind() && last.device() == g.device() && bytes + size <= BUCKET_BYTES
        });
        if fits {
            buckets.last_mut().expect("checked").push(g);
            bytes += size;
        } else {
            buckets.push(vec![g]);
            bytes = size;
        }
    }
    buckets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_hold_at_most_25_mb_of_one_kind() {
        let small = Tensor::zeros([1000], (Kind::Float, Device::Cpu));
        let big = Tensor::zeros([7 * 1024 * 1024], (Kind::Float, Device::Cpu)); // 28 MB
        let half = Tensor::zeros([10], (Kind::Half, Device::Cpu));
        let grads = [
            small.shallow_clone(),
            small.shallow_clone(),
            big,
            half,
            small,
        ];
        let sizes: Vec<usize> = buckets_of(&grads).iter().map(Vec::len).collect();
        assert_eq!(sizes, [2, 1, 1, 1]);
    }

    #[test]
    fn a_world_of_one_changes_nothing() {
        let w = World::single();
        let g = Tensor::from_slice(&[2.0f32]);
        w.average_gradients(&[g.shallow_clone()]).unwrap();
        assert_eq!(g.double_value(&[0]), 2.0);
        let mut v = [1.5];
        w.sum("x", &mut v).unwrap();
        assert_eq!(v, [1.5]);
        assert_eq!(w.gather_bytes("x", b"abc").unwrap(), [b"abc".to_vec()]);
        assert!(w.is_world_zero() && w.is_local_zero() && !w.is_distributed());
    }
}
