"""team_volume: an employee who reads several times as many customers a day as their team, the
team being the employees who read the same mix of data (issue 14 item 4, the slow insider). A
team-mate at 5x for days warns; one busy day does not; a heavy team (a call centre on the same
network) is not the light team's peers; a heavy-tailed team's busiest agents stay quiet; the state
survives a checkpoint. Seeded traffic, no sleeps."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from detectors.engine import Engine, EngineConfig
from detectors.geo import default_geo
from detectors.team_volume import TeamVolume, _count
from streams.checkpoint import restore, snapshot
from streams.snapshot import StateKeys, encode

T0 = 1750726800.0  # 2025-06-24 01:00 UTC = 10:00 in Seoul
DAY = 86400.0
OFFICE = "10.20.{}.{}"  # private: every team below works from one network class
CREDIT = ("income", "credit_report", "limits", "statements")
CALLS = ("profile", "address", "transactions", "phone")


def member(name: str, days: range, per_day: Any, mix: tuple[str, ...], rng: random.Random
           ) -> Iterator[tuple[float, dict[str, Any]]]:
    """A member's reads: ``per_day(d)`` (or a number) distinct customers a working day
    (10:00-18:00 local), one to three resources of the team's mix each."""
    ip = OFFICE.format(rng.randint(0, 255), rng.randint(1, 254))
    for d in days:
        n = per_day(d) if callable(per_day) else per_day
        for _ in range(max(0, round(rng.gauss(n, n ** 0.5)))):
            subj = f"c-{rng.getrandbits(40):x}"
            ts = T0 + d * DAY + rng.uniform(0, 8 * 3600)
            for k in range(rng.randint(1, 3)):
                yield ts + k, {"actor_id": name, "actor_type": "employee", "subject_id": subj,
                               "resource": rng.choice(mix), "src_ip": ip}


def team(prefix: str, n: int, per_day: Any, mix: tuple[str, ...], rng: random.Random,
         days: range = range(21)) -> list[Iterator[tuple[float, dict[str, Any]]]]:
    return [member(f"{prefix}-{i}", days, per_day, mix, rng) for i in range(n)]


def run(streams: list[Iterator[tuple[float, dict[str, Any]]]], eng: Engine | None = None,
        **params: Any) -> list[dict[str, Any]]:
    """Every stream's reads in time order through an engine of team_volume alone; its alerts."""
    events = sorted((e for s in streams for e in s), key=lambda te: te[0])
    eng = eng or Engine(EngineConfig(detectors=("team_volume",),
                                     params={"team_volume": params} if params else {}))
    out: list[dict[str, Any]] = []
    for i, (ts, e) in enumerate(events):
        out += eng.process_obj({"event_id": f"e{i}", "ts": ts, **e})[0]
    return out


def who(alerts: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(a["entity"]["id"], a["severity"]) for a in alerts]


def test_a_team_mate_at_five_times_the_team_for_days_warns() -> None:
    rng = random.Random(1)
    out = run(team("credit", 11, 10, CREDIT, rng)
              + [member("insider", range(21), 50, CREDIT, rng)])
    assert who(out) == [("insider", "warning")]
    a = out[0]
    # from the first day of the watch (no own history): the third day over warns
    assert a["ts"] < _ts_iso(T0 + 3 * DAY)
    ev = {e["feature"]: e for e in a["evidence"]}
    assert ev["team"]["observed"] == 11
    assert ev["days_over"]["observed"] == 3
    assert "x 4" in ev["distinct_customers_local_day"]["baseline"]


def test_one_busy_day_or_two_do_not_warn() -> None:
    rng = random.Random(2)
    burst = {5: 60, 12: 60}  # two busy days a week apart: never 3 of 7
    out = run(team("credit", 11, 10, CREDIT, rng)
              + [member("busy", range(21), lambda d: burst.get(d, 10), CREDIT, rng)])
    assert out == []


def test_a_heavy_team_is_not_the_light_teams_peers() -> None:
    """A call centre (200 a day) on the same network: grouped by network class the insider's
    50 a day would be a quarter of the group's day; grouped by mix it is 5x its own team's."""
    rng = random.Random(3)
    out = run(team("credit", 8, 10, CREDIT, rng) + team("calls", 12, 200, CALLS, rng, days=range(12))
              + [member("insider", range(21), 50, CREDIT, rng)]
              + [member("light-agent", range(21), 50, CALLS, rng)])
    assert who(out) == [("insider", "warning")]
    assert "7 peers" in out[0]["summary"] or "8 peers" in out[0]["summary"]


def test_a_heavy_tailed_team_and_a_steady_heavy_member_stay_quiet() -> None:
    """Agents at 30-60 a day and two at 160: 4x the median, but the busiest others read as
    much; a member at 3x a tight team's day (under 4x) is quiet too."""
    rng = random.Random(4)
    calls = [member(f"calls-{i}", range(21), 30 + 2 * i, CALLS, rng) for i in range(10)]
    calls += [member(f"calls-heavy-{i}", range(21), 160, CALLS, rng) for i in range(2)]
    out = run(calls + team("credit", 9, 12, CREDIT, rng)
              + [member("credit-steady", range(21), 36, CREDIT, rng)])
    assert out == []


def test_a_tiny_team_has_no_peers() -> None:
    rng = random.Random(5)
    out = run(team("credit", 3, 10, CREDIT, rng)
              + [member("insider", range(21), 50, CREDIT, rng)])
    assert out == []


def test_state_survives_a_checkpoint_and_older_state_restores() -> None:
    rng = random.Random(6)
    streams = team("credit", 11, 10, CREDIT, rng) + [member("insider", range(8), 50, CREDIT, rng)]
    events = sorted((e for s in streams for e in s), key=lambda te: te[0])
    cut = next(i for i, (ts, _) in enumerate(events) if ts > T0 + 1.5 * DAY)
    eng = Engine(EngineConfig(detectors=("team_volume",)))
    out: list[dict[str, Any]] = []
    for i, (_ts, e) in enumerate(events[:cut]):
        out += eng.process_obj({"event_id": f"e{i}", **e, "ts": _ts})[0]
    # through the worker's checkpoint format (the codec and its MAC, never pickle)
    keys, context = StateKeys(["test-state-key-0123456789"]), "accesswatch/x/0"
    eng2, _ = restore(snapshot(eng, {"t": cut}, keys=keys, context=context), default_geo(),
                      eng.ctx.directory, keys=keys, context=context)
    for i, (_ts, e) in enumerate(events[cut:], cut):
        out += eng2.process_obj({"event_id": f"e{i}", **e, "ts": _ts})[0]
    assert who(out) == [("insider", "warning")]
    old = dict(vars(TeamVolume(min_peers=6)))
    old.pop("hist_days", None)  # a checkpoint from before an attribute: the class default
    fresh = TeamVolume.__new__(TeamVolume)
    fresh.__setstate__(old)
    assert fresh.hist_days == 9 and fresh.min_peers == 6


def test_per_member_state_is_small() -> None:
    rng = random.Random(7)
    eng = Engine(EngineConfig(detectors=("team_volume",)))
    run(team("credit", 5, 40, CREDIT + CALLS, rng, days=range(3)), eng=eng)
    det = eng.detectors["team_volume"]
    assert isinstance(det, TeamVolume)
    m = det._members["credit-0"]
    assert len(encode(m)) < 512  # in the checkpoint's own format
    assert abs(_count(40) - 41.6) < 0.1  # linear counting: 40 bits set of 512


def _ts_iso(ts: float) -> str:
    from detectors.base import iso
    return iso(ts)
