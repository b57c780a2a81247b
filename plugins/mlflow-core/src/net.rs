//! Sending requests to the tracking server: the [`Net`] the engine uses,
//! and [`WasiNet`], its wasi:http implementation.
//!
//! `WasiNet` sends through the SDK's `http::send` with a timeout on every
//! request (the engine must end its work well inside the host's per-call
//! deadline: a request still blocked at the deadline makes the call a
//! fault), and the engine tells errors apart by kind (denied, timed out,
//! other).

use crate::wire::Request;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use trainbox_sdk::http;
pub use trainbox_sdk::http::HttpError as NetError;
use url::{ParseError, Url};

/// A reply: status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

/// What the engine needs of the world: requests, a clock, a pause.
pub trait Net {
    /// Sends `request` and waits at most about `timeout_ms` for the reply.
    fn send(&mut self, request: &Request, timeout_ms: u64) -> Result<Reply, NetError>;
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
    fn sleep_ms(&mut self, ms: u64);
    /// The size of a file the plugin may read (a checkpoint's, to upload).
    fn file_len(&mut self, path: &str) -> Result<u64, String>;
}

/// The longest an upload of `len` bytes may take: at least `timeout_ms`,
/// and 10 s plus 100 ms per MB (10 MB/s). A file is streamed, never held
/// whole in the plugin's memory; the event waits for it, as HF's
/// `log_artifacts` does (the host gives such a plugin 120 s per event).
pub fn upload_timeout_ms(timeout_ms: u64, len: u64) -> u64 {
    timeout_ms.max(10_000 + len / 10_000)
}

/// Requests to the tracking server over wasi:http.
pub struct WasiNet {
    /// `http` or `https`.
    scheme: &'static str,
    authority: String,
    /// The path of the tracking URI (`/prefix` behind a proxy), or empty.
    prefix: String,
    authorization: Option<String>,
}

impl WasiNet {
    /// For `uri` (`http[s]://host[:port][/prefix]`); fails on another scheme.
    pub fn new(uri: &str, authorization: Option<String>) -> Result<WasiNet, String> {
        let server_only = || {
            format!(
            "MLFLOW_TRACKING_URI={uri:?}: this plugin logs to a tracking server only (http:// or https://); start one (`mlflow server --host 127.0.0.1 --port 5000`) and set MLFLOW_TRACKING_URI=http://127.0.0.1:5000"
        )
        };
        let url = Url::parse(uri).map_err(|e| match e {
            ParseError::RelativeUrlWithoutBase => server_only(),
            ParseError::EmptyHost => format!("MLFLOW_TRACKING_URI={uri:?} has no host"),
            e => format!("MLFLOW_TRACKING_URI={uri:?}: {e}"),
        })?;
        let scheme = match url.scheme() {
            "http" => "http",
            "https" => "https",
            _ => return Err(server_only()),
        };
        Ok(WasiNet {
            scheme,
            authority: authority(&url)
                .ok_or_else(|| format!("MLFLOW_TRACKING_URI={uri:?} has no host"))?,
            prefix: url.path().trim_end_matches('/').to_string(),
            authorization,
        })
    }
}

/// `host[:port]` of a URL (the port only when not the scheme's default).
fn authority(url: &Url) -> Option<String> {
    let host = url.host_str().filter(|h| !h.is_empty())?;
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    })
}

impl Net for WasiNet {
    fn send(&mut self, request: &Request, timeout_ms: u64) -> Result<Reply, NetError> {
        let url = format!(
            "{}://{}{}{}",
            self.scheme, self.authority, self.prefix, request.path
        );
        let mut headers = vec![
            ("accept", "application/json"),
            ("user-agent", "trainbox-mlflow"),
        ];
        if let Some(auth) = &self.authorization {
            headers.push(("authorization", auth));
        }
        let (method, body) = match (&request.upload, request.method) {
            (Some(_), _) => {
                headers.push(("content-type", "application/octet-stream"));
                ("PUT", &[][..])
            }
            (None, "GET") => ("GET", &[][..]),
            (None, _) => ("POST", request.body.as_bytes()),
        };
        let mut http_request = http::Request {
            method,
            url: &url,
            headers: &headers,
            body,
            timeout: Some(Duration::from_millis(timeout_ms.max(1))),
        };
        let reply = match &request.upload {
            Some(upload) => {
                let mut file = std::fs::File::open(&upload.file)
                    .map_err(|e| NetError::Failed(format!("cannot read {}: {e}", upload.file)))?;
                let ms = upload_timeout_ms(timeout_ms, upload.len);
                http_request.timeout = Some(Duration::from_millis(ms));
                http::send_reader(&http_request, &mut file, upload.len)?
            }
            None => http::send(&http_request)?,
        };
        Ok(Reply {
            status: reply.status,
            body: reply.text(),
        })
    }

    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }

    fn sleep_ms(&mut self, ms: u64) {
        std::thread::sleep(Duration::from_millis(ms));
    }

    fn file_len(&mut self, path: &str) -> Result<u64, String> {
        let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
        if !meta.is_file() {
            return Err("not a file".into());
        }
        Ok(meta.len())
    }
}

/// `scheme://host:port` of a URI, the port written as the host normalizes it.
pub fn origin(uri: &str) -> String {
    let Ok(url) = Url::parse(uri) else {
        return uri.to_string();
    };
    match (url.host_str(), url.port_or_known_default()) {
        (Some(host), Some(port)) => format!("{}://{host}:{port}", url.scheme()),
        _ => uri.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_parts() {
        let n = WasiNet::new("http://127.0.0.1:5000", None).unwrap();
        assert_eq!(
            (n.authority.as_str(), n.prefix.as_str()),
            ("127.0.0.1:5000", "")
        );
        let n = WasiNet::new("https://host/mlflow/", None).unwrap();
        assert_eq!(
            (n.authority.as_str(), n.prefix.as_str()),
            ("host", "/mlflow")
        );
        let err = WasiNet::new("file:./mlruns", None).err().unwrap();
        assert!(err.contains("tracking server only"), "{err}");
        let err = WasiNet::new("sqlite:///x.db", None).err().unwrap();
        assert!(err.contains("tracking server only"), "{err}");
        let err = WasiNet::new("./mlruns", None).err().unwrap();
        assert!(err.contains("tracking server only"), "{err}");
        let err = WasiNet::new("http://", None).err().unwrap();
        assert!(err.contains("has no host"), "{err}");
        let n = WasiNet::new("HTTP://User:pw@Host:80/a/b", None).unwrap();
        assert_eq!(
            (n.scheme, n.authority.as_str(), n.prefix.as_str()),
            ("http", "host", "/a/b")
        );
        let n = WasiNet::new("http://[::1]:5000", None).unwrap();
        assert_eq!(n.authority, "[::1]:5000");
    }

    #[test]
    fn origins_have_a_port() {
        assert_eq!(origin("http://127.0.0.1:5000"), "http://127.0.0.1:5000");
        assert_eq!(
            origin("http://127.0.0.1:5000/prefix/x"),
            "http://127.0.0.1:5000"
        );
        assert_eq!(
            origin("https://mlflow.example.com"),
            "https://mlflow.example.com:443"
        );
        assert_eq!(origin("http://[::1]"), "http://[::1]:80");
    }
}
