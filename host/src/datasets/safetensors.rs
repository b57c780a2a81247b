//! safetensors: one tensor per column, first dimension = sample, read in
//! place from the memory-mapped file. A variable-length integer list `x`
//! is two tensors: `x`, every sample's values one after the other, and
//! `x.offsets` (int64, samples + 1 entries from 0): sample `i` is
//! `x[offsets[i]:offsets[i + 1]]`, Arrow's layout.

use super::column::{Bytes, Column, Dtype, Shape};
use super::text::{kept, not_asked, Keep, Read, Unread};
use anyhow::{anyhow, bail, Result};
use memmap2::Mmap;
use safetensors::{tensor::TensorView, Dtype as St, SafeTensors};
use std::sync::Arc;

/// The suffix of a ragged column's offsets tensor.
pub const OFFSETS: &str = ".offsets";

/// Maps the file; the tensors of `keep` become columns (the others unread).
pub(super) fn read(file: std::fs::File, keep: Keep) -> Result<Read> {
    // SAFETY: the file is only read; a dataset changed under a running
    // training is the user's to avoid, as with any memory-mapped reader.
    let map = Arc::new(unsafe { Mmap::map(&file)? });
    let st = SafeTensors::deserialize(&map).map_err(|e| {
        anyhow!(
            "not a readable safetensors file ({e:?}); it may be truncated: write it again \
             (e.g. `safetensors.torch.save_file(tensors, path)`)"
        )
    })?;
    let mut names: Vec<String> = st.names().into_iter().cloned().collect();
    names.sort();
    let mut columns = Vec::new();
    let mut unread = Vec::new();
    for name in names.iter().filter(|n| !n.ends_with(OFFSETS)) {
        if !kept(keep, name) {
            unread.push(Unread {
                name: name.clone(),
                why: not_asked(name),
            });
            continue;
        }
        let view = st.tensor(name)?;
        let offsets_name = format!("{name}{OFFSETS}");
        let column = if names.contains(&offsets_name) {
            ragged(name, &view, &st.tensor(&offsets_name)?, &map)?
        } else {
            dense(name, &view, &map)?
        };
        columns.push(column);
    }
    if let Some(o) = names.iter().find(|n| {
        n.ends_with(OFFSETS) && !names.contains(&n[..n.len() - OFFSETS.len()].to_string())
    }) {
        bail!(
            "tensor '{o}' has no values tensor '{}'",
            &o[..o.len() - OFFSETS.len()]
        );
    }
    Ok((columns, unread))
}

/// The values of a tensor: borrowed from the map when the file's dtype is
/// one trainbox keeps, else widened (integers to int64, half floats to f32).
fn values(name: &str, view: &TensorView, map: &Arc<Mmap>) -> Result<(Dtype, Bytes)> {
    let data = view.data();
    let mapped = |dtype| {
        let start = data.as_ptr() as usize - map.as_ptr() as usize;
        Ok((
            dtype,
            Bytes::Mapped {
                map: map.clone(),
                start,
                len: data.len(),
            },
        ))
    };
    macro_rules! widen {
        ($t:ty, $n:expr) => {
            data.chunks_exact($n)
                .flat_map(|c| (<$t>::from_le_bytes(c.try_into().unwrap()) as i64).to_le_bytes())
                .collect()
        };
    }
    let owned: Vec<u8> = match view.dtype() {
        St::I64 => return mapped(Dtype::I64),
        St::F32 => return mapped(Dtype::F32),
        St::F64 => return mapped(Dtype::F64),
        St::BOOL => return mapped(Dtype::Bool),
        St::I32 => widen!(i32, 4),
        St::U32 => widen!(u32, 4),
        St::I16 => widen!(i16, 2),
        St::U16 => widen!(u16, 2),
        St::I8 => widen!(i8, 1),
        St::U8 => widen!(u8, 1),
        St::F16 | St::BF16 => {
            let t = tch::Tensor::f_from_data_size(
                data,
                &[(data.len() / 2) as i64],
                if view.dtype() == St::F16 {
                    tch::Kind::Half
                } else {
                    tch::Kind::BFloat16
                },
            )?
            .to_kind(tch::Kind::Float);
            let v = Vec::<f32>::try_from(&t)?;
            return Ok((Dtype::F32, Bytes::F32(v)));
        }
        d => bail!("tensor '{name}' is of dtype {d:?}; write int64, float32, float64 or bool"),
    };
    Ok((Dtype::I64, Bytes::Owned(owned)))
}

fn dense(name: &str, view: &TensorView, map: &Arc<Mmap>) -> Result<Column> {
    let Some((&rows, dims)) = view.shape().split_first() else {
        bail!("tensor '{name}' is a scalar; its first dimension must be the sample");
    };
    let (dtype, values) = values(name, view, map)?;
    let shape = if dims.is_empty() {
        Shape::Scalar
    } else {
        Shape::Fixed(dims.iter().map(|&d| d as i64).collect())
    };
    Ok(Column {
        name: name.to_string(),
        dtype,
        shape,
        values,
        rows,
        offsets: Vec::new(),
    })
}

fn ragged(name: &str, view: &TensorView, offsets: &TensorView, map: &Arc<Mmap>) -> Result<Column> {
    let (dtype, values) = values(name, view, map)?;
    if dtype != Dtype::I64 || view.shape().len() != 1 {
        bail!(
            "tensor '{name}' has offsets but is not a 1-D integer tensor; only integer lists \
             (token ids) vary in length"
        );
    }
    let fix = format!("'{name}{OFFSETS}' must be int64, from 0 to len('{name}'), never falling");
    if offsets.dtype() != St::I64 || offsets.shape().len() != 1 || offsets.shape()[0] == 0 {
        bail!("{fix}");
    }
    let offs: Vec<usize> = offsets
        .data()
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as usize)
        .collect();
    if offs[0] != 0
        || offs[offs.len() - 1] != view.shape()[0]
        || offs.windows(2).any(|w| w[1] < w[0])
    {
        bail!("{fix}");
    }
    Ok(Column {
        name: name.to_string(),
        dtype,
        shape: Shape::Ragged,
        values,
        rows: offs.len() - 1,
        offsets: offs,
    })
}
