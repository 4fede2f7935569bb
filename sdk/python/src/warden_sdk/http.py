"""Outbound HTTP over ``wasi:http/outgoing-handler``, blocking.

::

    from warden_sdk import http

    answer = http.post("http://127.0.0.1:8787/v1/charges", json='{"amount": 1999}',
                       secret="stripe")
    print(answer.status, answer.text())

warden checks every request against the manifest's ``[[http]]`` rules (scheme, host, port,
path prefix, method) before it leaves; one outside them raises
:class:`~warden_sdk.errors.Denied` and is audited. ``secret=NAME`` sets the ``warden-secret``
header: warden removes it, adds the secret's value in the header the manifest configures when
the URL lies inside the secret's binding, and refuses the request otherwise. The guest never
sees the value.

wasi:http is asynchronous: ``handle`` returns a future, and bodies are streams. This module
waits on each with ``pollable.block()``, one request at a time, so a guest needs no event
loop.
"""

from dataclasses import dataclass, field
from typing import Iterable, List, Optional, Tuple, Union

from componentize_py_types import Err, Ok

from . import _bindings
from .errors import Denied, HttpError, InvalidRequest

#: The request header that names the secret a request should carry; warden removes it.
SECRET_HEADER = "warden-secret"

#: The most bytes one ``blocking-write-and-flush`` may be given: wasi:io guarantees 4096.
MAX_WRITE_CHUNK = 4096

#: How much one read of a response body asks for.
READ_CHUNK = 64 * 1024


@dataclass
class Response:
    """An answer, read to its end."""

    status: int
    #: ``(name, value)`` pairs in the order received, names in lower case.
    headers: List[Tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def text(self) -> str:
        """The body as text, invalid UTF-8 replaced."""
        return self.body.decode("utf-8", errors="replace")

    def header(self, name: str) -> Optional[str]:
        """The first value of a header, its name compared without case."""
        for n, v in self.headers:
            if n.lower() == name.lower():
                return v
        return None

    @property
    def ok(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status < 300


def request(
    method: str,
    url: str,
    *,
    headers: Iterable[Tuple[str, str]] = (),
    body: Union[bytes, str, None] = None,
    json: Optional[str] = None,
    secret: Optional[str] = None,
) -> Response:
    """Sends one request and reads the whole answer.

    ``json`` (a JSON text) sets the body and ``Content-Type: application/json``; ``secret``
    names the brokered secret warden should inject. Any status is an answer, not an error.

    Raises :class:`Denied` when warden's policy refuses the request, :class:`HttpError` when
    it fails on the way, :class:`InvalidRequest` when it cannot be built.
    """
    types = _bindings.need(_bindings.HTTP_TYPES, "wasi:http/types")
    handler = _bindings.need(_bindings.OUTGOING_HANDLER, "wasi:http/outgoing-handler")
    scheme, authority, path = _split(url, types)

    pairs = [(n, v) for n, v in headers if n.lower() != SECRET_HEADER]
    if json is not None:
        pairs = [(n, v) for n, v in pairs if n.lower() != "content-type"]
        pairs.append(("content-type", "application/json"))
        body = json
    if secret is not None:
        pairs.append((SECRET_HEADER, secret))
    data = body.encode() if isinstance(body, str) else (body or b"")
    if data or method.upper() not in ("GET", "HEAD"):
        pairs = [(n, v) for n, v in pairs if n.lower() != "content-length"]
        pairs.append(("content-length", str(len(data))))

    fields = types.Fields()
    for name, value in pairs:
        try:
            fields.append(name, value.encode())
        except Err:
            raise InvalidRequest(f"{url}: header {name!r} refused by wasi:http") from None

    outgoing = types.OutgoingRequest(fields)
    for setter, value, what in (
        (outgoing.set_method, _method(method, types), "the method"),
        (outgoing.set_scheme, scheme, "the scheme"),
        (outgoing.set_authority, authority, "the host and port"),
        (outgoing.set_path_with_query, path, "the path"),
    ):
        try:
            setter(value)
        except Err:
            raise InvalidRequest(f"{url}: {what} is not valid") from None
    outgoing_body = outgoing.body()

    # Hand the request over first, then stream the body: the host reads it as it goes.
    try:
        future = handler.handle(outgoing, None)
    except Err as e:
        raise _error(url, e.value, types) from None
    write_failure = _write(outgoing_body, data, types)

    answer = future.get()
    while answer is None:
        future.subscribe().block()
        answer = future.get()
    if isinstance(answer, Ok) and isinstance(answer.value, Ok):
        incoming = answer.value.value
    elif isinstance(answer, Ok):
        raise _error(url, answer.value.value, types)
    else:
        raise _error(url, write_failure or _internal("the answer was taken twice", types), types)

    status = incoming.status()
    got = [(n, v.decode("utf-8", errors="replace")) for n, v in incoming.headers().entries()]
    incoming_body = incoming.consume()
    data = _read(incoming_body, url, types)
    types.IncomingBody.finish(incoming_body)
    return Response(status=status, headers=got, body=data)


def get(url: str, **kwargs) -> Response:
    """A ``GET``: :func:`request` with the method filled in."""
    return request("GET", url, **kwargs)


def post(url: str, **kwargs) -> Response:
    """A ``POST``: :func:`request` with the method filled in."""
    return request("POST", url, **kwargs)


def _split(url: str, types):
    """``(scheme, authority, path-with-query)`` of a URL, as wasi:http sets them."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise InvalidRequest(f"{url}: it has no scheme (http:// or https://)")
    lower = scheme.lower()
    if lower == "http":
        wit_scheme = types.Scheme_Http()
    elif lower == "https":
        wit_scheme = types.Scheme_Https()
    elif scheme:
        wit_scheme = types.Scheme_Other(scheme)
    else:
        raise InvalidRequest(f"{url}: the scheme is empty")
    rest = rest.split("#", 1)[0]
    end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    authority, path = rest[:end], rest[end:]
    if not authority:
        raise InvalidRequest(f"{url}: it has no host")
    if path.startswith("?"):
        raise InvalidRequest(f"{url}: a query needs a path before it")
    return wit_scheme, authority, path or "/"


def _method(name: str, types):
    known = {
        "GET": types.Method_Get,
        "HEAD": types.Method_Head,
        "POST": types.Method_Post,
        "PUT": types.Method_Put,
        "DELETE": types.Method_Delete,
        "CONNECT": types.Method_Connect,
        "OPTIONS": types.Method_Options,
        "TRACE": types.Method_Trace,
        "PATCH": types.Method_Patch,
    }
    case = known.get(name)
    return case() if case else types.Method_Other(name)


def _internal(message: str, types):
    return types.ErrorCode_InternalError(message)


def _error(url: str, code: object, types) -> Exception:
    if isinstance(code, types.ErrorCode_HttpRequestDenied):
        return Denied(url)
    return HttpError(url, code)


def _stream_error(e: object, types) -> object:
    """The wasi:http error code behind a failed stream operation."""
    streams = _bindings.need(_bindings.STREAMS, "wasi:io/streams")
    if isinstance(e, streams.StreamError_LastOperationFailed):
        code = types.http_error_code(e.value)
        return code if code is not None else _internal(e.value.to_debug_string(), types)
    return types.ErrorCode_ConnectionTerminated()


def _write(body, data: bytes, types) -> Optional[object]:
    """Streams ``data`` into the request body and finishes it; the error code on failure."""
    failure = None
    stream = body.write()
    try:
        for start in range(0, len(data), MAX_WRITE_CHUNK):
            stream.blocking_write_and_flush(data[start : start + MAX_WRITE_CHUNK])
    except Err as e:
        failure = _stream_error(e.value, types)
    finally:
        # The stream is the body's child: it must be gone before the body is finished.
        stream.__exit__(None, None, None)
    if failure is None:
        try:
            types.OutgoingBody.finish(body, None)
        except Err as e:
            failure = e.value
    return failure


def _read(body, url: str, types) -> bytes:
    """Reads a response body to its end."""
    streams = _bindings.need(_bindings.STREAMS, "wasi:io/streams")
    stream = body.stream()
    chunks = []
    try:
        while True:
            try:
                chunks.append(stream.blocking_read(READ_CHUNK))
            except Err as e:
                if isinstance(e.value, streams.StreamError_Closed):
                    break
                raise HttpError(url, _stream_error(e.value, types)) from None
    finally:
        stream.__exit__(None, None, None)
    return b"".join(chunks)
