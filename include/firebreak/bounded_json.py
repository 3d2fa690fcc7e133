"""JSON from strangers, read within limits: body size, nesting depth and number length, checked as it arrives.

Python's ``json`` has no limits of its own: a body nested 100,000 deep raises
``RecursionError``, an integer of 5,000 digits raises ``ValueError`` (CPython's 4,300-digit
guard), ``1e400`` becomes ``inf``, and a 200 MB body is buffered whole before anyone looks at
its size. Each of those reached a server as a 500, and a 500 makes Alertmanager resend the
same delivery forever. :class:`JsonScanner` looks at each chunk as it is read, keeping only
a few counters, and stops at the first limit broken; :func:`loads` then parses what passed,
refusing non-finite numbers. Every refusal is a :class:`JsonRejected` with the HTTP status
to answer (413 for size, 400 for the rest), so the caller answers 4xx and stores nothing.

Shared by every server that parses JSON from outside (the alert intake for every alert
source, the inbox path of the ``alert_intake`` DAG); it imports nothing of Firebreak but its errors.
The serving gateway's scoring protocol bounds its bodies itself, more cheaply, as it parses
them (:mod:`firebreak.serving.protocol`).
"""

from __future__ import annotations

import json
import math
import numbers
import re
from collections.abc import AsyncIterable
from dataclasses import dataclass
from typing import Any

from firebreak.errors import FirebreakError

__all__ = ["JsonLimits", "JsonRejected", "JsonScanner", "finite", "loads", "read_stream"]


class JsonRejected(FirebreakError):
    """A body broke a limit or is not JSON; ``status_code`` is what to answer (400 or 413)."""

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.status_code = status_code


@dataclass(frozen=True)
class JsonLimits:
    """What a body may be. Defaults fit alert webhooks: Alertmanager's payload nests 4 deep."""

    max_bytes: int = 1_000_000
    max_depth: int = 64
    # Characters in one number token (digits, sign, point, exponent): an alert's figures are
    # short; this is far under CPython's 4,300-digit limit on int(), so that guard never fires.
    max_number_chars: int = 100


# Outside a string only these matter: a quote opens a string, brackets nest, and runs of
# number characters (the letters e/E also occur in true/false; their runs are 1 long).
_OUTSIDE = re.compile(rb'["\[\]{}]|[-+0-9.eE]+')
_INSIDE = re.compile(rb'[\\"]')


class JsonScanner:
    """Checks a JSON byte stream against :class:`JsonLimits`, chunk by chunk, in constant memory.

    It is not a validator: malformed JSON within the limits passes here and is refused by
    :func:`loads`. What it guarantees is that the parser never sees a body that would
    exhaust the stack, the CPU or the memory.
    """

    def __init__(self, limits: JsonLimits, *, structure: bool = True) -> None:
        self.limits = limits
        self.structure = structure  # False: count bytes only (the structure is checked later, off the event loop)
        self.size = 0
        self.depth = 0
        self._in_string = False
        self._escape = False
        self._number = 0  # length of the number run that touched the end of the last chunk

    def feed(self, chunk: bytes) -> None:
        """Account for the next chunk; raises :class:`JsonRejected` at the first limit broken."""
        self.size += len(chunk)
        if self.size > self.limits.max_bytes:
            raise JsonRejected(f"body larger than {self.limits.max_bytes} bytes", 413)
        if not self.structure:
            return
        i, end = 0, len(chunk)
        while i < end:
            if self._in_string:
                if self._escape:
                    self._escape, i = False, i + 1
                    continue
                found = _INSIDE.search(chunk, i)
                if found is None:
                    return
                self._escape = found.group() == b"\\"
                self._in_string = self._escape
                i = found.end()
                continue
            found = _OUTSIDE.search(chunk, i)
            if found is None:
                self._number = 0
                return
            if found.start() > i:
                self._number = 0  # whitespace, a comma or a colon ended the number
            token, i = found.group(), found.end()
            if token == b'"':
                self._in_string, self._number = True, 0
            elif token in (b"[", b"{"):
                self.depth, self._number = self.depth + 1, 0
                if self.depth > self.limits.max_depth:
                    raise JsonRejected(f"JSON nested deeper than {self.limits.max_depth} levels")
            elif token in (b"]", b"}"):
                self.depth, self._number = self.depth - 1, 0
            else:
                self._number += len(token)
                if self._number > self.limits.max_number_chars:
                    raise JsonRejected(f"a number longer than {self.limits.max_number_chars} characters")
                if i < end:
                    self._number = 0


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonRejected(f"number {text[:40]} is out of range")
    return value


def _no_constants(name: str) -> Any:
    raise JsonRejected(f"{name} is not a JSON number")


def loads(body: bytes, limits: JsonLimits | None = None) -> Any:
    """Parse ``body`` within ``limits``; :class:`JsonRejected` (400/413) for anything else."""
    scanner = JsonScanner(limits or JsonLimits())
    scanner.feed(body)
    try:
        return json.loads(body.decode("utf-8"), parse_float=_finite, parse_constant=_no_constants)
    except UnicodeDecodeError as exc:
        raise JsonRejected(f"body is not UTF-8: {exc.reason} at byte {exc.start}") from exc
    except json.JSONDecodeError as exc:
        raise JsonRejected(f"body is not valid JSON: {exc}") from exc


async def read_stream(
    chunks: AsyncIterable[bytes], limits: JsonLimits | None = None, *, structure: bool = True
) -> bytes:
    """Read a request body, refusing it (:class:`JsonRejected`) as soon as it breaks a limit.

    Nothing past the limit is buffered: a 200 MB body costs one chunk of memory, not 200 MB.
    The structure scan costs about 1 µs a byte in Python: a server whose event loop must stay
    free reads with ``structure=False`` (size only) and runs :func:`loads` in a worker thread.
    """
    scanner = JsonScanner(limits or JsonLimits(), structure=structure)
    body = bytearray()
    async for chunk in chunks:
        scanner.feed(chunk)
        body += chunk
    return bytes(body)


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinite number (NumPy's too) as None, in nested dicts and lists.

    For what Firebreak writes as JSON (task results Airflow keeps as XCom, ``--json`` output):
    JSON has no NaN, Airflow refuses to store one, and a figure that cannot be computed (a
    metric on one class, a test on one row) is absent, not a number.
    """
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral) and not math.isfinite(value):
        return None
    return value
