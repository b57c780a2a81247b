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

use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme};
use wasip2::io::streams::StreamError;

/// A response: status and body.
#[derive(Debug, Clone)]
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

/// Sends a request and waits for the whole response. A JSON body gets
/// `content-type: application/json` unless `headers` says otherwise.
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Response, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("{url}: no scheme"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut fields: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.as_bytes().to_vec()))
        .collect();
    if !body.is_empty() {
        if !fields.iter().any(|(k, _)| k == "content-type") {
            fields.push(("content-type".into(), b"application/json".to_vec()));
        }
        fields.push(("content-length".into(), body.len().to_string().into_bytes()));
    }
    let fields = Fields::from_list(&fields).map_err(|e| format!("headers: {e:?}"))?;
    let req = OutgoingRequest::new(fields);
    let method = match method {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "PATCH" => Method::Patch,
        other => Method::Other(other.into()),
    };
    req.set_method(&method).map_err(|()| "bad method")?;
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.into()),
    };
    req.set_scheme(Some(&scheme)).map_err(|()| "bad scheme")?;
    req.set_authority(Some(authority))
        .map_err(|()| "bad authority")?;
    req.set_path_with_query(Some(path))
        .map_err(|()| "bad path")?;
    let out_body = req.body().map_err(|()| "body taken")?;
    // Send first: the host consumes the body as it is written.
    let future = outgoing_handler::handle(req, None).map_err(|e| format!("{url}: {e}"))?;
    {
        let out = out_body.write().map_err(|()| "body stream taken")?;
        for chunk in body.chunks(4096) {
            // A denied or failed request shows in the response below.
            if out.blocking_write_and_flush(chunk).is_err() {
                break;
            }
        }
    }
    let _ = OutgoingBody::finish(out_body, None);
    let response = {
        let ready = future.subscribe();
        ready.block();
        future.get()
    };
    let response = response
        .ok_or("the response never came")?
        .map_err(|()| "the response was taken")?
        .map_err(|e| format!("{url}: {e}"))?;
    let status = response.status();
    let in_body = response.consume().map_err(|()| "reply body taken")?;
    let mut body = Vec::new();
    {
        let stream = in_body.stream().map_err(|()| "reply stream taken")?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => body.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(format!("{url}: reading the reply: {}", e.to_debug_string()))
                }
            }
        }
    }
    drop(IncomingBody::finish(in_body));
    Ok(Response { status, body })
}

/// `GET url`.
pub fn get(url: &str) -> Result<Response, String> {
    request("GET", url, &[], &[])
}

/// `POST url` with a JSON body.
pub fn post_json(url: &str, json: &str) -> Result<Response, String> {
    request("POST", url, &[], json.as_bytes())
}
