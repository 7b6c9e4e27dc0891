"""Helpers for the tests of the JSON adapters (ocsf, ecs, cloudtrail, entra, gws): reading the
public samples under tests/data/adapters/, checking that what an adapter produces is contract v1,
and replaying adapted events through the engine the way ``accesswatch replay`` does."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest

from detectors import events as E
from detectors.adapters import Reject, lines
from detectors.engine import Engine, EngineConfig
from streams.replay import replay

DATA = Path(__file__).parent / "data" / "adapters"


def sample(fmt: str, name: str) -> bytes:
    return (DATA / fmt / name).read_bytes()


def sample_obj(fmt: str, name: str) -> Any:
    return json.loads(sample(fmt, name))


def records(mod: ModuleType, raw: bytes) -> list[bytes]:
    """The records an adapter's framing (or the default, one per line) finds in ``raw``."""
    frame: Callable[[Any], Iterable[bytes]] = getattr(mod, "frame", lines)
    return list(frame(io.BytesIO(raw)))


def outcome(mod: ModuleType, record: bytes | dict[str, Any]) -> list[dict[str, Any]] | Reject:
    """What ``adapt`` makes of one record: its events, or the Reject it raised."""
    raw = record if isinstance(record, bytes) else orjson.dumps(record)
    try:
        return mod.adapt(raw)  # type: ignore[no-any-return]
    except Reject as r:
        return r


def adapt_ok(mod: ModuleType, record: bytes | dict[str, Any]) -> list[dict[str, Any]]:
    got = outcome(mod, record)
    assert not isinstance(got, Reject), f"rejected: {got}"
    assert_contract(got)
    return got


def reject_of(mod: ModuleType, record: bytes | dict[str, Any]) -> Reject:
    got = outcome(mod, record)
    assert isinstance(got, Reject), f"not rejected: {got}"
    assert got.reason and got.detail
    return got


def assert_contract(evs: list[dict[str, Any]]) -> None:
    """Every event decodes as contract v1, with no rejection and no ``invalid_claim``."""
    assert evs, "no events"
    for ev in evs:
        assert "kind" not in ev  # the kind is told by the fields, as a producer sends it
        got = E.decode(orjson.dumps(ev))
        assert isinstance(got, E.Event), f"{ev} -> {got}"
        assert got.invalid_claim is None, f"{ev}: {got.invalid_claim}"


def run_engine(evs: list[dict[str, Any]], detectors: tuple[str, ...] | None = None
               ) -> list[dict[str, Any]]:
    """The events as JSON lines through ``streams.replay.replay``, the path
    ``accesswatch replay`` takes; returns its alerts."""
    engine = Engine(EngineConfig(detectors=detectors))
    lines_ = [orjson.dumps(ev) for ev in evs]
    alerts = replay(lines_, engine, None)
    assert sum(engine.rejected.values()) == 0, dict(engine.rejected)
    return alerts


#: hostile records every JSON adapter must reject with a reason, never a traceback
HOSTILE: list[tuple[bytes, str]] = [
    (b"", "invalid_json"),
    (b"not json at all", "invalid_json"),
    (b"\xff\xfe{}", "invalid_json"),
    (b'{"a": 1', "invalid_json"),
    (b"[1, 2, 3]", "not_object"),
    (b'"a string"', "not_object"),
    (b"null", "not_object"),
    (b"{}", ""),  # some reason, whichever the format finds first
    (b'{"x": "' + b"A" * (2 << 20) + b'"}', "too_large"),
    (b"[" * 100_000, "invalid_json"),  # nesting deeper than any parser should follow
]


def hostile_params() -> Any:
    return pytest.mark.parametrize("raw,reason", HOSTILE, ids=[
        "empty", "text", "not-utf8", "truncated", "array", "string", "null", "empty-object",
        "huge", "deep"])


#: values a hostile producer may put in any field
HOSTILE_VALUES: list[Any] = [None, "", " ", "x" * 5000, "9" * 5000, "a\x00b", "\u202e", -1, 0,
                             2**63 - 1, 1.5, True, [], ["x"], {}, {"a": [1]}]


def _paths(obj: Any, prefix: tuple[Any, ...] = (), depth: int = 0) -> Iterable[tuple[Any, ...]]:
    if depth > 4:
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield (*prefix, k)
            yield from _paths(v, (*prefix, k), depth + 1)
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:3]):
            yield (*prefix, i)
            yield from _paths(v, (*prefix, i), depth + 1)


def fuzz_fields(mod: ModuleType, record: dict[str, Any]) -> int:
    """Every field of ``record`` (to depth 4), set in turn to each of ``HOSTILE_VALUES`` and
    deleted: ``adapt`` returns events that decode as contract v1 (or that only the configured
    years reject) or raises Reject, never anything else.
    Returns how many variants were tried."""
    import copy

    tried = 0
    for path in list(_paths(record)):
        for value in [*HOSTILE_VALUES, KeyError]:
            r = copy.deepcopy(record)
            node = r
            for p in path[:-1]:
                node = node[p]
            if value is KeyError:
                if isinstance(node, dict):
                    del node[path[-1]]
                else:
                    node.pop(path[-1])
            else:
                node[path[-1]] = value
            got = outcome(mod, r)  # any exception but Reject fails the test here
            if not isinstance(got, Reject):
                for ev in got:
                    decoded = E.decode(orjson.dumps(ev))
                    # a time outside the accepted years is the engine's policy to judge
                    assert isinstance(decoded, E.Event) or decoded.reason == "ts_out_of_range", (
                        f"{path}={value!r}: {ev} -> {decoded}")
            tried += 1
    return tried
