"""A budget on the total state bytes (issue 12, item 4): ``EngineConfig.max_state_bytes`` holds
the estimated bytes of all detectors' tables and open episodes (``Engine.state_bytes``) through
a flood, by lowering every table's cap through ``shed``; the idle and unflagged go first."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from detectors import _cap
from detectors._flood import flood
from detectors.engine import Engine, EngineConfig
from streams.settings import Settings, SettingsError
from tests.helpers import CASES, bare_runtime, fill_idle

SHED = 64
#: the most one shed interval can add: SHED events of up to 4 new entities, each of the
#: costliest kind
GROWTH = SHED * 4 * max([*_cap.BYTES_PER_ENTITY.values(), _cap.DEFAULT_BYTES])


def fill(det_id: str, eng: Engine, n: int) -> tuple[dict[Any, Any], Any]:
    """``n`` idle entities and one flagged (the least recently seen of all) in a table of
    ``det_id`` (``test_state_cap``'s cases), keyed as the detector keys it; the table and
    the key of a name."""
    table, make = CASES[det_id](eng.detectors[det_id])
    key = (lambda k: ("customer", k)) if det_id == "bulk_lookup" else (lambda k: k)
    staged: dict[str, Any] = {}
    fill_idle(staged, make, n)
    table.update({key(k): v for k, v in staged.items()})
    return table, key


def test_the_table_cap_cuts_the_largest_tables_first() -> None:
    sizes = [(100, 10), (100, 1000), (50, 5000)]
    c = _cap.table_cap(100_000, sizes)
    assert 100 * 10 + 100 * min(1000, c) + 50 * min(5000, c) <= 100_000
    assert 100 * 10 + 100 * min(1000, c + 1) + 50 * min(5000, c + 1) > 100_000
    assert c > 10  # the small table is not cut
    assert _cap.table_cap(10**9, sizes) == 5000  # fits: no cut
    assert _cap.table_cap(1, sizes) == 1  # never 0 (0 means "no cap" to evict)


def test_a_flood_is_held_to_the_byte_budget_and_warned_about(
        caplog: pytest.LogCaptureFixture) -> None:
    budget = 2 << 20
    capped = Engine(EngineConfig(max_entities=0, max_state_bytes=budget, shed_every=SHED))
    free = Engine(EngineConfig(max_entities=0, max_state_bytes=0))
    with caplog.at_level(logging.WARNING, logger="accesswatch.engine"):
        for e in flood(4000, seed=21, rate=2.0):
            capped.process_obj(e)
            free.process_obj(e)
    assert free.state_bytes() > 3 * budget, "the flood does not reach the budget"
    assert free.evicted == {}
    assert capped.state_bytes() <= budget + GROWTH
    assert sum(capped.evicted.values()) > 0 and not capped.internal_errors
    budget_lines = [r.getMessage() for r in caplog.records
                    if "state byte budget reached" in r.getMessage()]
    assert len(budget_lines) == 1  # once per hour of event time (the flood spans ~33 min)
    assert capped.stats == free.stats  # every event processed; only state was dropped


@pytest.mark.parametrize("det_id", list(CASES))
def test_the_byte_budget_evicts_the_idle_before_the_flagged(det_id: str) -> None:
    per = _cap.BYTES_PER_ENTITY.get(det_id, _cap.DEFAULT_BYTES)
    eng = Engine(EngineConfig(detectors=(det_id,), max_entities=0,
                              max_state_bytes=per * 100))
    table, key = fill(det_id, eng, 1000)
    assert eng.state_bytes() > eng.config.max_state_bytes
    eng._shed()
    assert eng.state_bytes() <= eng.config.max_state_bytes
    assert key("flagged") in table and len(table) <= 100
    assert key("idle-999") in table and key("idle-0") not in table
    assert eng.evicted[det_id] == 1001 - len(table)
    assert eng.drain_evictions()[det_id] == eng.evicted[det_id]  # the evictions metric's source


def test_no_budget_and_no_cap_evict_nothing() -> None:
    eng = Engine(EngineConfig(detectors=("bulk_lookup",), max_entities=0, max_state_bytes=0))
    table, _ = fill("bulk_lookup", eng, 1000)
    eng._shed()
    assert len(table) == 1001 and eng.evicted == {}


def test_the_budget_setting() -> None:
    assert Settings().max_state_bytes == EngineConfig().max_state_bytes == 1 << 30
    assert Settings.from_env({"ACCESSWATCH_MAX_STATE_BYTES": "256MiB"}).max_state_bytes == \
        256 << 20
    assert Settings.from_env({"ACCESSWATCH_MAX_STATE_BYTES": "0"}).max_state_bytes == 0
    with pytest.raises(SettingsError, match="ACCESSWATCH_MAX_STATE_BYTES"):
        Settings.from_env({"ACCESSWATCH_MAX_STATE_BYTES": "lots"})


def test_a_restored_partition_takes_todays_caps_not_the_checkpoints() -> None:
    """A checkpoint carries the engine's config; the runtime sets today's caps on it."""
    from types import SimpleNamespace

    from streams.checkpoint import checkpoint_records, snapshot
    from streams.snapshot import StateKeys

    keys = StateKeys(["test-state-key-0123456789"])
    rt = bare_runtime(max_entities=5000, max_state_bytes=64 << 20,
                      state_keys=("test-state-key-0123456789",))
    rt.table = SimpleNamespace(name="engine-checkpoints")  # the checkpoint below, no broker
    old = Engine(EngineConfig(max_entities=0, max_state_bytes=0))
    blob = snapshot(old, {"data-access": 3}, keys=keys, context=rt._context(0))
    rt.table.get = dict(checkpoint_records(0, blob)).get
    st = rt.state(0)  # nothing committed (Faust's consumer, never started): no direct read
    assert st.restored
    assert (st.engine.config.max_entities, st.engine.config.max_state_bytes) == (5000, 64 << 20)
