"""peer_resource: an employee who reads a class of customer data their peers seldom read (issue
14 item 4, the slow insider). A stalker-like employee warns; steady heavy staff, a new hire, a
specialist team, a tiny team and one-off reads stay quiet. Seeded traffic, no sleeps."""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from detectors.engine import Engine, EngineConfig
from detectors.peer_resource import PeerResource, _poisson_tail

T0 = 1750726800.0  # 2025-06-24 01:00 UTC = 10:00 in Seoul
DAY = 86400.0
OFFICE = "10.20.{}.{}"  # private: one peer group (employee/private)
ELSEWHERE = "121.134.{}.{}"  # a public ISP: another group (employee/isp)


def agent(name: str, days: range, per_day: int, loc_p: float, rng: random.Random,
          net: str = OFFICE, extra: Any = None) -> Iterator[tuple[float, dict[str, Any]]]:
    """An agent's reads: ``per_day`` a working day (10:00-18:00 local), ``loc_p`` of them
    location data, the rest common classes; ``extra(day)`` yields (subject, resource) pairs
    read on top that day."""
    ip = net.format(rng.randint(0, 255), rng.randint(1, 254))
    for d in days:
        reads = []
        for _ in range(per_day):
            res = "location" if rng.random() < loc_p else rng.choice(
                ("profile", "profile", "plan", "billing", "usage", "address"))
            reads.append((f"c-{rng.getrandbits(40):x}", res))
        if extra is not None:
            reads += list(extra(d))
        for subj, res in reads:
            ts = T0 + d * DAY + rng.uniform(0, 8 * 3600)
            yield ts, {"actor_id": name, "actor_type": "employee", "subject_id": subj,
                       "resource": res, "src_ip": ip}


def run(streams: list[Iterator[tuple[float, dict[str, Any]]]],
        **params: Any) -> list[dict[str, Any]]:
    """Every stream's reads in time order through an engine of peer_resource alone; its
    alerts."""
    events = sorted((e for s in streams for e in s), key=lambda te: te[0])
    eng = Engine(EngineConfig(detectors=("peer_resource",),
                              params={"peer_resource": params} if params else {}))
    out: list[dict[str, Any]] = []
    for i, (ts, e) in enumerate(events):
        out += eng.process_obj({"event_id": f"e{i}", "ts": ts, **e})[0]
    return out


def team(rng: random.Random, n: int = 14, days: range = range(24), per_day: int = 80,
         loc_p: float = 0.005, net: str = OFFICE, prefix: str = "agent"
         ) -> list[Iterator[tuple[float, dict[str, Any]]]]:
    return [agent(f"{prefix}-{i}", days, per_day, loc_p, rng, net) for i in range(n)]


def test_an_agent_reading_a_few_locations_a_day_on_top_of_their_work_warns() -> None:
    rng = random.Random(1)
    stalk = agent("agent-x", range(24), 80, 0.005, rng,
                  extra=lambda d: [(f"v-{d}-{k}", "location") for k in range(2)])
    alerts = run([*team(rng), stalk])
    assert [(a["entity"]["id"], a["severity"]) for a in alerts] == [("agent-x", "warning")]
    a = alerts[0]
    ev = {x["feature"]: x for x in a["evidence"]}
    assert ev["resource_class"]["observed"] == "location"
    assert "peers' 99th percentile" in a["summary"]
    assert ev["class_share"]["observed"] > 2 * 0.005
    assert ev["victims"]["observed"].startswith("customer#")
    assert "v-" not in str(a)  # victims by salted digest only


def test_the_same_customers_location_read_day_after_day_warns() -> None:
    rng = random.Random(2)
    # one ex-partner and one celebrity, each read once a day: two reads a day, no volume
    stalk = agent("agent-x", range(24), 80, 0.005, rng,
                  extra=lambda d: [("c-ex", "location"), ("c-star", "location")])
    alerts = run([*team(rng), stalk])
    assert [a["entity"]["id"] for a in alerts] == ["agent-x"]
    ev = {x["feature"]: x for x in alerts[0]["evidence"]}
    assert ev["repeat_days"]["observed"] >= 6
    assert "day after day" in alerts[0]["summary"]


def test_heavy_but_steady_staff_stay_quiet() -> None:
    rng = random.Random(3)
    heavy = [agent(f"heavy-{i}", range(24), 400, 0.005, rng) for i in range(2)]
    assert run([*team(rng), *heavy]) == []


def test_a_new_hire_is_not_judged_in_their_first_days() -> None:
    # joins on day 20 and reads location at twelve times the team's rate for four days (a
    # new hire learning the tools): no own history yet, no verdict
    streams = lambda: [*team(random.Random(4)), agent("new-1", range(20, 24), 150, 0.06,  # noqa: E731
                                                          random.Random(40))]
    assert run(streams()) == []
    # judged from their second day, the same reads would warn: quiet because it is new
    assert [a["entity"]["id"] for a in run(streams(), own_days=2)] == ["new-1"]


def test_no_peers_no_verdict_in_the_first_days_of_the_watch() -> None:
    rng = random.Random(5)
    stalk = agent("agent-x", range(5), 80, 0.005, rng,
                  extra=lambda d: [(f"v-{d}-{k}", "location") for k in range(6)])
    assert run([*team(rng, days=range(5)), stalk]) == []


def test_a_specialist_team_whose_job_is_the_class_stays_quiet() -> None:
    rng = random.Random(6)
    # a team (its own network: its own peer group) whose job is location lookups: a third
    # of their reads, the busiest of them twice the others' share
    specialists = team(rng, n=10, loc_p=0.3, net=ELSEWHERE, prefix="loc")
    busiest = agent("loc-busy", range(24), 80, 0.6, rng, net=ELSEWHERE)
    # and one such specialist working from the generalists' office
    among = agent("fraud-1", range(24), 80, 0.3, rng)
    streams = [*team(rng), *specialists, busiest, among]
    events = sorted((e for s in streams for e in s), key=lambda te: te[0])
    assert run([iter(events)]) == []
    # were location rare for everyone and nobody's job, both would warn
    assert sorted(a["entity"]["id"] for a in run([iter(events)], job_share=1.0,
                                                 rare_share=0.5)) == ["fraud-1", "loc-busy"]


def test_a_tiny_team_has_no_peer_group_and_stays_quiet() -> None:
    rng = random.Random(7)
    tiny = team(rng, n=3, net=ELSEWHERE, prefix="tiny")
    odd = agent("tiny-x", range(24), 80, 0.005, rng, net=ELSEWHERE,
                extra=lambda d: [("c-ex", "location"), (f"v-{d}", "location")])
    events = sorted((e for s in [*tiny, odd] for e in s), key=lambda te: te[0])
    assert run([iter(events)]) == []
    # a group of four is a team only if two peers were enough
    assert [a["entity"]["id"] for a in run([iter(events)], min_peers=2,
                                           min_group_reads=500)] == ["tiny-x"]


def test_one_off_reads_stay_quiet() -> None:
    rng = random.Random(8)
    burst = agent("agent-x", range(24), 80, 0.005, rng,
                  extra=lambda d: [(f"v-{k}", "location") for k in range(8)] if d == 15 else [])
    assert run([*team(rng), burst]) == []


def test_warns_once_per_class_within_the_window() -> None:
    rng = random.Random(9)
    stalk = agent("agent-x", range(40), 80, 0.005, rng,
                  extra=lambda d: [("c-ex", "location"), (f"v-{d}", "location")])
    alerts = run([*team(rng, days=range(40)), stalk])
    assert {a["entity"]["id"] for a in alerts} == {"agent-x"}
    # again only once the window has passed (a reminder that it goes on), not every day
    assert len(alerts) == 2
    first, second = (datetime.fromisoformat(a["ts"]) for a in alerts)
    assert (second - first).days >= 29


def test_state_per_employee_stays_under_a_kibibyte() -> None:
    det = PeerResource()
    rng = random.Random(10)
    stalk = agent("agent-x", range(24), 200, 0.04, rng)
    eng = Engine(detectors=[det])
    streams = [*team(rng, n=10, loc_p=0.04), stalk]
    events = sorted((e for s in streams for e in s), key=lambda te: te[0])
    for i, (ts, e) in enumerate(events):
        eng.process_obj({"event_id": f"e{i}", "ts": ts, **e})
    st = det._staff["agent-x"]
    assert len(st.table) == 12 * det.table_max  # the table is full
    size = sys.getsizeof(st) + sys.getsizeof(st.table) + sys.getsizeof(st.cdays)
    assert size < 1024


def test_the_poisson_tail() -> None:
    assert _poisson_tail(0, 3.0) == 1.0
    assert abs(_poisson_tail(1, 2.0) - (1 - 2.718281828459045 ** -2)) < 1e-12
    assert _poisson_tail(48, 16.0) < 1e-9 < _poisson_tail(30, 16.0) < 0.002


def test_a_checkpoint_mid_stalk_restores_and_warns_the_same() -> None:
    """The state (packed tables, groups' top values) travels through the checkpoint codec
    (no pickle): an engine restored on day 5 raises the same alert as the one never stopped."""
    from detectors.geo import default_geo
    from streams import snapshot as S
    from streams.checkpoint import restore, snapshot

    rng = random.Random(11)
    stalk = agent("agent-x", range(24), 80, 0.005, rng,
                  extra=lambda d: [("c-ex", "location"), ("c-star", "location")])
    streams = [*team(rng), stalk]
    events = sorted((e for s in streams for e in s), key=lambda te: te[0])
    keys, context = S.StateKeys(["test-state-key-0123456789"]), "accesswatch/x/0"
    a = Engine(EngineConfig(detectors=("peer_resource",)))
    b: Engine | None = None
    out_a: list[dict[str, Any]] = []
    out_b: list[dict[str, Any]] = []
    for i, (ts, e) in enumerate(events):
        if i == len(events) // 5:  # day 5 of 24: before own days and peers are known
            b, _ = restore(snapshot(a, {"t": i}, keys=keys, context=context), default_geo(),
                           a.ctx.directory, keys=keys, context=context)
        ev = {"event_id": f"e{i}", "ts": ts, **e}
        out_a += a.process_obj(ev)[0]
        if b is not None:
            out_b += b.process_obj(ev)[0]
    assert [x["entity"]["id"] for x in out_a] == ["agent-x"]
    assert out_b == out_a
