"""warden's Python guest SDK, for components built with componentize-py.

A guest built against one of warden's worlds (``warden wit`` writes them; ``connector`` for a
command, ``handler`` for an HTTP handler) imports its bindings from ``wit_world``, which
componentize-py generates at build time. This package wraps the parts of those bindings a
connector needs:

- :mod:`warden_sdk.secrets`: look up a brokered secret (``warden:host/secrets``) and, where
  the manifest allows it, reveal its value;
- :mod:`warden_sdk.http`: send a request over ``wasi:http/outgoing-handler`` and read the
  whole answer, blocking, optionally naming a secret for warden to inject.

Everything else (files, environment, stdout) is the standard library: componentize-py maps
``open``, ``os.environ`` and ``print`` onto WASI.

Errors are the classes in :mod:`warden_sdk.errors`; a refusal by warden's policy is a
:class:`~warden_sdk.errors.Refused`, kept apart from transport failures.
"""

from .errors import (
    Denied,
    HttpError,
    InvalidRequest,
    NotGranted,
    NotRevealable,
    Refused,
    WardenError,
)

__all__ = [
    "Denied",
    "HttpError",
    "InvalidRequest",
    "NotGranted",
    "NotRevealable",
    "Refused",
    "WardenError",
]

__version__ = "0.1.0"
