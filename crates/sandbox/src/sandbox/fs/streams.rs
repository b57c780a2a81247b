//! File streams (`read-via-stream`, `write-via-stream`, `append-via-stream`)
//! as the plugin's table holds them: wasmtime-wasi's own stream, wrapped so
//! that it counts as one open descriptor for as long as it lives (it keeps
//! the file open after its descriptor is dropped), and so that what is
//! written through it counts against the disk quota before it is written.
//!
//! Writes are made on the calling thread: wasmtime-wasi's file stream hands
//! every non-blocking `write` to a thread of its blocking pool and the
//! guest's next flush waits for it, two thread switches that cost a plugin
//! writing a line per event (the recorder) ten times what the write does.

use super::disk::{growth, Disk};
use super::fds::{FileId, OpenFiles};
use bytes::Bytes;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
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
/// counted against the disk quota by how much they grow the file, and made
/// on the calling thread.
pub struct CountedOutput {
    inner: DynOutputStream,
    file: Arc<std::fs::File>,
    mode: Mode,
    disk: Arc<Disk>,
    /// Appends go through `inner` (wasmtime's thread pool) where the
    /// kernel has no `pwritev2(RWF_APPEND)`.
    append_by_inner: bool,
    /// A write failed: the stream is closed, as wasmtime's would be.
    failed: bool,
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
            append_by_inner: false,
            failed: false,
            _slot: Slot { files, id },
        }
    }

    /// Counts then writes `bytes` on this thread (or through `inner` where
    /// appends cannot be made here).
    fn write_here(&mut self, bytes: &[u8]) -> StreamResult<()> {
        if self.failed {
            return Err(StreamError::Closed);
        }
        let at = self.mode;
        self.charge(bytes.len())?;
        let written = match at {
            Mode::At(offset) => self.file.write_all_at(bytes, offset),
            Mode::Append if self.append_by_inner => {
                return self.inner.write(Bytes::copy_from_slice(bytes))
            }
            Mode::Append => match append(&self.file, bytes) {
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EOPNOTSUPP)) => {
                    self.append_by_inner = true;
                    return self.inner.write(Bytes::copy_from_slice(bytes));
                }
                other => other,
            },
        };
        written.map_err(|e| {
            self.failed = true;
            StreamError::LastOperationFailed(e.into())
        })
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

/// Appends `data` to `file` on this thread, as wasmtime-wasi does on its
/// pool (`pwritev2` with `RWF_APPEND`: the file description is left as it is).
fn append(file: &std::fs::File, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        let iov = libc::iovec {
            iov_base: data.as_ptr() as *mut libc::c_void,
            iov_len: data.len(),
        };
        // SAFETY: one iovec over `data`, which outlives the call; the
        // descriptor is open for as long as `file` lives.
        let n = unsafe { libc::pwritev2(file.as_raw_fd(), &iov, 1, 0, libc::RWF_APPEND) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        data = &data[n as usize..];
    }
    Ok(())
}

/// Most bytes one write may carry (what wasmtime's file stream allows).
const WRITE_CAPACITY: usize = 64 << 10;

#[wasmtime_wasi::async_trait]
impl Pollable for CountedOutput {
    async fn ready(&mut self) {
        self.inner.ready().await
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for CountedOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.write_here(&bytes)
    }

    async fn blocking_write_and_flush(&mut self, bytes: Bytes) -> StreamResult<()> {
        if self.append_by_inner {
            self.charge(bytes.len())?;
            return self.inner.blocking_write_and_flush(bytes).await;
        }
        self.write_here(&bytes)
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.inner.flush()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        if self.failed {
            return Err(StreamError::Closed);
        }
        if self.append_by_inner {
            return self.inner.check_write();
        }
        Ok(WRITE_CAPACITY)
    }

    fn write_zeroes(&mut self, n: usize) -> StreamResult<()> {
        self.write_here(&vec![0; n])
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

    /// An inner stream that must not be written through: writes are made
    /// by the counted stream on the calling thread.
    struct Unused;

    #[wasmtime_wasi::async_trait]
    impl Pollable for Unused {
        async fn ready(&mut self) {}
    }

    impl OutputStream for Unused {
        fn write(&mut self, _: Bytes) -> StreamResult<()> {
            panic!("written through wasmtime's stream, on its thread pool")
        }
        fn flush(&mut self) -> StreamResult<()> {
            Ok(())
        }
        fn check_write(&mut self) -> StreamResult<usize> {
            Ok(0)
        }
    }

    #[test]
    fn writes_are_made_on_the_calling_thread_where_the_mode_says() {
        let _serial = super::super::fds::SERIAL
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let path = std::env::temp_dir().join(format!("trainbox-inline-{}", std::process::id()));
        std::fs::write(&path, b"0123456789").unwrap();
        let file = Arc::new(
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .unwrap(),
        );
        let disk = Arc::new(Disk::new(
            Usage {
                bytes: 1 << 20,
                files: 10,
            },
            Usage {
                bytes: 10,
                files: 1,
            },
        ));
        let counted = |mode| {
            let files = Arc::new(OpenFiles::with_budget(10, usize::MAX));
            files.acquire().unwrap();
            CountedOutput::new(
                Box::new(Unused),
                file.clone(),
                mode,
                disk.clone(),
                files,
                None,
            )
        };
        let (mut at, mut end) = (counted(Mode::At(2)), counted(Mode::Append));
        assert_eq!(at.check_write().unwrap(), WRITE_CAPACITY);
        at.write(Bytes::from_static(b"ab")).unwrap();
        end.write(Bytes::from_static(b"XY")).unwrap();
        // The positioned stream goes on where it left off, the appending
        // one at the end, whatever the other wrote.
        at.write(Bytes::from_static(b"cd")).unwrap();
        wasmtime_wasi::runtime::in_tokio(end.blocking_write_and_flush(Bytes::from_static(b"Z")))
            .unwrap();
        end.write_zeroes(1).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"01abcd6789XYZ\0");
        assert_eq!(disk.used().bytes, 14);
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
