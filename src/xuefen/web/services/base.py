"""What every service shares: who acts (``Actor``) and how a service refuses.

The errors carry a message for the user, in Chinese; views and the API turn
them into answers (``Denied`` → 404 on pages / 403 in the API, ``Conflict``
→ a stale page or a state that moved on, 409, ``ServiceError`` → 400).
They used to live in ``services.ledger``, which still re-exports them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class ServiceError(Exception):
    """A refused action, with a message for the user in Chinese."""


class Denied(ServiceError):
    """The actor may not do this (role or scope)."""


class Conflict(ServiceError):
    """The object is not (or no longer) in a state the action applies to."""


@dataclass(frozen=True)
class Actor:
    user: Any
    ip: str | None = None
