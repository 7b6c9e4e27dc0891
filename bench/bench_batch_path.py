"""The worker's path for batch messages, in process and without a broker (issue 17 item 3).

The same events (seeded simulated day) three ways, per CPU second of this process:
``replay``'s loop (one Engine, every detector), the runtime's one-step batch path
(``Runtime._take_batch``: what a worker does when the event-time merge holds nothing back),
the merge path (each batch queued for the event-time merge, then drained: what a worker
does in a backlog catch-up, where one topic waits for the other) and the per-event path (each
event of the batch through ``_take`` and ``_process``, as the worker did before). The runtime
is built by ``create_app`` with one partition (its engine scores bulk_lookup's views in place,
as ``replay``'s); its sends are dropped, the merge is told nothing waits (or, for the merge
path, that it waits, and its queue is drained without waiting). Alternated ``--repeat`` times; the best of each is reported.

Run: ``python bench/bench_batch_path.py [--events 30000] [--batch 500] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from detectors.engine import Engine  # noqa: E402
from simulation import SimConfig, simulate  # noqa: E402
from streams import batch  # noqa: E402
from streams.app import create_app  # noqa: E402
from streams.runtime import PartitionState  # noqa: E402
from streams.settings import Settings  # noqa: E402


def replay_cpu(lines: list[bytes]) -> float:
    engine = Engine()
    c = time.process_time()
    for line in lines:
        engine.process_line(line)
    engine.flush()
    return len(lines) / (time.process_time() - c)


def runtime() -> Any:
    rt = create_app(Settings(data_dir=tempfile.mkdtemp(prefix="bench-batch-"), partitions=1,
                             state_keys=("bench-state-key-0123456789",))).accesswatch

    async def send(key: Any = None, value: Any = None, headers: Any = None, **kw: Any) -> None:
        return None

    drop = SimpleNamespace(send=send)
    rt.dlq_topic = rt.alerts_topic = drop
    for t in rt.input_topics:
        rt.resend[t] = drop
    rt._wait_for = lambda *a, **kw: 0.0  # the merge holds nothing back
    rt.parts[0] = PartitionState(rt._fresh_engine())
    return rt


def messages(rt: Any, inputs: list[dict[str, Any]], lines: list[bytes],
             size: int) -> list[Any]:
    """Batch messages of up to ``size`` events of one topic, in file order."""
    out: list[Any] = []
    offsets = {t: 0 for t in rt.input_topics}
    runs: dict[str, list[bytes]] = {t: [] for t in rt.input_topics}

    def ship(topic: str) -> None:
        run = runs[topic]
        if run:
            msg = SimpleNamespace(topic=topic, partition=0, offset=offsets[topic], key=b"k",
                                  value=batch.frame(run) if len(run) > 1 else run[0],
                                  headers=(), timestamp=None)
            out.append(SimpleNamespace(message=msg, ack=lambda: None))
            offsets[topic] += 1
            runs[topic] = []

    for e, line in zip(inputs, lines, strict=True):
        topic = rt.names.logins if "outcome" in e else rt.names.access
        runs[topic].append(line)
        if len(runs[topic]) >= size:
            ship(topic)
    for topic in rt.input_topics:
        ship(topic)
    return out


def per_event(rt: Any) -> None:
    """Route every batch through the per-event path."""
    async def take(st: Any, event: Any, msg: Any, items: list[bytes], start: int) -> None:
        n = len(items)
        for i in range(start, n):
            await rt._take(st, event, batch.BatchItem(msg, i, n, items[i]), None)

    rt._take_batch = take


def merged(rt: Any) -> None:
    """Route every batch through the event-time merge: queued, then drained in event-time
    order (what a worker does in a backlog catch-up, where one topic waits for the other);
    ``force``: nothing is waited for, the queue is drained as far as it goes."""
    drain = rt.drain

    async def forced(partition: int, st: Any, force: bool = False) -> None:
        await drain(partition, st, force=True)

    rt._wait_for = lambda *a, **kw: 1.0  # the merge holds back: the queue path
    rt.drain = forced


def run_cpu(rt: Any, msgs: list[Any], n: int) -> float:
    async def go() -> float:
        c = time.process_time()
        for m in msgs:
            await rt.on_event(m)
        return n / (time.process_time() - c)
    return asyncio.run(go())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=30000)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    sim = simulate(SimConfig(seed=42, customers=4000, hours=24, attacks=("coupang",)))
    inputs = [e for e in sim.events if "change" not in e][: args.events]
    lines = [orjson.dumps(e) for e in inputs]
    best = {"replay": 0.0, "one step": 0.0, "merged": 0.0, "per event": 0.0}
    for _ in range(args.repeat):
        best["replay"] = max(best["replay"], replay_cpu(lines))
        for mode in ("per event", "merged", "one step"):
            rt = runtime()
            if mode == "per event":
                per_event(rt)
            elif mode == "merged":
                merged(rt)
            best[mode] = max(best[mode], run_cpu(rt, messages(rt, inputs, lines, args.batch),
                                                 len(lines)))
    print("| path | events per CPU second | / replay |")
    print("|---|---|---|")
    for k, v in best.items():
        print(f"| {k} | {v:,.0f} | {v / best['replay']:.2f}x |")
    print(f"\none step / per event: {best['one step'] / best['per event']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
