"""Brokered secrets over ``warden:host/secrets``.

The manifest's ``[secrets.NAME]`` tables decide what exists. A guest refers to a secret by its
name; warden keeps the value and adds it to outbound requests inside the secret's binding (see
:meth:`warden_sdk.http.Request.secret`). Only a secret whose manifest entry sets
``reveal = true`` can be read in plaintext. Every lookup and every reveal is audited, allowed
or not::

    from warden_sdk import secrets

    key = secrets.open("stripe")          # NotGranted if the manifest has no [secrets.stripe]
    print(key.binding)                    # the URL prefix warden injects it into, or None
    value = key.reveal()                  # NotRevealable unless reveal = true
"""

from typing import Optional

from componentize_py_types import Err

from . import _bindings
from .errors import NotGranted, NotRevealable, WardenError


def _wit():
    return _bindings.need(_bindings.SECRETS, "warden:host/secrets")


def _refusal(name: str, error: object) -> WardenError:
    wit = _wit()
    if error == wit.Error.NOT_REVEALABLE:
        return NotRevealable(name)
    if error == wit.Error.NOT_GRANTED:
        return NotGranted(name)
    return WardenError(f"secret {name!r}: {error}")


class Secret:
    """A granted secret: its name and how warden injects it. The handle holds no value."""

    def __init__(self, handle: object):
        self._handle = handle
        self.name: str = handle.name()
        #: The URL prefix of the requests warden adds this secret to, if it is injected.
        self.binding: Optional[str] = handle.binding()
        #: The header warden sets on those requests, if it is injected.
        self.header: Optional[str] = handle.header()

    def reveal(self) -> str:
        """The plaintext value.

        Raises :class:`~warden_sdk.errors.NotRevealable` unless the manifest sets
        ``reveal = true``. Audited either way.
        """
        try:
            return self._handle.reveal()
        except Err as e:
            raise _refusal(self.name, e.value) from None

    def __repr__(self) -> str:
        return f"Secret(name={self.name!r}, binding={self.binding!r}, header={self.header!r})"


def open(name: str) -> Secret:  # noqa: A001 (the interface's own name for it)
    """Looks a secret up by name.

    Raises :class:`~warden_sdk.errors.NotGranted` when the manifest grants no secret by that
    name. Audited either way.
    """
    try:
        return Secret(_wit().open(name))
    except Err as e:
        raise _refusal(name, e.value) from None
