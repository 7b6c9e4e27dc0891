"""Bounded memory: every detector's per-entity tables stay under ``EngineConfig.max_entities``
through a flood of new entities; the least recently seen and unflagged go first; an attack
inside the flood is still detected."""

from __future__ import annotations

import itertools
import logging
from typing import Any

import pytest

from detectors import _cap
from detectors._flood import flood
from detectors.engine import Engine, EngineConfig, discover
from tests.helpers import CASES, burst_source, fill_idle, watch_start

#: caches with a bound of their own (``memo_max``), and tables of a fixed small domain
NOT_PER_ENTITY = {"_memo", "countries", "_countries", "_peers", "_peer_n", "_hst", "_hst_n"}


def tables(d: Any) -> dict[str, int]:
    """Sizes of the detector's dicts and sets, and of its trackers' and combiner's."""
    out: dict[str, int] = {}
    parts = [("", d)] + [(f"{k}.", getattr(d, k)) for k in ("_t", "_shared", "combiner")
                         if getattr(d, k, None) is not None]
    for prefix, obj in parts:
        for k, v in vars(obj).items():
            if k not in NOT_PER_ENTITY and isinstance(v, (dict, set)):
                out[prefix + k] = len(v)
        for i, t in enumerate(getattr(obj, "sources", ()) if prefix else ()):
            out[f"{prefix}sources[{i}]"] = len(t)
    return out


# ---- the helper ---------------------------------------------------------------------------

def test_evict_keeps_the_most_recent_and_the_flagged() -> None:
    table = {f"k{i}": (float(i), i % 10 == 0) for i in range(1000)}  # every 10th flagged
    gone: list[str] = []
    n = _cap.evict(table, 500, lambda v: v[0], lambda v: v[1], lambda k, v: gone.append(k))
    assert n == len(gone) == 1000 - 450 and len(table) == 450  # down to cap * (1 - SLACK)
    assert all(table[f"k{i}"] for i in range(0, 1000, 10))  # all 100 flagged kept
    unflagged = sorted(v[0] for v in table.values() if not v[1])
    assert unflagged == [float(i) for i in range(1000) if i % 10][-350:]  # the newest 350
    assert _cap.evict(table, 500, lambda v: v[0]) == 0  # under the cap: nothing


def test_evict_drops_flagged_ones_too_when_nothing_else_is_left() -> None:
    table = {i: float(i) for i in range(100)}
    assert _cap.evict(table, 10, float, lambda v: True) == 91
    assert sorted(table) == list(range(91, 100))


def test_evict_pair_takes_the_older_generation_first() -> None:
    new = {i: float(i) for i in range(100, 160)}
    old = {i: float(i) for i in range(60)}
    assert _cap.evict_pair(new, old, 100, float) == 120 - 90
    assert len(old) == 30 and len(new) == 60 and min(old) == 30


# ---- every detector under a flood -----------------------------------------------------------

CAP = 300
SHED = 64


@pytest.mark.parametrize("det_id", list(discover()))
def test_a_flood_of_new_entities_keeps_every_table_under_the_cap(det_id: str) -> None:
    capped = Engine(EngineConfig(detectors=(det_id,), max_entities=CAP, shed_every=SHED))
    free = Engine(EngineConfig(detectors=(det_id,), max_entities=0))
    for e in flood(3000, seed=5):
        capped.process_obj(e)
        free.process_obj(e)
    sizes = tables(capped.detectors[det_id])
    grown = {k for k, v in tables(free.detectors[det_id]).items() if v > CAP + SHED}
    assert grown, f"the flood does not reach {det_id}'s tables: the test proves nothing"
    assert {k: v for k, v in sizes.items() if v > CAP + SHED} == {}
    for kind, n in capped.tracked().items():
        assert n <= 3 * (CAP + SHED), kind  # a kind may sum a few tables
    assert capped.evicted[det_id] > 0 and not capped.internal_errors


def test_the_cap_warns_once_per_hour_of_event_time_per_detector(
        caplog: pytest.LogCaptureFixture) -> None:
    eng = Engine(EngineConfig(detectors=("impossible_travel",), max_entities=CAP,
                              shed_every=SHED))
    with caplog.at_level(logging.WARNING, logger="accesswatch.engine"):
        for e in flood(3000, seed=6, rate=2.0):  # 25 minutes of event time
            eng.process_obj(e)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "impossible_travel" in warnings[0]
    assert eng.drain_evictions()["impossible_travel"] == eng.evicted["impossible_travel"] > 0
    assert eng.drain_evictions() == {}


def test_touched_alert_ids_nobody_drains_are_bounded() -> None:
    eng = Engine(EngineConfig(detectors=("unissued_session",), max_entities=CAP))
    eng._touched = {f"aw-{i}" for i in range(CAP + 1)}
    eng._shed()
    assert len(eng._touched) <= CAP


def test_open_episodes_are_capped_and_closed_not_forgotten() -> None:
    # judged 5 s after each read (as before issue 14 item 5, whose 60 + 300 s wait would let
    # the pending-read cap shed most of this flood's reads before they become findings)
    eng = Engine(EngineConfig(detectors=("unissued_session",), max_entities=CAP,
                              shed_every=SHED,
                              params={"unissued_session": {"login_lateness": 5.0,
                                                           "login_quiet": 0.0}}))
    # the watch began 10 min earlier: the flood's fresh tokens are past the skew at its start
    eng.process_obj(watch_start(1750734765.0 - 600))
    for e in flood(2000, seed=7):
        if "actor_id" in e and e.get("actor_type") is None:
            e = {**e, "session_id": "never-issued-" + e["event_id"]}  # an alert per event
        eng.process_obj(e)
    eng.flush()
    assert len(eng.episodes) <= CAP + SHED
    assert eng.evicted["engine"] > 0 and eng._n_closed > 0


# ---- flagged entities stay while idle ones go -----------------------------------------------











@pytest.mark.parametrize("det_id", [*CASES, "credential_stuffing", "password_spray",
                                    "account_takeover"])
def test_a_flagged_entity_outlives_idle_unflagged_ones(det_id: str) -> None:
    eng = Engine(EngineConfig(detectors=(det_id,)))
    d = eng.detectors[det_id]
    if det_id in CASES:
        table, make = CASES[det_id](d)
    else:  # the burst trackers of the login detectors: sources flagged in a burst
        from detectors import _burst
        d._t = _burst.BurstTracker(_burst.BurstConfig(), salt=1)
        d._shared = d._t if det_id == "password_spray" else None
        table, make = d._t.sources[0], burst_source
        d._t.flagged_count = 1
    fill_idle(table, make, 1000)
    assert d.shed(100) > 0
    assert "flagged" in table and len(table) <= 100
    assert "idle-999" in table and "idle-0" not in table  # the most recent of the rest stay
    if det_id not in CASES:
        assert d._t.flagged_count == 1


# ---- an attack inside the flood -------------------------------------------------------------

def test_a_coupang_style_attack_inside_a_flood_is_still_detected() -> None:
    from simulation import SimConfig, iter_events

    cfg = SimConfig(seed=3, customers=300, hours=4.0, attacks=("coupang",))
    traffic = list(iter_events(cfg))

    def alerts(events: Any, cap: int) -> tuple[Engine, set[tuple[str, str, str]]]:
        eng = Engine(EngineConfig(max_entities=cap, shed_every=256))
        out = []
        for e in events:
            out += eng.process_obj(e)[0]
        out += eng.flush()
        return eng, {(a["detector"], a["entity"]["kind"], a["entity"]["id"]) for a in out
                     if a["severity"] == "critical"}

    _, clean = alerts(traffic, 0)
    assert {d for d, _, _ in clean} >= {"bulk_lookup", "overseas_server", "unissued_session"}
    noise = list(flood(10_000, seed=9, start=_ts(traffic[0]), rate=10_000 / (4 * 3600.0)))
    mixed = sorted(itertools.chain(traffic, noise), key=_ts)
    eng, flooded = alerts(mixed, 1000)
    assert sum(eng.evicted.values()) > 20_000  # the cap bound, hard
    assert clean <= flooded, clean - flooded


def _ts(e: dict[str, Any]) -> float:
    from detectors.events import decode_obj

    t = e["ts"]
    if isinstance(t, int | float):
        return float(t)
    return decode_obj({"event_id": "x", "ts": t, "change": "key_revoked", "key_id": "k"}).ts


def test_bulk_lookup_counts_by_kind_follow_inserts_expiry_and_eviction() -> None:
    """``BulkLookup.tracked`` is kept up to date where its table changes (the byte budget
    reads it every ``shed_every`` events): it equals a recount of the table after a flood
    that both evicts and expires, and a state without the counts (an older checkpoint)
    is recounted."""
    # no byte budget: nothing calls ``tracked`` (which recounts a table out of step) before
    # the assertions read the counts as kept
    eng = Engine(EngineConfig(detectors=("bulk_lookup",), max_entities=CAP, shed_every=SHED,
                              max_state_bytes=0))
    d = eng.detectors["bulk_lookup"]

    def recount() -> dict[str, int]:
        out: dict[str, int] = {}
        for kind, _ in d._ents:
            out[kind] = out.get(kind, 0) + 1
        return out

    for e in flood(3000, seed=11):
        eng.process_obj(e)
    assert eng.evicted["bulk_lookup"] > 0 and d._ents
    kept = {k: n for k, n in d._kind_n.items() if n}  # the counts as kept, not recounted
    assert kept == d.tracked() == recount()
    d._kind_n = {}  # as restored from a checkpoint from before the counts
    assert d.tracked() == recount() and sum(d.tracked().values()) == len(d._ents)
    d.expire(eng.ctx.now + 30 * 86400)  # every idle entity goes
    assert {k: n for k, n in d._kind_n.items() if n} == d.tracked() == recount() == {}
