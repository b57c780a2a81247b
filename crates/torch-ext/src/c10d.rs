//! A c10d process group: the ranks of a run joined over a TCPStore, with
//! torch's Gloo (CPU, and CUDA tensors through host copies) or NCCL (CUDA)
//! collectives. Every rank must call the same collectives in the same order.

use crate::{checked, ffi, Error};
use std::ffi::CString;
use std::time::Duration;
use tch::Tensor;

/// Which of torch's collective libraries a group uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Gloo: CPU tensors (and CUDA tensors, copied through the host).
    Gloo,
    /// NCCL: CUDA tensors on the rank's device.
    Nccl,
}

impl Backend {
    /// The name torch uses (`gloo`, `nccl`).
    pub fn name(self) -> &'static str {
        match self {
            Backend::Gloo => "gloo",
            Backend::Nccl => "nccl",
        }
    }
}

/// Whether this build can make NCCL groups.
pub fn has_nccl() -> bool {
    // SAFETY: a plain query.
    unsafe { ffi::tbx_has_nccl() != 0 }
}

/// How an all-reduce combines the ranks' values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReduceOp {
    Sum,
    Max,
    Min,
}

/// Where and how to join a group.
#[derive(Debug, Clone)]
pub struct GroupOptions {
    /// The TCPStore's host and port (`MASTER_ADDR`, `MASTER_PORT`).
    pub host: String,
    pub port: u16,
    pub rank: usize,
    pub world_size: usize,
    /// Whether this process serves the store (rank 0 when no launcher
    /// agent serves it).
    pub serve_store: bool,
    /// A key prefix, so that several groups (or restarts) on one store do
    /// not see each other's keys.
    pub prefix: String,
    /// How long the rendezvous and each collective may wait for the others.
    pub timeout: Duration,
    pub backend: Backend,
    /// The CUDA device of this rank (NCCL only).
    pub device_index: usize,
}

/// A joined process group.
pub struct ProcessGroup {
    ptr: *mut ffi::Group,
    rank: usize,
    world_size: usize,
    backend: Backend,
}

// SAFETY: c10d backends are used from any thread (their work runs on their
// own threads); this handle is only ever used by one thread at a time.
unsafe impl Send for ProcessGroup {}

/// A collective in flight; [`Work::wait`] finishes it.
#[must_use = "a collective is only finished once waited for"]
pub struct Work(*mut ffi::Work);

impl Work {
    /// Waits until the collective is done on this rank.
    pub fn wait(self) -> Result<(), Error> {
        let ptr = self.0;
        std::mem::forget(self);
        // SAFETY: `ptr` came from the shim and is consumed here.
        checked(|err| unsafe { ffi::tbx_work_wait(ptr, err) }).map(|_| ())
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        // Never waited for: wait now, so no tensor is freed under it.
        let ptr = self.0;
        let _ = checked(|err| unsafe { ffi::tbx_work_wait(ptr, err) });
    }
}

fn ptr_of(t: &Tensor) -> *mut torch_sys::C_tensor {
    t.as_ptr() as *mut _
}

fn work(ptr: Result<*mut ffi::Work, Error>) -> Result<Work, Error> {
    let ptr = ptr?;
    if ptr.is_null() {
        return Err(Error("the collective could not be started".into()));
    }
    Ok(Work(ptr))
}

impl ProcessGroup {
    /// Joins (or, serving the store, opens) a group; blocks until every
    /// rank has joined or `timeout` passed.
    pub fn new(options: &GroupOptions) -> Result<ProcessGroup, Error> {
        let host = CString::new(options.host.as_str())
            .map_err(|_| Error("the store's host has a NUL byte".into()))?;
        let prefix = CString::new(options.prefix.as_str())
            .map_err(|_| Error("the store prefix has a NUL byte".into()))?;
        let ptr = checked(|err| unsafe {
            ffi::tbx_group_new(
                host.as_ptr(),
                options.port,
                options.rank as i32,
                options.world_size as i32,
                i32::from(options.serve_store),
                prefix.as_ptr(),
                options.timeout.as_millis().min(i64::MAX as u128) as i64,
                match options.backend {
                    Backend::Gloo => 0,
                    Backend::Nccl => 1,
                },
                options.device_index as i32,
                err,
            )
        })?;
        if ptr.is_null() {
            return Err(Error("the process group could not be made".into()));
        }
        Ok(ProcessGroup {
            ptr,
            rank: options.rank,
            world_size: options.world_size,
            backend: options.backend,
        })
    }

    pub fn rank(&self) -> usize {
        self.rank
    }

    pub fn world_size(&self) -> usize {
        self.world_size
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Starts an all-reduce of `tensor` in place (contiguous, same shape on
    /// every rank).
    pub fn all_reduce(&self, tensor: &Tensor, op: ReduceOp) -> Result<Work, Error> {
        let op = match op {
            ReduceOp::Sum => 0,
            ReduceOp::Max => 1,
            ReduceOp::Min => 2,
        };
        let list = [ptr_of(tensor)];
        work(checked(|err| unsafe {
            ffi::tbx_all_reduce(self.ptr, list.as_ptr(), 1, op, err)
        }))
    }

    /// Starts a broadcast of `tensor` from rank `root` into every rank's `tensor`.
    pub fn broadcast(&self, tensor: &Tensor, root: usize) -> Result<Work, Error> {
        work(checked(|err| unsafe {
            ffi::tbx_broadcast(self.ptr, ptr_of(tensor), root as i32, err)
        }))
    }

    /// Starts gathering every rank's `input` into `outputs` (one tensor of
    /// `input`'s shape per rank, in rank order).
    pub fn all_gather(&self, input: &Tensor, outputs: &[Tensor]) -> Result<Work, Error> {
        if outputs.len() != self.world_size {
            return Err(Error(format!(
                "all_gather needs {} output tensors, got {}",
                self.world_size,
                outputs.len()
            )));
        }
        let list: Vec<_> = outputs.iter().map(ptr_of).collect();
        work(checked(|err| unsafe {
            ffi::tbx_all_gather(self.ptr, ptr_of(input), list.as_ptr(), err)
        }))
    }

    /// Blocks until every rank has reached its barrier.
    pub fn barrier(&self) -> Result<(), Error> {
        work(checked(|err| unsafe { ffi::tbx_barrier(self.ptr, err) }))?.wait()
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        // SAFETY: made by tbx_group_new, freed once.
        unsafe { ffi::tbx_group_free(self.ptr) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// Two ranks in two threads of one process, over Gloo on 127.0.0.1.
    #[test]
    fn two_ranks_reduce_broadcast_and_gather() {
        let port = free_port();
        let ranks: Vec<_> = (0..2)
            .map(|rank| {
                std::thread::spawn(move || {
                    let group = ProcessGroup::new(&GroupOptions {
                        host: "127.0.0.1".into(),
                        port,
                        rank,
                        world_size: 2,
                        serve_store: rank == 0,
                        prefix: "test/".into(),
                        timeout: Duration::from_secs(30),
                        backend: Backend::Gloo,
                        device_index: 0,
                    })
                    .unwrap();
                    let t = Tensor::from_slice(&[1.0f32 + rank as f32, 10.0]);
                    group.all_reduce(&t, ReduceOp::Sum).unwrap().wait().unwrap();
                    let b = Tensor::full([3], rank as i64 + 5, (Kind::Int64, Device::Cpu));
                    group.broadcast(&b, 1).unwrap().wait().unwrap();
                    let outs = [
                        Tensor::zeros([1], (Kind::Float, Device::Cpu)),
                        Tensor::zeros([1], (Kind::Float, Device::Cpu)),
                    ];
                    group
                        .all_gather(&Tensor::from_slice(&[rank as f32 * 2.0]), &outs)
                        .unwrap()
                        .wait()
                        .unwrap();
                    group.barrier().unwrap();
                    (
                        Vec::<f32>::try_from(&t).unwrap(),
                        Vec::<i64>::try_from(&b).unwrap(),
                        outs.iter()
                            .map(|o| o.double_value(&[0]))
                            .collect::<Vec<_>>(),
                    )
                })
            })
            .collect();
        for handle in ranks {
            let (sum, bcast, gathered) = handle.join().unwrap();
            assert_eq!(sum, [3.0, 20.0]);
            assert_eq!(bcast, [6, 6, 6]);
            assert_eq!(gathered, [0.0, 2.0]);
        }
    }

    /// A rank whose peer is gone gets an error, not a hang.
    #[test]
    fn a_missing_rank_is_an_error_after_the_timeout() {
        let err = ProcessGroup::new(&GroupOptions {
            host: "127.0.0.1".into(),
            port: free_port(),
            rank: 0,
            world_size: 2,
            serve_store: true,
            prefix: "lonely/".into(),
            timeout: Duration::from_millis(1500),
            backend: Backend::Gloo,
            device_index: 0,
        })
        .err()
        .expect("rank 1 never joins");
        assert!(!err.0.is_empty());
    }
}
