//! Dataset files read into named columns, and batches padded as HF's data
//! collators do.
//!
//! [`open`] picks the reader by extension: Parquet (as
//! `datasets.Dataset.to_parquet` writes it, decoded one row group at a
//! time), safetensors (memory-mapped; named tensors whose first dimension
//! is the sample, a variable-length list `x` as `x` plus `x.offsets`, see
//! `safetensors.rs`), JSON lines (`.jsonl`, `.json`) and CSV. Every column
//! has a [`Dtype`] and a per-sample [`Shape`]: scalars, fixed-length lists
//! (2-D batches), or variable-length integer lists, padded per batch by a
//! [`Collate`]. Missing values are NaN in float columns and an error
//! elsewhere; NaN written in the file stays NaN. Text columns are kept by
//! name only: asking for one says to tokenize it.
//!
//! A leaf module: it depends on tch and the file-format crates only.

mod builder;
mod collate;
mod column;
mod parquet;
mod safetensors;
mod text;

#[cfg(test)]
mod tests;

pub use collate::{Collate, LABEL_PAD};
pub use column::{Column, Dtype, Shape};
pub use safetensors::OFFSETS;

use anyhow::{anyhow, bail, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::Tensor;

/// The extensions [`open`] reads.
pub const EXTENSIONS: &str = ".parquet, .safetensors, .jsonl, .json, .csv";

/// The columns of one dataset file.
pub struct Columns {
    path: PathBuf,
    columns: Vec<Column>,
    /// Columns not read (text, a type not batched, not asked for), kept
    /// by name for the error given if one is asked for.
    unread: Vec<text::Unread>,
    /// Samples in view (`truncate`).
    len: usize,
}

/// Reads a dataset file; every error names the file and the fix.
pub fn open(path: &Path) -> Result<Columns> {
    open_only(path, None)
}

/// Reads the columns `only` names of a dataset file (every column when
/// `None`); the others are not decoded, whatever they hold. Fails when no
/// column is read.
pub fn open_only(path: &Path, only: Option<&[String]>) -> Result<Columns> {
    read(path, only).map_err(|e| anyhow!("dataset {}: {e:#}", path.display()))
}

fn read(path: &Path, keep: text::Keep) -> Result<Columns> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let reader: fn(std::fs::File, text::Keep) -> Result<text::Read> = match ext.as_str() {
        "parquet" => parquet::read,
        "safetensors" => safetensors::read,
        "jsonl" | "json" => text::read_jsonl,
        "csv" => text::read_csv,
        _ => bail!("unknown extension '.{ext}'; trainbox reads {EXTENSIONS}: convert the file"),
    };
    let file = std::fs::File::open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            anyhow!("no such file; check the path")
        } else {
            anyhow!("cannot open it ({e})")
        }
    })?;
    let (columns, unread) = reader(file, keep)?;
    if columns.is_empty() && unread.is_empty() {
        bail!("the file holds no columns; write a non-empty dataset");
    }
    if columns.is_empty() {
        // The first column asked for that could not be read says why.
        if let Some(u) = unread.iter().find(|u| text::kept(keep, &u.name)) {
            bail!("{}", u.why);
        }
        let names: Vec<&str> = unread.iter().map(|u| u.name.as_str()).collect();
        bail!(
            "it has none of the columns asked for ({}); its columns are {}",
            keep.unwrap_or_default().join(", "),
            names.join(", ")
        );
    }
    let len = columns[0].len();
    if let Some(c) = columns.iter().find(|c| c.len() != len) {
        bail!(
            "column '{}' has {} samples, column '{}' has {len}; every column needs one entry per \
             sample (mismatched lengths)",
            c.name(),
            c.len(),
            columns[0].name()
        );
    }
    if len == 0 {
        bail!("the dataset is empty (0 samples); write at least one sample");
    }
    Ok(Columns {
        path: path.to_path_buf(),
        columns,
        unread,
        len,
    })
}

impl Columns {
    /// The file read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of samples (after [`Columns::truncate`]).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The names of the columns read, in the file's order (sorted for
    /// safetensors).
    pub fn column_names(&self) -> Vec<&str> {
        self.columns.iter().map(|c| c.name()).collect()
    }

    /// The names of the file's columns that were not read (text, a type
    /// that is not batched, or not asked for).
    pub fn unread_columns(&self) -> Vec<&str> {
        self.unread.iter().map(|u| u.name.as_str()).collect()
    }

    /// Column `name`; an error that names the fix for an unread or missing column.
    pub fn column(&self, name: &str) -> Result<&Column> {
        if let Some(c) = self.columns.iter().find(|c| c.name() == name) {
            return Ok(c);
        }
        if let Some(u) = self.unread.iter().find(|u| u.name == name) {
            bail!("dataset {}: {}", self.path.display(), u.why);
        }
        let mut names = self.column_names();
        names.extend(self.unread_columns());
        bail!(
            "dataset {} has no column '{name}'; its columns are {}",
            self.path.display(),
            names.join(", ")
        )
    }

    /// Keeps the first `n` samples, as `--max_train_samples` does.
    pub fn truncate(&mut self, n: usize) {
        self.len = self.len.min(n);
    }

    /// Keeps only the columns `names` (HF's `remove_unused_columns`); an
    /// error for one that is missing or unread.
    pub fn select(&mut self, names: &[&str]) -> Result<()> {
        for n in names {
            self.column(n)?;
        }
        self.columns.retain(|c| names.contains(&c.name()));
        self.unread.clear();
        Ok(())
    }

    /// The samples at `indices`, one tensor per column (first dimension =
    /// sample), variable-length lists padded to the longest in the batch,
    /// and an `attention_mask` when `collate` asks for one.
    pub fn batch(&self, indices: &[i64], collate: &Collate) -> Result<BTreeMap<String, Tensor>> {
        let indices = indices
            .iter()
            .map(|&i| {
                usize::try_from(i)
                    .ok()
                    .filter(|&i| i < self.len)
                    .ok_or_else(|| {
                        anyhow!(
                            "dataset {}: sample {i} asked for, it has {}",
                            self.path.display(),
                            self.len
                        )
                    })
            })
            .collect::<Result<Vec<usize>>>()?;
        let mut out = BTreeMap::new();
        for c in &self.columns {
            let t = match c.shape() {
                Shape::Ragged => collate::pad(c, &indices, collate.pad_value(c.name())),
                _ => c.gather(&indices)?,
            };
            out.insert(c.name().to_string(), t);
        }
        if collate.attention_mask && !out.contains_key("attention_mask") {
            let source = self.mask_source(collate).ok_or_else(|| {
                let floats = self
                    .columns
                    .iter()
                    .find(|c| c.name() == "input_ids" && c.dtype() != Dtype::I64);
                match floats {
                    Some(c) => anyhow!(
                        "dataset {}: column `input_ids` holds {:?} values; token ids must be \
                         integers: write them as int64 (the attention_mask is made from them)",
                        self.path.display(),
                        c.dtype()
                    ),
                    None => anyhow!(
                        "dataset {}: an attention_mask is asked for but no column holds token ids \
                         (`input_ids`, or an integer list column other than the labels)",
                        self.path.display()
                    ),
                }
            })?;
            out.insert("attention_mask".into(), collate::mask(source, &indices)?);
        }
        Ok(out)
    }

    /// The column the attention mask follows: `input_ids`, else the first
    /// integer list column that is not a label.
    fn mask_source(&self, collate: &Collate) -> Option<&Column> {
        let lists = || {
            self.columns.iter().filter(|c| {
                !collate.is_label(c.name())
                    && c.dtype() == Dtype::I64
                    && matches!(c.shape(), Shape::Ragged | Shape::Fixed(_))
            })
        };
        lists()
            .find(|c| c.name() == "input_ids")
            .or_else(|| lists().find(|c| *c.shape() == Shape::Ragged))
            .or_else(|| lists().next())
    }
}
