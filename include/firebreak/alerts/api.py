"""The alert intake's HTTP surface, a FastAPI app mounted by the Airflow plugin at ``/firebreak``.

Routes: ``POST /alerts/alertmanager`` (webhook version 4), ``POST /alerts/grafana``,
``/alerts/arize``, ``/alerts/fiddler`` (those vendors' alert webhooks), ``POST /alerts/generic``
(the generic monitor JSON), ``GET /alerts/health``; beside them the on-call loop's
``POST /incidents/{id}/acknowledge`` and ``GET /metrics`` (the incident clock histograms).
Airflow does not protect plugin apps, so this app authenticates every post itself:
``Authorization: Bearer $FIREBREAK_ALERT_TOKEN`` for alerts, ``$FIREBREAK_ONCALL_TOKEN`` for
acknowledgements (a sender of alerts cannot acknowledge them), compared in constant time
(or the contents of the file named by ``..._TOKEN_FILE``, for a container secret). Without a
configured token a route answers 503 (senders retry until it is configured) rather than
accepting anonymous requests.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from firebreak.alerts.intake import LIMITS, IncidentStarter, Source, receive
from firebreak.bounded_json import JsonRejected, read_stream
from firebreak.errors import IncidentRequestError
from firebreak.settings import Settings

log = logging.getLogger(__name__)

TOKEN_ENV = "FIREBREAK_ALERT_TOKEN"
TOKEN_FILE_ENV = "FIREBREAK_ALERT_TOKEN_FILE"
ONCALL_TOKEN_ENV = "FIREBREAK_ONCALL_TOKEN"
MAX_BODY_BYTES = LIMITS.max_bytes


def _expected_token(env: str = TOKEN_ENV) -> str:
    """A route's token: ``$<env>``, else the contents of the file ``$<env>_FILE`` names."""
    token = os.environ.get(env, "")
    path = os.environ.get(f"{env}_FILE", "")
    if not token and path:
        try:
            with open(path, encoding="utf-8") as f:
                token = f.read().strip()
        except OSError:
            return ""
    return token


def _check_bearer(env: str, what: str, authorization: str | None) -> None:
    expected = _expected_token(env)
    if not expected:
        raise HTTPException(503, f"{what} is not configured: set {env}")
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), expected.encode()):
        raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})


def _authorize(authorization: Annotated[str | None, Header()] = None) -> None:
    _check_bearer(TOKEN_ENV, "alert intake", authorization)


def _authorize_oncall(authorization: Annotated[str | None, Header()] = None) -> None:
    _check_bearer(ONCALL_TOKEN_ENV, "acknowledgement", authorization)


Authorized = Annotated[None, Depends(_authorize)]
OncallAuthorized = Annotated[None, Depends(_authorize_oncall)]


class AckRequest(BaseModel):
    """``POST /incidents/{id}/acknowledge``: who takes the incident (and an optional note)."""

    by: str = Field(min_length=1, max_length=100)
    note: str = Field("", max_length=1000)


Deliverer = Callable[[str], Any]  # sends an incident's pending notifications (Airflow's notifiers)


def create_app(
    starter: IncidentStarter,
    settings: Callable[[], Settings] = Settings.from_env,
    deliver: Deliverer | None = None,
) -> FastAPI:
    """Build the intake app; ``starter`` opens incident_response runs (Airflow's in the plugin),
    ``deliver`` sends the acknowledgement to the pager right away (Airflow's notifiers in the plugin)."""
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

    @app.post("/alerts/grafana")
    async def grafana(request: Request, _: Authorized) -> JSONResponse:
        return await _receive("grafana", request)

    @app.post("/alerts/arize")
    async def arize(request: Request, _: Authorized) -> JSONResponse:
        return await _receive("arize", request)

    @app.post("/alerts/fiddler")
    async def fiddler(request: Request, _: Authorized) -> JSONResponse:
        return await _receive("fiddler", request)

    @app.post("/incidents/{incident_id}/acknowledge")
    async def acknowledge_incident(incident_id: str, ack: AckRequest, _: OncallAuthorized) -> JSONResponse:
        from firebreak.errors import IncidentNotFound
        from firebreak.oncall.acknowledge import acknowledge

        s = settings()
        try:
            done = await asyncio.to_thread(acknowledge, incident_id, ack.by, via="rest", note=ack.note, settings=s)
        except IncidentRequestError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        except IncidentNotFound as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        body: dict[str, Any] = done.to_dict()
        if deliver is not None:
            delivered = await asyncio.to_thread(deliver, incident_id)
            body["delivered"] = getattr(delivered, "sent", None)
        return JSONResponse(body, status_code=200)

    @app.get("/metrics")
    async def metrics() -> Response:
        from firebreak.oncall.metrics import CONTENT_TYPE, render

        s = settings()
        return Response(await asyncio.to_thread(render, s.state_db_url, s.policies_dir), media_type=CONTENT_TYPE)

    @app.get("/alerts/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
