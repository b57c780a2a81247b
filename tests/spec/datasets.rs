//! Dataset files: the same small dataset written by Python (pyarrow, as
//! `datasets.Dataset.to_parquet` writes it; safetensors; JSON lines; CSV)
//! reads into the same columns in every format, equal to what Python
//! wrote, and pads a batch exactly as HF's `DataCollatorForTokenClassification`.

use crate::util::{fresh_dir, run_torch_python};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use tch::{Kind, Tensor};
use trainbox::datasets::{open, Collate, Columns, Dtype, Shape};

const WRITE: &str = r#"
import csv, json, math, sys, os
import numpy as np, pyarrow as pa, pyarrow.parquet as pq
from safetensors.numpy import save_file
from tokenizers import Tokenizer, models
from transformers import PreTrainedTokenizerFast, DataCollatorForTokenClassification

out = sys.argv[1]
nan = float("nan")
rows = [
    {"idx": 0, "score": 0.5, "feats": [0.0, 1.0, 2.0], "flag": True, "label": 1,
     "input_ids": [5, 6, 7], "labels": [1, 0, 1], "text": "a b c"},
    {"idx": 1, "score": nan, "feats": [1.5, 2.5, 3.5], "flag": False, "label": 0,
     "input_ids": [8], "labels": [0], "text": "d"},
    {"idx": 2, "score": -2.25, "feats": [3.0, 4.0, 5.0], "flag": True, "label": 2,
     "input_ids": [9, 10, 11, 12, 13], "labels": [1, 1, 0, 0, 1], "text": "e f g h i"},
    {"idx": 3, "score": 1e-3, "feats": [6.0, 7.0, 8.0], "flag": False, "label": 1,
     "input_ids": [14, 15], "labels": [0, 1], "text": "j k"},
    {"idx": 4, "score": 7.0, "feats": [9.0, 10.0, 11.0], "flag": True, "label": 0,
     "input_ids": [], "labels": [], "text": ""},
]
cols = {k: [r[k] for r in rows] for k in rows[0]}
# What datasets.Dataset.to_parquet does: pyarrow, snappy; small row groups
# so that the reader crosses them. NaN from Python becomes a null.
table = pa.table({k: pa.array(v, from_pandas=True) for k, v in cols.items()})
pq.write_table(table, os.path.join(out, "d.parquet"), row_group_size=2)
for codec in ("zstd", "gzip", "lz4", "brotli"):
    pq.write_table(table, os.path.join(out, f"{codec}.parquet"), compression=codec)
t = {"idx": np.array(cols["idx"], np.int64), "score": np.array(cols["score"], np.float64),
     "feats": np.array(cols["feats"], np.float64), "flag": np.array(cols["flag"], np.bool_),
     "label": np.array(cols["label"], np.int64)}
for k in ("input_ids", "labels"):
    t[k] = np.array([x for l in cols[k] for x in l], np.int64)
    t[k + ".offsets"] = np.cumsum([0] + [len(l) for l in cols[k]]).astype(np.int64)
save_file(t, os.path.join(out, "d.safetensors"))
missing = lambda v: isinstance(v, float) and math.isnan(v)
with open(os.path.join(out, "d.jsonl"), "w") as f:
    for r in rows:
        f.write(json.dumps({k: None if missing(v) else v for k, v in r.items()}) + "\n")
with open(os.path.join(out, "d.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(list(rows[0]))
    for r in rows:
        w.writerow([json.dumps(v) if isinstance(v, list) else "" if missing(v) else v
                    for v in r.values()])
vocab = {f"t{i}": i for i in range(20)}
tok = PreTrainedTokenizerFast(
    tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="t0")), pad_token="t3")
feats = [{"input_ids": rows[i]["input_ids"], "labels": rows[i]["labels"]} for i in (3, 0, 4)]
hf = DataCollatorForTokenClassification(tok, return_tensors="np")(feats)
print(json.dumps({"columns": {k: [None if missing(x) else x for x in v] for k, v in cols.items()},
                  "hf": {k: v.tolist() for k, v in hf.items()}}))
"#;

const BATCH: [i64; 3] = [3, 0, 4];

/// A tensor as JSON numbers (NaN as null), for comparing with Python's lists.
fn json(t: &Tensor) -> Json {
    let size = t.size();
    let flat: Vec<f64> = Vec::try_from(t.to_kind(Kind::Double).flatten(0, -1)).unwrap();
    let mut vals: Vec<Json> = flat
        .iter()
        .map(|&x| {
            if x.is_nan() {
                Json::Null
            } else if t.kind() == Kind::Bool {
                Json::Bool(x != 0.0)
            } else {
                serde_json::json!(x)
            }
        })
        .collect();
    for &d in size[1..].iter().rev() {
        vals = vals
            .chunks(d as usize)
            .map(|c| Json::Array(c.to_vec()))
            .collect();
    }
    Json::Array(vals)
}

/// Python's value as f64 numbers, as `json` prints them.
fn numbers(v: &Json) -> Json {
    match v {
        Json::Number(n) => serde_json::json!(n.as_f64().unwrap()),
        Json::Array(a) => Json::Array(a.iter().map(numbers).collect()),
        v => v.clone(),
    }
}

fn batch(cols: &Columns) -> BTreeMap<String, Tensor> {
    let collate = Collate {
        pad_token_id: 3,
        attention_mask: true,
        ..Collate::default()
    };
    cols.batch(&BATCH, &collate).unwrap()
}

#[test]
fn four_formats_read_the_same_columns_and_pad_as_hf() {
    let dir = fresh_dir("datasets-four-formats");
    let printed = run_torch_python(WRITE, &[&dir]);
    let expected: Json = serde_json::from_str(printed.trim()).unwrap();
    let columns = &expected["columns"];
    let mut batches = Vec::new();
    for ext in ["parquet", "safetensors", "jsonl", "csv"] {
        let path = dir.join(format!("d.{ext}"));
        let cols = open(&path).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(cols.len(), 5, "{ext}");
        let mut names = cols.column_names();
        names.sort();
        assert_eq!(
            names,
            [
                "feats",
                "flag",
                "idx",
                "input_ids",
                "label",
                "labels",
                "score"
            ],
            "{ext}"
        );
        let text: &[String] = if ext == "safetensors" {
            &[]
        } else {
            &["text".into()]
        };
        assert_eq!(cols.unread_columns(), text, "{ext}");
        let shape = |n: &str| cols.column(n).unwrap().shape().clone();
        let dtype = |n: &str| cols.column(n).unwrap().dtype();
        assert_eq!(shape("input_ids"), Shape::Ragged, "{ext}");
        assert_eq!(shape("labels"), Shape::Ragged, "{ext}");
        assert_eq!(shape("feats"), Shape::Fixed(vec![3]), "{ext}");
        assert_eq!(shape("idx"), Shape::Scalar, "{ext}");
        assert_eq!(dtype("idx"), Dtype::I64, "{ext}");
        assert_eq!(dtype("score"), Dtype::F64, "{ext}");
        assert_eq!(dtype("feats"), Dtype::F64, "{ext}");
        assert_eq!(dtype("flag"), Dtype::Bool, "{ext}");
        // Every sample, as Python wrote it (NaN included).
        let all = cols.batch(&[0, 1, 2, 3], &Collate::default()).unwrap();
        for name in ["idx", "score", "feats", "flag", "label"] {
            let want: Vec<Json> = columns[name].as_array().unwrap()[..4].to_vec();
            assert_eq!(
                json(&all[name]),
                numbers(&Json::Array(want)),
                "{ext} {name}"
            );
        }
        // The padded batch, as HF's collator pads it.
        let b = batch(&cols);
        for name in ["input_ids", "labels", "attention_mask"] {
            assert_eq!(b[name].kind(), Kind::Int64, "{ext} {name}");
            assert_eq!(
                json(&b[name]),
                numbers(&expected["hf"][name]),
                "{ext} {name}"
            );
        }
        batches.push((ext, b));
    }
    // Bit-identical across formats, dtypes included.
    let (_, first) = &batches[0];
    for (ext, b) in &batches[1..] {
        assert_eq!(
            b.keys().collect::<Vec<_>>(),
            first.keys().collect::<Vec<_>>()
        );
        for (k, t) in b {
            assert_eq!(t.kind(), first[k].kind(), "{ext} {k}");
            assert_eq!(t.size(), first[k].size(), "{ext} {k}");
            let same = t.isclose(&first[k], 0.0, 0.0, true).all();
            assert!(bool::try_from(same).unwrap(), "{ext} {k}");
        }
    }
}

#[test]
fn truncated_or_brotli_files_fail_naming_the_file() {
    let dir = fresh_dir("datasets-truncated");
    run_torch_python(WRITE, &[&dir]);
    // zstd (polars' default), gzip and lz4 read as snappy does.
    let snappy = open(&dir.join("d.parquet")).unwrap();
    for codec in ["zstd", "gzip", "lz4"] {
        let other = open(&dir.join(format!("{codec}.parquet"))).unwrap();
        assert_eq!(other.column_names(), snappy.column_names(), "{codec}");
        let all: Vec<i64> = (0..snappy.len() as i64).collect();
        let collate = Default::default();
        let (a, b) = (
            snappy.batch(&all, &collate).unwrap(),
            other.batch(&all, &collate).unwrap(),
        );
        for (k, t) in &a {
            assert!(t.allclose(&b[k], 0.0, 0.0, true), "{codec} {k}");
        }
    }
    let brotli = dir.join("brotli.parquet");
    let e = format!("{:#}", open(&brotli).err().expect("an error"));
    assert!(e.contains(&brotli.display().to_string()), "{e}");
    assert!(
        e.contains("column 'idx' is compressed with BROTLI") && e.contains("snappy"),
        "{e}"
    );
    for ext in ["parquet", "safetensors"] {
        let path = dir.join(format!("d.{ext}"));
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() * 2 / 3]).unwrap();
        let e = format!("{:#}", open(&path).err().expect("an error"));
        assert!(e.contains(&path.display().to_string()), "{e}");
        assert!(
            e.contains("truncated") && e.contains("write it again"),
            "{e}"
        );
    }
}
