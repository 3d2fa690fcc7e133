"""The alert intake's HTTP surface, a FastAPI app mounted by the Airflow plugin at ``/firebreak``.

Routes: ``POST /alerts/alertmanager`` (webhook version 4), ``POST /alerts/generic`` (the
generic monitor JSON), ``GET /alerts/health``. Airflow does not protect plugin apps, so this
app authenticates every post itself: ``Authorization: Bearer $FIREBREAK_ALERT_TOKEN``,
compared in constant time (or the contents of the file named by ``FIREBREAK_ALERT_TOKEN_FILE``,
for a container secret). Without a configured token it answers 503 (senders retry until
it is configured) rather than accepting anonymous alerts.
"""

from __future__ import annotations

import asyncio
import hmac
import os
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse

from firebreak.alerts.intake import LIMITS, IncidentStarter, Source, receive
from firebreak.bounded_json import JsonRejected, read_stream
from firebreak.settings import Settings

TOKEN_ENV = "FIREBREAK_ALERT_TOKEN"
TOKEN_FILE_ENV = "FIREBREAK_ALERT_TOKEN_FILE"
MAX_BODY_BYTES = LIMITS.max_bytes


def _expected_token() -> str:
    """The intake token: ``$FIREBREAK_ALERT_TOKEN``, else the file ``$FIREBREAK_ALERT_TOKEN_FILE`` names."""
    token = os.environ.get(TOKEN_ENV, "")
    path = os.environ.get(TOKEN_FILE_ENV, "")
    if not token and path:
        try:
            with open(path, encoding="utf-8") as f:
                token = f.read().strip()
        except OSError:
            return ""
    return token


def _authorize(authorization: Annotated[str | None, Header()] = None) -> None:
    expected = _expected_token()
    if not expected:
        raise HTTPException(503, f"alert intake is not configured: set {TOKEN_ENV}")
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), expected.encode()):
        raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})


Authorized = Annotated[None, Depends(_authorize)]


def create_app(starter: IncidentStarter, settings: Callable[[], Settings] = Settings.from_env) -> FastAPI:
    """Build the intake app; ``starter`` opens incident_response runs (Airflow's in the plugin)."""
    app = FastAPI(title="Firebreak alert intake", version="1")

    async def _receive(source: Source, request: Request) -> JSONResponse:
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_BODY_BYTES:
            return JSONResponse({"error": f"body larger than {MAX_BODY_BYTES} bytes"}, status_code=413)
        # The size is checked chunk by chunk, so a hostile body is never buffered whole; depth and
        # numbers are checked by `receive` before it parses, in a thread (the api-server's loop stays free).
        try:
            body = await read_stream(request.stream(), LIMITS, structure=False)
        except JsonRejected as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status_code)
        s = settings()
        result = await asyncio.to_thread(
            receive, source, body, state_db_url=s.state_db_url, starter=starter, policies_dir=s.policies_dir
        )
        return JSONResponse(result.body(), status_code=result.status_code)

    @app.post("/alerts/alertmanager")
    async def alertmanager(request: Request, _: Authorized) -> JSONResponse:
        return await _receive("alertmanager", request)

    @app.post("/alerts/generic")
    async def generic(request: Request, _: Authorized) -> JSONResponse:
        return await _receive("generic", request)

    @app.get("/alerts/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
