//! Waiting inside host calls, bounded by the call's deadline.
//!
//! Epoch interruption stops a plugin's own code, never a plugin blocked in a
//! host call: wasmtime-wasi's synchronous `wasi:io` waits without bound in
//! `poll`, `pollable.block` (which `std::thread::sleep` and clock
//! subscriptions come down to) and the blocking stream operations
//! (`blocking-read`, `blocking-skip`, `blocking-write-and-flush`,
//! `blocking-flush`, `blocking-splice`, and the drop of a stream with an I/O
//! in flight) on HTTP bodies and files. This module replaces those host
//! functions with the same operations run under a timer that ends at
//! [`PluginHost::call_deadline`]: a wait still pending then, or one that
//! starts after it, traps the call with [`DeadlinePassed`], which the fault
//! classification reports as the deadline fault the epoch trap gives.
//! Non-blocking operations are wasmtime-wasi's own, unchanged.

use super::host::PluginHost;
use std::fmt;
use std::future::Future;
use std::time::Instant;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::p2::bindings::sync::io::{poll, streams};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, DynPollable, StreamError};
use wasmtime_wasi_io::bindings::wasi::io::poll as async_poll;
use wasmtime_wasi_io::bindings::wasi::io::streams as async_streams;

/// A host call was still waiting when the deadline of the call into the
/// plugin passed (or began after it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadlinePassed;

impl fmt::Display for DeadlinePassed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the call's deadline passed while the plugin waited in a host call"
        )
    }
}

impl std::error::Error for DeadlinePassed {}

impl From<DeadlinePassed> for StreamError {
    fn from(d: DeadlinePassed) -> Self {
        StreamError::Trap(d.into())
    }
}

/// Links the deadline-bound `wasi:io/poll` and `wasi:io/streams` over the
/// ones `wasmtime_wasi::p2::add_to_linker_sync` linked.
pub(super) fn add_to_linker(linker: &mut Linker<PluginHost>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let linked = poll::add_to_linker::<PluginHost, Bounded>(linker, Waits::of)
        .and_then(|()| streams::add_to_linker::<PluginHost, Bounded>(linker, Waits::of));
    linker.allow_shadowing(false);
    linked
}

/// The `HasData` of [`Waits`].
struct Bounded;

impl HasData for Bounded {
    type Data<'a> = Waits<'a>;
}

/// A plugin's resource table, and when its current call must end.
struct Waits<'a> {
    table: &'a mut ResourceTable,
    deadline: Option<Instant>,
}

impl Waits<'_> {
    fn of(host: &mut PluginHost) -> Waits<'_> {
        Waits {
            deadline: host.call_deadline,
            table: &mut host.table,
        }
    }
}

/// Runs `wait` on wasmtime-wasi's runtime until it ends or `deadline`
/// passes; past the deadline it is not started at all.
fn bounded<T, E: From<DeadlinePassed>>(
    deadline: Option<Instant>,
    wait: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let Some(deadline) = deadline else {
        return wasmtime_wasi::runtime::in_tokio(wait);
    };
    if Instant::now() >= deadline {
        return Err(DeadlinePassed.into());
    }
    let until = tokio::time::Instant::from_std(deadline);
    wasmtime_wasi::runtime::in_tokio(async move {
        tokio::time::timeout_at(until, wait)
            .await
            .unwrap_or_else(|_| Err(DeadlinePassed.into()))
    })
}

/// [`bounded`], for an operation that is usually done at once (a flush
/// or a write to a file, which `fs/streams.rs` makes on this thread):
/// polled once first, and only when it is not done run on the runtime, so
/// that such a call costs no thread switch (tokio's timer and its park). Not
/// for readiness waits (`poll`, `block`): wasmtime-wasi yields to its
/// runtime before those so that its background work is not starved by a
/// guest looping on a pollable that is always ready.
fn bounded_quick<T, E: From<DeadlinePassed>>(
    deadline: Option<Instant>,
    wait: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    if deadline.is_some_and(|d| Instant::now() >= d) {
        return Err(DeadlinePassed.into());
    }
    let mut wait = std::pin::pin!(wait);
    let done = wasmtime_wasi::runtime::with_ambient_tokio_runtime(|| {
        wasmtime_wasi::runtime::poll_noop(wait.as_mut())
    });
    match done {
        Some(result) => result,
        None => bounded(deadline, wait),
    }
}

type StreamResult<T> = Result<T, StreamError>;

impl poll::Host for Waits<'_> {
    fn poll(&mut self, pollables: Vec<Resource<DynPollable>>) -> wasmtime::Result<Vec<u32>> {
        bounded(self.deadline, async_poll::Host::poll(self.table, pollables))
    }
}

impl poll::HostPollable for Waits<'_> {
    fn ready(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<bool> {
        poll::HostPollable::ready(self.table, pollable)
    }

    fn block(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        bounded(
            self.deadline,
            async_poll::HostPollable::block(self.table, pollable),
        )
    }

    fn drop(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        poll::HostPollable::drop(self.table, pollable)
    }
}

impl streams::Host for Waits<'_> {
    fn convert_stream_error(&mut self, err: StreamError) -> wasmtime::Result<streams::StreamError> {
        streams::Host::convert_stream_error(self.table, err)
    }
}

impl streams::HostInputStream for Waits<'_> {
    fn drop(&mut self, stream: Resource<DynInputStream>) -> wasmtime::Result<()> {
        // Waits for a read in flight (a file read on a blocking thread).
        bounded(
            self.deadline,
            async_streams::HostInputStream::drop(self.table, stream),
        )
    }

    fn read(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<Vec<u8>> {
        streams::HostInputStream::read(self.table, stream, len)
    }

    fn blocking_read(
        &mut self,
        stream: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<Vec<u8>> {
        bounded(
            self.deadline,
            async_streams::HostInputStream::blocking_read(self.table, stream, len),
        )
    }

    fn skip(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<u64> {
        streams::HostInputStream::skip(self.table, stream, len)
    }

    fn blocking_skip(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<u64> {
        bounded(
            self.deadline,
            async_streams::HostInputStream::blocking_skip(self.table, stream, len),
        )
    }

    fn subscribe(
        &mut self,
        stream: Resource<DynInputStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        streams::HostInputStream::subscribe(self.table, stream)
    }
}

impl streams::HostOutputStream for Waits<'_> {
    fn drop(&mut self, stream: Resource<DynOutputStream>) -> wasmtime::Result<()> {
        // Waits for a write in flight (an HTTP body's; file writes are made
        // on this thread).
        bounded_quick(
            self.deadline,
            async_streams::HostOutputStream::drop(self.table, stream),
        )
    }

    fn check_write(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<u64> {
        streams::HostOutputStream::check_write(self.table, stream)
    }

    fn write(&mut self, stream: Resource<DynOutputStream>, bytes: Vec<u8>) -> StreamResult<()> {
        streams::HostOutputStream::write(self.table, stream, bytes)
    }

    fn blocking_write_and_flush(
        &mut self,
        stream: Resource<DynOutputStream>,
        bytes: Vec<u8>,
    ) -> StreamResult<()> {
        bounded_quick(
            self.deadline,
            async_streams::HostOutputStream::blocking_write_and_flush(self.table, stream, bytes),
        )
    }

    fn blocking_write_zeroes_and_flush(
        &mut self,
        stream: Resource<DynOutputStream>,
        len: u64,
    ) -> StreamResult<()> {
        bounded_quick(
            self.deadline,
            async_streams::HostOutputStream::blocking_write_zeroes_and_flush(
                self.table, stream, len,
            ),
        )
    }

    fn subscribe(
        &mut self,
        stream: Resource<DynOutputStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        streams::HostOutputStream::subscribe(self.table, stream)
    }

    fn write_zeroes(&mut self, stream: Resource<DynOutputStream>, len: u64) -> StreamResult<()> {
        streams::HostOutputStream::write_zeroes(self.table, stream, len)
    }

    fn flush(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<()> {
        streams::HostOutputStream::flush(self.table, stream)
    }

    fn blocking_flush(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<()> {
        bounded_quick(
            self.deadline,
            async_streams::HostOutputStream::blocking_flush(self.table, stream),
        )
    }

    fn splice(
        &mut self,
        dst: Resource<DynOutputStream>,
        src: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        streams::HostOutputStream::splice(self.table, dst, src, len)
    }

    fn blocking_splice(
        &mut self,
        dst: Resource<DynOutputStream>,
        src: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        bounded(
            self.deadline,
            async_streams::HostOutputStream::blocking_splice(self.table, dst, src, len),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_wait_ends_at_the_deadline() {
        let deadline = Instant::now() + Duration::from_millis(50);
        let started = Instant::now();
        let r: wasmtime::Result<()> = bounded(Some(deadline), async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(())
        });
        let err = r.unwrap_err();
        assert!(err.downcast_ref::<DeadlinePassed>().is_some(), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_wait_past_the_deadline_traps_at_once() {
        let past = Instant::now() - Duration::from_millis(1);
        let r: StreamResult<u8> = bounded(Some(past), async { Ok(1) });
        assert!(matches!(r, Err(StreamError::Trap(e)) if e.is::<DeadlinePassed>()));
        let r: wasmtime::Result<u8> =
            bounded(Some(Instant::now() + Duration::from_secs(5)), async {
                Ok(1)
            });
        assert_eq!(r.unwrap(), 1, "a wait that ends in time returns");
    }
}
