"""Issue 17 item 5: splitting one event stream over 1 or 4 engines pages the same alert ids.

The events are split as the runtime splits them (``local.split.run_split``): logins by account,
access by actor, identity changes to every engine; with several partitions, logins go on to a
burst engine by source AS, bulk_lookup's views to a scorer by entity, and the input engines
relay every finding (``relay_kinds``) to an episode builder keyed by its entity
(``detectors.episodes``). Pure: no broker.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import orjson
import pytest

from detectors.engine import Engine, EngineConfig
from detectors.episodes import RELAY_KINDS, EpisodeBuilder, InOrder
from local.split import replay, run_split
from simulation import SimConfig, simulate


def ids(alerts: list[dict[str, Any]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for a in alerts:
        out[a["detector"]].add(a["alert_id"])
    return dict(out)


def pages(alerts: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(alert id, severity, episode start) of every alert message, sorted."""
    return sorted((a["alert_id"], a["severity"], a["episode"]["started"]) for a in alerts)


@pytest.fixture(scope="module")
def key_day() -> list[dict[str, Any]]:
    """The Coupang key (forged tokens from servers abroad) and a departed owner's API key."""
    return simulate(SimConfig(seed=5, customers=300, hours=3, attacks=("coupang", "departed_key"),
                              attack_start_hour=0.5)).events


@pytest.fixture(scope="module")
def burst_day() -> list[dict[str, Any]]:
    """Credential stuffing and a password spray: findings on addresses, subnets and an AS."""
    return simulate(SimConfig(seed=5, customers=600, hours=3, attacks=("stuffing", "spray"),
                              attack_start_hour=0.5)).events


KEY_DETECTORS = ("revoked_credential", "unissued_session")


def test_key_and_source_findings_page_once_over_four_partitions(key_day):
    one = run_split(key_day, 1, KEY_DETECTORS)
    kinds = {(a["detector"], a["entity"]["kind"]) for a in one}
    assert ("revoked_credential", "key") in kinds and ("unissued_session", "key") in kinds
    four = run_split(key_day, 4, KEY_DETECTORS)
    assert ids(four) == ids(one)
    assert pages(four) == pages(one)  # same escalations, same episode starts


def test_incident_ids_over_four_partitions_are_the_replays(key_day) :
    def incidents(alerts: list[dict[str, Any]]) -> dict[str, str]:
        return {a["alert_id"]: a["incident_id"] for a in alerts if "incident_id" in a}

    one = incidents(run_split(key_day, 1, KEY_DETECTORS))
    assert one
    assert incidents(run_split(key_day, 4, KEY_DETECTORS)) == one


def test_without_the_builder_each_partition_pages_the_key_itself(key_day):
    """The old behaviour, kept as a reference: the same key's episode once per partition."""
    one = run_split(key_day, 1, KEY_DETECTORS)
    four = run_split(key_day, 4, KEY_DETECTORS, relay=False)
    assert len(ids(four)["revoked_credential"]) > len(ids(one)["revoked_credential"])
    assert ids(four) != ids(one)


def test_a_partition_running_ahead_does_not_open_episodes_at_its_own_times(key_day):
    one = run_split(key_day, 1, KEY_DETECTORS)
    assert pages(run_split(key_day, 4, KEY_DETECTORS, skew=True)) == pages(one)


def test_subnet_and_as_bursts_page_the_same_over_four_partitions(burst_day):
    dets = ("credential_stuffing", "password_spray")
    one = run_split(burst_day, 1, dets)
    kinds = {a["entity"]["kind"] for a in one}
    assert "src_ip" in kinds and kinds & {"subnet", "asn"}, kinds
    assert pages(run_split(burst_day, 4, dets)) == pages(one)


def test_a_burst_engine_takes_logins_in_order_when_a_partition_runs_ahead(burst_day):
    """Partition 0 takes all its logins before the others start (a catch-up): the burst
    engines hold what it forwards until every partition has passed it (``InOrder``), so the
    bursts are counted as one engine of every login counts them. Taken as they came, an
    address's attempts split into windows of their own (three stuffing episodes for one
    address were seen in `demo --partitions 4`)."""
    dets = ("credential_stuffing", "password_spray")
    one = run_split(burst_day, 1, dets)
    assert pages(run_split(burst_day, 4, dets, skew=True)) == pages(one)


def test_a_repeated_finding_is_taken_once_and_bad_ones_are_refused():
    sender = Engine(EngineConfig(detectors=(), relay_kinds=("key",)))
    from detectors.base import Finding

    sender._alerts([Finding("revoked_credential", "key", "k1", "warning", 0.5, "s", [], ["e1"],
                            50.0)])
    (msg,) = sender.drain_findings()
    b = EpisodeBuilder(Engine(EngineConfig(detectors=())), 1)
    b.add(msg, 0)
    b.add(orjson.loads(orjson.dumps(msg)), 0)  # sent again after a restore
    assert b.pending == 1 and b.engine.rejected["duplicate_finding"] == 1
    for bad in ({**msg, "seq": "x"}, {**msg, "at": float("nan"), "seq": 9},
                {**msg, "seq": 10, "finding": {**msg["finding"], "entity_kind": "planet"}},
                {**msg, "seq": 11, "finding": {**msg["finding"], "ts": "soon"}}):
        with pytest.raises(ValueError):
            b.add(bad, 0)
    assert [a["alert_id"] for a in b.advance(0, 51.0)]
    assert b.pending == 0


def test_a_partition_that_never_reports_holds_at_most_the_cap():
    """Findings wait for every partition's time, but not without bound (max_entities)."""
    b = EpisodeBuilder(Engine(EngineConfig(detectors=(), max_entities=3)), 2)
    for i in range(5):
        b.add({"at": float(i), "origin": "o", "seq": i + 1, "finding": {
            "detector": "revoked_credential", "entity_kind": "key", "entity_id": f"k{i}",
            "severity": "warning", "score": 0.5, "summary": "s", "evidence": [],
            "event_ids": [], "ts": float(i), "extra": {}}}, 0)
    assert b.advance(0, 10.0) and b.pending == 3  # partition 1 never reported: the 2 oldest
    assert b.engine.stats["finding_released_early"] == 2
    assert len(b.advance(1, 10.0)) == 3 and b.pending == 0


def test_a_partition_that_flushed_early_does_not_let_the_others_findings_go():
    """An idle partition flushes (fires its timers) and may take events again: its time, not
    "done", holds the others back until every partition has flushed."""
    b = EpisodeBuilder(Engine(EngineConfig(detectors=())), 2)
    for i, at in enumerate((60.0, 90.0)):
        b.add({"at": at, "origin": "o", "seq": i + 1, "finding": {
            "detector": "revoked_credential", "entity_kind": "key", "entity_id": "k",
            "severity": "warning", "score": 0.5, "summary": "s", "evidence": [],
            "event_ids": [], "ts": at, "extra": {}}}, 1)
    assert b.advance(0, 50.0, flushed=True) == []
    assert b.advance(1, 80.0) == [] and b.pending == 2  # partition 0 is at 50
    assert len(b.advance(0, 70.0)) == 1 and b.pending == 1  # 60 < 70: taken (once, warning)
    b.advance(0, 70.0, flushed=True)
    assert b.pending == 1  # partition 1 has not flushed, and is at 80 < 90
    b.advance(1, 80.0, flushed=True)
    assert b.pending == 0


@pytest.fixture(scope="module")
def coupang_day() -> list[dict[str, Any]]:
    """The Coupang servers abroad: customer reads from hosting subnets, one subnet's accounts
    spread over every partition (data-access is keyed by actor)."""
    return simulate(SimConfig(seed=5, customers=300, hours=3, attacks=("coupang", "stuffing"),
                              attack_start_hour=0.5)).events


def test_a_subnets_customer_uses_are_counted_where_they_meet(coupang_day):
    """overseas_server pages a hosting subnet on the distinct customers read from it: over four
    partitions each engine saw a share of them (one subnet warned and paged at other times,
    under other alert ids, the accounts' info findings multiplied); its observations now meet
    in the subnet's builder, and the subnet and account pages are the replay's."""
    dets = ("overseas_server",)
    one = run_split(coupang_day, 1, dets)
    kinds = {a["entity"]["kind"] for a in one}
    assert "subnet" in kinds, kinds
    assert {a["severity"] for a in one if a["entity"]["kind"] == "subnet"} >= {"critical"}
    assert pages(run_split(coupang_day, 4, dets)) == pages(one)


def test_an_observation_without_its_detector_is_counted_not_alerted():
    """A builder that does not run the observing detector drops its observations, counted."""
    from detectors.base import observation

    sender = Engine(EngineConfig(detectors=(), relay_kinds=RELAY_KINDS))
    obs = observation("overseas_server", "subnet", "3.101.4.0/24", 50.0, "e1", {"x": 1})
    assert sender._alerts([obs]) == []
    (msg,) = sender.drain_findings()
    b = EpisodeBuilder(Engine(EngineConfig(detectors=())), 1)
    b.add(orjson.loads(orjson.dumps(msg)), 0)
    assert b.advance(0, 60.0) == []
    assert b.engine.stats["observation_dropped"] == 1


def test_in_order_holds_at_most_the_cap_and_refuses_times_that_are_not_numbers():
    """Logins wait for every input partition's time, but not without bound (max_entities)."""
    order = InOrder(Engine(EngineConfig(detectors=(), max_entities=3)), 2)
    for i in range(5):
        order.add(float(i), float(i), 0, i + 1, f"l{i}")
    assert order.advance(0, 10.0) == ["l0", "l1"] and order.pending == 3
    assert order.engine.stats["in_order_released_early"] == 2
    assert order.advance(1, 10.0) == ["l2", "l3", "l4"]
    for bad in ((float("nan"), 1.0), (1.0, float("inf"))):
        with pytest.raises(ValueError):
            order.add(*bad, 0, 9, "x")
    with pytest.raises(ValueError):
        order.advance(0, float("nan"))


@pytest.fixture(scope="module")
def spread_day() -> list[dict[str, Any]]:
    """The Coupang servers abroad over 1,000 customers: enough forged reads through one key
    and AS that spread_access warns and pages on the key and an AS."""
    return simulate(SimConfig(seed=5, customers=1000, hours=2, attacks=("coupang",),
                              attack_start_hour=0.5)).events


def test_spread_access_counts_the_whole_shop_where_its_observations_meet(spread_day):
    """spread_access counts distinct customers per key, resource, AS and across the shop, and
    learns the customers' home countries from every read. Counted on each partition's share
    (the behaviour before h-par3, ``relay=False`` keeps it), four partitions paged nothing
    here; its reads now travel as observations (with the reads by country since the last one)
    to one builder, and the pages and alert ids are the replay's."""
    dets = ("spread_access",)
    one = replay(spread_day, dets)
    assert {(a["entity"]["kind"], a["severity"]) for a in one} >= {
        ("key", "warning"), ("key", "critical")}
    assert pages(run_split(spread_day, 4, dets)) == pages(one)
    assert pages(run_split(spread_day, 4, dets, relay=False)) != pages(one)


def test_spread_access_in_one_engine_folds_its_own_observations(spread_day):
    """``replay`` (no relay): the engine folds each observation at once, so one input engine
    of a one-partition worker and ``replay`` agree, finding by finding."""
    dets = ("spread_access",)
    assert run_split(spread_day, 1, dets) == replay(spread_day, dets)


def test_a_shared_exits_first_unverifiable_account_is_held_as_replay_holds_it():
    """overseas_server holds the first account whose token predates the watch per exit
    address (a VPN customer with an old token), and counts it only once a second account
    comes through that address. Those accounts' reads reach every partition (access is
    keyed by actor): the hold is made where the subnet's observations meet, so over four
    partitions the subnet pages under the replay's alert ids."""
    ev = simulate(SimConfig(seed=5, customers=300, hours=3, attacks=("coupang_predating",),
                            attack_start_hour=0.5)).events
    dets = ("overseas_server",)
    one = replay(ev, dets)
    subnets = [a for a in one if a["entity"]["kind"] == "subnet"]
    assert subnets, "no subnet page: the scenario does not exercise the hold"
    assert pages(run_split(ev, 4, dets)) == pages(one)
    assert pages(run_split(ev, 4, dets, skew=True)) == pages(one)


def test_bulk_lookup_views_are_scored_in_engine_time_order_across_partitions():
    """bulk_lookup's window views of sources and keys are a partition's share (not the
    replay's views: docs/contract.md), but the scorers take them in engine-time order across
    input partitions (``streams.combine``: each view carries its partition, engine time and a
    sequence), so a partition catching up pages as the partitions taking events together do.
    Scored as they came, that catch-up paged no source under the same alert id."""
    ev = simulate(SimConfig(seed=3, customers=400, hours=2, attacks=("coupang",),
                            attack_start_hour=0.5)).events
    dets = ("bulk_lookup",)
    together = pages(run_split(ev, 4, dets))
    assert len(together) >= 5
    assert pages(run_split(ev, 4, dets, skew=True)) == together
    as_they_came = pages(run_split(ev, 4, dets, skew=True, views_in_order=False))
    assert not {i for i, _, _ in as_they_came} & {i for i, _, _ in together}


def test_spread_access_observations_name_the_customer_by_digest_only(spread_day):
    """What crosses the findings topic for spread_access: the customer read as a salted
    digest, never the customer's or the actor's id."""
    eng = Engine(EngineConfig(detectors=("spread_access",), relay_kinds=RELAY_KINDS))
    sent = 0
    for obj in spread_day:
        eng.process_obj(obj)
        if not eng.has_findings():
            continue
        for m in eng.drain_findings():
            data = m["finding"]["extra"]["observation"]
            assert isinstance(data["subject"], int)
            raw = orjson.dumps(m).decode()
            assert f'"{obj["subject_id"]}"' not in raw and f'"{obj["actor_id"]}"' not in raw
            sent += 1
    assert sent > 0


# --- h-par6: a verdict put off on one partition holds its own episode, nothing else -------

T6 = 1_772_600_000.0


def _on(parts: int, want: int, prefix: str) -> str:
    """An id whose events go to input partition ``want`` of ``parts`` (the worker's keying)."""
    from streams.batch import partition_for

    return next(f"{prefix}-{i}" for i in range(1000)
                if partition_for(f"{prefix}-{i}".encode(), parts) == want)


def _read(t: float, actor: str, sid: str | None, tia: float | None, key: str
          ) -> dict[str, Any]:
    from detectors.base import iso

    ev = {"event_id": f"r-{actor}-{t}", "ts": iso(t), "actor_id": actor,
          "actor_type": "customer", "subject_id": actor, "resource": "profile",
          "action": "read", "src_ip": "121.134.20.36", "key_id": key}
    if sid is not None:
        ev["session_id"] = sid
    if tia is not None:
        ev["token_issued_at"] = iso(tia)
    return ev


def _login(t: float, account: str) -> dict[str, Any]:
    from detectors.base import iso

    return {"event_id": f"l-{account}-{t}", "ts": iso(t), "account_id": account,
            "account_type": "customer", "outcome": "success", "src_ip": "106.101.0.97",
            "session_id": f"s-{account}-{t}"}


def test_a_read_judged_late_on_a_quiet_partition_opens_the_episode_as_in_replay():
    """Two sessions no login issued, on one key, read 10 s apart from two partitions: the
    earlier read's partition has no later login (its timer judges it, 5 min on), the other's
    login stream passes its read at once. ``replay``'s login stream passes both: the earlier
    read opens the episode. Without the hold the builder took the other partition's finding
    first and the episode (and its alert id) started 10 s late."""
    from detectors.base import iso

    a, b = _on(2, 0, "cust-a"), _on(2, 1, "cust-b")
    la, lb = _on(2, 0, "cust-la"), _on(2, 1, "cust-lb")
    events = [_login(T6, la), _login(T6, lb),
              _read(T6 + 300, a, "s-forged-a", T6 + 250, "k-legacy"),  # partition 0: quiet
              _read(T6 + 310, b, "s-forged-b", T6 + 260, "k-legacy"),  # partition 1
              _login(T6 + 380, lb),  # partition 1's logins pass its read's deadline
              _read(T6 + 700, a, "s-old-a", T6 - 10, "k-legacy"),  # both partitions go on
              _read(T6 + 700, b, "s-old-b", T6 - 10, "k-legacy")]
    dets = ("unissued_session",)
    one = replay(events, dets)
    assert [x["episode"]["started"] for x in one] == [iso(T6 + 300)]
    two = run_split(events, 2, dets)
    assert pages(two) == pages(one)


def test_a_waiting_read_holds_only_the_episode_it_can_open():
    """Partition 0 has a read waiting for its (quiet) login stream, on key k-legacy, up to
    login_lateness + login_quiet (360 s). Meanwhile the departed engineer's key is used on
    partition 1, and partition 1 judges a forged session on another key: both page as soon as
    both partitions' times pass them, while the read still waits. Only unissued_session's
    episode of k-legacy is held (h-par5 held every relayed finding behind the read: the
    departed key paged 160 s late here); when the read is judged it opens that episode at
    ``replay``'s time, and partition 1's later verdict on k-legacy joins it."""
    from detectors.base import iso

    dets = ("revoked_credential", "unissued_session")
    cfg = EngineConfig(detectors=dets, relay_kinds=RELAY_KINDS)
    engines = [Engine(cfg), Engine(cfg)]
    builder = EpisodeBuilder(Engine(EngineConfig(detectors=())), 2)
    a, b, b2 = _on(2, 0, "cust-a"), _on(2, 1, "cust-b"), _on(2, 1, "cust-c")
    la, lb = _on(2, 0, "cust-la"), _on(2, 1, "cust-lb")
    out: list[tuple[int, dict[str, Any]]] = []  # (step, alert)

    def step(p: int, obj: dict[str, Any]) -> None:
        eng = engines[p]
        assert eng.process_obj(obj)[0] == []  # relayed: no input engine pages itself
        now, holds = eng.relay_report()
        for m in eng.drain_findings():
            builder.add(m, p)
        out.extend((len(steps), x) for x in builder.advance(p, now, holds=holds))
        steps.append(obj)

    steps: list[dict[str, Any]] = []
    identity = [{"event_id": "i1", "ts": iso(T6), "change": "key_issued",
                 "key_id": "k-departed", "owner_id": "emp-7"},
                {"event_id": "i2", "ts": iso(T6 + 10), "change": "principal_terminated",
                 "principal_id": "emp-7"}]
    for obj in identity:
        step(0, obj)
        step(1, obj)
    step(0, _login(T6 + 20, la))
    step(1, _login(T6 + 20, lb))
    step(0, _read(T6 + 300, a, "s-forged-a", T6 + 250, "k-legacy"))  # waits until T6+660
    step(1, _read(T6 + 320, b2, "s-forged-c", T6 + 260, "k-other"))
    step(1, _login(T6 + 350, lb))  # partition 1's logins go on near its reads (h-lag: a
    step(1, _read(T6 + 500, b, None, None, "k-departed"))  # the departed key: critical
    step(1, _read(T6 + 505, b, "s-forged-b", T6 + 450, "k-legacy"))
    step(1, _login(T6 + 540, lb))  # read the login stream jumped over would wait longer)
    step(1, _login(T6 + 570, lb))  # partition 1's logins pass its reads: judged
    step(0, _read(T6 + 520, a, None, None, "k-main"))  # partition 0's time, no login
    paged = {(x["detector"], x["entity"]["id"]): n for n, x in out}
    # both pages went out at the step that moved the last partition's time past them
    assert paged[("revoked_credential", "k-departed")] == len(steps) - 1
    assert paged[("unissued_session", "k-other")] == len(steps) - 1
    assert ("unissued_session", "k-legacy") not in paged
    assert builder.pending == 1  # partition 1's verdict on k-legacy, held behind partition 0
    assert engines[0].relay_report()[1] == {("unissued_session", "key", "k-legacy"): T6 + 360}
    step(0, _read(T6 + 700, a, None, None, "k-main"))  # partition 0's timer judges its read
    step(1, _read(T6 + 710, b, None, None, "k-main"))
    legacy = [x for _, x in out if x["entity"]["id"] == "k-legacy"]
    assert [x["episode"]["started"] for x in legacy] == [iso(T6 + 300)]
    assert builder.pending == 0
    # the same events through one engine (the identity changes once): the same pages
    one = replay(steps[::2][:2] + steps[4:], dets)
    assert pages(one) == pages([x for _, x in out])


def test_holds_in_a_time_report_are_checked_as_input():
    """A time report's holds come from an internal topic: anything but [detector, kind, id,
    finite time] items is refused (the worker dead-letters the report), and more than the
    builder's cap too; a report without holds lifts the partition's holds."""
    from detectors.episodes import holds_from_message, holds_message

    good = {("unissued_session", "key", "k1"): 100.0}
    assert holds_from_message(holds_message(good)) == good
    assert holds_from_message(None) == {}
    for bad in ({"k": 1}, [["a", "b", "c"]], [["a", "b", 3, 1.0]], [["a", "b", "c", "1"]],
                [["a", "b", "c", float("nan")]], [["a", "b", "c", True]]):
        with pytest.raises(ValueError):
            holds_from_message(bad)
    with pytest.raises(ValueError):
        holds_from_message([["d", "k", str(i), 1.0] for i in range(3)], most=2)
    eng = Engine(EngineConfig(detectors=(), relay_kinds=("key",)))
    from detectors.base import Finding

    eng.ctx.now = 150.0  # the finding is made at 150, after the hold's time
    eng._alerts([Finding("unissued_session", "key", "k1", "warning", 0.5, "s", [], ["e"],
                         150.0)])
    builder = EpisodeBuilder(Engine(EngineConfig(detectors=())), 1)
    for m in eng.drain_findings():
        builder.add(m, 0)
    assert builder.advance(0, 200.0, holds=good) == []  # held at 100: waits
    assert len(builder.advance(0, 200.0)) == 1  # the hold lifted


def test_findings_a_hold_keeps_are_bounded_by_the_cap_and_go_at_the_end():
    """A hold that never lifts (a partition gone with a read waiting) keeps its episode's
    findings at most up to max_entities, like any held finding, while another episode's
    finding goes at once; the end of input takes them all."""
    b = EpisodeBuilder(Engine(EngineConfig(detectors=(), max_entities=4)), 1)

    def add(seq: int, at: float, det: str, key: str) -> None:
        b.add({"at": at, "origin": "o", "seq": seq, "finding": {
            "detector": det, "entity_kind": "key", "entity_id": key, "severity": "warning",
            "score": 0.5, "summary": "s", "evidence": [], "event_ids": [], "ts": at,
            "extra": {}}}, 0)

    for i in range(5):
        add(i + 1, 10.0 + i, "unissued_session", "k1")
    hold = {("unissued_session", "key", "k1"): 11.0}
    assert [a["entity"]["id"] for a in b.advance(0, 100.0, holds=hold)] == ["k1"]  # at 10
    assert b.pending == 4  # 11..14 kept by the hold
    add(6, 20.0, "revoked_credential", "k2")
    add(7, 15.0, "unissued_session", "k1")
    out = b.advance(0, 100.0, holds=hold)
    assert [a["entity"]["id"] for a in out] == ["k2"]  # another episode: at once
    assert b.pending == 4 and b.engine.stats["finding_released_early"] == 1  # the cap
    b.flush()
    assert b.pending == 0


# --- h-par7: overseas_server's new place on a read waits for late logins ---------------------


def _far(t: float, actor: str, ip: str, sid: str) -> dict[str, Any]:
    from detectors.base import iso

    return {"event_id": f"f-{actor}-{t}", "ts": iso(t), "actor_id": actor,
            "actor_type": "customer", "subject_id": actor, "resource": "profile",
            "action": "read", "src_ip": ip, "session_id": sid}


def test_a_late_login_raises_no_new_place_info_in_one_engine_or_split():
    """cust-a's login from a server abroad (vouched by its refresh token) arrives after the
    read it issued, dated 1 s before it: no ``info`` in ``replay`` nor over 4 partitions (the
    worker, which merges logins and reads by event time, takes the login first). cust-b reads
    from another server with no login at all: its ``info`` is raised in both, at the read's
    time. While the reads wait, their partition holds the subnet's episode in the builders."""
    from detectors.base import iso

    a, b = _on(4, 0, "cust-a"), _on(4, 1, "cust-b")
    events: list[dict[str, Any]] = []
    for who in (a, b):
        events.append(_login(T6, who) | {"src_ip": "121.134.20.36"})
        events += [_far(T6 + 1 + k, who, "121.134.20.36", f"s-{who}-{T6}") for k in range(4)]
    events += [_far(T6 + 600, a, "138.199.3.73", "s-far-a"),
               {**_login(T6 + 599, a), "src_ip": "138.199.3.73", "session_id": "s-far-a",
                "method": "refresh"},
               _far(T6 + 620, b, "3.101.4.4", "s-far-b"),
               _far(T6 + 1200, a, "121.134.20.36", f"s-{a}-{T6}"),
               _far(T6 + 1200, b, "121.134.20.36", f"s-{b}-{T6}")]
    dets = ("overseas_server",)
    one = replay(events, dets)
    assert [(x["entity"]["id"], x["episode"]["started"]) for x in one] == [(b, iso(T6 + 620))]
    assert pages(run_split(events, 4, dets)) == pages(one)
    # the hold: partition 1's engine, after cust-b's read, names the subnet's episode
    eng = Engine(EngineConfig(detectors=dets, relay_kinds=RELAY_KINDS))
    for e in events[5:10] + [events[12]]:
        eng.process_obj(e)
    assert eng.relay_report()[1] == {("overseas_server", "subnet", "3.101.4.0/24"): T6 + 680}


# --- h-par8: a finding a builder makes about another builder's episode ------------------------


@pytest.mark.parametrize("busy", [False, True])
def test_an_info_a_subnets_builder_makes_joins_the_accounts_episode_as_in_replay(busy: bool):
    """cust-a reads from servers in two countries abroad (Hong Kong, then the Czech Republic)
    20 min apart, each subnet used by that account
    alone, with no login there: overseas_server's account ``info`` is made where each
    subnet's uses are counted (the builder of the subnet's episode). One engine makes both:
    the second is a repeat in the account's episode. Over 4 partitions the two subnets'
    builders differ; each opened an episode of the account, the second under a new id. Now
    the builder sends the ``info`` on to the account's builder, stamped with the read's time,
    and that builder takes it in order with the others (it waits for every builder's time).
    ``busy``: the other partitions read too (the builders take findings as the partitions'
    times pass them), else they report at the end of input only (the builders' ends are
    merged in one engine's order)."""
    from detectors.base import iso
    from detectors.episodes import hold_key
    from streams.batch import partition_for

    def builder(ip: str) -> int:
        subnet = ip.rsplit(".", 1)[0] + ".0/24"
        return partition_for(hold_key(("overseas_server", "subnet", subnet),
                                      EngineConfig.salt), 4)

    one_ip, two_ip = "212.102.42.147", "138.199.0.125"  # (the red team's slow_insider)
    assert builder(one_ip) != builder(two_ip)
    a = _on(4, 0, "cust-a")
    events = [_login(T6, a) | {"src_ip": "121.134.20.36"}]
    events += [_far(T6 + 1 + k, a, "121.134.20.36", f"s-{a}-{T6}") for k in range(4)]
    events += [_far(T6 + 600, a, one_ip, "s-far-1"), _far(T6 + 1800, a, two_ip, "s-far-2"),
               _far(T6 + 3000, a, "121.134.20.36", f"s-{a}-{T6}")]
    if busy:
        for p in (1, 2, 3):
            c = _on(4, p, "cust-home")
            events.insert(0, _login(T6, c) | {"src_ip": "121.134.20.36"})
            events += [_far(t, c, "121.134.20.36", f"s-{c}-{T6}")
                       for t in (T6 + 1, T6 + 700, T6 + 1900, T6 + 3000, T6 + 3400)]
        events.sort(key=lambda e: e["ts"])
    dets = ("overseas_server",)
    one = replay(events, dets)
    assert [(x["entity"]["id"], x["episode"]["started"]) for x in one] == [(a, iso(T6 + 600))]
    four = run_split(events, 4, dets)
    assert pages(four) == pages(one)
    assert len({x["alert_id"] for x in four}) == 1


# --- h-par9: what a builder folds from a finding a hold kept, in order at its episode's builder ---


def test_an_info_from_an_observation_a_hold_kept_opens_the_accounts_episode_as_in_replay():
    """cust-c reads from a server in Hong Kong at 600 s in a session a late login of its own
    (dated 595 s, arriving after the read) issued: its partition (0) holds the subnet's
    episode until it judges the read, and it has no later login, so its timer judges it at
    1000 s while its time passed 660 s long before. cust-a (partition 1) reads from the same
    Hong Kong subnet at 670 s and from a Czech one at 680 s, neither in a session a login
    issued; a login of cust-d at 745 s on partition 1 decides both. One engine: cust-c's read
    is its own (no count), cust-a is the Hong Kong subnet's only account (``info`` at 670 s),
    and the Czech ``info`` (680 s) is a repeat in that episode. Over 4 partitions the subnet's
    builder parks cust-a's observation behind partition 0's hold while the Czech subnet's
    builder sends its ``info`` on at once: the account's builder used to take the Czech one
    first (an episode opened at 680 s, another alert id) and the Hong Kong one after it,
    since the subnet's builder reported its time past the hold. Now a builder reports, as
    well, the time before which it may still fold (its observers' holds), and the others
    take their observers' findings only past it."""
    from detectors.base import iso
    from detectors.episodes import hold_key
    from streams.batch import partition_for

    def builder(kind: str, ident: str) -> int:
        return partition_for(hold_key(("overseas_server", kind, ident), EngineConfig.salt), 4)

    hk, hk2, cz = "212.102.42.147", "212.102.42.150", "138.199.0.125"
    c, a, d = _on(4, 0, "cust-c"), _on(4, 1, "cust-a"), _on(4, 1, "cust-d")
    home = "121.134.20.36"
    assert len({builder("subnet", "212.102.42.0/24"), builder("subnet", "138.199.0.0/24"),
                builder("account", a)}) == 3
    events: list[dict[str, Any]] = []
    for who in (c, a, d):
        events.append(_login(T6, who) | {"src_ip": home})
        events += [_far(T6 + 1 + k, who, home, f"s-{who}-{T6}") for k in range(4)]
    events += [_far(t, c, home, f"s-{c}-{T6}") for t in (T6 + 700, T6 + 900, T6 + 1000)]
    events += [_far(T6 + 670, a, hk2, "s-a-hk"), _far(T6 + 680, a, cz, "s-a-cz"),
               _login(T6 + 745, d) | {"src_ip": home},
               _far(T6 + 1100, a, home, f"s-{a}-{T6}")]
    for p in (2, 3):
        h = _on(4, p, "cust-home")
        events.append(_login(T6, h) | {"src_ip": home})
        events += [_far(t, h, home, f"s-{h}-{T6}")
                   for t in (T6 + 1, T6 + 650, T6 + 690, T6 + 750, T6 + 950, T6 + 1200)]
    events.sort(key=lambda e: e["ts"])
    i = next(i for i, e in enumerate(events) if e["ts"] > iso(T6 + 600))
    events[i:i] = [_far(T6 + 600, c, hk, "s-c-x"),
                   _login(T6 + 595, c) | {"src_ip": home, "session_id": "s-c-x"}]
    dets = ("overseas_server",)
    one = replay(events, dets)
    assert [(x["entity"]["id"], x["episode"]["started"]) for x in one] == [(a, iso(T6 + 670))]
    assert pages(run_split(events, 4, dets)) == pages(one)
