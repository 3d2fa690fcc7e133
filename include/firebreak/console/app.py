"""The incident console's HTTP surface: a FastAPI app the Airflow plugin mounts at ``/firebreak``.

Mounted at ``/firebreak/console`` by the plugin. Pages (server-rendered HTML, one small
script for the action forms, no inline script: the Content-Security-Policy allows only
this app's own files):

- ``/console/`` the board, filterable by model, status, severity and time;
- ``/console/incidents/{id}`` timeline, diagnosis, evidence with charts, gate checks,
  what was promoted, links to the DAG run, the MLflow run and the post-mortem, actions;
- ``/console/models/{model}`` what serves now and why, the alias ledger, recent incidents.

Data endpoints (JSON, ``/console/api/...``) serve the same read models, and take the
actions: acknowledge, force the breaker open or release it, answer a waiting approval.
Every page and data endpoint requires Airflow's login (401 anonymous, 403 without the
right); acting needs edit rights on ``incident_response`` and records the acting user and
the reason on the incident's timeline. Actions take JSON only, and a request whose
``Origin`` is another site is refused, so a cross-site form cannot act with the cookie.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from firebreak.console import views
from firebreak.console.approvals import Approvals, NoApprovals
from firebreak.console.auth import Authenticator, NotAllowed, Viewer
from firebreak.console.queries import Filters, board, incident_page, latest_audits, model_page
from firebreak.containment.state import RoutingStore
from firebreak.errors import ActionRefused, FirebreakError, IncidentNotFound, IncidentRequestError
from firebreak.incidents.actions import actor_and_reason
from firebreak.incidents.enums import EventKind
from firebreak.incidents.store import IncidentStore
from firebreak.oncall.acknowledge import acknowledge
from firebreak.policy.schema import MODEL_NAME, list_policies
from firebreak.registry.ledger import AliasLedger
from firebreak.settings import Settings

STATIC = Path(__file__).parent / "static"
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'self'"
)
INCIDENT_ID = r"^[A-Za-z0-9][A-Za-z0-9._:+~-]{0,249}$"
CHART = r"^(drift|outputs|confidence|fairness|serving)$"
AUDITS_TIMEOUT = 10.0  # seconds the model page waits for MLflow's audit runs


class Reasoned(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=500)


class BreakerAction(Reasoned):
    action: Literal["open", "close"]


class ApprovalAnswer(Reasoned):
    choice: Literal["approve", "reject"]
    task_id: str = Field(min_length=1, max_length=250)
    map_index: int = -1


async def _viewer(request: Request) -> Viewer:
    authenticate: Authenticator = request.app.state.authenticate
    return await authenticate(request, False)


async def _actor(request: Request) -> Viewer:
    """An acting person: JSON only, from this site only (a cross-site form cannot act with the cookie)."""
    origin = request.headers.get("origin")
    if origin and urlsplit(origin).netloc != request.headers.get("host"):
        raise NotAllowed(403, "actions are taken from the console's own pages only")
    if not request.headers.get("content-type", "").startswith("application/json"):
        raise HTTPException(415, "send the action as JSON")
    authenticate: Authenticator = request.app.state.authenticate
    return await authenticate(request, True)


def _filters(
    model: str | None = None,
    status: str | None = None,
    severity: str | None = None,
    since: str | None = None,
    page: str | None = None,
) -> Filters:
    return Filters.parse(model, status, severity, since, page)


Seeing = Annotated[Viewer, Depends(_viewer)]
Acting = Annotated[Viewer, Depends(_actor)]
Filtering = Annotated[Filters, Depends(_filters)]


def create_app(
    authenticate: Authenticator,
    approvals: Approvals | None = None,
    settings: Callable[[], Settings] = Settings.from_env,
    deliver: Callable[[str], Any] | None = None,
) -> FastAPI:
    """Build the console; ``authenticate`` checks Airflow's login (the plugin's), ``approvals`` reaches HITL.

    ``deliver`` sends an incident's pending notifications (the plugin's: Airflow's
    notifiers), so an acknowledgement from the console reaches the pager as one from the
    shell or the REST endpoint does.
    """
    app = FastAPI(title="Firebreak incident console", version="1", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.authenticate = authenticate
    approver = approvals or NoApprovals()

    @app.middleware("http")
    async def _headers(request: Request, call_next: Callable[[Request], Any]) -> Response:
        response: Response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        if not request.url.path.endswith((".js", ".css", ".svg")):
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.exception_handler(NotAllowed)
    async def _not_allowed(request: Request, exc: NotAllowed) -> Response:
        if "/api/" in request.url.path or request.method != "GET":
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        return HTMLResponse(views.denied(_base(request), exc.status, str(exc)), status_code=exc.status)

    def stores() -> tuple[Settings, IncidentStore, RoutingStore, AliasLedger]:
        s = settings()
        return s, IncidentStore(s.state_db_url), RoutingStore(s.state_db_url), AliasLedger(s.state_db_url)

    def read_board(filters: Filters) -> Any:
        s, store, routing, _ = stores()
        models = list_policies(s.policies_dir)
        return s, board(store, routing, filters, known_models=models, notify=_routes(s, models))

    def read_incident(incident_id: str) -> Any:
        s, store, routing, ledger = stores()
        page = incident_page(store, routing, ledger, incident_id)
        if page is None:
            raise HTTPException(404, "no such incident")
        return s, page

    def read_model(model: str) -> Any:
        if not MODEL_NAME.fullmatch(model):
            raise HTTPException(404, "no such model")
        s, store, routing, ledger = stores()
        return s, model_page(store, routing, ledger, model)

    # -- pages -------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse)
    async def board_page(request: Request, who: Seeing, chosen: Filtering) -> str:
        s, found = await asyncio.to_thread(read_board, chosen)
        return views.board(_base(request), who, found, s)

    @app.get("/incidents/{incident_id}", response_class=HTMLResponse)
    async def incident_html(request: Request, incident_id: str, who: Seeing) -> str:
        _check_id(incident_id)
        s, page = await asyncio.to_thread(read_incident, incident_id)
        waiting = await approver.pending(request, page.incident)
        return views.incident(_base(request), who, page, s, waiting)

    @app.get("/models/{model}", response_class=HTMLResponse)
    async def model_html(request: Request, model: str, who: Seeing) -> str:
        s, page = await asyncio.to_thread(read_model, model)
        audits: list[dict[str, Any]] | str
        try:
            audits = await asyncio.wait_for(asyncio.to_thread(latest_audits, s, model), AUDITS_TIMEOUT)
        # MLflow is another service: down, slow or misconfigured, the page still shows the state DB's view.
        except Exception as exc:  # noqa: BLE001
            audits = f"the audit runs could not be read from MLflow ({type(exc).__name__})"
        return views.model(_base(request), who, page, s, audits)

    @app.get("/incidents/{incident_id}/charts/{name}.png")
    async def chart(incident_id: str, name: str, who: Seeing) -> Response:
        _check_id(incident_id)
        if not _matches(CHART, name):
            raise HTTPException(404, "no such chart")
        png = await asyncio.to_thread(_draw, incident_id, name)
        return Response(png, media_type="image/png")

    def _draw(incident_id: str, name: str) -> bytes:
        from firebreak.policy.schema import load_policy
        from firebreak.postmortem.charts import chart_named

        s, page = read_incident(incident_id)
        try:
            fallback = str(load_policy(page.incident.model, s.policies_dir).containment.route)
        except FirebreakError:
            fallback = "fallback"
        breaker = RoutingStore(s.state_db_url).breaker_events(page.incident.model)
        drawn = chart_named(name, page.evidence, page.events, breaker, fallback)
        if drawn is None:
            raise HTTPException(404, "this incident has no such chart")
        return drawn.png

    @app.get("/incidents/{incident_id}/postmortem")
    async def postmortem(incident_id: str, who: Seeing) -> Response:
        _check_id(incident_id)
        s, page = await asyncio.to_thread(read_incident, incident_id)
        path = s.postmortem_dir / f"{incident_id}.html"
        if not path.is_file():
            raise HTTPException(404, "the post-mortem is not written yet")
        # The file's own CSP allows no script; sandbox it as well, whatever it contains.
        headers = {"Content-Security-Policy": "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"}
        return FileResponse(path, media_type="text/html", headers=headers)

    @app.get("/static/{name}")
    async def static(name: str) -> FileResponse:
        kinds = {"console.js": "text/javascript", "console.css": "text/css", "icon.svg": "image/svg+xml"}
        if name not in kinds:
            raise HTTPException(404, "no such file")
        kind = kinds[name]
        return FileResponse(STATIC / name, media_type=kind)

    # -- data ----------------------------------------------------------------------------

    @app.get("/api/incidents")
    async def board_json(who: Seeing, chosen: Filtering) -> dict[str, Any]:
        _, found = await asyncio.to_thread(read_board, chosen)
        return views.board_json(found)

    @app.get("/api/incidents/{incident_id}")
    async def incident_json(incident_id: str, who: Seeing) -> dict[str, Any]:
        _check_id(incident_id)
        s, page = await asyncio.to_thread(read_incident, incident_id)
        return views.incident_json(page, s)

    @app.get("/api/models/{model}")
    async def model_json(model: str, who: Seeing) -> dict[str, Any]:
        _, page = await asyncio.to_thread(read_model, model)
        return views.model_json(page)

    # -- actions -------------------------------------------------------------------------

    @app.post("/api/incidents/{incident_id}/acknowledge")
    async def acknowledge_it(incident_id: str, body: Reasoned, who: Acting) -> JSONResponse:
        _check_id(incident_id)

        def act() -> dict[str, Any]:
            name, reason = actor_and_reason(who.name, body.reason)
            # The on-call loop's acknowledgement: the clock's mark, the timeline, the pager told.
            done = acknowledge(incident_id, name, via="ui", note=reason, settings=settings())
            if deliver is not None and done.first:
                deliver(incident_id)
            return {"acknowledged_by": done.by, "first": done.first, "at": done.at.isoformat()}

        return await _acting(act)

    @app.post("/api/incidents/{incident_id}/breaker")
    async def breaker_for_incident(incident_id: str, body: BreakerAction, who: Acting) -> JSONResponse:
        _check_id(incident_id)

        def act() -> dict[str, Any]:
            _, store, routing, _ = stores()
            incident = store.get_incident(incident_id)
            if incident is None:
                raise IncidentNotFound("no such incident")
            return _force(store, routing, incident.model, body, who, incident_id)

        return await _acting(act)

    @app.post("/api/models/{model}/breaker")
    async def breaker_for_model(model: str, body: BreakerAction, who: Acting) -> JSONResponse:
        def act() -> dict[str, Any]:
            s, store, routing, _ = stores()
            if model not in list_policies(s.policies_dir):
                raise ActionRefused("no policy for this model")
            return _force(store, routing, model, body, who, None)

        return await _acting(act)

    @app.post("/api/incidents/{incident_id}/approval")
    async def answer_approval(request: Request, incident_id: str, body: ApprovalAnswer, who: Acting) -> JSONResponse:
        _check_id(incident_id)
        name, reason = actor_and_reason(who.name, body.reason)
        _, page = await asyncio.to_thread(read_incident, incident_id)
        try:
            chosen = await approver.answer(request, page.incident, body.task_id, body.map_index, body.choice, reason)
        except ActionRefused as exc:
            return JSONResponse({"error": str(exc)}, status_code=409)

        def record() -> None:
            _, store, _, _ = stores()
            store.add_event(
                incident_id,
                EventKind.OPERATOR,
                f"promotion {body.choice}d by {name} ({chosen}): {reason}",
                {"by": name, "reason": reason, "action": f"approval:{body.choice}", "task_id": body.task_id},
            )

        await asyncio.to_thread(record)
        return JSONResponse({"answered": chosen, "by": name})

    return app


def _force(
    store: IncidentStore,
    routing: RoutingStore,
    model: str,
    body: BreakerAction,
    who: Viewer,
    incident_id: str | None,
) -> dict[str, Any]:
    """Force the breaker by hand; the breaker event and (from an incident) the timeline name who and why."""
    from firebreak.containment.operator import force_breaker

    name, reason = actor_and_reason(who.name, body.reason)
    row = force_breaker(routing, model, body.action, by=name, reason=f"{reason} (by {name})")
    if incident_id:
        verb = "forced open" if body.action == "open" else "released (closed)"
        store.add_event(
            incident_id,
            EventKind.OPERATOR,
            f"breaker of {model} {verb} by {name}: {reason}",
            {"by": name, "reason": reason, "action": f"breaker:{body.action}"},
        )
    return {"model": model, "state": row.state, "forced": row.forced, "by": name}


_ROUTES: dict[Path, tuple[int, Any]] = {}  # policy file -> (its mtime, its notify section)


def _routes(settings: Settings, models: list[str]) -> dict[str, Any]:
    """Each model's severity routes (its clock's targets); a policy that no longer loads keeps the SOP's.

    Parsed again only when the policy file changed: YAML parsing would otherwise be most of
    the board's server time (docs/benchmarks.md).
    """
    from firebreak.policy.schema import load_policy, policy_path

    out = {}
    for model in models:
        try:
            path = policy_path(model, settings.policies_dir)
            mtime = path.stat().st_mtime_ns
            cached = _ROUTES.get(path)
            if cached is None or cached[0] != mtime:
                cached = _ROUTES[path] = (mtime, load_policy(model, settings.policies_dir).notify)
            out[model] = cached[1]
        except (FirebreakError, OSError):
            continue
    return out


async def _acting(act: Callable[[], dict[str, Any]]) -> JSONResponse:
    """Run an action off the event loop; a refused action is a 4xx naming the problem."""
    try:
        return JSONResponse(await asyncio.to_thread(act))
    except IncidentNotFound as exc:
        return JSONResponse({"error": str(exc)}, status_code=404)
    except IncidentRequestError as exc:  # a name the on-call loop does not accept
        return JSONResponse({"error": str(exc)}, status_code=422)
    except FirebreakError as exc:  # ActionRefused, RoutingConflict: the request cannot be done as asked
        return JSONResponse({"error": str(exc)}, status_code=409 if not isinstance(exc, ActionRefused) else 422)


def _base(request: Request) -> str:
    """The console's URL prefix as the browser sees it (the plugin mounts it at /firebreak/console)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def _matches(pattern: str, value: str) -> bool:
    import re

    return re.fullmatch(pattern.strip("^$"), value) is not None


def _check_id(incident_id: str) -> None:
    if not _matches(INCIDENT_ID, incident_id):
        raise HTTPException(404, "no such incident")
