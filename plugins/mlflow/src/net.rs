//! Sending requests to the tracking server: the [`Net`] the engine uses,
//! and [`WasiNet`], its wasi:http implementation.
//!
//! `WasiNet` is the SDK's `http::request` plus what this plugin needs and
//! the SDK does not offer: a timeout per request (the engine must end its
//! work well inside the host's per-call deadline: a request still blocked at
//! the deadline makes the call a fault) and errors told apart by kind
//! (denied, timed out, other).

use crate::wire::Request;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};
use wasip2::io::streams::StreamError;

/// A reply: status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

/// Why no reply came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetError {
    /// The host refused the origin: it is not in `allow_http`.
    Denied,
    /// No reply in time (the server may still have done the request).
    Timeout(String),
    /// Anything else: refused connection, DNS, reset.
    Failed(String),
}

impl std::fmt::Display for NetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NetError::Denied => write!(f, "HTTP request denied (origin not granted)"),
            NetError::Timeout(why) | NetError::Failed(why) => write!(f, "{why}"),
        }
    }
}

/// What the engine needs of the world: requests, a clock, a pause.
pub trait Net {
    /// Sends `request` and waits at most about `timeout_ms` for the reply.
    fn send(&mut self, request: &Request, timeout_ms: u64) -> Result<Reply, NetError>;
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
    fn sleep_ms(&mut self, ms: u64);
}

/// Requests to the tracking server over wasi:http.
pub struct WasiNet {
    scheme: Scheme,
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
        let (scheme, rest) = uri.split_once("://").ok_or_else(server_only)?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            _ => return Err(server_only()),
        };
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(format!("MLFLOW_TRACKING_URI={uri:?} has no host"));
        }
        Ok(WasiNet {
            scheme,
            authority: authority.to_string(),
            prefix: prefix.to_string(),
            authorization,
        })
    }
}

impl Net for WasiNet {
    fn send(&mut self, request: &Request, timeout_ms: u64) -> Result<Reply, NetError> {
        let failed = |what: &str| NetError::Failed(what.to_string());
        let mut headers: Vec<(String, Vec<u8>)> = vec![
            ("accept".into(), b"application/json".to_vec()),
            ("user-agent".into(), b"trainbox-mlflow".to_vec()),
        ];
        let body = request.body.as_bytes();
        if !body.is_empty() {
            headers.push(("content-type".into(), b"application/json".to_vec()));
            headers.push(("content-length".into(), body.len().to_string().into_bytes()));
        }
        if let Some(auth) = &self.authorization {
            headers.push(("authorization".into(), auth.clone().into_bytes()));
        }
        let fields = Fields::from_list(&headers).map_err(|e| failed(&format!("headers: {e:?}")))?;
        let req = OutgoingRequest::new(fields);
        let method = if request.method == "GET" {
            Method::Get
        } else {
            Method::Post
        };
        req.set_method(&method).map_err(|()| failed("bad method"))?;
        req.set_scheme(Some(&self.scheme))
            .map_err(|()| failed("bad scheme"))?;
        req.set_authority(Some(&self.authority))
            .map_err(|()| failed("bad host"))?;
        req.set_path_with_query(Some(&format!("{}{}", self.prefix, request.path)))
            .map_err(|()| failed("bad path"))?;
        // Connecting and reading the body get half of the time: together
        // with waiting for the reply the request stays under about twice it.
        let nanos = |ms: u64| Duration::from_millis(ms.max(1)).as_nanos() as u64;
        let options = RequestOptions::new();
        let _ = options.set_connect_timeout(Some(nanos(timeout_ms / 2)));
        let _ = options.set_first_byte_timeout(Some(nanos(timeout_ms)));
        let _ = options.set_between_bytes_timeout(Some(nanos(timeout_ms / 2)));
        let out_body = req.body().map_err(|()| failed("body taken"))?;
        let future = outgoing_handler::handle(req, Some(options)).map_err(error)?;
        {
            let out = out_body.write().map_err(|()| failed("body stream taken"))?;
            for chunk in body.chunks(4096) {
                // A refused request shows in the response below.
                if out.blocking_write_and_flush(chunk).is_err() {
                    break;
                }
            }
        }
        let _ = OutgoingBody::finish(out_body, None);
        future.subscribe().block();
        let response = future
            .get()
            .ok_or_else(|| failed("the response never came"))?
            .map_err(|()| failed("the response was taken"))?
            .map_err(error)?;
        let status = response.status();
        let in_body = response
            .consume()
            .map_err(|()| failed("reply body taken"))?;
        let mut bytes = Vec::new();
        {
            let stream = in_body
                .stream()
                .map_err(|()| failed("reply stream taken"))?;
            loop {
                match stream.blocking_read(64 * 1024) {
                    Ok(chunk) => bytes.extend_from_slice(&chunk),
                    Err(StreamError::Closed) => break,
                    Err(StreamError::LastOperationFailed(e)) => {
                        return Err(NetError::Failed(format!(
                            "reading the reply: {}",
                            e.to_debug_string()
                        )))
                    }
                }
            }
        }
        drop(IncomingBody::finish(in_body));
        Ok(Reply {
            status,
            body: String::from_utf8_lossy(&bytes).into_owned(),
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
}

/// `scheme://host:port` of a URI, the port written as the host normalizes it.
pub fn origin(uri: &str) -> String {
    let (scheme, rest) = uri.split_once("://").unwrap_or(("http", uri));
    let authority = rest.split('/').next().unwrap_or(rest);
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if has_port {
        format!("{scheme}://{authority}")
    } else {
        let port = if scheme == "https" { 443 } else { 80 };
        format!("{scheme}://{authority}:{port}")
    }
}

/// A wasi:http error as the engine tells them apart.
fn error(e: ErrorCode) -> NetError {
    match e {
        ErrorCode::HttpRequestDenied => NetError::Denied,
        ErrorCode::ConnectionTimeout => NetError::Timeout("timed out connecting".into()),
        ErrorCode::ConnectionReadTimeout
        | ErrorCode::ConnectionWriteTimeout
        | ErrorCode::HttpResponseTimeout => {
            NetError::Timeout("timed out waiting for the reply".into())
        }
        ErrorCode::ConnectionRefused => NetError::Failed("connection refused".into()),
        ErrorCode::DnsError(_) | ErrorCode::DnsTimeout | ErrorCode::DestinationNotFound => {
            NetError::Failed("the host name does not resolve".into())
        }
        other => NetError::Failed(format!("{other:?}")),
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
