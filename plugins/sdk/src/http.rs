//! Outgoing HTTP, for plugins granted an origin (`--features http`).
//!
//! The plugin asks for `Capability::Http("http://host:port")` in
//! [`Callback::capabilities`](crate::Callback::capabilities); the user grants
//! it with `plugins.<name>.allow_http`. A request to any other origin fails
//! with `HttpRequestDenied` and never leaves the host. Requests block the
//! training thread: the host caps each one at the plugin's HTTP timeout and
//! at what is left of the current call's deadline.
//!
//! ```no_run
//! let reply = trainbox_sdk::http::request("POST", "http://127.0.0.1:5000/api", &[], br#"{"a": 1}"#)?;
//! assert_eq!(reply.status, 200);
//! # Ok::<(), String>(())
//! ```

use std::time::Duration;
use url::Url;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};
use wasip2::io::streams::StreamError;

/// A response: status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Why no response came.
///
/// A request that creates something on the server (a run, an experiment)
/// must not be sent again blindly after [`HttpError::may_have_arrived`]:
/// the server may have done it, and a retry would make a second one. Look
/// for what the first may have made (by a client-chosen tag or name), or
/// make the request idempotent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The host refused the origin: it is not in `plugins.<name>.allow_http`.
    Denied,
    /// No response in time (the server may still have done the request).
    Timeout(String),
    /// The connection broke after the request was sent, before the whole
    /// reply came (a reset, a cut-off reply): the server may have done it.
    Lost(String),
    /// Anything else: a refused connection, DNS, a bad URL. The request did
    /// not reach the server.
    Failed(String),
}

impl HttpError {
    /// Whether the server may have received and done the request although
    /// no reply came: a timeout or a reply lost on the way.
    pub fn may_have_arrived(&self) -> bool {
        matches!(self, HttpError::Timeout(_) | HttpError::Lost(_))
    }
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Denied => write!(
                f,
                "HTTP request denied (origin not granted: add it to plugins.<name>.allow_http)"
            ),
            HttpError::Timeout(why) | HttpError::Lost(why) | HttpError::Failed(why) => {
                write!(f, "{why}")
            }
        }
    }
}

/// A request to send.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    /// `http[s]://host[:port]/path?query`.
    pub url: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    /// A non-empty body gets `content-length`, and `content-type:
    /// application/json` unless `headers` says otherwise.
    pub body: &'a [u8],
    /// The longest wait for the response (connecting and reading the body
    /// get half of it each); `None`: the host's limits only.
    pub timeout: Option<Duration>,
}

/// Sends a request and waits for the whole response.
pub fn send(r: &Request) -> Result<Response, HttpError> {
    send_body(r, r.body.len() as u64, &mut std::io::Cursor::new(r.body))
}

/// Sends a request whose body is the `len` bytes `body` gives (a file,
/// streamed in chunks: never held whole in the plugin's memory; `r.body`
/// is ignored) and waits for the whole response.
pub fn send_reader(
    r: &Request,
    body: &mut dyn std::io::Read,
    len: u64,
) -> Result<Response, HttpError> {
    send_body(r, len, body)
}

fn send_body(r: &Request, len: u64, body: &mut dyn std::io::Read) -> Result<Response, HttpError> {
    let failed = |what: &str| HttpError::Failed(format!("{}: {what}", r.url));
    let url = Url::parse(r.url).map_err(|e| failed(&e.to_string()))?;
    let host = url.host_str().ok_or_else(|| failed("no host"))?;
    let authority = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    };
    let path = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_string(),
    };
    let mut fields: Vec<(String, Vec<u8>)> = r
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.as_bytes().to_vec()))
        .collect();
    if len > 0 {
        if !fields.iter().any(|(k, _)| k == "content-type") {
            fields.push(("content-type".into(), b"application/json".to_vec()));
        }
        fields.push(("content-length".into(), len.to_string().into_bytes()));
    }
    let fields = Fields::from_list(&fields).map_err(|e| failed(&format!("headers: {e:?}")))?;
    let req = OutgoingRequest::new(fields);
    let method = match r.method {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "PATCH" => Method::Patch,
        other => Method::Other(other.into()),
    };
    req.set_method(&method).map_err(|()| failed("bad method"))?;
    let scheme = match url.scheme() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.into()),
    };
    req.set_scheme(Some(&scheme))
        .map_err(|()| failed("bad scheme"))?;
    req.set_authority(Some(&authority))
        .map_err(|()| failed("bad host"))?;
    req.set_path_with_query(Some(&path))
        .map_err(|()| failed("bad path"))?;
    let options = r.timeout.map(|t| {
        let nanos = |d: Duration| d.max(Duration::from_millis(1)).as_nanos() as u64;
        let options = RequestOptions::new();
        let _ = options.set_connect_timeout(Some(nanos(t / 2)));
        let _ = options.set_first_byte_timeout(Some(nanos(t)));
        let _ = options.set_between_bytes_timeout(Some(nanos(t / 2)));
        options
    });
    let out_body = req.body().map_err(|()| failed("body taken"))?;
    // Send first: the host consumes the body as it is written.
    let future = outgoing_handler::handle(req, options).map_err(kind)?;
    {
        let out = out_body.write().map_err(|()| failed("body stream taken"))?;
        // As much as the host takes at once (its chunk), waiting when it
        // has none; a refused or failed request shows in the response below.
        let ready = out.subscribe();
        let mut chunk = vec![0u8; 64 << 10];
        let mut left = len;
        while left > 0 {
            let permit = match out.check_write() {
                Ok(0) => {
                    ready.block();
                    continue;
                }
                Ok(n) => n,
                Err(_) => break,
            };
            let want = chunk.len().min(permit as usize).min(left as usize);
            let n = match body.read(&mut chunk[..want]) {
                Ok(0) => return Err(failed(&format!("the body ended {left} bytes early"))),
                Ok(n) => n,
                Err(e) => return Err(failed(&format!("reading the body: {e}"))),
            };
            left -= n as u64;
            if out.write(&chunk[..n]).is_err() {
                break;
            }
        }
        let _ = out.blocking_flush();
        drop(ready);
    }
    let _ = OutgoingBody::finish(out_body, None);
    future.subscribe().block();
    let response = future
        .get()
        .ok_or_else(|| failed("the response never came"))?
        .map_err(|()| failed("the response was taken"))?
        .map_err(kind)?;
    let status = response.status();
    let in_body = response
        .consume()
        .map_err(|()| failed("reply body taken"))?;
    let mut body = Vec::new();
    {
        let stream = in_body
            .stream()
            .map_err(|()| failed("reply stream taken"))?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => body.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(HttpError::Lost(format!(
                        "{}: reading the reply: {}",
                        r.url,
                        e.to_debug_string()
                    )))
                }
            }
        }
    }
    drop(IncomingBody::finish(in_body));
    Ok(Response { status, body })
}

/// A wasi:http error, by kind.
fn kind(e: ErrorCode) -> HttpError {
    match e {
        ErrorCode::HttpRequestDenied => HttpError::Denied,
        ErrorCode::ConnectionTimeout => HttpError::Timeout("timed out connecting".into()),
        ErrorCode::ConnectionReadTimeout
        | ErrorCode::ConnectionWriteTimeout
        | ErrorCode::HttpResponseTimeout => {
            HttpError::Timeout("timed out waiting for the reply".into())
        }
        ErrorCode::ConnectionRefused => HttpError::Failed("connection refused".into()),
        ErrorCode::ConnectionTerminated
        | ErrorCode::HttpResponseIncomplete
        | ErrorCode::HttpProtocolError
        | ErrorCode::HttpResponseBodySize(_)
        | ErrorCode::HttpResponseHeaderSectionSize(_)
        | ErrorCode::HttpResponseHeaderSize(_)
        | ErrorCode::HttpResponseTrailerSectionSize(_)
        | ErrorCode::HttpResponseTrailerSize(_)
        | ErrorCode::HttpResponseTransferCoding(_)
        | ErrorCode::HttpResponseContentCoding(_) => {
            HttpError::Lost(format!("the reply was lost ({e:?})"))
        }
        ErrorCode::DnsError(_) | ErrorCode::DnsTimeout | ErrorCode::DestinationNotFound => {
            HttpError::Failed("the host name does not resolve".into())
        }
        other => HttpError::Failed(format!("{other:?}")),
    }
}

/// Sends a request with no timeout of its own; errors as text.
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Response, String> {
    send(&Request {
        method,
        url,
        headers,
        body,
        timeout: None,
    })
    .map_err(|e| format!("{url}: {e}"))
}

/// `GET url`.
pub fn get(url: &str) -> Result<Response, String> {
    request("GET", url, &[], &[])
}

/// `POST url` with a JSON body.
pub fn post_json(url: &str, json: &str) -> Result<Response, String> {
    request("POST", url, &[], json.as_bytes())
}
