"""The SDK's exceptions.

Refusals by warden's policy (:class:`Denied`, :class:`NotGranted`, :class:`NotRevealable`)
derive from :class:`Refused`, and each is in the audit log. Transport failures are
:class:`HttpError`; a request the SDK cannot build is :class:`InvalidRequest`.
"""


class WardenError(Exception):
    """Base class of every exception this SDK raises."""


class Refused(WardenError):
    """warden's policy refused the operation; the refusal is in the audit log."""


class Denied(Refused):
    """warden refused an HTTP request (``HTTP-request-denied``): its URL or method is outside
    the manifest's ``[[http]]`` rules, or it names a secret outside the secret's binding."""

    def __init__(self, url: str):
        super().__init__(f"{url}: refused by warden's policy")
        self.url = url


class NotGranted(Refused):
    """The manifest grants no secret by this name."""

    def __init__(self, name: str):
        super().__init__(f"secret {name!r}: not granted by the manifest")
        self.name = name


class NotRevealable(Refused):
    """The secret is granted for injection only: its manifest entry does not set
    ``reveal = true``."""

    def __init__(self, name: str):
        super().__init__(f"secret {name!r}: granted for injection only, not revealable")
        self.name = name


class HttpError(WardenError):
    """The request left (or was about to) and failed: connection refused, timeout, a
    response over warden's size cap, … ``code`` is the ``wasi:http`` error code."""

    def __init__(self, url: str, code: object):
        super().__init__(f"{url}: {describe(code)}")
        self.url = url
        self.code = code


class InvalidRequest(WardenError):
    """A request the SDK cannot send: a URL without scheme or host, a header wasi:http
    refuses (bad syntax, or one the host sets itself such as ``Host``)."""


def describe(code: object) -> str:
    """A wasi:http ``error-code`` as words: the case name, and its payload if it has one."""
    name = type(code).__name__.removeprefix("ErrorCode_")
    words = "".join(f" {c.lower()}" if c.isupper() else c for c in name).strip()
    value = getattr(code, "value", None)
    return f"{words} ({value})" if value is not None else words
