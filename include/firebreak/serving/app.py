"""The gateway's web app: ``/invocations`` (MLflow's scoring protocol), ``/serving``,
``/health``, ``/ready``, ``/ping``, ``/metrics``.

Requests are checked against the contract as they arrive; the rows that passed are
scored in small batches: while the model answers one batch, the requests arriving
meanwhile queue up and are scored together next. One model call per batch instead of
per request is what lets one worker keep up with many connections; an idle gateway
answers a lone request at once (no waiting for a batch to fill).

A body is read as a stream and refused with 413 (closing the connection) as soon as it
passes the policy's limit, so a 200 MB upload costs one chunk of memory; numbers and
nesting are bounded as it is parsed (:mod:`~firebreak.serving.protocol`). Each request
carries its caller — the peer address, or the policy's ``serving.caller_header`` when a
trusted proxy sets it — for the breaker's per-caller rules.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from firebreak.serving import metrics
from firebreak.serving.gateway import Answer, Gateway
from firebreak.serving.gateway import Request as Scoring
from firebreak.serving.protocol import ProtocolError, dumps, parse_records
from firebreak.serving.upstream import UpstreamSpec
from firebreak.settings import Settings

log = logging.getLogger(__name__)
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/-]{1,128}$")
CALLER = re.compile(r"^[A-Za-z0-9._:@/-]{1,128}$")
MAX_BATCH_ROWS = 256
MAX_VIOLATIONS = 100  # reported (and counted) per refused request
WORKER = str(os.getpid())  # which worker answered (X-Firebreak-Worker), for operators and tests


@dataclass
class _Pending:
    scoring: Scoring
    future: asyncio.Future[Answer]


class Batcher:
    """Scores queued requests together, one batch at a time, on the event loop."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        # A queue belongs to the loop that first uses it: a new one per app start (lifespan).
        self.queue = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def submit(self, scoring: Scoring) -> Answer:
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        await self.queue.put(_Pending(scoring, future))
        return await future

    async def _run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            rows = len(batch[0].scoring.records)
            while not self.queue.empty() and rows < MAX_BATCH_ROWS:
                item = self.queue.get_nowait()
                batch.append(item)
                rows += len(item.scoring.records)
            try:
                scorings = [p.scoring for p in batch]
                # An upstream answers over the network: wait for it off the event loop, which keeps
                # accepting (and checking) the requests the next batch will take.
                if self.gateway.blocking:
                    answers = await asyncio.to_thread(self.gateway.serve, scorings)
                else:
                    answers = self.gateway.serve(scorings)
            except Exception as exc:  # the batch failed and no fallback could answer: say so, per request
                log.exception("scoring failed for a batch of %d requests", len(batch))
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(exc)
                continue
            for p, answer in zip(batch, answers, strict=True):
                if not p.future.done():
                    p.future.set_result(answer)


def create_app(gateway: Gateway, *, start: bool = True) -> FastAPI:
    """The app for one gateway. ``start=False`` leaves starting/closing the gateway to the caller."""
    batcher = Batcher(gateway)
    limits = gateway.policy.serving

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if start:
            await asyncio.to_thread(gateway.start)
            # Everything loaded so far (models, libraries) lives as long as the worker: keep
            # it out of the cyclic GC's full collections, whose pauses were the p99.
            gc.freeze()
        batcher.start()
        try:
            yield
        finally:
            if batcher.task:
                batcher.task.cancel()
            await asyncio.to_thread(gateway.sync.settle)  # every breaker transition had its write (and alert)
            if start:
                await asyncio.to_thread(gateway.close)

    def caller_of(request: Request) -> str:
        if limits.caller_header:
            named = request.headers.get(limits.caller_header, "")
            if CALLER.match(named):
                return named
        return request.client.host if request.client else "unknown"

    app = FastAPI(
        title=f"Firebreak gateway: {gateway.model}",
        description="MLflow scoring protocol with contract, routing, circuit breaker, shadow and prediction log.",
        lifespan=lifespan,
    )

    @app.post("/invocations")
    async def invocations(request: Request) -> Response:
        received = time.perf_counter()
        given = request.headers.get("x-request-id", "")
        request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex
        headers = {"X-Request-Id": request_id, "X-Firebreak-Worker": WORKER}
        length = request.headers.get("content-length", "")
        if len(length) > 18 or (length.isdigit() and int(length) > limits.max_body_bytes):
            reason = f"body of {length[:20]} bytes is over the limit of {limits.max_body_bytes}"
            gateway.reject(request_id, 413, reason, [], received=received)
            return JSONResponse({"error": reason}, 413, headers | {"Connection": "close"})
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limits.max_body_bytes:  # stop reading: the rest is never buffered
                reason = f"body is over the limit of {limits.max_body_bytes} bytes"
                gateway.reject(request_id, 413, reason, [], received=received)
                return JSONResponse({"error": reason}, 413, headers | {"Connection": "close"})
        try:
            records = parse_records(bytes(body), max_rows=limits.max_rows)
        except ProtocolError as exc:
            gateway.reject(
                request_id, exc.status, str(exc), [], received=received, body=body[:2000].decode(errors="replace")
            )
            return JSONResponse({"error": str(exc)}, exc.status, headers)
        violations = gateway.contract.check(records, limit=MAX_VIOLATIONS)
        if violations:
            reason = "request breaks the contract: " + "; ".join(str(v) for v in violations[:10])
            gateway.reject(
                request_id, 422, reason, violations, received=received, body=body[:2000].decode(errors="replace")
            )
            return JSONResponse({"error": reason, "violations": [v.to_dict() for v in violations[:100]]}, 422, headers)
        try:
            answer = await batcher.submit(Scoring(request_id, records, received, caller_of(request)))
        except Exception as exc:  # noqa: BLE001 — logged by the batcher; the client gets a clear 500
            return JSONResponse({"error": f"scoring failed: {exc.__class__.__name__}"}, 500, headers)
        headers |= {"X-Firebreak-Route": answer.route, "X-Firebreak-Model-Version": answer.version}
        return Response(dumps(answer.body), answer.status, headers, media_type="application/json")

    @app.get("/serving")
    async def serving(response: Response) -> dict[str, object]:
        """Which model version and route serve now, and why, as the answering worker sees it."""
        response.headers["X-Firebreak-Worker"] = WORKER
        return gateway.describe()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ping")
    async def ping() -> Response:
        return Response("\n", 200)

    @app.get("/ready")
    async def ready() -> Response:
        scorer, why = gateway.current()
        ok = gateway.last_refresh is not None or scorer is not None
        body = {
            "ready": ok,
            "route": scorer.name if scorer else "disabled",
            "why": why,
            "state_store_up": gateway.store_up,
        }
        return JSONResponse(body, 200 if ok else 503)

    @app.get("/metrics")
    async def prometheus() -> Response:
        data, content_type = metrics.render()
        return Response(data, 200, media_type=content_type)

    return app


def app_from_env() -> FastAPI:
    """The uvicorn factory for ``firebreak serve --workers N``: each worker builds its own gateway."""
    settings = Settings.from_env()
    gateway = Gateway(
        os.environ["FIREBREAK_SERVE_MODEL"],
        settings,
        refresh_seconds=float(os.environ.get("FIREBREAK_SERVE_REFRESH", "0.2")),
        inbox_alerts=os.environ.get("FIREBREAK_SERVE_ALERTS", "inbox") == "inbox",
        upstream=_upstream_from_env(),
        # `firebreak serve` drains the journal in a process of its own, beside the workers.
        drain=os.environ.get("FIREBREAK_SERVE_DRAINER", "thread") != "process",
    )
    return create_app(gateway)


def _upstream_from_env() -> UpstreamSpec | None:
    """``firebreak serve --upstream URL [--upstream-protocol P]``, as the CLI hands it to each worker."""
    url = os.environ.get("FIREBREAK_SERVE_UPSTREAM")
    if not url:
        return None
    return UpstreamSpec.parse(url, os.environ.get("FIREBREAK_SERVE_UPSTREAM_PROTOCOL", "auto"))
