"""Limits on JSON from outside, checked as the body arrives (reliability case 29)."""

from __future__ import annotations

import asyncio
import json
import random

import pytest

from firebreak.bounded_json import JsonLimits, JsonRejected, JsonScanner, finite, loads, read_stream

DOC = json.dumps(
    {"a": [1, -2.5e3, {"b": 'x\\"[[[[{{ ]]]] \\\\', "c": True, "d": None}], "e": "y" * 300, "f": "[" * 50}
).encode()


def test_chunk_boundaries_never_change_the_verdict() -> None:
    """Brackets and escapes inside strings do not nest; a split anywhere reads the same."""
    rng = random.Random(3)
    for _ in range(300):
        scanner, i = JsonScanner(JsonLimits(max_depth=3, max_number_chars=10)), 0
        while i < len(DOC):
            step = rng.randint(1, 7)
            scanner.feed(DOC[i : i + step])
            i += step
        assert scanner.depth == 0 and scanner.size == len(DOC)
    assert loads(DOC, JsonLimits(max_depth=3))["f"] == "[" * 50


@pytest.mark.parametrize(
    ("chunks", "message"),
    [
        ([b"[" * 3, b"[", b"]" * 4], "nested deeper than 3 levels"),
        ([b'{"n": 12345', b"67}"], "a number longer than 6 characters"),
        ([b'{"n": "12345678", "m": 1}'], None),  # digits inside a string are text
    ],
    ids=["depth-across-chunks", "number-across-chunks", "digits-in-a-string"],
)
def test_limits_hold_across_chunks(chunks: list[bytes], message: str | None) -> None:
    scanner = JsonScanner(JsonLimits(max_depth=3, max_number_chars=6))
    if message is None:
        for chunk in chunks:
            scanner.feed(chunk)
        return
    with pytest.raises(JsonRejected, match=message):
        for chunk in chunks:
            scanner.feed(chunk)


def test_reading_stops_at_the_size_limit_without_consuming_the_rest() -> None:
    consumed = 0

    async def body():  # type: ignore[no-untyped-def]
        nonlocal consumed
        for _ in range(3200):  # 200 MB, if it were all read
            consumed += 1
            yield b"[" + b"1," * 32767 + b"1]"

    with pytest.raises(JsonRejected, match="body larger than 1000000 bytes") as refused:
        asyncio.run(read_stream(body(), JsonLimits(max_bytes=1_000_000)))
    assert refused.value.status_code == 413
    assert consumed == 16  # 16 chunks of 64 KiB: the 16th crosses 1 MB, nothing after it is read


def test_finite_makes_every_non_finite_number_none_wherever_it_sits() -> None:
    import numpy as np

    value = {"auc": float("nan"), "rows": 800, "groups": [{"rate": np.float32("inf")}, (np.float64(0.5), True)]}
    assert finite(value) == {"auc": None, "rows": 800, "groups": [{"rate": None}, [0.5, True]]}
    json.dumps(finite(value), allow_nan=False)  # what Airflow's XCom and `--json` need
