"""Episodes do not depend on arrival order: a finding that arrives late joins the episode
it belongs to (same alert_id), even after the engine closed that episode because another
input ran ahead in event time (after a broker outage, a producer's buffered logins can
reach the worker before the access events that precede them)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from detectors.base import Finding
from detectors.engine import Engine, EngineConfig

SCENARIOS = Path(__file__).parent / "scenarios"
HOUR = 3600.0


def scenario(name: str) -> list[dict[str, Any]]:
    """The events of ``tests/scenarios/<name>.jsonl`` (without its header line)."""
    lines = (SCENARIOS / f"{name}.jsonl").read_bytes().splitlines()
    return [orjson.loads(line) for line in lines[1:] if line.strip()]


def epoch(ts: Any) -> float:
    if isinstance(ts, int | float):
        return float(ts)
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def replay(events: list[dict[str, Any]], engine: Engine | None = None) -> list[dict[str, Any]]:
    eng = engine or Engine()
    out: list[dict[str, Any]] = []
    for e in events:
        out.extend(eng.process_obj(e)[0])
    out.extend(eng.flush())
    return out


def pairs(alerts: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(a["alert_id"], a["severity"]) for a in alerts}


def ahead_login(events: list[dict[str, Any]], minutes: float = 90) -> dict[str, Any]:
    """A login of an unrelated customer from a home ISP, ``minutes`` after the scenario."""
    last = max(epoch(e["ts"]) for e in events)
    return {"event_id": "ahead-1", "ts": last + minutes * 60, "account_id": "c-elsewhere",
            "outcome": "success", "src_ip": "121.134.3.99", "session_id": "s-elsewhere"}


@pytest.mark.parametrize("name", [
    "bulk_lookup/coupang_servers_abroad",
    "bulk_lookup/coupang_active_key",
    "credential_stuffing/single_hosting_ip",
    "impossible_travel/hijacked_session",
])
def test_a_topic_running_ahead_does_not_split_episodes(name: str) -> None:
    """The login from 90 minutes later is processed before the rest of the scenario (the
    logins topic ran ahead): the engine's time jumps past ``episode_gap`` and closes the
    open episodes; the findings that follow join them. Same alert_ids, same severities as
    the in-order replay, wherever the jump happens."""
    events = scenario(name)
    ahead = ahead_login(events)
    in_order = replay([*events, ahead])
    assert in_order, "the scenario raises alerts"
    step = max(1, len(events) // 12)
    for cut in range(1, len(events), step):
        late = replay([*events[:cut], ahead, *events[cut:]])
        assert pairs(late) == pairs(in_order), f"ahead event before #{cut}"


def finding(ts: float, entity: str = "203.0.113.0/24", severity: str = "warning") -> Finding:
    return Finding(detector="overseas_server", severity=severity, score=0.9, ts=ts,
                   entity_kind="subnet", entity_id=entity, summary="s", evidence=[],
                   event_ids=[f"e{ts:g}"])


def alert_ids(eng: Engine, findings: list[Finding]) -> list[str]:
    out = []
    for f in findings:
        a = eng._episode(f)  # noqa: SLF001 - the episode logic alone
        out.append(a["alert_id"] if a else "-")
    return out


def test_in_order_a_gap_still_starts_a_new_episode() -> None:
    eng = Engine(EngineConfig(detectors=()))
    a1, repeat, a2 = alert_ids(eng, [finding(0), finding(600), finding(600 + HOUR + 1)])
    assert a1.startswith("aw-") and repeat == "-" and a2 not in (a1, "-")


def test_a_late_finding_joins_the_closed_episode_not_a_new_one() -> None:
    eng = Engine(EngineConfig(detectors=()))
    (first,) = alert_ids(eng, [finding(1000)])
    eng._expire(1000 + 2 * HOUR)  # noqa: SLF001 - engine time ran ahead: episode closed
    assert not eng.episodes
    # 40 minutes after the episode's last finding: inside the gap, so the same episode;
    # a critical one escalates it under the same alert_id
    late = eng._episode(finding(1000 + 2400, severity="critical"))  # noqa: SLF001
    assert late is not None and late["alert_id"] == first
    assert late["severity"] == "critical"
    # a late finding two gaps after it is an episode of its own
    (other,) = alert_ids(eng, [finding(1000 + 2400 + 2 * HOUR)])
    assert other not in (first, "-")


def test_a_late_finding_older_than_the_current_episode_joins_its_own() -> None:
    eng = Engine(EngineConfig(detectors=()))
    (old,) = alert_ids(eng, [finding(0)])
    (new,) = alert_ids(eng, [finding(3 * HOUR)])  # a gap: the first episode is closed
    assert new != old
    assert alert_ids(eng, [finding(1200)]) == ["-"]  # a repeat of the first episode
    assert eng.episodes[("overseas_server", "subnet", "203.0.113.0/24")].alert_id == new


def test_closed_episodes_are_bounded_by_time_and_count() -> None:
    cfg = EngineConfig(detectors=(), episode_gap=HOUR, episode_lateness=HOUR,
                       episodes_closed_max=50)
    eng = Engine(cfg)
    for i in range(200):
        alert_ids(eng, [finding(i, entity=f"10.0.{i}.0/24")])
    eng._expire(2 * HOUR)  # noqa: SLF001 - all 200 closed: at most the cap are kept
    assert not eng.episodes
    assert sum(len(v) for v in eng._closed.values()) <= 50  # noqa: SLF001
    assert eng._n_closed <= 50  # noqa: SLF001
    # the most recent are the ones kept
    assert ("overseas_server", "subnet", "10.0.199.0/24") in eng._closed  # noqa: SLF001
    eng._expire(200 + 3 * HOUR)  # noqa: SLF001 - past gap + lateness: none can join
    assert not eng._closed and eng._n_closed == 0  # noqa: SLF001


def test_an_engine_with_closed_episodes_restores_and_continues_identically() -> None:
    from streams.checkpoint import restore, snapshot
    from streams.snapshot import StateKeys

    keys = StateKeys(["test-episodes-key-0123456789"])
    events = scenario("bulk_lookup/coupang_servers_abroad")
    cut = len(events) * 3 // 4  # after the attack's first alerts
    eng = Engine()
    for e in [*events[:cut], ahead_login(events)]:
        eng.process_obj(e)
    assert eng._closed  # noqa: SLF001 - the jump closed the open episodes
    blob = snapshot(eng, {}, keys=keys, context="t/0")  # the worker's checkpoint format
    copy, _ = restore(blob, eng.ctx.geo, eng.ctx.directory, keys=keys, context="t/0")
    rest = replay(events[cut:], copy)
    assert rest == replay(events[cut:], eng)
    assert copy._closed == eng._closed  # noqa: SLF001


def test_an_old_checkpoint_without_closed_episodes_still_loads() -> None:
    eng = Engine()
    state = eng.__getstate__()
    del state["_closed"], state["_n_closed"]
    old = Engine.__new__(Engine)
    old.__setstate__(state)
    assert old._closed == {} and old._n_closed == 0  # noqa: SLF001
