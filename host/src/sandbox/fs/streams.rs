//! File streams (`read-via-stream`, `write-via-stream`, `append-via-stream`)
//! as the plugin's table holds them: wasmtime-wasi's own stream, wrapped so
//! that it counts as one open descriptor for as long as it lives (it keeps
//! the file open after its descriptor is dropped), and so that what is
//! written through it counts against the disk quota before it is written.

use super::disk::{growth, Disk};
use super::fds::{FileId, OpenFiles};
use bytes::Bytes;
use std::sync::Arc;
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, InputStream, OutputStream, Pollable};
use wasmtime_wasi::p2::{StreamError, StreamResult};

/// One descriptor slot, given back when the stream is dropped.
struct Slot {
    files: Arc<OpenFiles>,
    id: Option<FileId>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.files.release(self.id);
    }
}

/// A file's input stream, counted as an open descriptor.
pub struct CountedInput {
    inner: DynInputStream,
    _slot: Slot,
}

impl CountedInput {
    /// Wraps `inner`, whose descriptor slot on `id` was already acquired.
    pub fn new(inner: DynInputStream, files: Arc<OpenFiles>, id: Option<FileId>) -> Self {
        CountedInput {
            inner,
            _slot: Slot { files, id },
        }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CountedInput {
    async fn ready(&mut self) {
        self.inner.ready().await
    }
}

#[wasmtime_wasi::async_trait]
impl InputStream for CountedInput {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        self.inner.read(size)
    }

    async fn blocking_read(&mut self, size: usize) -> StreamResult<Bytes> {
        self.inner.blocking_read(size).await
    }

    fn skip(&mut self, n: usize) -> StreamResult<usize> {
        self.inner.skip(n)
    }

    async fn blocking_skip(&mut self, n: usize) -> StreamResult<usize> {
        self.inner.blocking_skip(n).await
    }

    async fn cancel(&mut self) {
        self.inner.cancel().await
    }
}

/// Where an output stream writes.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// At this offset, which each write advances.
    At(u64),
    Append,
}

/// A file's output stream, counted as an open descriptor, whose writes are
/// counted against the disk quota by how much they grow the file.
pub struct CountedOutput {
    inner: DynOutputStream,
    file: Arc<std::fs::File>,
    mode: Mode,
    disk: Arc<Disk>,
    _slot: Slot,
}

impl CountedOutput {
    /// Wraps `inner`, a stream on `file` whose descriptor slot on `id` was
    /// already acquired.
    pub fn new(
        inner: DynOutputStream,
        file: Arc<std::fs::File>,
        mode: Mode,
        disk: Arc<Disk>,
        files: Arc<OpenFiles>,
        id: Option<FileId>,
    ) -> Self {
        CountedOutput {
            inner,
            file,
            mode,
            disk,
            _slot: Slot { files, id },
        }
    }

    /// Counts a write of `len` bytes, or refuses it (a trap: the plugin is
    /// past its quota).
    fn charge(&mut self, len: usize) -> StreamResult<()> {
        let len = len as u64;
        let added = match self.mode {
            Mode::Append => len,
            Mode::At(offset) => {
                let size = self.file.metadata().map_or(0, |m| m.len());
                growth(size, offset, len)
            }
        };
        self.disk
            .grow(added)
            .map_err(|e| StreamError::Trap(e.into()))?;
        if let Mode::At(offset) = &mut self.mode {
            *offset = offset.saturating_add(len);
        }
        Ok(())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CountedOutput {
    async fn ready(&mut self) {
        self.inner.ready().await
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for CountedOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.charge(bytes.len())?;
        self.inner.write(bytes)
    }

    async fn blocking_write_and_flush(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.charge(bytes.len())?;
        self.inner.blocking_write_and_flush(bytes).await
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.inner.flush()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        self.inner.check_write()
    }

    fn write_zeroes(&mut self, n: usize) -> StreamResult<()> {
        self.charge(n)?;
        self.inner.write_zeroes(n)
    }

    async fn write_ready(&mut self) -> StreamResult<usize> {
        self.inner.write_ready().await
    }

    async fn cancel(&mut self) {
        self.inner.cancel().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::fs::disk::Usage;
    use std::os::unix::fs::FileExt;

    /// An output stream that writes straight into a file, as wasmtime's does.
    struct FileSink {
        file: Arc<std::fs::File>,
        at: Option<u64>,
    }

    #[wasmtime_wasi::async_trait]
    impl Pollable for FileSink {
        async fn ready(&mut self) {}
    }

    impl OutputStream for FileSink {
        fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
            let at = match self.at {
                Some(at) => at,
                None => self.file.metadata().unwrap().len(),
            };
            self.file.write_all_at(&bytes, at).unwrap();
            self.at = self.at.map(|a| a + bytes.len() as u64);
            Ok(())
        }
        fn flush(&mut self) -> StreamResult<()> {
            Ok(())
        }
        fn check_write(&mut self) -> StreamResult<usize> {
            Ok(1 << 20)
        }
    }

    fn stream(file: &Arc<std::fs::File>, mode: Mode, disk: &Arc<Disk>) -> CountedOutput {
        let files = Arc::new(OpenFiles::with_budget(10, usize::MAX));
        files.acquire().unwrap();
        let at = match mode {
            Mode::At(a) => Some(a),
            Mode::Append => None,
        };
        let sink = Box::new(FileSink {
            file: file.clone(),
            at,
        });
        CountedOutput::new(sink, file.clone(), mode, disk.clone(), files, None)
    }

    #[test]
    fn writes_count_by_how_much_they_grow_the_file() {
        let _serial = super::super::fds::SERIAL
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let path = std::env::temp_dir().join(format!("trainbox-stream-{}", std::process::id()));
        std::fs::write(&path, [1u8; 1000]).unwrap();
        let file = Arc::new(
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .unwrap(),
        );
        let limit = Usage {
            bytes: 1010,
            files: 10,
        };
        let disk = Arc::new(Disk::new(
            limit,
            Usage {
                bytes: 1000,
                files: 1,
            },
        ));
        // Rewriting in place costs nothing; the write past the end costs its growth.
        let mut s = stream(&file, Mode::At(0), &disk);
        s.write(Bytes::from(vec![2u8; 1000])).unwrap();
        s.write(Bytes::from(vec![2u8; 6])).unwrap();
        assert_eq!(disk.used().bytes, 1006);
        // An append always grows; past the quota it traps and writes nothing.
        let mut a = stream(&file, Mode::Append, &disk);
        a.write(Bytes::from(vec![3u8; 4])).unwrap();
        assert!(matches!(
            a.write(Bytes::from(vec![3u8; 1])),
            Err(StreamError::Trap(_))
        ));
        assert_eq!(file.metadata().unwrap().len(), 1010);
        assert_eq!(disk.used().bytes, 1010);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_stream_holds_its_descriptor_slot_until_dropped() {
        let _serial = super::super::fds::SERIAL
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let files = Arc::new(OpenFiles::with_budget(1, usize::MAX));
        files.acquire().unwrap();
        let sink: DynInputStream = Box::new(wasmtime_wasi::p2::pipe::ClosedInputStream);
        let input = CountedInput::new(sink, files.clone(), Some((1, 2)));
        assert!(files.acquire().is_err());
        drop(input);
        assert_eq!(files.open(), 0);
        files.acquire().unwrap();
    }
}
