"""MLflow's scoring protocol (``POST /invocations``), so clients need not change.

Accepted bodies (``Content-Type: application/json``), as ``mlflow models serve`` takes them:

* ``{"dataframe_records": [{"col": value, ...}, ...]}``
* ``{"dataframe_split": {"columns": [...], "data": [[...], ...]}}`` (``index`` ignored)
* ``{"instances": [{"col": value, ...}, ...]}``
* ``{"inputs": [{"col": value, ...}, ...]}`` or ``{"inputs": {"col": [values...], ...}}``

``params`` is accepted and ignored. The answer is ``{"predictions": [{...}, ...]}``, one
object per row, as MLflow answers for a DataFrame output.

Every body is hostile until parsed (issue 17): its size is capped while it is read (the
app), a number longer than :data:`MAX_NUMBER_CHARS` characters or beyond a float's range
is refused as it is parsed (before Python turns 5,000 digits into an int), and nesting
deeper than the parser's recursion guard (about a thousand levels; the protocol needs
four) is refused — each a 400 naming the problem, never a 500.

The alert intake's :mod:`firebreak.bounded_json` bounds the same three things, but with a
byte-by-byte scan of the body (about 1 µs a byte, in Python) and with ``NaN`` refused. The
gateway keeps its own bounds, set as the parser meets each number token, because its
parsing runs on the event loop for every request, and because a ``NaN`` must reach the
contract, which names the field it broke (a 422 a client can act on).
"""

from __future__ import annotations

import json
import math
from typing import Any

FORMATS = ("dataframe_records", "dataframe_split", "instances", "inputs")
# The longest number token accepted: a float's 17 significant digits with sign, point and
# exponent fit many times over; identifiers that long belong in strings.
MAX_NUMBER_CHARS = 64


class ProtocolError(ValueError):
    """A body the scoring protocol cannot read; ``status`` is the HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _reject_constant(name: str) -> float:
    # json.loads accepts NaN/Infinity tokens that JSON forbids; keep them so the contract names the field.
    return float(name)


def _check_length(token: str) -> None:
    if len(token) > MAX_NUMBER_CHARS:
        raise ProtocolError(400, f"a number of {len(token)} characters; at most {MAX_NUMBER_CHARS} are accepted")


def _int(token: str) -> int:
    _check_length(token)
    return int(token)


def _float(token: str) -> float:
    _check_length(token)
    value = float(token)
    if math.isinf(value):
        raise ProtocolError(400, f"number {token} is out of range (beyond a 64-bit float)")
    return value


def parse_records(body: bytes, *, max_rows: int) -> list[dict[str, Any]]:
    """The rows of a scoring request, as dicts; raises :class:`ProtocolError` naming the problem."""
    try:
        payload = json.loads(body, parse_constant=_reject_constant, parse_int=_int, parse_float=_float)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError(400, f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ProtocolError(400, "body is nested too deeply (the scoring protocol needs four levels)") from None
    if not isinstance(payload, dict):
        raise ProtocolError(400, f"body must be a JSON object with one of {', '.join(FORMATS)}")
    present = [k for k in FORMATS if k in payload]
    if len(present) != 1:
        raise ProtocolError(
            400, f"body must have exactly one of {', '.join(FORMATS)} (found: {', '.join(present) or 'none'})"
        )
    key = present[0]
    value = payload[key]
    records: Any
    if key == "dataframe_split":
        if (
            not isinstance(value, dict)
            or not isinstance(value.get("columns"), list)
            or not isinstance(value.get("data"), list)
        ):
            raise ProtocolError(400, 'dataframe_split needs {"columns": [...], "data": [[...], ...]}')
        columns = value["columns"]
        records = []
        for i, row in enumerate(value["data"]):
            if not isinstance(row, list) or len(row) != len(columns):
                raise ProtocolError(400, f"dataframe_split row {i} does not have {len(columns)} values")
            records.append(dict(zip(columns, row, strict=True)))
    elif key == "inputs" and isinstance(value, dict):
        columns = list(value)
        lengths = {len(v) if isinstance(v, list) else -1 for v in value.values()}
        if len(lengths) != 1 or -1 in lengths:
            raise ProtocolError(400, "inputs as columns needs a list of the same length for every column")
        records = [dict(zip(columns, row, strict=True)) for row in zip(*value.values(), strict=True)]
    else:
        records = value
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ProtocolError(400, f"{key} must be a list of objects (one per row)")
    if not records:
        raise ProtocolError(400, f"{key} has no rows")
    if len(records) > max_rows:
        raise ProtocolError(413, f"{len(records)} rows in one request; the limit is {max_rows}")
    return records


def dumps(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), allow_nan=False, default=str).encode()
