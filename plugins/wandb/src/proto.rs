//! The `wandb_internal.Record` protobufs this plugin writes, encoded by hand
//! (field numbers from `wandb_internal.proto` of wandb 0.31): a tiny
//! protobuf writer ([`Msg`]) and one builder per record kind. Every value
//! is JSON text (`value_json`), as wandb stores it. This module knows
//! nothing of files or training; `framing` frames what it returns.

/// A protobuf message being encoded.
#[derive(Default)]
pub struct Msg(Vec<u8>);

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7F) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

impl Msg {
    pub fn new() -> Msg {
        Msg::default()
    }

    fn tag(&mut self, field: u32, wire: u8) {
        varint(&mut self.0, ((field as u64) << 3) | wire as u64);
    }

    /// A varint field (`int32`, `int64`, `bool`); a negative `int32` takes ten bytes, as protobuf says.
    pub fn int(mut self, field: u32, v: i64) -> Msg {
        self.tag(field, 0);
        varint(&mut self.0, v as u64);
        self
    }

    pub fn bool(self, field: u32, v: bool) -> Msg {
        self.int(field, v as i64)
    }

    /// A length-delimited field.
    pub fn bytes(mut self, field: u32, v: &[u8]) -> Msg {
        self.tag(field, 2);
        varint(&mut self.0, v.len() as u64);
        self.0.extend_from_slice(v);
        self
    }

    pub fn str(self, field: u32, v: &str) -> Msg {
        self.bytes(field, v.as_bytes())
    }

    pub fn msg(self, field: u32, m: Msg) -> Msg {
        self.bytes(field, &m.0)
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

/// `wandb_internal.Record` field numbers.
mod record {
    pub const NUM: u32 = 1;
    pub const HISTORY: u32 = 2;
    pub const SUMMARY: u32 = 3;
    pub const CONFIG: u32 = 5;
    pub const METRIC: u32 = 12;
    pub const RUN: u32 = 17;
    pub const EXIT: u32 = 18;
    pub const HEADER: u32 = 21;
    pub const INFO: u32 = 200;
}

/// What every record carries: its number and the run's stream id.
pub struct Envelope<'a> {
    pub num: i64,
    pub stream_id: &'a str,
}

/// A `Record` with `body` in field `field`.
fn record(env: &Envelope, field: u32, body: Msg) -> Vec<u8> {
    Msg::new()
        .int(record::NUM, env.num)
        .msg(field, body)
        .msg(record::INFO, Msg::new().str(1, env.stream_id))
        .into_bytes()
}

/// A key and its JSON value: `ConfigItem`, `SummaryItem` and `HistoryItem`
/// share `key = 1` and `value_json = 16` (the SDK sends flat keys; their
/// `nested_key = 2` is for dotted paths, which this plugin never writes).
pub struct Item<'a> {
    pub key: &'a str,
    pub value_json: &'a str,
}

fn item(i: &Item) -> Msg {
    Msg::new().str(1, i.key).str(16, i.value_json)
}

fn items(field: u32, list: &[Item]) -> Msg {
    list.iter().fold(Msg::new(), |m, i| m.msg(field, item(i)))
}

/// `HeaderRecord { version_info { producer, min_consumer } }`.
pub fn header(env: &Envelope, producer: &str, min_consumer: &str) -> Vec<u8> {
    let info = Msg::new().str(1, producer).str(2, min_consumer);
    record(env, record::HEADER, Msg::new().msg(1, info))
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

/// `RunRecord`: `run_id = 1`, `entity = 2`, `project = 3`, `config = 4`
/// (a `ConfigRecord`), `display_name = 8`, `host = 13`, `start_time = 17`.
pub fn run(env: &Envelope, r: &Run) -> Vec<u8> {
    let mut m = Msg::new()
        .str(1, r.run_id)
        .str(2, r.entity)
        .str(3, r.project)
        .msg(4, items(1, r.config));
    if let Some(name) = r.display_name {
        m = m.str(8, name);
    }
    let start = Msg::new()
        .int(1, r.start_time.0)
        .int(2, r.start_time.1 as i64);
    m = m.str(13, r.host).msg(17, start);
    record(env, record::RUN, m)
}

/// `ConfigRecord { update = 1 }`.
pub fn config(env: &Envelope, update: &[Item]) -> Vec<u8> {
    record(env, record::CONFIG, items(1, update))
}

/// `SummaryRecord { update = 1 }`.
pub fn summary(env: &Envelope, update: &[Item]) -> Vec<u8> {
    record(env, record::SUMMARY, items(1, update))
}

/// `HistoryRecord { item = 1, step = 2 { num = 1 } }`.
pub fn history(env: &Envelope, row: &[Item], step: i64) -> Vec<u8> {
    let m = items(1, row).msg(2, Msg::new().int(1, step));
    record(env, record::HISTORY, m)
}

/// `MetricRecord`: `name = 1` or `glob_name = 2`, `step_metric = 4`,
/// `options = 6 { step_sync = 1, defined = 3 }`, as `define_metric` makes it.
pub fn metric(env: &Envelope, name: &str, glob: bool, step_metric: Option<&str>) -> Vec<u8> {
    let mut m = Msg::new().str(if glob { 2 } else { 1 }, name);
    let mut options = Msg::new();
    if let Some(step) = step_metric {
        m = m.str(4, step);
        options = options.bool(1, true);
    }
    m = m.msg(6, options.bool(3, true));
    record(env, record::METRIC, m)
}

/// `RunExitRecord { exit_code = 1, runtime = 2 }`.
pub fn exit(env: &Envelope, exit_code: i32, runtime_s: i32) -> Vec<u8> {
    let m = Msg::new().int(1, exit_code as i64).int(2, runtime_s as i64);
    record(env, record::EXIT, m)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENV: Envelope = Envelope {
        num: 1,
        stream_id: "ab",
    };

    #[test]
    fn varints_and_tags_follow_protobuf() {
        assert_eq!(Msg::new().int(1, 150).into_bytes(), [0x08, 0x96, 0x01]);
        assert_eq!(Msg::new().str(2, "hi").into_bytes(), [0x12, 2, b'h', b'i']);
        // A negative int32 is sign-extended to ten bytes.
        assert_eq!(
            Msg::new().int(1, -1).into_bytes(),
            [0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]
        );
        // Field 200, length-delimited: tag (200 << 3) | 2 = 1602.
        assert_eq!(Msg::new().str(200, "").into_bytes(), [0xC2, 0x0C, 0]);
    }

    #[test]
    fn exit_record_bytes() {
        // num=1, exit { exit_code=0, runtime=3 }, _info { stream_id="ab" }
        assert_eq!(
            exit(&ENV, 0, 3),
            [0x08, 1, 0x92, 0x01, 4, 0x08, 0, 0x10, 3, 0xC2, 0x0C, 4, 0x0A, 2, b'a', b'b']
        );
    }

    #[test]
    fn items_are_key_and_value_json() {
        let one = item(&Item {
            key: "train/loss",
            value_json: "1.5",
        })
        .into_bytes();
        assert_eq!(&one[..2], [0x0A, 10]);
        assert_eq!(&one[12..], [0x82, 0x01, 3, b'1', b'.', b'5']);
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
