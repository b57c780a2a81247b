//! `--dataloader_num_workers`: the next batches built ahead on worker
//! threads, as torch's `DataLoader` with workers and `in_order=True`. Worker
//! `k` of `N` builds batches `k`, `k + N`, `k + 2N`, … of the epoch's list,
//! each at most `--dataloader_prefetch_factor` (default 2) ahead of the
//! loop, so at most `N × factor` batches wait; the loop takes them
//! round-robin, so the batches and their order are those of 0 workers.
//!
//! A worker builds from its own handle on the data ([`Dataset::worker`]):
//! tch's `Tensor` is `Send` but not `Sync`, so no `Tensor` handle is used by
//! two threads (an in-memory dataset's worker holds shallow clones, which
//! share the storage, read only); each batch moves, whole, to the training
//! thread, which moves it to the device. With 0 workers, or a dataset without worker handles,
//! batches are built on the training thread when asked for.

use super::data::{Batch, Dataset};
use anyhow::{anyhow, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::thread::JoinHandle;

/// The batches of one pass over (part of) a dataset, in order. The
/// dataset is not held (the loop lends it mutably elsewhere): each call to
/// [`Loader::next_batch`] is given it.
pub struct Loader {
    batches: Vec<Vec<i64>>,
    next: usize,
    workers: Vec<Worker>,
}

/// One worker thread and the batches it has built, in its order.
struct Worker {
    batches: Option<Receiver<Result<Batch>>>,
    thread: Option<JoinHandle<()>>,
}

/// Whether the fallback warning was given (once a process).
static NO_WORKER_HANDLE: AtomicBool = AtomicBool::new(false);

impl Loader {
    /// The batches of sample indices `batches` of `data`, built by
    /// `workers` threads, each `prefetch` batches ahead at most.
    pub fn new(
        data: &dyn Dataset,
        batches: Vec<Vec<i64>>,
        workers: usize,
        prefetch: usize,
    ) -> Loader {
        let mut loader = Loader {
            batches,
            next: 0,
            workers: Vec::new(),
        };
        // No more workers than batches: an idle worker would only cost a thread.
        let workers = workers.min(loader.batches.len());
        for k in 0..workers {
            let Some(handle) = data.worker() else {
                if !NO_WORKER_HANDLE.swap(true, Ordering::Relaxed) {
                    crate::ui::warn(
                        "--dataloader_num_workers: this dataset cannot build batches on another \
                         thread (its `Dataset::worker` is None); they are built on the training thread",
                    );
                }
                loader.workers.clear();
                break;
            };
            let mine: Vec<Vec<i64>> = loader
                .batches
                .iter()
                .skip(k)
                .step_by(workers)
                .cloned()
                .collect();
            let (send, receive) = sync_channel(prefetch.max(1));
            let thread = std::thread::Builder::new()
                .name(format!("trainbox-data-{k}"))
                .spawn(move || {
                    for indices in mine {
                        // A closed channel: the loop is done with this pass.
                        if send.send(handle.batch(&indices)).is_err() {
                            return;
                        }
                    }
                });
            match thread {
                Ok(thread) => loader.workers.push(Worker {
                    batches: Some(receive),
                    thread: Some(thread),
                }),
                Err(e) => {
                    crate::ui::warn(&format!(
                        "--dataloader_num_workers: could not start a worker thread ({e}); \
                         batches are built on the training thread"
                    ));
                    loader.workers.clear();
                    break;
                }
            }
        }
        loader
    }

    /// The next batch of `data` (the dataset the loader was made for):
    /// built by its worker, or now; with its sample indices; `None` after
    /// the last.
    pub fn next_batch(&mut self, data: &dyn Dataset) -> Option<(Vec<i64>, Result<Batch>)> {
        let i = self.next;
        let indices = self.batches.get(i)?.clone();
        self.next += 1;
        if self.workers.is_empty() {
            let batch = data.batch(&indices);
            return Some((indices, batch));
        }
        let n = self.workers.len();
        let worker = &self.workers[i % n];
        let batch = match worker.batches.as_ref().map(Receiver::recv) {
            Some(Ok(batch)) => batch,
            // The worker ended early: it panicked building a batch.
            _ => Err(anyhow!(
                "data worker {} stopped before building its batch (it panicked; see above)",
                i % n
            )),
        };
        Some((indices, batch))
    }
}

impl Drop for Loader {
    /// Closes the channels (a worker blocked on a full one then ends) and
    /// waits for the threads.
    fn drop(&mut self) {
        for worker in &mut self.workers {
            worker.batches = None;
        }
        for worker in &mut self.workers {
            if let Some(thread) = worker.thread.take() {
                let _ = thread.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trainer::data::{epoch_batches, TensorDataset};
    use tch::Tensor;

    fn dataset() -> TensorDataset {
        TensorDataset::new([(
            "x",
            Tensor::arange(50, (tch::Kind::Float, tch::Device::Cpu)),
        )])
    }

    fn values(data: &dyn Dataset, loader: &mut Loader) -> Vec<(Vec<i64>, Vec<f32>)> {
        let mut out = Vec::new();
        while let Some((indices, batch)) = loader.next_batch(data) {
            let x = batch.unwrap().get("x").unwrap().shallow_clone();
            out.push((indices, Vec::<f32>::try_from(&x).unwrap()));
        }
        out
    }

    #[test]
    fn workers_give_the_batches_of_no_workers_in_order() {
        let data = dataset();
        let order = epoch_batches(50, 4, false, Some((7, 1)));
        let alone = values(&data, &mut Loader::new(&data, order.clone(), 0, 2));
        for (workers, prefetch) in [(1, 1), (2, 2), (3, 1), (8, 4)] {
            let ahead = values(
                &data,
                &mut Loader::new(&data, order.clone(), workers, prefetch),
            );
            assert_eq!(ahead, alone, "{workers} workers, prefetch {prefetch}");
        }
        assert_eq!(alone.len(), 13);
        assert_eq!(
            alone[0].1,
            alone[0].0.iter().map(|&i| i as f32).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_pass_left_early_ends_its_workers() {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let data = dataset();
            let order = epoch_batches(50, 2, false, None);
            let mut loader = Loader::new(&data, order, 2, 1);
            let first = loader.next_batch(&data).is_some();
            // Dropping the loader joins its workers: it must not hang.
            drop(loader);
            let _ = done_tx.send(first);
        });
        let first = done_rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("dropping a loader left early must end its workers");
        assert!(first);
    }

    /// A dataset without worker handles is batched on the training thread.
    struct Plain(TensorDataset);

    impl Dataset for Plain {
        fn len(&self) -> usize {
            self.0.len()
        }
        fn batch(&self, indices: &[i64]) -> Result<Batch> {
            self.0.batch(indices)
        }
    }

    #[test]
    fn a_dataset_without_worker_handles_is_batched_in_place() {
        let data = Plain(dataset());
        let order = epoch_batches(50, 8, false, None);
        let got = values(&data, &mut Loader::new(&data, order.clone(), 2, 2));
        assert_eq!(got.len(), order.len());
        assert_eq!(got[1].0, order[1]);
    }
}
