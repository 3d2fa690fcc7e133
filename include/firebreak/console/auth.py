"""Who is looking at the console, and what they may do.

The console runs inside Airflow's api-server as a plugin app, which Airflow does not
protect (AIRFLOW_NOTES.md): every request proves itself with Airflow's own login, the JWT
the UI holds (the ``_token`` cookie, or ``Authorization: Bearer``). The library never
imports Airflow, so the check is injected: the plugin supplies an :class:`Authenticator`
that verifies the token with Airflow's auth manager and asks it for the user's rights on
the ``incident_response`` DAG (read to see, edit to act). Tests and other hosts may supply
their own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request

from firebreak.errors import FirebreakError

COOKIE = "_token"  # Airflow 3's session cookie (airflow.api_fastapi.auth.managers.base_auth_manager)


@dataclass(frozen=True)
class Viewer:
    """A logged-in person: the name recorded with their actions, and whether they may act."""

    name: str
    can_act: bool


class NotAllowed(FirebreakError):
    """The request is anonymous (401) or the person may not do this (403)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# (request, wants_to_act) -> the viewer; raises NotAllowed.
Authenticator = Callable[[Request, bool], Awaitable[Viewer]]


def token_of(request: Request) -> str | None:
    """The JWT a request carries: an explicit bearer header wins over the UI's cookie (as in Airflow)."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.cookies.get(COOKIE) or None
