//! Unit tests: the collator, each reader's shapes, and the errors.

use super::*;
use ::safetensors::tensor::{serialize, Dtype as St, TensorView};
use std::sync::Arc;

/// A file of `name` holding `bytes` in a fresh directory.
fn file(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "trainbox-datasets-{}-{}",
        std::process::id(),
        name.replace('.', "-")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn err(name: &str, bytes: &[u8]) -> String {
    let path = file(name, bytes);
    let e = format!("{:#}", open(&path).err().expect("an error"));
    assert!(e.contains(&path.display().to_string()), "{e}");
    e
}

fn ints(t: &Tensor) -> Vec<i64> {
    Vec::<i64>::try_from(t.flatten(0, -1)).unwrap()
}

const JSONL: &str = r#"{"input_ids": [5, 6, 7], "labels": [1, 2, 3], "label": 1, "x": [0.5, 1.5]}
{"input_ids": [8], "labels": [4], "label": 0, "x": [2.5, 3.5]}
{"input_ids": [9, 10], "labels": [5, 6], "label": 1, "x": [4.5, 5.5]}
"#;

#[test]
fn pads_tokens_labels_and_makes_the_mask() {
    let cols = open(&file("pad.jsonl", JSONL.as_bytes())).unwrap();
    assert_eq!(cols.len(), 3);
    assert_eq!(cols.column("input_ids").unwrap().shape(), &Shape::Ragged);
    assert_eq!(cols.column("x").unwrap().shape(), &Shape::Fixed(vec![2]));
    assert_eq!(cols.column("x").unwrap().dtype(), Dtype::F64);
    assert_eq!(cols.column("label").unwrap().shape(), &Shape::Scalar);
    let collate = Collate {
        pad_token_id: 50,
        attention_mask: true,
        ..Collate::default()
    };
    let b = cols.batch(&[1, 0], &collate).unwrap();
    assert_eq!(b["input_ids"].size(), [2, 3]);
    assert_eq!(ints(&b["input_ids"]), [8, 50, 50, 5, 6, 7]);
    assert_eq!(ints(&b["labels"]), [4, -100, -100, 1, 2, 3]);
    assert_eq!(ints(&b["attention_mask"]), [1, 0, 0, 1, 1, 1]);
    assert_eq!(ints(&b["label"]), [0, 1]);
    assert_eq!(b["x"].size(), [2, 2]);
    assert_eq!(
        Vec::<f64>::try_from(b["x"].flatten(0, -1)).unwrap(),
        [2.5, 3.5, 0.5, 1.5]
    );
    // Padded to the longest of this batch only; no mask unless asked.
    let b = cols.batch(&[2, 1], &Collate::default()).unwrap();
    assert_eq!(ints(&b["input_ids"]), [9, 10, 8, 0]);
    assert!(!b.contains_key("attention_mask"));
    // label_names decides what is padded with -100.
    let c = Collate {
        label_names: vec!["input_ids".into()],
        ..Collate::default()
    };
    let b = cols.batch(&[1, 2], &c).unwrap();
    assert_eq!(ints(&b["input_ids"]), [8, -100, 9, 10]);
    assert_eq!(ints(&b["labels"]), [4, 0, 5, 6]);
}

#[test]
fn truncates_and_checks_indices() {
    let mut cols = open(&file("trunc.jsonl", JSONL.as_bytes())).unwrap();
    cols.truncate(2);
    assert_eq!(cols.len(), 2);
    let e = cols
        .batch(&[2], &Collate::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("sample 2 asked for, it has 2"), "{e}");
    cols.truncate(10);
    assert_eq!(cols.len(), 2);
}

#[test]
fn csv_reads_numbers_lists_nan_and_missing_floats() {
    let csv = "a,b,c,flag\n1,0.5,\"[1, 2]\",True\n2,,\"[3]\",False\n3,nan,\"[4, 5, 6]\",True\n";
    let cols = open(&file("t.csv", csv.as_bytes())).unwrap();
    assert_eq!(cols.column_names(), ["a", "b", "c", "flag"]);
    assert_eq!(cols.column("a").unwrap().dtype(), Dtype::I64);
    assert_eq!(cols.column("flag").unwrap().dtype(), Dtype::Bool);
    assert_eq!(cols.column("c").unwrap().shape(), &Shape::Ragged);
    let b = cols.batch(&[0, 1, 2], &Collate::default()).unwrap();
    let f = Vec::<f64>::try_from(&b["b"]).unwrap();
    assert_eq!(f[0], 0.5);
    assert!(f[1].is_nan() && f[2].is_nan());
    assert_eq!(ints(&b["c"]), [1, 2, 0, 3, 0, 0, 4, 5, 6]);
    assert_eq!(b["flag"].kind(), tch::Kind::Bool);
}

#[test]
fn safetensors_is_mapped_with_ragged_offsets() {
    let ids: Vec<u8> = [5i64, 6, 7, 8]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    let offs: Vec<u8> = [0i64, 3, 4].iter().flat_map(|x| x.to_le_bytes()).collect();
    let x: Vec<u8> = [1f32, 2., 3., 4.]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    let small: Vec<u8> = [7i32, 8].iter().flat_map(|x| x.to_le_bytes()).collect();
    let bytes = serialize(
        [
            (
                "input_ids",
                TensorView::new(St::I64, vec![4], &ids).unwrap(),
            ),
            (
                "input_ids.offsets",
                TensorView::new(St::I64, vec![3], &offs).unwrap(),
            ),
            ("x", TensorView::new(St::F32, vec![2, 2], &x).unwrap()),
            ("y", TensorView::new(St::I32, vec![2], &small).unwrap()),
        ],
        &None,
    )
    .unwrap();
    let cols = open(&file("t.safetensors", &bytes)).unwrap();
    assert_eq!(cols.column_names(), ["input_ids", "x", "y"]);
    assert!(matches!(
        cols.column("x").unwrap().values,
        column::Bytes::Mapped { .. }
    ));
    assert_eq!(cols.column("y").unwrap().dtype(), Dtype::I64);
    let b = cols.batch(&[1, 0], &Collate::default()).unwrap();
    assert_eq!(ints(&b["input_ids"]), [8, 0, 0, 5, 6, 7]);
    assert_eq!(ints(&b["y"]), [8, 7]);
    assert_eq!(b["x"].kind(), tch::Kind::Float);
}

#[test]
fn errors_name_the_file_and_the_fix() {
    let e = err("data.txt", b"1");
    assert!(
        e.contains("unknown extension '.txt'") && e.contains(".parquet"),
        "{e}"
    );
    let missing = std::env::temp_dir().join("trainbox-no-such-dir/x.csv");
    let e = format!("{:#}", open(&missing).err().unwrap());
    assert!(e.contains("no such file"), "{e}");
    assert!(err("empty.jsonl", b"").contains("no columns"));
    assert!(err("empty.csv", b"a,b\n").contains("empty (0 samples)"));
    let e = err("text.jsonl", b"{\"text\": \"hello\"}\n");
    assert!(e.contains("trainbox needs token ids, not text"), "{e}");
    let e = err("short.csv", b"a,b\n1,2\n3\n");
    assert!(e.contains("mismatched lengths"), "{e}");
    let e = err("keys.jsonl", b"{\"a\": 1, \"b\": 2}\n{\"a\": 1}\n");
    assert!(e.contains("line 2") && e.contains("same columns"), "{e}");
    let e = err("ragged.jsonl", b"{\"x\": [0.5]}\n{\"x\": [1.5, 2.5]}\n");
    assert!(e.contains("only integer lists"), "{e}");
    let e = err("null.jsonl", b"{\"a\": 1}\n{\"a\": null}\n");
    assert!(e.contains("missing value (line 2)"), "{e}");
    let e = err("bad.jsonl", b"{\"a\": 1}\n{\"a\": \n");
    assert!(e.contains("line 2 is not valid JSON"), "{e}");
    let e = err("bad.safetensors", b"\x10\0\0\0\0\0\0\0{\"a\":");
    assert!(e.contains("not a readable safetensors file"), "{e}");
    let e = err("bad.parquet", b"PAR1 truncated");
    assert!(e.contains("not a readable Parquet file"), "{e}");
    // Text next to numbers is fine until it is asked for.
    let cols = open(&file("mixed.jsonl", b"{\"text\": \"hi\", \"label\": 1}\n")).unwrap();
    assert_eq!(cols.column_names(), ["label"]);
    let e = cols.column("text").err().unwrap().to_string();
    assert!(e.contains("tokenize it"), "{e}");
    let e = cols.column("nope").err().unwrap().to_string();
    assert!(e.contains("no column 'nope'; its columns are label"), "{e}");
}

#[test]
fn safetensors_lengths_must_agree() {
    let a: Vec<u8> = [1i64, 2, 3].iter().flat_map(|x| x.to_le_bytes()).collect();
    let bytes = serialize(
        [
            ("a", TensorView::new(St::I64, vec![3], &a).unwrap()),
            ("b", TensorView::new(St::I64, vec![2], &a[..16]).unwrap()),
        ],
        &None,
    )
    .unwrap();
    let e = err("len.safetensors", &bytes);
    assert!(e.contains("mismatched lengths"), "{e}");
}

/// A Parquet file of these columns, as parquet-rs writes it.
fn parquet(name: &str, columns: Vec<(&str, arrow_array::ArrayRef)>) -> PathBuf {
    let batch = arrow_array::RecordBatch::try_from_iter(columns).unwrap();
    let mut buf = Vec::new();
    let mut w = ::parquet::arrow::ArrowWriter::try_new(&mut buf, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    file(name, &buf)
}

#[test]
fn parquet_keeps_the_file_dtypes_and_names_missing_values() {
    use arrow_array::types::Int32Type;
    use arrow_array::{ArrayRef, Float32Array, Int32Array, ListArray};
    let f: ArrayRef = Arc::new(Float32Array::from(vec![Some(0.5), None, Some(2.0)]));
    let ids: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
        Some(vec![Some(1), Some(2)]),
        Some(vec![]),
        Some(vec![Some(3)]),
    ]));
    let cols = open(&parquet("ok.parquet", vec![("f", f.clone()), ("ids", ids)])).unwrap();
    assert_eq!(cols.column("f").unwrap().dtype(), Dtype::F32);
    assert_eq!(cols.column("ids").unwrap().dtype(), Dtype::I64);
    let b = cols.batch(&[0, 1, 2], &Collate::default()).unwrap();
    let v = Vec::<f32>::try_from(&b["f"]).unwrap();
    assert!(v[0] == 0.5 && v[1].is_nan() && v[2] == 2.0);
    assert_eq!(ints(&b["ids"]), [1, 2, 0, 0, 3, 0]);
    let a: ArrayRef = Arc::new(Int32Array::from(vec![Some(1), Some(2), None]));
    let path = parquet("null.parquet", vec![("a", a), ("f", f)]);
    let e = format!("{:#}", open(&path).err().unwrap());
    assert!(e.contains("column 'a' has a missing value (row 3)"), "{e}");
}

#[test]
fn a_json_document_holding_one_array_of_objects_reads_as_json_lines() {
    let dir = std::env::temp_dir().join(format!("trainbox-json-array-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("data.json");
    std::fs::write(
        &path,
        "  [{\"x\": [1, 2], \"labels\": 0},\n {\"x\": [3], \"labels\": 1}]\n",
    )
    .unwrap();
    let data = super::open(&path).unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data.column_names(), ["labels", "x"]);
    std::fs::write(&path, "[{\"x\": 1}, 2]").unwrap();
    let err = format!("{:#}", super::open(&path).err().unwrap());
    assert!(err.contains("item 2 is not a JSON object"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
