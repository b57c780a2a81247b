//! The few TensorBoard protobuf messages an event file needs, declared with
//! `prost` derive from `tensorboard/compat/proto/*.proto` (only the fields
//! this plugin sets): an `Event` carrying the file version, a scalar
//! (`Summary.Value.simple_value`) or a text summary (a `DT_STRING` tensor
//! for the `text` plugin), as torch's `SummaryWriter` writes them. prost
//! writes fields in number order and leaves proto3 defaults out, as
//! protobuf's own serializer does, so the bytes re-serialize unchanged.

use prost::{Message, Oneof};

/// `DataType.DT_STRING`.
const DT_STRING: i32 = 7;

/// What an event carries besides its time and step.
pub enum Body<'a> {
    /// The first event of a file.
    FileVersion { version: &'a str, writer: &'a str },
    /// `add_scalar(tag, value)`.
    Scalar { tag: &'a str, value: f32 },
    /// `add_text(tag, text)`: stored under `tag + "/text_summary"`.
    Text { tag: &'a str, text: &'a str },
}

/// `tensorboard.Event`.
#[derive(Clone, PartialEq, Message)]
struct Event {
    #[prost(double, tag = "1")]
    wall_time: f64,
    #[prost(int64, tag = "2")]
    step: i64,
    #[prost(oneof = "What", tags = "3, 5")]
    what: Option<What>,
    #[prost(message, optional, tag = "10")]
    source_metadata: Option<SourceMetadata>,
}

/// `Event.what`.
#[derive(Clone, PartialEq, Oneof)]
enum What {
    #[prost(string, tag = "3")]
    FileVersion(String),
    #[prost(message, tag = "5")]
    Summary(Summary),
}

/// `tensorboard.SourceMetadata`.
#[derive(Clone, PartialEq, Message)]
struct SourceMetadata {
    #[prost(string, tag = "1")]
    writer: String,
}

/// `tensorboard.Summary`.
#[derive(Clone, PartialEq, Message)]
struct Summary {
    #[prost(message, repeated, tag = "1")]
    value: Vec<SummaryValue>,
}

/// `tensorboard.Summary.Value`.
#[derive(Clone, PartialEq, Message)]
struct SummaryValue {
    #[prost(string, tag = "1")]
    tag: String,
    #[prost(oneof = "ValueKind", tags = "2, 8")]
    value: Option<ValueKind>,
    #[prost(message, optional, tag = "9")]
    metadata: Option<SummaryMetadata>,
}

/// `Summary.Value.value`.
#[derive(Clone, PartialEq, Oneof)]
enum ValueKind {
    #[prost(float, tag = "2")]
    SimpleValue(f32),
    #[prost(message, tag = "8")]
    Tensor(TensorProto),
}

/// `tensorboard.SummaryMetadata`.
#[derive(Clone, PartialEq, Message)]
struct SummaryMetadata {
    #[prost(message, optional, tag = "1")]
    plugin_data: Option<PluginData>,
}

/// `SummaryMetadata.PluginData`; `content` (2) stays empty: the text
/// plugin's `TextPluginData(version=0)` serializes to nothing.
#[derive(Clone, PartialEq, Message)]
struct PluginData {
    #[prost(string, tag = "1")]
    plugin_name: String,
}

/// `tensorboard.TensorProto`.
#[derive(Clone, PartialEq, Message)]
struct TensorProto {
    #[prost(int32, tag = "1")]
    dtype: i32,
    #[prost(message, optional, tag = "2")]
    tensor_shape: Option<TensorShapeProto>,
    #[prost(bytes = "vec", repeated, tag = "8")]
    string_val: Vec<Vec<u8>>,
}

/// `tensorboard.TensorShapeProto`.
#[derive(Clone, PartialEq, Message)]
struct TensorShapeProto {
    #[prost(message, repeated, tag = "2")]
    dim: Vec<Dim>,
}

/// `TensorShapeProto.Dim`.
#[derive(Clone, PartialEq, Message)]
struct Dim {
    #[prost(int64, tag = "1")]
    size: i64,
}

/// Appends the serialized `Event` to `out`.
pub fn event(out: &mut Vec<u8>, wall_time: f64, step: i64, body: &Body) {
    let summary = |value| Some(What::Summary(Summary { value: vec![value] }));
    let (what, source_metadata) = match body {
        Body::FileVersion { version, writer } => (
            Some(What::FileVersion(version.to_string())),
            Some(SourceMetadata {
                writer: writer.to_string(),
            }),
        ),
        Body::Scalar { tag, value } => (
            summary(SummaryValue {
                tag: tag.to_string(),
                value: Some(ValueKind::SimpleValue(*value)),
                metadata: None,
            }),
            None,
        ),
        Body::Text { tag, text } => (
            summary(SummaryValue {
                tag: format!("{tag}/text_summary"),
                value: Some(ValueKind::Tensor(TensorProto {
                    dtype: DT_STRING,
                    tensor_shape: Some(TensorShapeProto {
                        dim: vec![Dim { size: 1 }],
                    }),
                    string_val: vec![text.as_bytes().to_vec()],
                })),
                metadata: Some(SummaryMetadata {
                    plugin_data: Some(PluginData {
                        plugin_name: "text".into(),
                    }),
                }),
            }),
            None,
        ),
    };
    let event = Event {
        wall_time,
        step,
        what,
        source_metadata,
    };
    out.reserve(event.encoded_len());
    event.encode(out).expect("a Vec grows to hold any message");
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
    fn file_version_event_bytes() {
        let mut out = Vec::new();
        event(
            &mut out,
            0.5,
            0,
            &Body::FileVersion {
                version: "v",
                writer: "w",
            },
        );
        let mut want = vec![0x09];
        want.extend_from_slice(&0.5f64.to_le_bytes());
        // file_version "v", source_metadata { writer "w" }
        want.extend_from_slice(&[0x1a, 1, b'v', 0x52, 3, 0x0a, 1, b'w']);
        assert_eq!(out, want);
    }

    #[test]
    fn text_event_bytes() {
        let mut out = Vec::new();
        event(
            &mut out,
            0.0,
            1,
            &Body::Text {
                tag: "t",
                text: "hi",
            },
        );
        let value = [
            &[0x0a, 14][..],
            b"t/text_summary",
            // tensor { dtype 7, tensor_shape { dim { size 1 } }, string_val "hi" }
            &[
                0x42, 12, 0x08, 7, 0x12, 4, 0x12, 2, 0x08, 1, 0x42, 2, b'h', b'i',
            ],
            // metadata { plugin_data { plugin_name "text" } }
            &[0x4a, 8, 0x0a, 6, 0x0a, 4],
            b"text",
        ]
        .concat();
        let mut want = vec![
            0x10,
            1,
            0x2a,
            value.len() as u8 + 2,
            0x0a,
            value.len() as u8,
        ];
        want.extend_from_slice(&value);
        assert_eq!(out, want);
    }

    #[test]
    fn negative_steps_are_ten_byte_varints() {
        let mut out = Vec::new();
        event(
            &mut out,
            0.0,
            -1,
            &Body::FileVersion {
                version: "",
                writer: "",
            },
        );
        // key 0x10, ten varint bytes, then file_version "" and an empty source_metadata.
        assert_eq!(out.len(), 1 + 10 + 2 + 2);
        assert_eq!(out[10], 0x01);
    }
}
