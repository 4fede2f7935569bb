"""The generated bindings this SDK uses, found once, when the SDK is imported.

componentize-py generates the package ``wit_world`` for the world a guest is built against.
An interface's module is named after the interface, or after its package and the interface
when two share a name: in ``connector`` (which has ``wasi:filesystem/types`` too) the HTTP
types are ``wasi_http_types``, in ``handler`` they are ``types``.

The lookups happen at import time on purpose: componentize-py runs the guest's imports while
it builds the component and snapshots the result, and the module files are not there when
the component runs. A module the world does not have is ``None`` here, so a guest built for a
world without, say, ``warden:host/secrets`` can still use the HTTP helper; using the missing
part raises :func:`missing`'s ImportError.
"""

import importlib
from types import ModuleType
from typing import Optional


def _first(*names: str) -> Optional[ModuleType]:
    for name in names:
        try:
            return importlib.import_module(f"wit_world.imports.{name}")
        except ModuleNotFoundError:
            continue
    return None


HTTP_TYPES = _first("wasi_http_types", "types")
OUTGOING_HANDLER = _first("outgoing_handler")
STREAMS = _first("streams")
SECRETS = _first("secrets")


def need(module: Optional[ModuleType], interface: str) -> ModuleType:
    """``module``, or an ImportError that names the interface the world lacks."""
    if module is None:
        raise ImportError(
            f"the component's world does not import {interface}: build it against warden's "
            "`connector` or `handler` world (componentize-py -d WIT -w connector …)"
        )
    return module
