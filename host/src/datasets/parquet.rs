//! Parquet as `datasets.Dataset.to_parquet` (pyarrow) writes it, decoded
//! one row group at a time into the columns; text columns are not read.

use super::builder::{Builder, Scalar};
use super::column::Column;
use super::text::{kept, not_asked, text_error, Keep, Read, Unread};
use anyhow::{anyhow, bail, Result};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float16Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type,
    UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use parquet::basic::Compression;

/// Decodes the columns of `keep` that hold numbers, booleans or lists of
/// them; the others are recorded unread, and never decoded.
pub(super) fn read(file: std::fs::File, keep: Keep) -> Result<Read> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| {
        anyhow!(
            "not a readable Parquet file ({e}); it may be truncated: write it again \
             (e.g. `dataset.to_parquet(path)`)"
        )
    })?;
    let schema = builder.schema().clone();
    let mut unread = Vec::new();
    let mut wanted = Vec::new();
    for (i, field) in schema.fields().iter().enumerate() {
        let name = field.name();
        let why = if !kept(keep, name) {
            Some(not_asked(name))
        } else {
            unsupported(name, field.data_type())
        };
        match why {
            Some(why) => unread.push(Unread {
                name: name.clone(),
                why,
            }),
            None => wanted.push(i),
        }
    }
    let roots: Vec<&str> = wanted
        .iter()
        .map(|&i| schema.field(i).name().as_str())
        .collect();
    for rg in builder.metadata().row_groups() {
        for c in rg.columns() {
            let root = c.column_path().parts().first().map_or("", String::as_str);
            if roots.contains(&root)
                && !matches!(
                    c.compression(),
                    Compression::SNAPPY
                        | Compression::UNCOMPRESSED
                        | Compression::ZSTD(_)
                        | Compression::GZIP(_)
                        | Compression::LZ4
                        | Compression::LZ4_RAW
                )
            {
                bail!(
                    "column '{root}' is compressed with {}; trainbox reads snappy (pyarrow's and \
                     `datasets`' default), zstd, gzip, lz4 or uncompressed Parquet: write it \
                     again with `compression=\"snappy\"`",
                    c.compression()
                );
            }
        }
    }
    let mask = ProjectionMask::roots(builder.parquet_schema(), wanted.iter().copied());
    let reader = builder.with_projection(mask).build()?;
    let mut builders: Vec<Builder> = wanted
        .iter()
        .map(|&i| Builder::new(schema.field(i).name(), "row"))
        .collect();
    for batch in reader {
        let batch = batch.map_err(|e| {
            anyhow!("a row group cannot be read ({e}); the file may be truncated or corrupt")
        })?;
        for (b, array) in builders.iter_mut().zip(batch.columns()) {
            append(b, array)?;
        }
    }
    let columns = builders
        .into_iter()
        .map(Builder::finish)
        .collect::<Result<Vec<Column>>>()?;
    Ok((columns, unread))
}

/// Why a column of type `t` cannot be batched, if it cannot: batches hold
/// numbers and booleans, or lists of them one level deep.
fn unsupported(name: &str, t: &DataType) -> Option<String> {
    let scalar = |t: &DataType| t.is_integer() || t.is_floating() || *t == DataType::Boolean;
    let text =
        |t: &DataType| matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View);
    let item = match t {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => f.data_type(),
        t => t,
    };
    if scalar(item) {
        return None;
    }
    Some(if text(item) {
        text_error(name)
    } else {
        format!("column '{name}' is of type {t}; trainbox reads numbers, booleans and lists of them (one level deep)")
    })
}

/// One record batch of one column.
fn append(b: &mut Builder, a: &ArrayRef) -> Result<()> {
    let name = b.name().to_string();
    let lists = |b: &mut Builder, offsets: Vec<usize>, child: ArrayRef| -> Result<()> {
        if a.null_count() > 0 {
            bail!("column '{name}' has a missing list; write an empty list instead");
        }
        let start = offsets[0];
        let child = child.slice(start, offsets[offsets.len() - 1] - start);
        b.begin_lists();
        flat(b, &child)?;
        b.end_lists(offsets.windows(2).map(|w| w[1] - w[0]));
        Ok(())
    };
    match a.data_type() {
        DataType::List(_) => {
            let l = a.as_list::<i32>();
            let offsets = l.value_offsets().iter().map(|&o| o as usize).collect();
            lists(b, offsets, l.values().clone())
        }
        DataType::LargeList(_) => {
            let l = a.as_list::<i64>();
            let offsets = l.value_offsets().iter().map(|&o| o as usize).collect();
            lists(b, offsets, l.values().clone())
        }
        DataType::FixedSizeList(_, n) => {
            let l = a.as_fixed_size_list();
            let n = *n as usize;
            let base = if l.is_empty() {
                0
            } else {
                l.value_offset_at(0)
            };
            let offsets = (0..=l.len()).map(|i| base + i * n).collect();
            lists(b, offsets, l.values().clone())
        }
        _ => {
            flat(b, a)?;
            b.end_rows(a.len());
            Ok(())
        }
    }
}

/// Numbers or booleans, appended as values (the caller marks the samples).
fn flat(b: &mut Builder, a: &ArrayRef) -> Result<()> {
    macro_rules! ints {
        ($t:ty) => {{
            let p = a.as_primitive::<$t>();
            for v in p.iter() {
                b.value(v.map_or(Scalar::Null, |x| Scalar::Int(x as i64)))?;
            }
        }};
    }
    match a.data_type() {
        DataType::Int64 if a.null_count() == 0 => {
            b.extend_i64(a.as_primitive::<Int64Type>().values())
        }
        DataType::Float32 if a.null_count() == 0 => {
            b.extend_f32(a.as_primitive::<Float32Type>().values())
        }
        DataType::Float64 if a.null_count() == 0 => {
            b.extend_f64(a.as_primitive::<Float64Type>().values())
        }
        DataType::Int64 => ints!(Int64Type),
        DataType::Int32 => ints!(Int32Type),
        DataType::Int16 => ints!(Int16Type),
        DataType::Int8 => ints!(Int8Type),
        DataType::UInt32 => ints!(UInt32Type),
        DataType::UInt16 => ints!(UInt16Type),
        DataType::UInt8 => ints!(UInt8Type),
        DataType::UInt64 => {
            for v in a.as_primitive::<UInt64Type>().iter() {
                b.value(match v {
                    None => Scalar::Null,
                    Some(x) => Scalar::Int(i64::try_from(x).map_err(|_| {
                        anyhow!("column '{}' holds {x}, past the largest int64", b.name())
                    })?),
                })?;
            }
        }
        DataType::Float16 => {
            let vs: Vec<f32> = a
                .as_primitive::<Float16Type>()
                .iter()
                .map(|v| v.map_or(f32::NAN, |x| x.to_f32()))
                .collect();
            b.extend_f32(&vs);
        }
        DataType::Float32 => {
            let vs: Vec<f32> = a
                .as_primitive::<Float32Type>()
                .iter()
                .map(|v| v.unwrap_or(f32::NAN))
                .collect();
            b.extend_f32(&vs);
        }
        DataType::Float64 => {
            let vs: Vec<f64> = a
                .as_primitive::<Float64Type>()
                .iter()
                .map(|v| v.unwrap_or(f64::NAN))
                .collect();
            b.extend_f64(&vs);
        }
        DataType::Boolean => {
            for v in a.as_boolean().iter() {
                b.value(v.map_or(Scalar::Null, Scalar::Bool))?;
            }
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            bail!("{}", text_error(b.name()))
        }
        t => bail!(
            "column '{}' is of type {t}; trainbox reads numbers, booleans and lists of them \
             (one level deep)",
            b.name()
        ),
    }
    Ok(())
}
