//! Building a column from values read one sample at a time (JSON lines,
//! CSV, Parquet record batches): the dtype is the file's, promoted from
//! integers to floats only where the file mixes them (as pyarrow does).

use super::column::{Bytes, Column, Dtype, Shape};
use anyhow::{bail, Result};

/// One value of a text format's cell.
#[derive(Debug, Clone, Copy)]
pub(super) enum Scalar {
    Int(i64),
    Float(f64),
    Bool(bool),
    /// A missing value: NaN in a float column, an error elsewhere.
    Null,
}

/// Values in the order read.
enum Values {
    Unknown(usize),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    Bool(Vec<bool>),
}

/// A column under construction.
pub(super) struct Builder {
    name: String,
    values: Values,
    /// Set once a list has been pushed: element offsets of each sample.
    offsets: Option<Vec<usize>>,
    rows: usize,
    /// Missing values in an integer or boolean column: (element, sample).
    nulls: Vec<(usize, usize)>,
    /// Where the data came from, for errors ("line 3", "row 7").
    unit: &'static str,
}

impl Builder {
    pub fn new(name: &str, unit: &'static str) -> Builder {
        Builder {
            name: name.to_string(),
            values: Values::Unknown(0),
            offsets: None,
            rows: 0,
            nulls: Vec::new(),
            unit,
        }
    }

    /// The column's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// One scalar sample.
    pub fn push(&mut self, v: Scalar) -> Result<()> {
        if self.offsets.is_some() {
            bail!(
                "column '{}' mixes lists and single values ({} {}); write one kind per column",
                self.name,
                self.unit,
                self.rows + 1
            );
        }
        self.value(v)?;
        self.rows += 1;
        Ok(())
    }

    /// One list sample.
    pub fn push_list(&mut self, vs: impl IntoIterator<Item = Scalar>) -> Result<()> {
        if self.offsets.is_none() {
            if self.rows > 0 {
                bail!(
                    "column '{}' mixes lists and single values ({} {}); write one kind per column",
                    self.name,
                    self.unit,
                    self.rows + 1
                );
            }
            self.offsets = Some(vec![0]);
        }
        for v in vs {
            self.value(v)?;
        }
        let n = self.count();
        self.offsets.as_mut().unwrap().push(n);
        self.rows += 1;
        Ok(())
    }

    /// Typed slices, as Parquet hands them out.
    pub fn extend_i64(&mut self, vs: &[i64]) {
        match &mut self.values {
            Values::I64(v) => v.extend_from_slice(vs),
            Values::Unknown(0) => self.values = Values::I64(vs.to_vec()),
            _ => vs.iter().for_each(|&x| self.value(Scalar::Int(x)).unwrap()),
        }
    }

    pub fn extend_f32(&mut self, vs: &[f32]) {
        match &mut self.values {
            Values::F32(v) => v.extend_from_slice(vs),
            Values::Unknown(0) => self.values = Values::F32(vs.to_vec()),
            _ => vs
                .iter()
                .for_each(|&x| self.value(Scalar::Float(x as f64)).unwrap()),
        }
    }

    pub fn extend_f64(&mut self, vs: &[f64]) {
        match &mut self.values {
            Values::F64(v) => v.extend_from_slice(vs),
            Values::Unknown(0) => self.values = Values::F64(vs.to_vec()),
            _ => vs
                .iter()
                .for_each(|&x| self.value(Scalar::Float(x)).unwrap()),
        }
    }

    /// Marks `rows` scalar samples read with [`Builder::extend_i64`] and friends.
    pub fn end_rows(&mut self, rows: usize) {
        self.rows += rows;
    }

    /// Marks list samples of these lengths read with [`Builder::extend_i64`] and friends.
    pub fn end_lists(&mut self, lens: impl Iterator<Item = usize>) {
        let offsets = self.offsets.get_or_insert_with(|| vec![0]);
        for len in lens {
            offsets.push(offsets.last().unwrap() + len);
            self.rows += 1;
        }
    }

    /// Marks the column as one of lists before its first values arrive.
    pub fn begin_lists(&mut self) {
        self.offsets.get_or_insert_with(|| vec![0]);
    }

    /// One value, of a scalar sample or inside a list.
    pub fn value(&mut self, v: Scalar) -> Result<()> {
        // The sample, for errors: values are samples in a scalar column.
        let at = match self.offsets {
            None => self.count() + 1,
            Some(_) => self.rows + 1,
        };
        match (&mut self.values, v) {
            (Values::Unknown(n), Scalar::Null) => *n += 1,
            (Values::Unknown(n), v) => {
                let nulls = *n;
                self.values = match v {
                    Scalar::Int(_) | Scalar::Null => Values::I64(vec![0; nulls]),
                    Scalar::Float(_) => Values::F64(vec![f64::NAN; nulls]),
                    Scalar::Bool(_) => Values::Bool(vec![false; nulls]),
                };
                if !matches!(self.values, Values::F64(_)) {
                    self.nulls.extend((0..nulls).map(|e| (e, at)));
                }
                return self.value(v);
            }
            (Values::I64(x), Scalar::Int(i)) => x.push(i),
            (Values::I64(x), Scalar::Float(f)) => {
                let mut y: Vec<f64> = x.iter().map(|&i| i as f64).collect();
                for (e, _) in self.nulls.drain(..) {
                    y[e] = f64::NAN;
                }
                y.push(f);
                self.values = Values::F64(y);
            }
            (Values::F64(x), Scalar::Int(i)) => x.push(i as f64),
            (Values::F64(x), Scalar::Float(f)) => x.push(f),
            (Values::F64(x), Scalar::Null) => x.push(f64::NAN),
            (Values::F32(x), Scalar::Float(f)) => x.push(f as f32),
            (Values::F32(x), Scalar::Int(i)) => x.push(i as f32),
            (Values::F32(x), Scalar::Null) => x.push(f32::NAN),
            (Values::Bool(x), Scalar::Bool(b)) => x.push(b),
            (Values::I64(x), Scalar::Null) => {
                self.nulls.push((x.len(), at));
                x.push(0)
            }
            (Values::Bool(x), Scalar::Null) => {
                self.nulls.push((x.len(), at));
                x.push(false)
            }
            (_, v) => bail!(
                "column '{}' mixes {} with other types ({} {}); write one type per column",
                self.name,
                match v {
                    Scalar::Bool(_) => "booleans",
                    _ => "numbers",
                },
                self.unit,
                at
            ),
        }
        Ok(())
    }

    fn count(&self) -> usize {
        match &self.values {
            Values::Unknown(n) => *n,
            Values::I64(v) => v.len(),
            Values::F32(v) => v.len(),
            Values::F64(v) => v.len(),
            Values::Bool(v) => v.len(),
        }
    }

    /// The finished column: lists of one length are fixed (2-D), lists of
    /// varying length must hold integers.
    pub fn finish(self) -> Result<Column> {
        if let Some(&(_, row)) = self.nulls.first() {
            bail!(
                "column '{}' has a missing value ({} {}) in a column of integers or booleans; \
                 fill it in (only float columns may hold missing values, read as NaN)",
                self.name,
                self.unit,
                row
            );
        }
        let (dtype, values) = match self.values {
            Values::Unknown(n) if n > 0 => bail!(
                "column '{}' holds only missing values; remove it or fill it in",
                self.name
            ),
            Values::Unknown(_) => (Dtype::I64, Bytes::I64(Vec::new())),
            Values::I64(v) => (Dtype::I64, Bytes::I64(v)),
            Values::F32(v) => (Dtype::F32, Bytes::F32(v)),
            Values::F64(v) => (Dtype::F64, Bytes::F64(v)),
            Values::Bool(v) => (
                Dtype::Bool,
                Bytes::Owned(v.iter().map(|&b| b as u8).collect()),
            ),
        };
        let (shape, offsets) = match self.offsets {
            None => (Shape::Scalar, Vec::new()),
            Some(offsets) => {
                let first = offsets.get(1).copied().unwrap_or(0);
                if offsets.windows(2).all(|w| w[1] - w[0] == first) {
                    (Shape::Fixed(vec![first as i64]), Vec::new())
                } else if dtype != Dtype::I64 {
                    bail!(
                        "column '{}' holds lists of varying length of {}; only integer lists \
                         (token ids) are padded per batch: make every list the same length",
                        self.name,
                        match dtype {
                            Dtype::Bool => "booleans",
                            _ => "floats",
                        }
                    );
                } else {
                    (Shape::Ragged, offsets)
                }
            }
        };
        Ok(Column {
            name: self.name,
            dtype,
            shape,
            values,
            rows: self.rows,
            offsets,
        })
    }
}
