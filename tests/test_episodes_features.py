"""Issue 17 item 5 with the issue-18 features: with several partitions the episode builders
make the alerts, so they apply the allow-list and the analysts' verdicts, stamp the incident
ids a replay stamps, and own the episodes OCSF's Close findings are read from. Pure: no broker.
"""

from __future__ import annotations

from typing import Any

from detectors.allowlist import AllowList, Entry
from detectors.base import Finding
from detectors.engine import Engine, EngineConfig
from detectors.episodes import RELAY_KINDS, EpisodeBuilder
from streams.ocsf_out import Findings

KEY = "kid-legacy-2019"


def finding(ts: float, severity: str = "warning", ident: str = KEY) -> Finding:
    return Finding("revoked_credential", "key", ident, severity, 0.5, "s", [], [f"e{ts}"], ts)


def relay(sender: Engine, builder: EpisodeBuilder, f: Finding, now: float
          ) -> list[dict[str, Any]]:
    """``f`` made by ``sender`` at ``now``, handed to ``builder`` (one input partition)."""
    sender.ctx.now = now
    assert sender._alerts([f]) == []  # relayed: the input engine makes no alert of it
    for m in sender.drain_findings():
        builder.add(m, 0)
    return builder.advance(0, now + 1.0)  # the partition's time passed the finding's


def pair(**builder_cfg: Any) -> tuple[Engine, EpisodeBuilder]:
    sender = Engine(EngineConfig(detectors=(), relay_kinds=RELAY_KINDS))
    return sender, EpisodeBuilder(Engine(EngineConfig(detectors=(), **builder_cfg)), 1)


def test_the_builder_applies_a_benign_verdict_to_the_episode_it_made() -> None:
    sender, b = pair(feedback_suppress=7200.0)
    (first,) = relay(sender, b, finding(1000.0), 1000.0)
    # the input engine does not hold the alert: the verdict changes nothing there
    v = {"alert_id": first["alert_id"], "verdict": "benign", "reason": "rotation test",
         "ts": 1100.0, "analyst": "alice"}
    assert sender.feedback(v) == []
    notice = b.engine.feedback(v)
    assert [a["detector"] for a in notice] == ["allowlist"]
    assert relay(sender, b, finding(5000.0, "critical"), 5000.0) == []  # held back
    assert b.engine.drain_held("feedback")["revoked_credential"] == 1
    assert [a["severity"] for a in relay(sender, b, finding(9000.0), 9000.0)] == ["warning"]


def test_the_builder_applies_the_allow_list_and_the_input_engine_only_relays() -> None:
    al = AllowList(1, (Entry("key", KEY, "nightly batch", "bob", 9e9),))
    sender = Engine(EngineConfig(detectors=(), relay_kinds=RELAY_KINDS, allowlist=al))
    b = EpisodeBuilder(Engine(EngineConfig(detectors=(), allowlist=al)), 1)
    assert relay(sender, b, finding(1000.0), 1000.0) == []
    assert b.engine.drain_held()["revoked_credential"] == 1
    assert sender.drain_held() == {}  # not held twice
    assert [a["entity"]["id"] for a in relay(sender, b, finding(1001.0, ident="k2"), 1001.0)
            ] == ["k2"]


def test_an_allow_list_change_is_announced_by_the_input_engine_not_relayed() -> None:
    al = AllowList(1, (Entry("key", KEY, "nightly batch", "bob", 9e9),))
    sender = Engine(EngineConfig(detectors=(), relay_kinds=RELAY_KINDS, allowlist=al))
    sender.ctx.start = 0.0
    out = sender.advance(10.0)
    assert [a["detector"] for a in out] == ["allowlist"]
    assert sender.drain_findings() == []


def test_a_close_comes_from_the_builder_at_the_time_every_partition_passed() -> None:
    sender, b = pair()
    out = Findings()
    (alert,) = relay(sender, b, finding(1000.0), 1000.0)
    out.add(alert)
    gap = b.engine.config.episode_gap
    # the input engine holds no such episode: it ends nothing, however late its time
    sender.ctx.now = 1000.0 + 10 * gap
    assert out.ended(sender) == []
    # the builder's own clock is its last finding's: quiet only at the partitions' time
    assert out.ended(b.engine) == []
    b.advance(0, 1000.0 + 2 * gap)
    closes = out.ended(b.engine, now=b.passed())
    assert [c["finding_info"]["uid"] for c in closes] == [alert["alert_id"]]


def test_the_worker_hands_a_verdict_to_the_builder_that_holds_the_alert() -> None:
    """``Runtime.on_feedback`` reaches the episode builders (with several partitions the
    input engines hold no episode); the builders take the worker's verdict settings."""
    import asyncio
    from dataclasses import replace
    from types import SimpleNamespace

    import orjson

    from streams.app import create_app
    from streams.runtime import PartitionState
    from streams.settings import Settings

    s = replace(Settings.from_env({}), state_keys=("test-state-key-0123456789",),
                partitions=2, feedback_suppress=7200.0)
    rt = create_app(s).accesswatch  # type: ignore[attr-defined]
    builders = rt.episodes.engines
    assert builders.config.feedback_suppress == 7200.0
    assert rt.config.relay_kinds == RELAY_KINDS and builders.config.relay_kinds == ()
    sender = Engine(EngineConfig(detectors=(), relay_kinds=RELAY_KINDS))
    b = EpisodeBuilder(Engine(builders.config), 2)
    builders.parts[1] = st = PartitionState(b.engine)
    sender.ctx.now = 1000.0
    sender._alerts([finding(1000.0)])
    for m in sender.drain_findings():
        b.add(m, 0)
    b.advance(1, 2000.0)
    (alert,) = b.advance(0, 2000.0)
    emitted: list[dict[str, Any]] = []

    async def emit(a: dict[str, Any]) -> None:
        emitted.append(a)

    rt.emit = emit
    msg = SimpleNamespace(offset=0, value=orjson.dumps({
        "alert_id": alert["alert_id"], "verdict": "benign", "reason": "rotation test",
        "ts": 2100.0, "analyst": "alice"}))
    asyncio.run(rt.on_feedback(msg))
    assert [a["detector"] for a in emitted] == ["allowlist"] and st.dirty
    assert b.engine._allow.benign  # the next finding of that key is held back
