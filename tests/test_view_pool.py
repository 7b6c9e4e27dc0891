"""Issue 17 item 5: bulk_lookup's window views of several input partitions are merged per
entity and window before they are scored (``detectors.bulk_lookup.ViewPool``), so a source
or key whose traffic is spread over partitions pages at the event and time one engine of
every event (``replay``) pages it. Pure: no broker (``local.split.run_split`` wires the
engines as the runtime does)."""

from __future__ import annotations

from typing import Any

import pytest

from detectors.bulk_lookup import ViewPool
from detectors.engine import Engine, EngineConfig
from local.split import replay, run_split
from simulation import SimConfig, simulate
from streams.batch import partition_for
from streams.combine import REMOTE_KINDS, partial_key
from streams.produce import classify

T0 = 1750734000.0  # a window start (a multiple of 60 s)
BULK = ("bulk_lookup",)


def pages(alerts: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """(alert id, severity, episode start, time) of every bulk_lookup alert, sorted."""
    return sorted((a["alert_id"], a["severity"], a["episode"]["started"], a["ts"])
                  for a in alerts if a["detector"] == "bulk_lookup")


def read(i: int, ts: float, ip: str = "3.101.7.9") -> dict[str, Any]:
    """Customer ``c-<i>`` reading their own record from ``ip`` (a datacenter abroad)."""
    return {"event_id": f"e{i}-{ts}", "ts": ts, "actor_id": f"c-{i}", "subject_id": f"c-{i}",
            "resource": "address", "src_ip": ip, "key_id": "kid-legacy"}


def spread(n: int, parts: int) -> list[int]:
    """``n`` customer numbers whose reads land on every one of ``parts`` partitions in turn."""
    by_part: dict[int, list[int]] = {p: [] for p in range(parts)}
    i = 0
    while min(len(v) for v in by_part.values()) < n:
        kind, key = classify(read(i, T0))
        assert kind == "access" and isinstance(key, bytes)
        by_part[partition_for(key, parts)].append(i)
        i += 1
    return [by_part[k % parts][k // parts] for k in range(n)]


@pytest.mark.parametrize("parts", [2, 3, 4])
def test_a_window_split_over_partitions_pages_at_the_replays_event_and_time(
        parts: int) -> None:
    """Six customers read from one server abroad within a minute (under the burst size),
    their reads spread over the partitions, then two more the next minute: one engine
    scores the window once, on its six accounts, at its last read. Scored view by view (the
    behaviour before), the hour crossed its threshold at another partition's view, with that
    view's time: another episode start, another alert id."""
    who = spread(8, parts)
    events = [read(c, T0 + 8 * k) for k, c in enumerate(who[:6])]
    events += [read(c, T0 + 70 + k) for k, c in enumerate(who[6:])]
    events.append(read(10_000, T0 + 200, ip="211.45.1.9"))  # closes the second window
    one = replay(events, BULK)
    assert pages(one), "the window pages in one engine"
    assert pages(run_split(events, parts, BULK)) == pages(one)


def test_views_of_a_window_wait_for_every_partition_to_close_it() -> None:
    eng = Engine(EngineConfig(detectors=BULK))
    pool = ViewPool(eng, 2)

    def view(part: int, window: float, accounts: range, last: float) -> dict[str, Any]:
        sender = Engine(EngineConfig(remote_kinds=REMOTE_KINDS))
        for i in accounts:
            sender.process_obj(read(i, window + last - (accounts.stop - 1 - i)))
        sender.flush()
        (m,) = [m for m in sender.drain_partials() if m["partial"]["kind"] == "src_ip"]
        return m

    pool.add(0, view(0, T0, range(0, 3), 20.0))
    pool.advance(0, T0 + 130.0)
    assert pool.release() == []  # partition 1 has said nothing
    pool.advance(1, T0 + 100.0)
    assert pool.release() == []  # its time is not yet past the window's end by access_quiet
    pool.add(1, view(1, T0, range(3, 7), 40.0))
    assert pool.release() == []  # its view of the window may not be its last
    pool.add(1, view(1, T0 + 60, range(7, 8), 10.0))  # a view of the next window: it closed
    (merged,) = [m for m in pool.release() if m["partial"]["kind"] == "src_ip"]
    p = merged["partial"]
    assert (p["window"], p["n_distinct"], p["last"]) == (T0, 7, T0 + 40.0)
    assert pool.pending == 1  # the next window waits for partition 0
    again = view(0, T0, range(0, 3), 20.0)
    again.update(origin="x", seq=1)
    pool.add(0, again)
    pool.add(0, dict(again))  # a restored sender's view sent again: taken once
    assert eng.rejected["duplicate_partial"] == 1
    pool.advance(0, T0 + 500.0, flushed=True)
    pool.advance(1, T0 + 500.0, flushed=True)
    assert {m["partial"]["window"] for m in pool.release()} == {T0, T0 + 60}
    assert pool.pending == 0


def test_the_views_of_a_family_meet_in_one_scorer() -> None:
    """Sources, subnets and ASes share peer groups and an anomaly model in one engine; keys
    another; actors another: each family's views go to one partition of the partials topic
    (the home countries' reads by country go with the sources)."""
    def key(kind: str, entity: str) -> bytes:
        return partial_key({"partial": {"kind": kind, "entity": entity}})

    sources = {key("src_ip", "3.101.7.9"), key("src_ip", "5.161.128.186"),
               key("subnet", "3.101.7.0/24"), key("asn", "AS16509"), key("countries", "")}
    keys = {key("key", "kid-legacy"), key("key", "kid-2026")}
    actors = {key("actor", "emp-ops-01"), key("actor", "cust-0001"), key("actor", "svc-batch")}
    assert len(sources) == len(keys) == len(actors) == 1
    assert len(sources | keys | actors) == 3
    assert all(b"3.101" not in k and b"emp-ops" not in k for k in sources | actors)


@pytest.fixture(scope="module")
def coupang_day() -> list[dict[str, Any]]:
    return simulate(SimConfig(seed=3, customers=400, hours=3, attacks=("coupang",),
                              attack_start_hour=0.5)).events


def test_a_coupang_day_over_four_partitions_pages_the_replays_ids(
        coupang_day: list[dict[str, Any]]) -> None:
    one = replay(coupang_day, BULK)
    assert any(a["entity"]["kind"] == "src_ip" for a in one)
    assert pages(run_split(coupang_day, 4, BULK)) == pages(one)


def test_a_scorer_holds_at_most_max_entities_views() -> None:
    """A partition that never reports (or forged views of windows no partition closes): the
    oldest windows go on past the engine's ``max_entities`` held views, counted."""
    eng = Engine(EngineConfig(detectors=BULK, max_entities=5))
    pool = ViewPool(eng, 2)
    sender = Engine(EngineConfig(remote_kinds=REMOTE_KINDS))
    for w in range(6):
        for i in range(3):
            sender.process_obj(read(100 * w + i, T0 + 60 * w + i))
    sender.flush()
    out = []
    for m in sender.drain_partials():
        pool.add(0, m)
        out += pool.release()  # partition 1 never reports
        assert pool.pending <= 5
    assert out and eng.stats["pool_released_early"] > 0
    assert [m["partial"]["window"] for m in out] == sorted(m["partial"]["window"] for m in out)


@pytest.mark.parametrize(("field", "value"), [
    ("count", "many"), ("window", float("nan")), ("event_ids", [1]), ("id_min", 3),
    ("reads", {"KR": "x"}), ("last", None),
])
def test_a_view_of_the_wrong_shape_is_refused_when_it_arrives(field: str, value: Any) -> None:
    """A view that would fail when merged or scored is refused whole by ``add`` (the combiner
    dead-letters it): it never sits in the pool where it would fail every later release."""
    eng = Engine(EngineConfig(detectors=BULK))
    pool = ViewPool(eng, 1)
    sender = Engine(EngineConfig(remote_kinds=REMOTE_KINDS))
    for i in range(3):
        sender.process_obj(read(i, T0 + i))
    sender.flush()
    good, bad = sender.drain_partials()[:2]
    bad["partial"][field] = value
    with pytest.raises(ValueError):
        pool.add(0, bad)
    pool.add(0, good)
    pool.advance(0, T0 + 500.0, flushed=True)
    assert [m["partial"]["entity"] for m in pool.release()] == [good["partial"]["entity"]]


# --- h-par8: a key's burst from shares -------------------------------------------------------


@pytest.mark.parametrize("parts", [2, 4])
def test_a_keys_burst_split_over_partitions_pages_at_the_replays_read(parts: int) -> None:
    """Eleven customers read their own records through one signing key, each from a server
    abroad of its own, within a minute; their reads spread over the partitions, no
    partition's share reaches ``burst_dc`` (8) datacenter accounts. One engine's accumulator
    judges the key at once at the 8th account's read (the episode starts there), then the
    rest of the window at its close. Merged from shares without their reads' times, the key
    was judged at the window's close: another start, another alert id."""
    who = spread(11, parts)
    events = [read(c, T0 + 3 * k, ip=f"3.101.7.{k + 1}") for k, c in enumerate(who)]
    events.append(read(10_000, T0 + 200, ip="211.45.1.9"))  # closes the window
    one = replay(events, BULK)
    assert [a["episode"]["started"] for a in one if a["entity"]["kind"] == "key"][:1] == [
        "2025-06-24T03:00:21.000Z"]  # the 8th account's read
    assert pages(run_split(events, parts, BULK)) == pages(one)


def test_a_key_view_carries_its_reads_only_where_shares_are_merged() -> None:
    """An input engine that hands keys' views out sends each key view with its reads (time,
    salted digest, datacenter read, event id); one engine scoring its own views keeps none,
    and a timeline of the wrong shape is refused when it arrives."""
    sender = Engine(EngineConfig(remote_kinds=REMOTE_KINDS))
    alone = Engine(EngineConfig(detectors=BULK))
    for i in range(3):
        sender.process_obj(read(i, T0 + i))
        alone.process_obj(read(i, T0 + i))
    sender.flush()
    views = [m for m in sender.drain_partials() if m["partial"]["kind"] == "key"]
    assert len(views) == 1
    tl = views[0]["partial"]["timeline"]
    assert [(r[0], r[2], r[3]) for r in tl] == [(T0 + i, True, f"e{i}-{T0 + i}")
                                               for i in range(3)]
    assert all(type(r[1]) is int for r in tl) and "c-0" not in str(tl)
    assert alone.detectors["bulk_lookup"].combiner.timeline == 0
    pool = ViewPool(Engine(EngineConfig(detectors=BULK)), 1)
    views[0]["partial"]["timeline"] = [[T0, "c-0", True, "e0"]]
    with pytest.raises(ValueError):
        pool.add(0, views[0])
