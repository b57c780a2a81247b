//! One column: its name, dtype, per-sample shape and values, held as
//! little-endian bytes, owned or borrowed from a memory-mapped file.

use anyhow::{bail, Result};
use memmap2::Mmap;
use std::sync::Arc;
use tch::{Kind, Tensor};

/// The element type of a column, as the file stores it (integers of any
/// width become `I64`, half floats `F32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    I64,
    F32,
    F64,
    Bool,
}

impl Dtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::I64 | Dtype::F64 => 8,
            Dtype::F32 => 4,
            Dtype::Bool => 1,
        }
    }

    /// The libtorch element kind.
    pub fn kind(self) -> Kind {
        match self {
            Dtype::I64 => Kind::Int64,
            Dtype::F32 => Kind::Float,
            Dtype::F64 => Kind::Double,
            Dtype::Bool => Kind::Bool,
        }
    }
}

/// The shape of one sample of a column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// One value per sample: a batch is 1-D.
    Scalar,
    /// The same dimensions for every sample: a batch is `[batch, dims...]`.
    Fixed(Vec<i64>),
    /// An integer list whose length varies: padded per batch to 2-D.
    Ragged,
}

/// Column values: owned as read (no second copy as bytes), or a range of
/// a memory-mapped file.
pub(super) enum Bytes {
    Owned(Vec<u8>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    Mapped {
        map: Arc<Mmap>,
        start: usize,
        len: usize,
    },
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Owned(v) => v,
            Bytes::I64(v) => as_bytes(v),
            Bytes::F32(v) => as_bytes(v),
            Bytes::F64(v) => as_bytes(v),
            Bytes::Mapped { map, start, len } => &map[*start..*start + *len],
        }
    }
}

/// The bytes of a slice of numbers (native order, which is little-endian
/// on every platform libtorch ships for).
fn as_bytes<T: Copy>(v: &[T]) -> &[u8] {
    // SAFETY: any initialized memory may be read as bytes; the length is
    // the slice's size in bytes and the lifetime is the slice's.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
}

/// A numeric column of a dataset file.
pub struct Column {
    pub(super) name: String,
    pub(super) dtype: Dtype,
    pub(super) shape: Shape,
    pub(super) values: Bytes,
    /// Number of samples.
    pub(super) rows: usize,
    /// Ragged only: sample `i` is elements `offsets[i]..offsets[i + 1]`.
    pub(super) offsets: Vec<usize>,
}

impl Column {
    /// The column's name in the file.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The element type.
    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    /// The shape of one sample.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sample `i` of a ragged column, as integers.
    pub(super) fn ragged_row(&self, i: usize) -> impl Iterator<Item = i64> + '_ {
        let bytes = &self.values[self.offsets[i] * 8..self.offsets[i + 1] * 8];
        bytes
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
    }

    /// Length of sample `i` of a ragged column.
    pub(super) fn ragged_len(&self, i: usize) -> usize {
        self.offsets[i + 1] - self.offsets[i]
    }

    /// The samples at `indices` of a scalar or fixed column, one copy.
    pub(super) fn gather(&self, indices: &[usize]) -> Result<Tensor> {
        let dims: Vec<i64> = match &self.shape {
            Shape::Scalar => Vec::new(),
            Shape::Fixed(d) => d.clone(),
            Shape::Ragged => bail!("column '{}' is ragged", self.name),
        };
        let row = elements(&self.shape) * self.dtype.size();
        let mut buf = Vec::with_capacity(row * indices.len());
        for &i in indices {
            buf.extend_from_slice(&self.values[i * row..(i + 1) * row]);
        }
        let mut size = vec![indices.len() as i64];
        size.extend(dims);
        Ok(Tensor::f_from_data_size(&buf, &size, self.dtype.kind())?)
    }
}

/// Elements per sample of a scalar or fixed shape.
pub(super) fn elements(shape: &Shape) -> usize {
    match shape {
        Shape::Fixed(d) => d.iter().product::<i64>() as usize,
        _ => 1,
    }
}
