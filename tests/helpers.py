"""Helpers shared by several test modules (imported as ``tests.helpers``; tests/conftest.py
registers the fixtures). Test modules import helpers from here, never from each other."""

from __future__ import annotations

import random
import time
import urllib.error
import urllib.request
from datetime import datetime
from typing import Any

import orjson
from kafka import KafkaConsumer, TopicPartition

from detectors._burst import Source
from detectors.brute_force import _Pair
from detectors.bulk_lookup import _Entity
from detectors.engine import Engine
from detectors.impossible_travel import _Where
from detectors.overseas_server import _Source
from detectors.revoked_credential import RevokedCredential
from detectors.unusual_hour import _Principal
from local.alerts import AlertReader
from local.worker import WorkerProcess
from simulation import SimConfig, simulate
from streams.app import create_app
from streams.produce import Producer
from streams.settings import Settings
from streams.topics import TopicNames

# ------------------------------------------------ the simulated file of the parity tests


SIM = SimConfig(seed=11, customers=500, hours=2, attacks=("coupang",), attack_start_hour=0.5)


def sim_lines(cfg: SimConfig = SIM) -> list[bytes]:
    return [orjson.dumps(e) for e in simulate(cfg).events]


#: the engine's per-kind counts compared with replay's: every event processed once. ``late``
#: is not: it depends on the order the engine sees events in (docs/operations.md)
COUNTED = ("login", "access", "identity")


def replay_alerts(lines: list[bytes]) -> list[dict[str, Any]]:
    return replay_run(lines)[0]


def replay_run(lines: list[bytes]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """``replay``'s alerts and its engine's counts of the events it processed, by kind."""
    engine = Engine()
    out: list[dict[str, Any]] = []
    for line in lines:
        out.extend(engine.process_line(line)[0])
    out.extend(engine.flush())
    return out, {k: engine.stats[k] for k in COUNTED}


def engine_events(worker: WorkerProcess) -> dict[str, int]:
    """The worker's ``accesswatch_engine_events{kind}`` (empty when unreachable)."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        text = urllib.request.urlopen(worker.metrics_url, timeout=5).read().decode()
    except OSError:
        return {}
    for fam in text_string_to_metric_families(text):
        if fam.name == "accesswatch_engine_events":
            return {s.labels["kind"]: int(s.value) for s in fam.samples}
    return {}


def assert_engine_counts(workers: list[WorkerProcess], expected: dict[str, int],
                         partitions: int = 1, timeout: float = 90.0) -> None:
    """The engines of ``workers`` processed as many events of each kind as ``replay``: the
    sums of their ``accesswatch_engine_events`` (identity: once per partition) reach
    ``expected`` within ``timeout`` and equal it (counts only grow within a worker's life, so
    a count that passed the replay's never comes back to it). The deadline is generous: a
    worker that has just restored, on a loaded machine, can leave its metrics page unanswered
    for seconds (seen in a CI run: every poll of 30 s unanswered, so all counts read 0)."""
    want = {k: n * partitions if k == "identity" else n for k, n in expected.items()}
    got: dict[str, int] = {}
    deadline = time.monotonic() + timeout
    while True:
        got = {k: 0 for k in want}
        for w in workers:
            for k, n in engine_events(w).items():
                if k in got:
                    got[k] += n
        if got == want or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert got == want, f"engine counts {got}, replay's {want}"


def produce(bootstrap: str, lines: list[bytes], names: TopicNames | None = None) -> int:
    return sum(produce_by_topic(bootstrap, lines, names).values())


def produce_by_topic(bootstrap: str, lines: list[bytes], names: TopicNames | None = None
                     ) -> dict[str, int]:
    with Producer(bootstrap, topics=names or TopicNames()) as prod:
        prod.send_lines(lines)
        return dict(prod.close().sent)


def readyz(worker: WorkerProcess) -> int | None:
    """The status of the worker's ``/readyz`` (None when it does not answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{worker.port}/readyz", timeout=2) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def wait_group_ready(workers: list[WorkerProcess], timeout: float = 120.0) -> None:
    """Until every worker's ``/readyz`` is 200 in two passes in a row. A worker is ready
    once it holds an assignment, no rebalance is under way and its state is restored
    (streams/health.py); the last worker to join gets its first assignment in a generation
    of the group that includes the others, and a rebalance makes every member not ready,
    so all ready means the group settled with all of them."""
    deadline = time.monotonic() + timeout
    passes = 0
    codes: list[int | None] = []
    while time.monotonic() < deadline:
        for w in workers:
            assert w.alive(), w.log_tail(40)
        codes = [readyz(w) for w in workers]
        passes = passes + 1 if all(c == 200 for c in codes) else 0
        if passes >= 2:
            return
        time.sleep(0.2)
    raise AssertionError(f"the group was not ready in {timeout:g}s: /readyz {codes}")


def start_group(url: str, tmp_path: Any, group: str, partitions: int,
                names: tuple[str, ...] = ("a", "b")) -> list[WorkerProcess]:
    """Workers of one consumer group, started and settled (``wait_group_ready``); each with
    its own data dir and log under ``tmp_path``."""
    workers = [
        WorkerProcess(url, partitions=partitions, app_id=group,
                      data_dir=str(tmp_path / n), log_path=str(tmp_path / f"{n}.log"))
        for n in names
    ]
    for n in names:
        (tmp_path / n).mkdir()
    try:
        for w in workers:
            w.start()
        for w in workers:
            w.wait_ready()
        wait_group_ready(workers)
    except BaseException:
        for w in workers:
            w.stop()
        raise
    return workers


def wait_until_done(worker: WorkerProcess, reader: AlertReader, events: int, alerts: int = 0,
                    quiet: float = 6.0, timeout: float = 300.0) -> None:
    """Until the worker took ``events`` input events, ``alerts`` distinct alert ids came, and
    then no alert for ``quiet`` s. (All events taken is not all alerts delivered: under load
    the last event can be taken more than ``quiet`` after the reader started, before any
    alert reached it; the caller's comparison shows what is missing at the deadline.)"""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert worker.alive(), worker.log_tail(40)
        taken = worker.metric("accesswatch_events_total")
        if (taken >= events and len({a["alert_id"] for a in list(reader.alerts)}) >= alerts
                and time.monotonic() - reader.last_at >= quiet):
            return
        time.sleep(0.5)
    raise AssertionError(f"worker not done in {timeout}s:\n{worker.log_tail(40)}")


def committed(bootstrap: str, group: str) -> dict[tuple[str, int], int]:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        got = admin.list_group_offsets({group: None}).get(group, {})
        return {(tp.topic, tp.partition): om.offset for tp, om in got.items()}
    finally:
        admin.close()


def wait_committed(bootstrap: str, group: str, sent: dict[str, int],
                   workers: list[WorkerProcess], reader: AlertReader, quiet: float = 6.0,
                   timeout: float = 300.0) -> None:
    """Until the group committed all ``sent[topic]`` messages of each input topic (offsets
    count from 0 per partition) and no alert came for ``quiet`` seconds."""
    deadline = time.monotonic() + timeout
    per_topic: dict[str, int] = {}
    while time.monotonic() < deadline:
        for w in workers:
            assert w.alive(), w.log_tail(40)
        per_topic = {}
        for (topic, _), off in committed(bootstrap, group).items():
            per_topic[topic] = per_topic.get(topic, 0) + max(off, 0)
        done = all(per_topic.get(t, 0) >= n for t, n in sent.items())
        if done and time.monotonic() - reader.last_at >= quiet:
            return
        time.sleep(0.5)
    raise AssertionError(f"not all committed in {timeout}s: sent {sent}, committed {per_topic}")

# ------------------------------------------------------------------- records and events


def consume_all(bootstrap: str, topics: list[str], expected: int) -> list:
    """Every record of ``topics`` from the beginning, once ``expected`` have arrived."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=10_000
    )
    try:
        parts = [
            TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t))
        ]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        records: list = []
        for record in consumer:  # stops after 10 s without a record
            records.append(record)
            if len(records) >= expected:
                break
        return records
    finally:
        consumer.close()


def delay_logins(events: list[dict[str, Any]], seed: int, share: float = 0.01,
                 most: float = 60.0) -> tuple[list[dict[str, Any]], int]:
    """``events`` (sorted by ts) with ``share`` of the logins moved later in file order: each
    chosen login is put right after the last event dated before its ts + U(0, ``most``) s."""
    rng = random.Random(seed)
    keyed = []
    moved = 0
    for i, e in enumerate(events):
        pos = ts_seconds(e["ts"])
        if "account_id" in e and "outcome" in e and rng.random() < share:
            pos += rng.uniform(0.0, most)
            moved += 1
        keyed.append((pos, i, e))
    keyed.sort(key=lambda t: (t[0], t[1]))
    return [e for _, _, e in keyed], moved


def ts_seconds(ts: Any) -> float:
    return datetime.fromisoformat(ts).timestamp() if isinstance(ts, str) else float(ts)


class Faulty(RevokedCredential):
    """revoked_credential, except that it raises on events whose id starts with ``boom``."""

    def on_access(self, e: Any, ctx: Any) -> Any:
        if e.event_id.startswith("boom"):
            raise KeyError("c-secret-account")
        return super().on_access(e, ctx)


def access(eid: str, ts: float, actor: str, session: str) -> dict[str, Any]:
    return {"event_id": eid, "ts": ts, "actor_id": actor, "subject_id": actor,
            "resource": "address", "src_ip": "52.95.110.1", "session_id": session,
            "key_id": "kid-x", "token_issued_at": ts - 10}


def watch_start(ts: float) -> dict[str, Any]:
    """A failed login of an unrelated account: the first event, so the watch begins at ``ts``.
    A token issued within unissued_session's ``skew`` (120 s) of the watch's start is adopted
    (its login may predate the stream); tests that want :func:`access`'s token judged feed this
    some minutes before it."""
    return {"event_id": f"watch-{ts}", "ts": ts, "account_id": "c-watch", "outcome": "failure",
            "src_ip": "121.134.0.1"}

# ------------------------------------------- detector tables filled to their cap (state tests)


def fill_idle(table: dict[Any, Any], make: Any, n: int) -> None:
    for i in range(n):
        table[f"idle-{i}"] = make(1000.0 + i, False)
    table["flagged"] = make(10.0, True)  # the least recently seen of all


def _entity(last: float, flagged: bool) -> Any:
    e = object.__new__(_Entity)
    e.last, e.sent = last, 2 if flagged else 0
    return e


def burst_source(last: float, flagged: bool) -> Source:
    s = Source(0, "k", 0, "label")
    s.last_ts, s.flagged_at = last, (last if flagged else None)
    return s


def _pair(last: float, flagged: bool) -> _Pair:
    p = _Pair(10)
    p.last, p.flagged = last, flagged
    return p


CASES = {
    "brute_force": lambda d: (d.pairs, _pair),
    "bulk_lookup": lambda d: (d._ents, _entity),
    "impossible_travel": lambda d: (d._last, lambda t, f: _Where("KR", "x", t, "1.2.3.4", "e",
                                                                   None, 1 if f else 0)),
    "overseas_server": lambda d: (d._sources, lambda t, f: _Source(
        "s", "w", t, t, None, sent=2 if f else -1)),
    "unusual_hour": lambda d: (d._state, lambda t, f: _Principal(last=t, sent=1 if f else -1)),
}


# ----------------------------------------------------- the runtime driven without a broker


def recording_runtime(tmp_path: Any, monkeypatch: Any) -> Any:
    """A runtime built by ``create_app`` (never started) whose outbound sends are recorded:
    ``rt.dlq`` (reason, field, detail) and ``rt.emitted`` (alerts)."""
    rt = create_app(Settings(data_dir=str(tmp_path),
                             state_keys=("test-state-key-0123456789",))).accesswatch
    rt.dlq: list[tuple[str, str | None, str]] = []  # type: ignore[misc]
    rt.emitted: list[dict[str, Any]] = []  # type: ignore[misc]

    async def dead_letter(msg: Any, reason: str, field_: str | None, detail: str) -> None:
        rt.metrics.count_invalid(msg.topic, reason)
        rt.dlq.append((reason, field_, detail))

    async def emit(alert: dict[str, Any]) -> None:
        rt.emitted.append(alert)

    async def nothing() -> None:
        return None

    monkeypatch.setattr(rt, "dead_letter", dead_letter)
    monkeypatch.setattr(rt, "emit", emit)
    monkeypatch.setattr(rt, "watch_delivery", nothing)
    monkeypatch.setattr(rt, "_update_lag", lambda: None)
    return rt


def feed_engine(eng: Any, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The alerts ``eng`` raises on ``events`` taken in event-time order (each accepted)."""
    out: list[dict[str, Any]] = []
    for obj in sorted(events, key=lambda e: e["ts"]):
        alerts, rej = eng.process_obj(obj)
        assert rej is None, rej
        out.extend(alerts)
    return out


#: the state key of the runtimes ``bare_runtime`` builds
BARE_STATE_KEY = "test-state-key-0123456789"


def bare_runtime(registry: Any = None, **fields: Any) -> Any:
    """A ``streams.runtime.Runtime`` built by its constructor, with ``Settings(**fields)``
    (state key ``BARE_STATE_KEY`` unless given), on a Faust app that never connects: its
    consumer is Faust's own, never started (no committed offsets). A test replaces the
    collaborators it stubs (``rt.app.consumer``, ``rt.table``, ``rt.emit``) on the built
    runtime."""
    import faust
    from prometheus_client import CollectorRegistry

    from streams.metrics import Metrics
    from streams.runtime import Runtime

    settings = Settings(**{"state_keys": (BARE_STATE_KEY,), **fields})
    app = faust.App(settings.app_id, broker="kafka://127.0.0.1:1", store="memory://",
                    key_serializer="raw", value_serializer="raw")
    return Runtime(app, settings, Metrics(registry if registry is not None
                                          else CollectorRegistry()))
