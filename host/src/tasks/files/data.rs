//! A dataset file as the trainer's [`Dataset`]: its columns batched and
//! padded as HF's collators do, under the names forward takes.

use crate::datasets::{Collate, Columns};
use crate::trainer::data::{Batch, Dataset};
use anyhow::Result;
use std::sync::Arc;
use tch::Kind;

/// The columns of one dataset file, batched for one model.
pub struct FileDataset {
    /// Shared with the `--dataloader_num_workers` handles (plain Rust
    /// data, read only: no tensor crosses threads).
    columns: Arc<Columns>,
    collate: Collate,
    /// A file column passed under another name (HF's collators pass
    /// `label` as `labels`).
    renames: Vec<(String, String)>,
    /// Batch float64 columns as float32, as HF datasets' torch format and
    /// its collators do (true for Parquet, JSON lines and CSV; a
    /// safetensors file keeps the dtype it stores).
    floats_as_f32: bool,
}

impl FileDataset {
    /// `columns` batched with `collate`, `renames` applied.
    pub fn new(columns: Columns, collate: Collate, renames: Vec<(String, String)>) -> FileDataset {
        let floats_as_f32 = columns
            .path()
            .extension()
            .is_none_or(|e| !e.eq_ignore_ascii_case("safetensors"));
        FileDataset {
            columns: Arc::new(columns),
            collate,
            renames,
            floats_as_f32,
        }
    }

    /// The file's path.
    pub fn path(&self) -> &std::path::Path {
        self.columns.path()
    }
}

impl Dataset for FileDataset {
    fn len(&self) -> usize {
        self.columns.len()
    }

    fn batch(&self, indices: &[i64]) -> Result<Batch> {
        let mut columns = self.columns.batch(indices, &self.collate)?;
        for (from, to) in &self.renames {
            if let Some(t) = columns.remove(from) {
                columns.insert(to.clone(), t);
            }
        }
        if self.floats_as_f32 {
            for t in columns.values_mut() {
                if t.kind() == Kind::Double {
                    *t = t.to_kind(Kind::Float);
                }
            }
        }
        Ok(Batch { columns })
    }

    /// The same columns (shared), collate and renames: a worker builds
    /// the batches `batch` builds.
    fn worker(&self) -> Option<Box<dyn Dataset + Send>> {
        Some(Box::new(FileDataset {
            columns: Arc::clone(&self.columns),
            collate: self.collate.clone(),
            renames: self.renames.clone(),
            floats_as_f32: self.floats_as_f32,
        }))
    }
}
