//! Padding a batch as HF's `DataCollatorWithPadding` (and, for labels,
//! `DataCollatorForTokenClassification`) does: variable-length lists to the
//! longest in the batch, on the right.

use super::column::{Column, Shape};
use anyhow::Result;
use tch::Tensor;

/// The label padding HF's losses ignore.
pub const LABEL_PAD: i64 = -100;

/// How a batch is padded.
#[derive(Debug, Clone)]
pub struct Collate {
    /// Padding for token lists (`--pad_token_id`).
    pub pad_token_id: i64,
    /// The label columns (HF's `label_names`), padded with -100.
    pub label_names: Vec<String>,
    /// Make an `attention_mask` column (1 = real token, 0 = padding) when
    /// the file has none.
    pub attention_mask: bool,
}

impl Default for Collate {
    fn default() -> Collate {
        Collate {
            pad_token_id: 0,
            label_names: vec!["labels".to_string()],
            attention_mask: false,
        }
    }
}

impl Collate {
    /// The padding of column `name`: -100 for labels, 0 for
    /// `attention_mask` and `token_type_ids`, 1 for `special_tokens_mask`
    /// (as HF's tokenizers pad them), else `pad_token_id`.
    pub fn pad_value(&self, name: &str) -> i64 {
        if self.label_names.iter().any(|l| l == name) {
            return LABEL_PAD;
        }
        match name {
            "attention_mask" | "token_type_ids" => 0,
            "special_tokens_mask" => 1,
            _ => self.pad_token_id,
        }
    }

    pub(super) fn is_label(&self, name: &str) -> bool {
        self.label_names.iter().any(|l| l == name)
    }
}

/// Samples `indices` of a ragged column, padded with `pad` to the longest.
pub(super) fn pad(column: &Column, indices: &[usize], pad: i64) -> Tensor {
    let width = indices
        .iter()
        .map(|&i| column.ragged_len(i))
        .max()
        .unwrap_or(0);
    let mut out = Vec::with_capacity(width * indices.len());
    for &i in indices {
        out.extend(column.ragged_row(i));
        out.extend(std::iter::repeat_n(pad, width - column.ragged_len(i)));
    }
    Tensor::from_slice(&out).view([indices.len() as i64, width as i64])
}

/// The attention mask of `column` at `indices`: 1 for each real token.
pub(super) fn mask(column: &Column, indices: &[usize]) -> Result<Tensor> {
    let lens: Vec<usize> = match column.shape() {
        Shape::Ragged => indices.iter().map(|&i| column.ragged_len(i)).collect(),
        Shape::Fixed(d) => vec![d.iter().product::<i64>() as usize; indices.len()],
        Shape::Scalar => vec![1; indices.len()],
    };
    let width = lens.iter().copied().max().unwrap_or(0);
    let mut out = Vec::with_capacity(width * indices.len());
    for len in lens {
        out.extend(std::iter::repeat_n(1i64, len));
        out.extend(std::iter::repeat_n(0i64, width - len));
    }
    Ok(Tensor::from_slice(&out).view([indices.len() as i64, width as i64]))
}
