//! An event file, as tensorboard's `EventFileWriter` makes it: named
//! `events.out.tfevents.<%010d seconds>.<hostname>.<pid>.<uid>`, opening with
//! a `brain.Event:2` file-version event, each event a TFRecord (length,
//! masked CRC-32C of the length, payload, masked CRC-32C of the payload).
//! Events are buffered until `flush`, which writes them in one go.

use crate::crc32c::masked;
use crate::proto::{event, Body};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The name this writer gives itself in `source_metadata.writer`.
const WRITER: &str = "trainbox";

pub struct EventFile {
    path: PathBuf,
    file: File,
    pending: Vec<u8>,
    /// Scratch space for one serialized event.
    event: Vec<u8>,
}

impl EventFile {
    /// Creates the next event file in `dir` (made if missing) and writes its
    /// file-version event. `uid` counts the files this process made; it is
    /// bumped past names already taken.
    pub fn create(
        dir: &Path,
        hostname: &str,
        pid: u32,
        uid: &mut u32,
        wall_time: f64,
    ) -> io::Result<EventFile> {
        fs::create_dir_all(dir).map_err(|e| at(dir, e))?;
        let (path, file) = loop {
            let name = format!(
                "events.out.tfevents.{:010}.{hostname}.{pid}.{uid}",
                wall_time as u64
            );
            let path = dir.join(name);
            *uid += 1;
            match File::create_new(&path) {
                Ok(file) => break (path, file),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(at(&path, e)),
            }
        };
        let mut f = EventFile {
            path,
            file,
            pending: Vec::new(),
            event: Vec::new(),
        };
        f.add(
            wall_time,
            0,
            &Body::FileVersion {
                version: "brain.Event:2",
                writer: WRITER,
            },
        );
        f.flush()?;
        Ok(f)
    }

    /// Queues one event.
    pub fn add(&mut self, wall_time: f64, step: i64, body: &Body) {
        self.event.clear();
        event(&mut self.event, wall_time, step, body);
        let len = (self.event.len() as u64).to_le_bytes();
        self.pending.extend_from_slice(&len);
        self.pending.extend_from_slice(&masked(&len).to_le_bytes());
        self.pending.extend_from_slice(&self.event);
        self.pending
            .extend_from_slice(&masked(&self.event).to_le_bytes());
    }

    /// Writes the queued events.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let result = self
            .file
            .write_all(&self.pending)
            .and_then(|()| self.file.flush());
        self.pending.clear();
        result.map_err(|e| at(&self.path, e))
    }
}

/// An I/O error that names the path.
fn at(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}
