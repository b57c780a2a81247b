"""Outgoing HTTP for trainbox Python plugins, over wasi:http.

A plugin has no sockets: the host sends its requests (`wasi:http`), and only
to the origins the user granted (`plugins.<name>.allow_http`, for a
`types.Capability_Http("http://host:port")` the plugin declared). Two ways:

    import trainbox_http
    reply = trainbox_http.post("http://127.0.0.1:5000/log", b'{"loss": 0.5}')
    reply.status, reply.body, reply.text(), reply.json()

or the standard library, which `trainbox_runtime` points at the same path:

    import urllib.request
    with urllib.request.urlopen(urllib.request.Request(url, data=body)) as r:
        r.status, r.read()

A request blocks the plugin's call until the reply has come; the host caps it
at the plugin's HTTP timeout and at what is left of the call's deadline. A
request to an origin that is not granted raises `Denied` (with urllib:
`urllib.error.URLError`) and never leaves the host.
"""

import io
import json
import urllib.error
import urllib.parse
import urllib.request
import urllib.response
from http.client import HTTPMessage, responses

from componentize_py_types import Err, Ok
from wit_world.imports import outgoing_handler
from wit_world.imports import wasi_http_types as t
from wit_world.imports.streams import StreamError_Closed

_CHUNK = 4096


class HTTPError(Exception):
    """No reply came: a refused connection, a timeout, a bad URL."""


class Denied(HTTPError):
    """The host refused the origin: it is not in `plugins.<name>.allow_http`."""


class Response:
    """A reply: `status`, `headers` (lower-case names), `body` (bytes)."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"Response(status={self.status}, {len(self.body)} bytes)"


# Headers the host sets itself (and refuses from a plugin): the authority
# is the URL's, the connection is the host's.
_HOST_SET = {"host", "connection", "keep-alive", "proxy-connection", "transfer-encoding",
             "upgrade", "te", "http2-settings"}

_METHODS = {"GET": t.Method_Get, "HEAD": t.Method_Head, "POST": t.Method_Post,
            "PUT": t.Method_Put, "DELETE": t.Method_Delete, "PATCH": t.Method_Patch,
            "OPTIONS": t.Method_Options}


def _error(code, url):
    name = type(code).__name__.removeprefix("ErrorCode_")
    if isinstance(code, t.ErrorCode_HttpRequestDenied):
        origin = "{0.scheme}://{0.netloc}".format(urllib.parse.urlsplit(url))
        return Denied(f"HTTP request to {origin} denied: the origin is not granted "
                      f"(the user grants it with plugins.<name>.allow_http)")
    return HTTPError(f"{url}: {name}")


def request(method, url, body=b"", headers=None, timeout=None):
    """Sends one request and returns the whole `Response`; raises `Denied` or
    `HTTPError` when no reply came. `body`: bytes or str; `headers`: a dict;
    `timeout`: seconds (connecting and each read get half of it)."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise HTTPError(f"{url}: not an http:// or https:// URL")
    fields = [(k.lower(), str(v).encode("latin-1")) for k, v in (headers or {}).items()
              if k.lower() not in _HOST_SET]
    if body:
        if not any(k == "content-type" for k, _ in fields):
            fields.append(("content-type", b"application/json"))
        if not any(k == "content-length" for k, _ in fields):
            fields.append(("content-length", str(len(body)).encode()))
    req = t.OutgoingRequest(t.Fields.from_list(fields))
    m = method.upper()
    req.set_method(_METHODS[m]() if m in _METHODS else t.Method_Other(m))
    req.set_scheme(t.Scheme_Http() if parts.scheme == "http" else t.Scheme_Https())
    req.set_authority(parts.netloc)
    req.set_path_with_query((parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
    options = None
    if timeout is not None:
        ns = max(int(timeout * 1e9), 1_000_000)
        options = t.RequestOptions()
        options.set_connect_timeout(ns // 2)
        options.set_first_byte_timeout(ns)
        options.set_between_bytes_timeout(ns // 2)
    out_body = req.body()
    try:
        future = outgoing_handler.handle(req, options)
    except Err as e:
        raise _error(e.value, url) from None
    out = out_body.write()
    for i in range(0, len(body), _CHUNK):
        out.blocking_write_and_flush(body[i:i + _CHUNK])
    out.__exit__(None, None, None)
    t.OutgoingBody.finish(out_body, None)
    future.subscribe().block()
    got = future.get()
    if got is None or isinstance(got, Err):
        raise HTTPError(f"{url}: the response never came")
    if isinstance(got.value, Err):
        raise _error(got.value.value, url)
    reply = got.value.value
    status = reply.status()
    reply_headers = {k: v.decode("latin-1") for k, v in reply.headers().entries()}
    in_body = reply.consume()
    stream = in_body.stream()
    data = bytearray()
    while True:
        try:
            data += stream.blocking_read(64 * 1024)
        except Err as e:
            if isinstance(e.value, StreamError_Closed):
                break
            raise HTTPError(f"{url}: the reply was cut off") from None
    stream.__exit__(None, None, None)
    t.IncomingBody.finish(in_body)
    return Response(status, reply_headers, bytes(data))


def get(url, headers=None, timeout=None):
    """`request("GET", url)`."""
    return request("GET", url, headers=headers, timeout=timeout)


def post(url, body, headers=None, timeout=None):
    """`request("POST", url, body)`; a body without a `content-type` header is
    sent as `application/json`."""
    return request("POST", url, body=body, headers=headers, timeout=timeout)


class WasiHTTPHandler(urllib.request.BaseHandler):
    """`urllib.request`'s handler for http:// and https:// URLs over
    wasi:http, ahead of the socket-based ones (which cannot work in a plugin)."""

    handler_order = 100

    def _open(self, req):
        try:
            reply = request(req.get_method(), req.full_url, body=req.data or b"",
                            headers=dict(req.header_items()), timeout=req.timeout
                            if isinstance(req.timeout, (int, float)) else None)
        except HTTPError as e:
            raise urllib.error.URLError(str(e)) from None
        msg = HTTPMessage()
        for k, v in reply.headers.items():
            msg[k] = v
        resp = urllib.response.addinfourl(io.BytesIO(reply.body), msg, req.full_url, reply.status)
        resp.msg = responses.get(reply.status, "")
        return resp

    http_open = _open
    https_open = _open


def install():
    """Makes `urllib.request.urlopen` send through wasi:http."""
    urllib.request.install_opener(urllib.request.build_opener(WasiHTTPHandler()))
