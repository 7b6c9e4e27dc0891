"""A checkpoint never lands before the alerts of the events it covers: the worker flushes
its producer (the alerts) before it writes the checkpoint's records, so a SIGKILL between
the two cannot leave a restored engine that already raised an alert whose message died in
the producer's buffer (seen as two missing escalations in the SIGKILL recovery test)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from streams.app import create_app
from streams.runtime import PartitionState
from streams.settings import Settings


def test_alerts_are_flushed_before_the_checkpoint_records_are_written(
        tmp_path: Any, monkeypatch: Any) -> None:
    rt = create_app(Settings(data_dir=str(tmp_path),
                             state_keys=("test-state-key-0123456789",))).accesswatch
    order: list[str] = []

    async def flush() -> None:
        order.append("flush")

    def send_soon(**kw: Any) -> None:
        order.append("checkpoint")

    monkeypatch.setattr(rt.app, "_producer", SimpleNamespace(flush=flush), raising=False)
    monkeypatch.setattr(type(rt.app), "producer", property(lambda app: app._producer))
    monkeypatch.setattr(rt.table, "_changelog_topic",
                        SimpleNamespace(send_soon=send_soon), raising=False)
    monkeypatch.setattr(type(rt.table), "changelog_topic",
                        property(lambda table: table._changelog_topic))
    st = rt.parts[0] = PartitionState(rt._fresh_engine())
    st.dirty = True
    assert asyncio.run(rt.checkpoint()) == 1
    assert "checkpoint" in order
    assert order[0] == "flush", order  # the alerts first, then the checkpoint's records
