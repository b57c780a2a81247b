//! The `wandb_internal.Record` protobufs this plugin writes, declared with
//! `prost` derive (field numbers from `wandb_internal.proto` of wandb 0.31;
//! only the fields this plugin sets), and one builder per record kind.
//! Every value is JSON text (`value_json`), as wandb stores it. This module
//! knows nothing of files or training; `framing` frames what it returns.

use prost::{Message, Oneof};

/// `wandb_internal.Record`.
#[derive(Clone, PartialEq, Message)]
struct Record {
    #[prost(int64, tag = "1")]
    num: i64,
    #[prost(oneof = "RecordType", tags = "2, 3, 5, 8, 12, 17, 18, 21")]
    record_type: Option<RecordType>,
    #[prost(message, optional, tag = "200")]
    info: Option<RecordInfo>,
}

/// `Record.record_type`.
#[derive(Clone, PartialEq, Oneof)]
enum RecordType {
    #[prost(message, tag = "2")]
    History(HistoryRecord),
    #[prost(message, tag = "3")]
    Summary(ItemsRecord),
    #[prost(message, tag = "5")]
    Config(ItemsRecord),
    #[prost(message, tag = "8")]
    Artifact(crate::artifact_proto::ArtifactRecord),
    #[prost(message, tag = "12")]
    Metric(MetricRecord),
    #[prost(message, tag = "17")]
    Run(RunRecord),
    #[prost(message, tag = "18")]
    Exit(RunExitRecord),
    #[prost(message, tag = "21")]
    Header(HeaderRecord),
}

/// `_RecordInfo`.
#[derive(Clone, PartialEq, Message)]
struct RecordInfo {
    #[prost(string, tag = "1")]
    stream_id: String,
}

/// `ConfigItem`, `SummaryItem` and `HistoryItem` alike: `key = 1` or
/// `nested_key = 2` (a path: wandb-core writes a logged dict, such as a
/// histogram, as one item per field), and `value_json = 16`.
#[derive(Clone, PartialEq, Message)]
struct ItemProto {
    #[prost(string, tag = "1")]
    key: String,
    #[prost(string, repeated, tag = "2")]
    nested_key: Vec<String>,
    #[prost(string, tag = "16")]
    value_json: String,
}

/// `ConfigRecord` and `SummaryRecord` alike: `update = 1`.
#[derive(Clone, PartialEq, Message)]
struct ItemsRecord {
    #[prost(message, repeated, tag = "1")]
    update: Vec<ItemProto>,
}

/// `HistoryRecord { item = 1, step = 2 }`.
#[derive(Clone, PartialEq, Message)]
struct HistoryRecord {
    #[prost(message, repeated, tag = "1")]
    item: Vec<ItemProto>,
    #[prost(message, optional, tag = "2")]
    step: Option<HistoryStep>,
}

/// `HistoryStep`.
#[derive(Clone, PartialEq, Message)]
struct HistoryStep {
    #[prost(int64, tag = "1")]
    num: i64,
}

/// `HeaderRecord { version_info = 1 }`.
#[derive(Clone, PartialEq, Message)]
struct HeaderRecord {
    #[prost(message, optional, tag = "1")]
    version_info: Option<VersionInfo>,
}

/// `HeaderRecord.VersionInfo`.
#[derive(Clone, PartialEq, Message)]
struct VersionInfo {
    #[prost(string, tag = "1")]
    producer: String,
    #[prost(string, tag = "2")]
    min_consumer: String,
}

/// `RunRecord` (the fields this plugin sets).
#[derive(Clone, PartialEq, Message)]
struct RunRecord {
    #[prost(string, tag = "1")]
    run_id: String,
    #[prost(string, tag = "2")]
    entity: String,
    #[prost(string, tag = "3")]
    project: String,
    #[prost(message, optional, tag = "4")]
    config: Option<ItemsRecord>,
    #[prost(string, tag = "8")]
    display_name: String,
    #[prost(string, tag = "13")]
    host: String,
    #[prost(message, optional, tag = "17")]
    start_time: Option<Timestamp>,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, PartialEq, Message)]
struct Timestamp {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

/// `MetricRecord` (the fields `define_metric` sets).
#[derive(Clone, PartialEq, Message)]
struct MetricRecord {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    glob_name: String,
    #[prost(string, tag = "4")]
    step_metric: String,
    #[prost(message, optional, tag = "6")]
    options: Option<MetricOptions>,
}

/// `MetricOptions`.
#[derive(Clone, PartialEq, Message)]
struct MetricOptions {
    #[prost(bool, tag = "1")]
    step_sync: bool,
    #[prost(bool, tag = "3")]
    defined: bool,
}

/// `RunExitRecord`.
#[derive(Clone, PartialEq, Message)]
struct RunExitRecord {
    #[prost(int32, tag = "1")]
    exit_code: i32,
    #[prost(int32, tag = "2")]
    runtime: i32,
}

/// What every record carries: its number and the run's stream id.
pub struct Envelope<'a> {
    pub num: i64,
    pub stream_id: &'a str,
}

/// A serialized `Record` carrying `body`.
fn record(env: &Envelope, body: RecordType) -> Vec<u8> {
    Record {
        num: env.num,
        record_type: Some(body),
        info: Some(RecordInfo {
            stream_id: env.stream_id.into(),
        }),
    }
    .encode_to_vec()
}

/// A key and its JSON value; with `field`, the item is field `field` of
/// the dict under `key` (`nested_key = [key, field]`).
pub struct Item<'a> {
    pub key: &'a str,
    pub field: Option<&'a str>,
    pub value_json: &'a str,
}

fn items(list: &[Item]) -> Vec<ItemProto> {
    list.iter()
        .map(|i| match i.field {
            None => ItemProto {
                key: i.key.into(),
                nested_key: Vec::new(),
                value_json: i.value_json.into(),
            },
            Some(field) => ItemProto {
                key: String::new(),
                nested_key: vec![i.key.into(), field.into()],
                value_json: i.value_json.into(),
            },
        })
        .collect()
}

/// `HeaderRecord { version_info { producer, min_consumer } }`.
pub fn header(env: &Envelope, producer: &str, min_consumer: &str) -> Vec<u8> {
    let version_info = VersionInfo {
        producer: producer.into(),
        min_consumer: min_consumer.into(),
    };
    record(
        env,
        RecordType::Header(HeaderRecord {
            version_info: Some(version_info),
        }),
    )
}

/// The run as `RunRecord` describes it.
pub struct Run<'a> {
    pub run_id: &'a str,
    pub entity: &'a str,
    pub project: &'a str,
    pub config: &'a [Item<'a>],
    pub display_name: Option<&'a str>,
    pub host: &'a str,
    /// Unix time: seconds and nanoseconds.
    pub start_time: (i64, i32),
}

/// `RunRecord`: run id, entity, project, config, display name, host, start time.
pub fn run(env: &Envelope, r: &Run) -> Vec<u8> {
    let m = RunRecord {
        run_id: r.run_id.into(),
        entity: r.entity.into(),
        project: r.project.into(),
        config: Some(ItemsRecord {
            update: items(r.config),
        }),
        display_name: r.display_name.unwrap_or_default().into(),
        host: r.host.into(),
        start_time: Some(Timestamp {
            seconds: r.start_time.0,
            nanos: r.start_time.1,
        }),
    };
    record(env, RecordType::Run(m))
}

/// `ConfigRecord { update }`.
pub fn config(env: &Envelope, update: &[Item]) -> Vec<u8> {
    let update = items(update);
    record(env, RecordType::Config(ItemsRecord { update }))
}

/// `SummaryRecord { update }`.
pub fn summary(env: &Envelope, update: &[Item]) -> Vec<u8> {
    let update = items(update);
    record(env, RecordType::Summary(ItemsRecord { update }))
}

/// `HistoryRecord { item, step { num } }`.
pub fn history(env: &Envelope, row: &[Item], step: i64) -> Vec<u8> {
    let m = HistoryRecord {
        item: items(row),
        step: Some(HistoryStep { num: step }),
    };
    record(env, RecordType::History(m))
}

/// `MetricRecord`: `name` or `glob_name`, `step_metric`, and
/// `options { step_sync, defined }`, as `define_metric` makes it.
pub fn metric(env: &Envelope, name: &str, glob: bool, step_metric: Option<&str>) -> Vec<u8> {
    let (name, glob_name) = if glob {
        (String::new(), name.into())
    } else {
        (name.into(), String::new())
    };
    let m = MetricRecord {
        name,
        glob_name,
        step_metric: step_metric.unwrap_or_default().into(),
        options: Some(MetricOptions {
            step_sync: step_metric.is_some(),
            defined: true,
        }),
    };
    record(env, RecordType::Metric(m))
}

/// `ArtifactRecord`, built by `artifact_proto`.
pub fn artifact(env: &Envelope, m: crate::artifact_proto::ArtifactRecord) -> Vec<u8> {
    record(env, RecordType::Artifact(m))
}

/// `RunExitRecord { exit_code, runtime }`.
pub fn exit(env: &Envelope, exit_code: i32, runtime_s: i32) -> Vec<u8> {
    let m = RunExitRecord {
        exit_code,
        runtime: runtime_s,
    };
    record(env, RecordType::Exit(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENV: Envelope = Envelope {
        num: 1,
        stream_id: "ab",
    };

    #[test]
    fn exit_record_bytes() {
        // num=1, exit { runtime=3 } (exit_code 0 is proto3's default, left
        // out), _info { stream_id="ab" }; field 200 is tag 1602 = c2 0c.
        assert_eq!(
            exit(&ENV, 0, 3),
            [0x08, 1, 0x92, 0x01, 2, 0x10, 3, 0xC2, 0x0C, 4, 0x0A, 2, b'a', b'b']
        );
        // A negative int32 is sign-extended to ten bytes.
        let failed = exit(&ENV, -1, 0);
        assert_eq!(&failed[2..5], [0x92, 0x01, 11]);
        assert_eq!(failed[15], 0x01);
    }

    #[test]
    fn items_are_key_and_value_json() {
        let rec = summary(
            &ENV,
            &[Item {
                key: "train/loss",
                field: None,
                value_json: "1.5",
            }],
        );
        // summary { update { key, value_json (field 16: 82 01) } }
        let one = &rec[2 + 2 + 2..rec.len() - 7];
        assert_eq!(&one[..2], [0x0A, 10]);
        assert_eq!(&one[12..], [0x82, 0x01, 3, b'1', b'.', b'5']);
    }

    #[test]
    fn a_dict_field_is_a_nested_key() {
        let rec = history(
            &ENV,
            &[Item {
                key: "h",
                field: Some("_type"),
                value_json: "1",
            }],
            1,
        );
        // history { item { nested_key "h", nested_key "_type", value_json "1" } }
        assert_eq!(
            &rec[4..18],
            [0x0A, 14, 0x12, 1, b'h', 0x12, 5, b'_', b't', b'y', b'p', b'e', 0x82, 0x01]
        );
    }

    #[test]
    fn history_step_zero_is_an_empty_present_step() {
        let rec = history(&ENV, &[], 0);
        // history { step {} }, as Python sets `history.step.num = 0`.
        assert_eq!(&rec[..6], [0x08, 1, 0x12, 2, 0x12, 0]);
    }

    #[test]
    fn metric_with_step_metric_has_step_sync() {
        let m = metric(&ENV, "*", true, Some("train/global_step"));
        let body = &m[4..m.len() - 7];
        assert_eq!(&body[..3], [0x12, 1, b'*']);
        assert!(body.ends_with(&[0x32, 4, 0x08, 1, 0x18, 1]), "{body:?}");
        let plain = metric(&ENV, "train/global_step", false, None);
        assert!(plain[..plain.len() - 7].ends_with(&[0x32, 2, 0x18, 1]));
    }
}
