//! Datasets, batches and the data order.
//!
//! A [`Dataset`] hands out batches by sample index; the trainer decides the
//! order: a Fisher-Yates shuffle driven by a SplitMix64 generator seeded with
//! `(seed, epoch)`, so the order of any epoch is known without replaying the
//! ones before it (which makes resuming exact).

use anyhow::{anyhow, Result};
use std::collections::BTreeMap;
use tch::Tensor;

/// One batch: named columns (HF's dict of tensors), first dimension =
/// samples. The model reads the columns it takes by name.
#[derive(Debug, Default)]
pub struct Batch {
    pub columns: BTreeMap<String, Tensor>,
}

impl Batch {
    /// A batch of these columns.
    pub fn new<S: Into<String>>(columns: impl IntoIterator<Item = (S, Tensor)>) -> Batch {
        Batch {
            columns: columns.into_iter().map(|(n, t)| (n.into(), t)).collect(),
        }
    }

    /// Column `name`; an error naming the columns the batch has.
    pub fn get(&self, name: &str) -> Result<&Tensor> {
        self.columns.get(name).ok_or_else(|| {
            let names: Vec<&str> = self.columns.keys().map(String::as_str).collect();
            anyhow!(
                "the batch has no column `{name}`; its columns are {}",
                names.join(", ")
            )
        })
    }

    /// Number of samples in the batch: the first dimension of its first
    /// column that has one (a 0-dim column, `num_items_in_batch`, has none).
    pub fn len(&self) -> usize {
        self.columns
            .values()
            .find_map(|t| t.size().first().copied())
            .unwrap_or(0) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The batch on `device` (the same tensors when they are there already).
    pub fn to_device(self, device: tch::Device) -> Batch {
        Batch {
            columns: self
                .columns
                .into_iter()
                .map(|(n, t)| {
                    let t = if t.device() == device {
                        t
                    } else {
                        t.to_device(device)
                    };
                    (n, t)
                })
                .collect(),
        }
    }
}

/// Data the trainer can batch.
pub trait Dataset {
    /// Number of samples.
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The samples at `indices`, as one batch.
    fn batch(&self, indices: &[i64]) -> Result<Batch>;

    /// A handle on the same samples that builds batches on another thread,
    /// for `--dataloader_num_workers` (each worker gets one); its batches
    /// must be those of [`Dataset::batch`]. `None` (the default): batches
    /// are built on the training thread, with a warning when workers were
    /// asked for.
    fn worker(&self) -> Option<Box<dyn Dataset + Send>> {
        None
    }
}

/// A dataset held as named tensors whose first dimension is the sample.
pub struct TensorDataset {
    pub columns: Vec<(String, Tensor)>,
}

impl TensorDataset {
    /// A dataset of these columns (all with the same first dimension).
    pub fn new<S: Into<String>>(columns: impl IntoIterator<Item = (S, Tensor)>) -> TensorDataset {
        TensorDataset {
            columns: columns.into_iter().map(|(n, t)| (n.into(), t)).collect(),
        }
    }
}

impl Dataset for TensorDataset {
    fn len(&self) -> usize {
        self.columns
            .first()
            .map_or(0, |(_, t)| t.size()[0] as usize)
    }

    fn batch(&self, indices: &[i64]) -> Result<Batch> {
        let Some((_, first)) = self.columns.first() else {
            return Ok(Batch::default());
        };
        let idx = Tensor::from_slice(indices).to_device(first.device());
        Ok(Batch::new(
            self.columns
                .iter()
                .map(|(n, t)| (n.clone(), t.index_select(0, &idx))),
        ))
    }

    /// The same tensors (shallow copies: one storage, its reference count
    /// atomic), which a worker only reads (`index_select` into new
    /// tensors); tch's `Tensor` is `Send`, so each worker owns its handles.
    fn worker(&self) -> Option<Box<dyn Dataset + Send>> {
        Some(Box::new(TensorDataset {
            columns: self
                .columns
                .iter()
                .map(|(n, t)| (n.clone(), t.shallow_clone()))
                .collect(),
        }))
    }
}

/// Number of batches of `batch_size` over `len` samples.
pub fn num_batches(len: usize, batch_size: usize, drop_last: bool) -> usize {
    if drop_last {
        len / batch_size
    } else {
        len.div_ceil(batch_size)
    }
}

/// The sample indices of each batch of one epoch; shuffled when `seed` is given.
pub fn epoch_batches(
    len: usize,
    batch_size: usize,
    drop_last: bool,
    seed: Option<(u64, u64)>,
) -> Vec<Vec<i64>> {
    let mut order: Vec<i64> = (0..len as i64).collect();
    if let Some((seed, epoch)) = seed {
        let mut rng = SplitMix64(
            seed ^ epoch
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add(0xA076_1D64_78BD_642F),
        );
        for i in (1..order.len()).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
    }
    let n = num_batches(len, batch_size, drop_last);
    order
        .chunks(batch_size)
        .take(n)
        .map(<[i64]>::to_vec)
        .collect()
}

/// SplitMix64: small, fast, and fully determined by its seed.
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform float in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A standard normal sample (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(f64::MIN_POSITIVE);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_cover_every_sample_once() {
        let b = epoch_batches(64, 8, false, Some((42, 0)));
        assert_eq!(b.len(), 8);
        let mut all: Vec<i64> = b.concat();
        all.sort();
        assert_eq!(all, (0..64).collect::<Vec<_>>());
        assert_ne!(
            b,
            epoch_batches(64, 8, false, Some((42, 1))),
            "each epoch has its own order"
        );
        assert_eq!(
            b,
            epoch_batches(64, 8, false, Some((42, 0))),
            "an epoch's order is reproducible"
        );
    }

    #[test]
    fn drop_last_drops_the_short_batch() {
        assert_eq!(epoch_batches(10, 4, false, None).len(), 3);
        assert_eq!(epoch_batches(10, 4, true, None).len(), 2);
        assert_eq!(num_batches(10, 4, false), 3);
    }
}
