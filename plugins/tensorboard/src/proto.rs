//! The few TensorBoard protobuf messages an event file needs, encoded by
//! hand as protobuf's own serializer does (fields in number order, proto3
//! defaults left out): an `Event` carrying the file version, a scalar
//! (`Summary.Value.simple_value`) or a text summary (a `DT_STRING` tensor
//! for the `text` plugin), as torch's `SummaryWriter` writes them.
//!
//! Field numbers, from `tensorboard/compat/proto/*.proto`:
//! `Event`: wall_time 1 (double), step 2 (int64), file_version 3,
//! summary 5, source_metadata 10 (`writer` 1). `Summary`: value 1.
//! `Summary.Value`: tag 1, simple_value 2 (float), tensor 8, metadata 9.
//! `SummaryMetadata`: plugin_data 1 (`plugin_name` 1, `content` 2).
//! `TensorProto`: dtype 1, tensor_shape 2 (`dim` 2, its `size` 1), string_val 8.

/// `DataType.DT_STRING`.
const DT_STRING: u64 = 7;

/// What an event carries besides its time and step.
pub enum Body<'a> {
    /// The first event of a file.
    FileVersion { version: &'a str, writer: &'a str },
    /// `add_scalar(tag, value)`.
    Scalar { tag: &'a str, value: f32 },
    /// `add_text(tag, text)`: stored under `tag + "/text_summary"`.
    Text { tag: &'a str, text: &'a str },
}

/// Appends the serialized `Event` to `out`.
pub fn event(out: &mut Vec<u8>, wall_time: f64, step: i64, body: &Body) {
    if wall_time != 0.0 {
        key(out, 1, FIXED64);
        out.extend_from_slice(&wall_time.to_le_bytes());
    }
    if step != 0 {
        key(out, 2, VARINT);
        varint(out, step as u64);
    }
    match body {
        Body::FileVersion { version, writer } => {
            bytes(out, 3, version.as_bytes());
            nested(out, 10, |m| bytes(m, 1, writer.as_bytes()));
        }
        Body::Scalar { tag, value } => nested(out, 5, |summary| {
            nested(summary, 1, |v| {
                bytes(v, 1, tag.as_bytes());
                key(v, 2, FIXED32);
                v.extend_from_slice(&value.to_le_bytes());
            })
        }),
        Body::Text { tag, text } => nested(out, 5, |summary| {
            nested(summary, 1, |v| {
                bytes(v, 1, format!("{tag}/text_summary").as_bytes());
                nested(v, 8, |tensor| {
                    key(tensor, 1, VARINT);
                    varint(tensor, DT_STRING);
                    nested(tensor, 2, |shape| {
                        nested(shape, 2, |dim| {
                            key(dim, 1, VARINT);
                            varint(dim, 1);
                        })
                    });
                    bytes(tensor, 8, text.as_bytes());
                });
                // plugin_data { plugin_name: "text" }; TextPluginData(version=0)
                // serializes to nothing, so `content` is left out.
                nested(v, 9, |meta| nested(meta, 1, |data| bytes(data, 1, b"text")));
            })
        }),
    }
}

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

fn key(out: &mut Vec<u8>, field: u32, wire_type: u8) {
    varint(out, u64::from(field) << 3 | u64::from(wire_type));
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn bytes(out: &mut Vec<u8>, field: u32, data: &[u8]) {
    key(out, field, LEN);
    varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

/// A length-delimited sub-message written by `write`.
fn nested(out: &mut Vec<u8>, field: u32, write: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = Vec::new();
    write(&mut inner);
    bytes(out, field, &inner);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_event_bytes() {
        let mut out = Vec::new();
        event(
            &mut out,
            0.0,
            300,
            &Body::Scalar {
                tag: "a",
                value: 1.0,
            },
        );
        // step 300 = varint ac 02; summary { value { tag "a", simple_value 1.0f } }
        assert_eq!(
            out,
            [0x10, 0xac, 0x02, 0x2a, 0x0a, 0x0a, 0x08, 0x0a, 0x01, b'a', 0x15, 0, 0, 0x80, 0x3f]
        );
    }

    #[test]
    fn negative_steps_are_ten_byte_varints() {
        let mut out = Vec::new();
        varint(&mut out, -1i64 as u64);
        assert_eq!(out.len(), 10);
        assert_eq!(out[9], 0x01);
    }
}
