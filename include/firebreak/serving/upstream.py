"""The team's own model server as the champion: the gateway as a sidecar in front of it.

``firebreak serve --model NAME --upstream URL`` keeps serving where the team already runs it
(``mlflow models serve``, KServe, MLServer, Triton) and puts the contract, the breaker,
shadow scoring and the prediction log in front. The upstream is one more :class:`Scorer`:
the gateway's request path does not know whether the champion is loaded in process or
answered over HTTP. Two protocols:

* **MLflow scoring protocol** (``POST <url>/invocations``): the rows go as
  ``dataframe_split`` (column order kept); the answer is ``{"predictions": [...]}``, one
  scalar or one object per row.
* **Open Inference Protocol v2** (``POST <url>/v2/models/<name>[/versions/<v>]/infer``):
  one input per column (``BYTES``/``FP64``/``INT64``/``BOOL``, with MLServer's
  ``content_type: pd``), or one 2-D ``FP64`` tensor of the numeric inputs
  (``serving.upstream.v2_inputs: tensor``, for scikit-learn/XGBoost servers). Each output
  tensor of one value per row becomes a column; a lone output is the policy's output column.

Calls go over a pool of keep-alive connections (``serving.upstream.max_connections``) with
the policy's connect and read timeout (``serving.upstream.timeout_seconds``), which also bounds
the whole answer (a server trickling bytes does not hold the call), of at most 16 MB. A refused
connection, a timeout, a non-200 answer or an answer of the wrong length raises
:class:`~firebreak.errors.UpstreamError`: the predictor counts it on the breaker and the
containment route answers those rows, so a dead upstream trips the breaker to the fallback.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from firebreak.errors import ConfigurationError, UpstreamError, UpstreamUnavailable
from firebreak.inert import clean
from firebreak.policy.schema import Policy
from firebreak.serving.scorer import Scorer

Protocol = Literal["mlflow", "v2"]
PROTOCOLS: tuple[str, ...] = ("auto", "mlflow", "v2")
_MAX_ERROR_BODY = 300  # characters of an upstream error body kept in the message (it is hostile text)
_MAX_ANSWER_BYTES = 16 << 20  # an answer for at most 1,000 rows; more is a misbehaving server, not an answer


@dataclass(frozen=True)
class UpstreamSpec:
    """Where the upstream answers and in which protocol.

    Attributes:
        url: The endpoint the gateway posts to (``.../invocations`` or ``.../infer``).
        protocol: ``mlflow`` or ``v2``.
    """

    url: str
    protocol: Protocol

    @classmethod
    def parse(cls, url: str, protocol: str = "auto") -> UpstreamSpec:
        """Read ``--upstream URL`` (and ``--upstream-protocol``).

        ``auto`` picks v2 when the path holds ``/v2/models/``, MLflow otherwise. The endpoint
        is completed when the URL names the server only: ``/invocations`` for MLflow,
        ``/infer`` for v2.

        Raises:
            ConfigurationError: not an http(s) URL with a host, an unknown protocol, or a v2 URL
                without ``/v2/models/<name>``.
        """
        if protocol not in PROTOCOLS:
            raise ConfigurationError(f"upstream protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(f"--upstream must be an http(s) URL with a host, got {url!r}")
        if parts.username or parts.password:
            raise ConfigurationError("--upstream must not carry credentials in the URL")
        path = parts.path.rstrip("/")
        chosen: Protocol = "v2" if "/v2/models/" in f"{path}/" else "mlflow"
        if protocol != "auto":
            chosen = "v2" if protocol == "v2" else "mlflow"
        if chosen == "v2":
            if "/v2/models/" not in f"{path}/" or path.endswith("/v2/models"):
                raise ConfigurationError(f"an Open Inference Protocol v2 upstream is .../v2/models/<name>, got {url!r}")
            if not path.endswith("/infer"):
                path += "/infer"
        elif not path.endswith("/invocations"):
            path += "/invocations"
        query = f"?{parts.query}" if parts.query else ""
        return cls(f"{parts.scheme}://{parts.netloc}{path}{query}", chosen)


class UpstreamClient:
    """A pool of keep-alive connections to one upstream endpoint.

    Args:
        spec: Where and how to call.
        timeout_seconds: Connect and read timeout of one call.
        max_connections: Connections kept open.
    """

    def __init__(self, spec: UpstreamSpec, *, timeout_seconds: float, max_connections: int) -> None:
        import urllib3

        self.spec = spec
        self.timeout_seconds = timeout_seconds
        parts = urlsplit(spec.url)
        self.path = parts.path + (f"?{parts.query}" if parts.query else "")
        pool_class = urllib3.HTTPSConnectionPool if parts.scheme == "https" else urllib3.HTTPConnectionPool
        # block=False: a burst past the pool opens an extra connection rather than waiting for one;
        # retries=False: a failed call is the breaker's to count, not ours to repeat.
        self.pool = pool_class(
            parts.hostname or "",
            parts.port,
            maxsize=max_connections,
            block=False,
            timeout=urllib3.Timeout(connect=timeout_seconds, read=timeout_seconds),
            retries=False,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )

    def post(self, payload: dict[str, Any]) -> Any:
        """POST ``payload`` as JSON; the decoded JSON answer.

        Raises:
            UpstreamUnavailable: refused, reset or timed out (nothing answered).
            UpstreamError: not 200, or not JSON.
        """
        import urllib3

        body = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
        deadline = time.monotonic() + self.timeout_seconds
        try:
            response = self.pool.urlopen("POST", self.path, body=body, preload_content=False)
            data = self._read(response, deadline)
        except urllib3.exceptions.HTTPError as exc:  # connection refused, reset, timeouts: one family
            raise UpstreamUnavailable(f"upstream {self.spec.url} failed: {exc.__class__.__name__}") from exc
        if response.status != 200:
            text = data[:_MAX_ERROR_BODY].decode(errors="replace")
            raise UpstreamError(f"upstream {self.spec.url} answered {response.status}: {text!r}")
        try:
            return json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UpstreamError(f"upstream {self.spec.url} answered a body that is not JSON") from exc

    def _read(self, response: Any, deadline: float) -> bytes:
        """The whole body by ``deadline`` and within :data:`_MAX_ANSWER_BYTES`, else the call fails.

        The read timeout alone bounds each wait for a byte: a server that trickles a byte at a
        time, or streams without end, would hold the call (and the requests batched behind it)
        for as long as it likes. Past either bound the connection is dropped, not reused.
        """
        chunks, size = [], 0
        try:
            while chunk := response.read1(64 << 10):
                size += len(chunk)
                if size > _MAX_ANSWER_BYTES:
                    raise UpstreamError(f"upstream {self.spec.url} answered more than {_MAX_ANSWER_BYTES >> 20} MB")
                if time.monotonic() > deadline:
                    raise UpstreamUnavailable(
                        f"upstream {self.spec.url} took longer than {self.timeout_seconds:g} s to answer"
                    )
                chunks.append(chunk)
        except BaseException:
            response.close()  # half read: never back into the pool
            raise
        response.release_conn()
        return b"".join(chunks)

    def close(self) -> None:
        self.pool.close()


def upstream_scorer(client: UpstreamClient, policy: Policy, *, version: str) -> Scorer:
    """The champion answered by the upstream, labelled with the registry's ``champion`` version.

    The registry's champion is still what the ledger and the gate talk about; the gateway
    cannot know what the upstream loaded, so ``/serving`` says the upstream answers.
    """
    output = policy.features.output
    settings = policy.serving.upstream
    if client.spec.protocol == "mlflow":

        def predict(frame: pd.DataFrame) -> pd.DataFrame:
            answer = client.post({"dataframe_split": {"columns": list(frame.columns), "data": _rows(frame)}})
            return _mlflow_outputs(answer, output, frame.index, client.spec.url)

    elif settings.v2_inputs == "tensor":
        numeric = policy.features.numeric

        def predict(frame: pd.DataFrame) -> pd.DataFrame:
            values = frame[numeric].to_numpy(dtype=float)
            tensor = {"name": settings.v2_tensor, "shape": list(values.shape), "datatype": "FP64"}
            answer = client.post({"id": uuid.uuid4().hex, "inputs": [{**tensor, "data": values.ravel().tolist()}]})
            return _v2_outputs(answer, output, frame.index, client.spec.url)

    else:

        def predict(frame: pd.DataFrame) -> pd.DataFrame:
            inputs = [_v2_column(str(c), frame[c]) for c in frame.columns]
            payload = {"id": uuid.uuid4().hex, "parameters": {"content_type": "pd"}, "inputs": inputs}
            return _v2_outputs(client.post(payload), output, frame.index, client.spec.url)

    def checked(frame: pd.DataFrame) -> pd.DataFrame:
        return _answers(predict(frame), policy, client.spec.url)

    return Scorer("champion", version, checked)


_MAX_TEXT = 100_000  # characters of one text answer (an LLM's reply); longer is not an answer to serve


def _answers(outputs: pd.DataFrame, policy: Policy, url: str) -> pd.DataFrame:
    """The policy's output and confidence from an upstream's answers, each a value the gateway may serve and log.

    Whatever else the upstream sent is dropped: served, it would reach users unchecked; logged,
    a key named ``request_id``, ``model`` or an input's name would write over the gateway's own.
    A row whose output is missing, not a plain value, not finite, or not a number where the
    model is a regressor, or whose confidence is not a number in [0, 1], fails the call: the
    fallback answers every row of it and the breaker counts the failure.

    Raises:
        UpstreamError: Naming the first bad value, bounded and printable.
    """
    output, confidence = policy.features.output, policy.features.confidence
    if output not in outputs.columns:
        got = ", ".join(repr(str(c)[:40]) for c in list(outputs.columns)[:5])
        raise UpstreamError(f"upstream {url} answered no {output!r} (it answered {got or 'nothing'})")
    kept = outputs[[c for c in dict.fromkeys((output, confidence)) if c in outputs.columns]]
    regressor = policy.features.task == "regression"  # as stated: an LLM app's policy may measure text by MAE
    for value in kept[output].tolist():
        if not _servable(value, number=regressor):
            raise UpstreamError(f"upstream {url} answered {output}={clean(repr(value), 60)}: not a value to serve")
    if confidence in kept.columns and confidence != output:
        for value in kept[confidence].tolist():
            if not _servable(value, number=True) or not 0.0 <= float(value) <= 1.0:
                raise UpstreamError(
                    f"upstream {url} answered {confidence}={clean(repr(value), 60)}: not a number in [0, 1]"
                )
    return kept.infer_objects()


def _servable(value: Any, *, number: bool) -> bool:
    """A finite number (not a boolean, where a number is due), or text that encodes, within bounds."""
    if isinstance(value, bool | np.bool_):
        return not number
    if isinstance(value, int | np.integer):
        return -(2**63) <= int(value) < 2**63  # what a log's integer column holds
    if isinstance(value, float | np.floating):
        return math.isfinite(float(value))
    if isinstance(value, str) and not number:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: no log or response can carry it
            return False
        return len(value) <= _MAX_TEXT
    return False


def _plain(values: list[Any]) -> list[Any]:
    """NaN as null: JSON has no NaN, and the upstream reads a missing value as null."""
    return [None if isinstance(v, float) and math.isnan(v) else v for v in values]


def _rows(frame: pd.DataFrame) -> list[list[Any]]:
    columns = [_plain(frame[c].tolist()) for c in frame.columns]
    return [list(row) for row in zip(*columns, strict=True)]


def _v2_column(name: str, series: pd.Series) -> dict[str, Any]:
    if pd.api.types.is_bool_dtype(series):
        datatype = "BOOL"
    elif pd.api.types.is_integer_dtype(series):
        datatype = "INT64"
    elif pd.api.types.is_float_dtype(series):
        datatype = "FP64"
    else:
        datatype = "BYTES"
    return {"name": name, "shape": [len(series)], "datatype": datatype, "data": _plain(series.tolist())}


def _mlflow_outputs(answer: Any, output: str, index: pd.Index, url: str) -> pd.DataFrame:
    """``{"predictions": [...]}``: a scalar, an object or a list (its first value is the output) per row."""
    predictions = answer.get("predictions") if isinstance(answer, dict) else answer
    if isinstance(predictions, dict):  # column-oriented: {"col": [...], ...}
        predictions = pd.DataFrame(predictions).to_dict("records")
    if not isinstance(predictions, list) or len(predictions) != len(index):
        got = len(predictions) if isinstance(predictions, list) else type(predictions).__name__
        raise UpstreamError(f"upstream {url} answered {got} predictions for {len(index)} rows")
    if predictions and all(isinstance(p, dict) for p in predictions):
        return pd.DataFrame.from_records(predictions, index=index)
    values = [p[0] if isinstance(p, list) and p else p for p in predictions]
    return pd.DataFrame({output: values}, index=index)


def _v2_outputs(answer: Any, output: str, index: pd.Index, url: str) -> pd.DataFrame:
    """The v2 ``outputs``: each tensor of one value per row is a column; a lone tensor is the output."""
    tensors = answer.get("outputs") if isinstance(answer, dict) else None
    if not isinstance(tensors, list) or not tensors or not all(isinstance(t, dict) for t in tensors):
        raise UpstreamError(f"upstream {url} answered no v2 'outputs'")
    n = len(index)
    columns: dict[str, Any] = {}
    for tensor in tensors:
        data = tensor.get("data")
        if not isinstance(data, list):
            raise UpstreamError(f"upstream {url}: v2 output {str(tensor.get('name'))[:64]!r} has no data list")
        flat = np.asarray(data, dtype=object).ravel()
        if len(flat) != n:
            raise UpstreamError(
                f"upstream {url}: v2 output {str(tensor.get('name'))[:64]!r} has {len(flat)} values for {n} rows"
            )
        name = output if len(tensors) == 1 else str(tensor.get("name", ""))[:128]
        columns[name] = pd.Series(flat, index=index).infer_objects()
    return pd.DataFrame(columns, index=index)
