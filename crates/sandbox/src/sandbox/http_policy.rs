//! Outgoing HTTP (`wasi:http/outgoing-handler`) for plugins: denied unless
//! the request's origin (`scheme://host:port`) is in the plugin's
//! `allow_http` grant. An allowed request goes to wasmtime-wasi-http's
//! default sender with its timeouts capped by the plugin's HTTP timeout and
//! by what is left of the current call's deadline: epoch interruption does
//! not fire while the plugin is blocked in a host call, so this cap is what
//! bounds how long a plugin can hold the training thread on the network.
//! Each connection is a host socket (a descriptor): a plugin may have at
//! most [`MAX_CONNECTIONS`] open at once, so that its requests cannot take
//! the descriptors the host needs for its own checkpoints.

use super::fs::fds::OpenFiles;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// `scheme://host:port` in canonical form: lowercase scheme and host, the
/// port always written (80 for http, 443 for https).
pub fn normalize_origin(text: &str) -> Result<String, String> {
    let uri: http::Uri = text
        .parse()
        .map_err(|e| format!("{text:?} is not an origin: {e}"))?;
    let bad = || {
        format!("{text:?} is not an origin; write scheme://host[:port], e.g. \"https://api.example.com\" or \"http://127.0.0.1:8080\"")
    };
    if uri
        .path_and_query()
        .is_some_and(|p| p.as_str() != "/" && !p.as_str().is_empty())
    {
        return Err(bad());
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(bad());
    }
    origin_of(&uri).ok_or_else(bad)
}

/// The origin a request URI goes to, or none when it has no scheme, no
/// host, or a scheme other than http and https.
pub fn origin_of(uri: &http::Uri) -> Option<String> {
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let authority = uri.authority()?;
    let host = authority.host().to_ascii_lowercase();
    if host.is_empty() {
        return None;
    }
    let port = authority.port_u16().unwrap_or(default_port);
    Some(format!("{scheme}://{host}:{port}"))
}

/// Most HTTP connections one plugin instance may have open at once; a
/// request past it fails with `connection-limit-reached`.
pub const MAX_CONNECTIONS: usize = 16;

/// One open connection of a plugin, counted until dropped (when the
/// connection's I/O ends, or the request fails): against
/// [`MAX_CONNECTIONS`], and as one of the plugin's open descriptors.
struct Connection {
    count: Arc<AtomicUsize>,
    /// The descriptor slot it holds, if the store counts descriptors.
    slot: Option<Arc<OpenFiles>>,
}

impl Connection {
    fn open(count: &Arc<AtomicUsize>, files: Option<&Arc<OpenFiles>>) -> Option<Connection> {
        let n = count.fetch_add(1, Ordering::AcqRel);
        let mut guard = Connection {
            count: count.clone(),
            slot: None,
        };
        if n >= MAX_CONNECTIONS {
            return None;
        }
        if let Some(files) = files {
            files.acquire().ok()?;
            guard.slot = Some(files.clone());
        }
        Some(guard)
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
        if let Some(files) = &self.slot {
            files.release(None);
        }
    }
}

/// A plugin's HTTP policy: the `WasiHttpHooks` of its store.
pub struct HttpPolicy {
    plugin: String,
    /// Its connections open now.
    connections: Arc<AtomicUsize>,
    /// Its open descriptors, which each connection is one of (none in the
    /// `describe` store, which sends nothing).
    pub(super) files: Option<Arc<OpenFiles>>,
    /// Whether the connection limit was reported.
    limit_reported: bool,
    /// Granted origins, normalized.
    allow: Vec<String>,
    /// Longest a request may take to connect, to its first response byte,
    /// and between two response body frames.
    timeout: Duration,
    /// When the current call into the plugin must end (set by the host
    /// before each call, copied here on every wasi:http call).
    pub(super) deadline: Option<Instant>,
}

impl HttpPolicy {
    pub fn new(plugin: &str, allow: Vec<String>, timeout: Duration) -> Self {
        HttpPolicy {
            plugin: plugin.to_string(),
            connections: Arc::default(),
            files: None,
            limit_reported: false,
            allow,
            timeout,
            deadline: None,
        }
    }

    /// No origin allowed (the `describe` store).
    pub fn deny_all(plugin: &str) -> Self {
        Self::new(plugin, Vec::new(), Duration::ZERO)
    }

    /// The cap on every timeout of a request sent now.
    fn cap(&self) -> Duration {
        match self.deadline {
            Some(d) => self
                .timeout
                .min(d.saturating_duration_since(Instant::now())),
            None => self.timeout,
        }
        // tokio's interval panics on zero; the default sender clamps only
        // the between-bytes timeout.
        .max(Duration::from_millis(1))
    }
}

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

/// Bytes one write to an outgoing body may carry; with one chunk buffered
/// and one in flight, what an unsent body holds in host memory is twice it.
pub const BODY_CHUNK: usize = 64 << 10;

impl WasiHttpHooks for HttpPolicy {
    // An outgoing body buffers in host memory, outside the plugin's memory
    // cap, and one needs no grant (it is buffered before any request is
    // sent): keep it small (wasmtime's default is 2 MiB a body).
    fn p2_outgoing_body_buffer_chunks(&mut self) -> usize {
        1
    }

    fn p2_outgoing_body_chunk_size(&mut self) -> usize {
        BODY_CHUNK
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> SendFuture {
        let origin = origin_of(request.uri());
        let allowed = origin.as_ref().is_some_and(|o| self.allow.contains(o));
        if !allowed {
            crate::ui::warn(&format!(
                "plugin {}: HTTP request to {} denied: not in plugins.{}.allow_http",
                self.plugin,
                origin.as_deref().unwrap_or("(no origin)"),
                self.plugin.split('#').next().unwrap_or(&self.plugin),
            ));
            // Keep taking (and dropping) the body the guest writes, so that
            // its writes succeed and it reads `http-request-denied` from the
            // response future instead of a closed body stream.
            let mut body = request.into_body();
            return Box::new(async move {
                tokio::spawn(async move {
                    use http_body_util::BodyExt;
                    while let Some(Ok(_)) = body.frame().await {}
                });
                Err(Error::HttpRequestDenied)
            });
        }
        let Some(connection) = Connection::open(&self.connections, self.files.as_ref()) else {
            if !std::mem::replace(&mut self.limit_reported, true) {
                crate::ui::warn(&format!(
                    "plugin {}: more than {MAX_CONNECTIONS} HTTP connections open at once, or all its open-file slots taken; requests past it fail with connection-limit-reached",
                    self.plugin
                ));
            }
            return Box::new(async { Err(Error::ConnectionLimitReached) });
        };
        let cap = self.cap();
        let clamp = |t: Option<Duration>| Some(t.map_or(cap, |t| t.min(cap)));
        let options = options.unwrap_or_default();
        let options = RequestOptions {
            connect_timeout: clamp(options.connect_timeout),
            first_byte_timeout: clamp(options.first_byte_timeout),
            between_bytes_timeout: clamp(options.between_bytes_timeout),
        };
        Box::new(async move {
            use http_body_util::BodyExt;
            // One bound on connect + TLS + request + response head together.
            let send = wasmtime_wasi_http::default_send_request(request, Some(options));
            let (res, io) = tokio::time::timeout(cap, send)
                .await
                .map_err(|_| Error::HttpResponseTimeout)??;
            // The connection stays counted for as long as its I/O runs.
            let io = async move {
                let _connection = connection;
                io.await
            };
            Ok((
                res.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = Result<(), Error>> + Send>,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_counted_until_dropped() {
        let count = Arc::default();
        let open: Vec<Connection> = (0..MAX_CONNECTIONS)
            .map(|_| Connection::open(&count, None).expect("within the limit"))
            .collect();
        assert!(
            Connection::open(&count, None).is_none(),
            "one past the limit"
        );
        drop(open);
        assert_eq!(count.load(Ordering::Acquire), 0);
        assert!(Connection::open(&count, None).is_some());
    }

    #[test]
    fn a_connection_takes_one_of_the_plugins_descriptor_slots() {
        let _serial = super::super::fs::fds::SERIAL
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let count = Arc::default();
        let files = Arc::new(OpenFiles::with_budget(2, usize::MAX));
        files.acquire().unwrap();
        let c = Connection::open(&count, Some(&files)).expect("one slot left");
        assert!(
            Connection::open(&count, Some(&files)).is_none(),
            "no slot left"
        );
        assert_eq!(
            count.load(Ordering::Acquire),
            1,
            "the refused one is not counted"
        );
        drop(c);
        assert_eq!(files.open(), 1);
    }

    #[test]
    fn origins_are_normalized() {
        assert_eq!(
            normalize_origin("http://127.0.0.1:8765").unwrap(),
            "http://127.0.0.1:8765"
        );
        assert_eq!(
            normalize_origin("HTTPS://Example.COM").unwrap(),
            "https://example.com:443"
        );
        assert_eq!(
            normalize_origin("http://example.com/").unwrap(),
            "http://example.com:80"
        );
        assert_eq!(
            normalize_origin("http://[::1]:9").unwrap(),
            "http://[::1]:9"
        );
        assert!(normalize_origin("http://example.com/path").is_err());
        assert!(normalize_origin("ftp://example.com").is_err());
        assert!(normalize_origin("example.com").is_err());
        assert!(normalize_origin("http://u@example.com").is_err());
    }
}
