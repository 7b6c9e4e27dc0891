"""Pipeline benchmark: pass-through Faust vs the full accesswatch worker, and alert latency.

One run, one broker (embedded Tansu unless ``--broker``), the same data:

1. **pass-through**: a Faust agent over auth-logins + data-access (raw bytes, nothing done
   per event) reads a produced backlog of N events; events/s from its first to last event.
   Twice: as Faust's default agent, which acks every event so its offsets get committed
   (the baseline: the worker acks every event too, at its checkpoints), and never acking
   (the worker's iteration with nothing ever committed; a lower bound on Faust's cost);
2. **full pipeline**: ``accesswatch worker`` (engine, checkpoints, DLQ, metrics) reads the
   same backlog in its own consumer group; events/s from its first to last event (polled
   on /metrics every 0.5 s, every 0.05 s near the end: a scrape costs the worker ~10 ms);
3. **latency**: on fresh topics, with the worker live, events are offered at ``--rate``
   events/s for ``--seconds`` s; one in 50 is a marker (an access through a key whose owner
   left: ``revoked_credential`` alerts on it at once). Latency = the alert record's
   timestamp on the alerts topic minus the wall time its marker was handed to the producer.

Steps 1 and 2 run ``--repeat`` times (default 3), back to back, each with a new consumer
group: on this shared machine one pass-through rate swings by +-20% from minute to minute, so
each repetition's ratio compares two runs a minute apart and the median of them is reported.

``--batch N`` (issue 17) runs another comparison instead, on the same events in one run:
workers reading one-event messages, batches of up to N events (``accesswatch produce``'s
batching by partition, 20 ms linger) with 1 worker and with 2 workers on 2 partitions, and
``replay``'s loop in process; then produce-to-alert latency at 5,000 events/s offered (one-event
messages, batches) and 20,000 (batches). The throughput runs take the first 100,000 events
of the simulated day unless ``--events`` says otherwise (30,000, the default before, took a
batched worker about one second, two polls of /metrics). Its last line reads ``batched/single: X.XXx;
batched/replay: Y.YYx; p99 at 20000/s: Z.ZZ s`` (events/s, wall clock). The batched backlogs
are produced unordered across topics (``--ordered-backlog``: as ``produce`` does by default),
since they are on the broker before a worker starts; each run prints how the CPU was split
(each worker, the embedded broker, this process) and the table adds the ratios per CPU second,
which a loaded machine disturbs less than the wall-clock ones.

Run: ``python bench/bench_pipeline.py [--events 30000] [--rate 5000] [--seconds 20]``.
Prints a Markdown table (paste it into docs/benchmarks.md). It is a script, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from local.worker import WorkerProcess  # noqa: E402
from simulation import SimConfig, simulate  # noqa: E402
from streams.topics import TopicNames, create_topics  # noqa: E402
from streams.worker import free_port  # noqa: E402

# ------------------------------------------------------------------ pass-through app


def passthrough_main(broker: str, expected: int, app_id: str, loop: str, ack: bool) -> None:
    """A Faust worker whose agent only counts; prints the rate when it saw ``expected``.

    It gets what the accesswatch worker gets from its settings: the same fetch-wait cap, event
    loop and delivery path, and the same frozen start-up heap (``freeze_heap``), so the ratio
    compares the per-event work, not the configuration."""
    import faust

    from streams.faust_compat import limit_fetch_wait
    from streams.settings import Settings
    from streams.worker import freeze_heap, use_loop

    use_loop(loop)
    settings = Settings.from_env()
    limit_fetch_wait(settings.fetch_max_wait_ms)
    if settings.fast_deliver:
        from streams.faust_compat import inline_delivery

        inline_delivery()
    names = TopicNames()
    app = faust.App(app_id, broker=broker, store="memory://", key_serializer="raw",
                    value_serializer="raw", broker_session_timeout=10,
                    broker_heartbeat_interval=1, consumer_auto_offset_reset="earliest",
                    web_port=free_port(), web_bind="127.0.0.1", web_host="127.0.0.1",
                    broker_max_poll_records=1000, id_format="{id}",
                    datadir=tempfile.mkdtemp(prefix="bench-pass-"))
    topic = app.topic(names.logins, names.access, key_serializer="raw", value_serializer="raw")
    freeze_heap()  # as the worker does after building its app
    state = {"n": 0, "t0": 0.0, "c0": 0.0}

    @app.agent(topic)
    async def count(stream: Any) -> None:
        # acked: Faust's default agent, which acks every event so its offsets are committed
        # (the worker acks every event too, at its checkpoints); noack: the worker's own
        # iteration without any ack (nothing is ever committed)
        events = stream.events() if ack else stream.noack().events()
        async for _ in events:
            if state["n"] == 0:
                state["t0"] = time.perf_counter()
                state["c0"] = time.process_time()  # CPU of every thread of this process
            state["n"] += 1
            if state["n"] >= expected:
                dt = time.perf_counter() - state["t0"]
                cpu = time.process_time() - state["c0"]
                print(f"PASSTHROUGH {state['n']} {dt:.4f} {cpu:.4f}", flush=True)
                os._exit(0)

    worker = faust.Worker(app, loglevel="ERROR", quiet=True, redirect_stdouts=False,
                          override_logging=False)
    worker.execute_from_commandline()


def run_passthrough(url: str, expected: int, timeout: float, loop: str,
                    ack: bool = True) -> tuple[int, float, float]:
    """``(events, wall seconds, CPU seconds)`` of a pass-through process reading the backlog."""
    p = subprocess.run([sys.executable, __file__, "--_passthrough", url, str(expected), loop,
                        "ack" if ack else "noack"],
                       capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    for line in p.stdout.splitlines():
        if "PASSTHROUGH " in line:  # Faust may prefix terminal escapes
            _, n, dt, cpu = line[line.index("PASSTHROUGH "):].split()
            return int(n), float(dt), float(cpu)
    raise RuntimeError(f"pass-through did not finish (rc {p.returncode}):\n{p.stderr[-2000:]}")


# ----------------------------------------------------------------------- full worker


def start_workers(url: str, n: int, partitions: int, app_id: str, loop: str,
                  env: dict[str, str] | None = None) -> list[WorkerProcess]:
    ws = [WorkerProcess(url, partitions=partitions, app_id=app_id, idle_flush=0,
                        checkpoint_interval=2.0, topics_env=env,
                        extra=["--event-loop", loop])
          for _ in range(n)]
    for w in ws:
        w.start()
    for w in ws:
        w.wait_ready()
    return ws


def stop_workers(ws: list[WorkerProcess]) -> None:
    for w in ws:
        w.stop()
        w.cleanup()


def pid_cpu(pid: int) -> float:
    """User + system CPU seconds process ``pid`` has used so far (/proc); 0 when gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def cpu_seconds(ws: list[WorkerProcess]) -> float:
    """User + system CPU seconds the worker processes have used so far (/proc)."""
    total = 0.0
    for w in ws:
        assert w.proc is not None
        total += pid_cpu(w.proc.pid)
    return total


#: events of the ``--batch`` comparison unless ``--events`` is given: at ~30,000 events/s a
#: batched worker takes 30,000 in one second, a window two polls of /metrics wide (h-wone)
BATCH_EVENTS = 100_000

#: CPU seconds of the last ``run_full``: each worker's, the broker's (embedded: its pid), and
#: this process's (the benchmark: polling /metrics), over the measured interval
LAST_SPLIT: dict[str, Any] = {}


def taken(ws: list[WorkerProcess]) -> float:
    return sum(w.metric("accesswatch_events_total") for w in ws)


def run_full(url: str, expected_inputs: int, identity: int, timeout: float, *,
             workers: int, partitions: int, loop: str, app_id: str = "bench-full",
             env: dict[str, str] | None = None,
             broker_pid: int | None = None) -> tuple[int, float, float]:
    """``(events, wall seconds, CPU seconds of the workers)`` from the first event taken
    (the CPU split in ``LAST_SPLIT``)."""
    ws = start_workers(url, workers, partitions, app_id, loop, env)

    def split() -> dict[str, Any]:
        return {"workers": [pid_cpu(w.proc.pid) for w in ws if w.proc is not None],
                "broker": pid_cpu(broker_pid) if broker_pid else None,
                "bench": time.process_time()}

    try:
        deadline = time.monotonic() + timeout
        t_first = None
        n = n_first = c_first = 0.0
        s0: dict[str, Any] = {}
        while time.monotonic() < deadline:
            n = taken(ws) - identity * workers
            now = time.perf_counter()
            if n > 0 and t_first is None:
                t_first = now
                n_first = n
                c_first = cpu_seconds(ws)
                s0 = split()
            if n >= expected_inputs and t_first is not None:
                s1 = split()
                LAST_SPLIT.clear()
                LAST_SPLIT.update(
                    workers=[b - a for a, b in zip(s0["workers"], s1["workers"], strict=True)],
                    broker=(s1["broker"] - s0["broker"]) if broker_pid else None,
                    bench=s1["bench"] - s0["bench"])
                return int(n - n_first), now - t_first, cpu_seconds(ws) - c_first
            time.sleep(0.5 if n < 0.85 * expected_inputs else 0.05)
        raise RuntimeError(f"full pipeline took {n} of {expected_inputs} in {timeout}s")
    finally:
        stop_workers(ws)


# --------------------------------------------------------------------------- latency


def run_latency(url: str, bootstrap: str, rate: int, seconds: float,
                background: list[dict[str, Any]], *, workers: int, partitions: int,
                loop: str, batching: Any = None, prefix: str = "lat-") -> dict[str, Any]:
    """``batching`` (``streams.produce.Batching``): the offered events go through
    ``accesswatch produce``'s producer, batched by partition with its linger, instead of one
    kafka-python message per event."""
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    names = TopicNames.prefixed(prefix)
    create_topics(bootstrap, partitions=partitions, names=names)
    env = {"ACCESSWATCH_TOPIC_LOGINS": names.logins, "ACCESSWATCH_TOPIC_ACCESS": names.access,
           "ACCESSWATCH_TOPIC_IDENTITY": names.identity,
           "ACCESSWATCH_TOPIC_ALERTS": names.alerts, "ACCESSWATCH_TOPIC_DLQ": names.dlq}
    every = 50
    markers = int(rate * seconds) // every + 1
    prod = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=2, batch_size=65536,
                         acks=1)
    t_now = time.time()
    prod.send(names.identity, key=b"emp-gone", value=orjson.dumps(
        {"event_id": "lat-term", "ts": t_now - 86400, "change": "principal_terminated",
         "principal_id": "emp-gone"}))
    for i in range(markers):
        prod.send(names.identity, key=f"kid-{i}".encode(), value=orjson.dumps(
            {"event_id": f"lat-key-{i}", "ts": t_now - 90000, "change": "key_issued",
             "key_id": f"kid-{i}", "owner_id": "emp-gone"}))
    prod.flush()
    ws = start_workers(url, workers, partitions, f"bench-{prefix}", loop, env)
    sent_at: dict[str, float] = {}
    batched = None
    if batching is not None:
        from streams.produce import Producer

        batched = Producer(bootstrap, topics=names, batching=batching, ordered=False,
                           check_topics=False)

    def offer(topic: str, key: str, ev: dict[str, Any]) -> None:
        if batched is not None:
            batched.send_lines([orjson.dumps(ev)])
        else:
            prod.send(topic, key=key.encode(), value=orjson.dumps(ev))

    try:
        deadline = time.monotonic() + 60
        while any(w.metric("accesswatch_rebalances_total") < 1 for w in ws):  # assigned
            if time.monotonic() > deadline:
                raise RuntimeError("a latency worker never got its partitions")
            time.sleep(0.2)
        time.sleep(3.0 if workers > 1 else 1.0)  # let the group settle
        # warm up: one event per input partition, through every worker, before the clock
        # starts (a fresh consumer's first fetch of a topic takes ~1.5 s here: that is
        # start-up, not the pipeline's latency)
        warm = 0
        for p in range(partitions):
            for topic in (names.logins, names.access):
                ev = dict(background[warm % len(background)])
                ev["event_id"] = f"lat-warm-{warm}"
                ev["ts"] = time.time()
                prod.send(topic, partition=p, key=b"warm-up", value=orjson.dumps(ev))
                warm += 1
        prod.flush()
        base = (markers + 1) * workers + warm
        deadline = time.monotonic() + 60
        while taken(ws) < base and time.monotonic() < deadline:
            time.sleep(0.1)
        total = int(rate * seconds)
        tick = 0.01
        per_tick = max(1, int(rate * tick))
        t0 = time.perf_counter()
        i = 0
        m = 0
        bg = len(background)
        while i < total:
            target = t0 + (i // per_tick) * tick
            delay = target - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            for _ in range(per_tick):
                now = time.time()
                if i % every == 0:
                    eid = f"lat-m-{m}"
                    ev = {"event_id": eid, "ts": now, "actor_id": f"c-m{m}",
                          "subject_id": f"c-m{m}", "resource": "address",
                          "src_ip": "45.77.0.163", "key_id": f"kid-{m}"}
                    offer(names.access, ev["actor_id"], ev)
                    sent_at[eid] = now
                    m += 1
                else:
                    ev = dict(background[i % bg])
                    ev["event_id"] = f"lat-b-{i}"
                    ev["ts"] = now
                    if "outcome" in ev:
                        offer(names.logins, ev["account_id"], ev)
                    else:
                        offer(names.access, ev["actor_id"], ev)
                i += 1
        offered = total / (time.perf_counter() - t0)
        prod.flush()
        if batched is not None:
            batched.close()
        # wait until the worker took everything (or 60 s), then read the alerts
        deadline = time.monotonic() + 90
        # every worker reads every identity event: count them once per worker
        while taken(ws) < total + base:
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
        n_taken = taken(ws) - base
    finally:
        if batched is not None:
            batched.close()
        stop_workers(ws)
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest")
    # where the time goes: each marker's input record's timestamp (set by the producer when
    # it sends the record: after its batch's linger) splits the latency into the producer's
    # part and the broker's + worker's part
    written = _written_at(c, names.access, partitions, set(sent_at))
    tps = [TopicPartition(names.alerts, p) for p in range(partitions)]
    c.assign(tps)
    c.seek_to_beginning(*tps)
    lat: list[float] = []
    worker_part: list[float] = []
    producer_part: list[float] = []
    end = time.monotonic() + 10
    while time.monotonic() < end:
        recs = [r for rs in c.poll(timeout_ms=1000).values() for r in rs]
        if not recs and lat:
            break
        for r in recs:
            a = orjson.loads(r.value)
            for eid in a.get("event_ids", ()):
                if eid in sent_at:
                    at = r.timestamp / 1000.0
                    t_sent = sent_at.pop(eid)
                    lat.append(at - t_sent)
                    if eid in written:
                        producer_part.append(written[eid] - t_sent)
                        worker_part.append(at - written[eid])
    c.close()
    lat.sort()
    q = statistics.quantiles(lat, n=100) if len(lat) >= 2 else [float("nan")] * 99
    split = {}
    for name, xs in (("producer", producer_part), ("worker", worker_part)):
        xs.sort()
        qs = statistics.quantiles(xs, n=100) if len(xs) >= 2 else [float("nan")] * 99
        split[name] = (qs[49], qs[98])
    return {"offered": offered, "markers": m, "alerts": len(lat), "taken": n_taken,
            "total": total, "p50": q[49] if lat else float("nan"),
            "p99": q[98] if lat else float("nan"), "max": lat[-1] if lat else float("nan"),
            "split": split}


def _written_at(c: Any, topic: str, partitions: int, wanted: set[str]) -> dict[str, float]:
    """Record timestamp (seconds) of each ``wanted`` event id's record on ``topic`` (a
    batch's events share theirs)."""
    from kafka import TopicPartition

    from streams.batch import split as split_batch

    tps = [TopicPartition(topic, p) for p in range(partitions)]
    c.assign(tps)
    c.seek_to_beginning(*tps)
    ends = c.end_offsets(tps)
    out: dict[str, float] = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(c.position(tp) < ends[tp] for tp in tps):
        for rs in c.poll(timeout_ms=1000).values():
            for r in rs:
                if b"lat-m-" not in r.value:
                    continue
                items = split_batch(r.value)
                for item in items if isinstance(items, list) else [r.value]:
                    if b"lat-m-" in item:
                        eid = orjson.loads(item)["event_id"]
                        if eid in wanted:
                            out[eid] = r.timestamp / 1000.0
    return out


# ------------------------------------------------------------------ batched messages


def topics_env(names: TopicNames) -> dict[str, str]:
    return {"ACCESSWATCH_TOPIC_LOGINS": names.logins, "ACCESSWATCH_TOPIC_ACCESS": names.access,
            "ACCESSWATCH_TOPIC_IDENTITY": names.identity,
            "ACCESSWATCH_TOPIC_ALERTS": names.alerts, "ACCESSWATCH_TOPIC_DLQ": names.dlq}


def replay_rate(lines: list[bytes]) -> tuple[float, float]:
    """Events/s of ``replay``'s loop (one Engine, every detector) over ``lines``: per wall
    second and per CPU second of this process."""
    from detectors.engine import Engine

    engine = Engine()
    t = time.perf_counter()
    c = time.process_time()
    for line in lines:
        engine.process_line(line)
    engine.flush()
    return (len(lines) / (time.perf_counter() - t), len(lines) / (time.process_time() - c))


def partition_shares(inputs: list[dict[str, Any]], partitions: int) -> list[int]:
    """Events per input partition as the producers key them (logins by account, access by
    actor: ``streams.batch.partition_for``)."""
    from streams.batch import partition_for

    counts = [0] * partitions
    for e in inputs:
        key = e.get("account_id") if "outcome" in e else e.get("actor_id")
        counts[partition_for(str(key).encode(), partitions)] += 1
    return counts


def topic_ends(bootstrap: str, topics: list[str]) -> dict[str, int]:
    """Records written to each of ``topics`` (end offsets summed over its partitions; a
    topic that does not exist: absent)."""
    from kafka import KafkaConsumer, TopicPartition

    c = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        out = {}
        for t in topics:
            parts = c.partitions_for_topic(t)
            if parts:
                out[t] = sum(c.end_offsets([TopicPartition(t, p) for p in parts]).values())
        return out
    finally:
        c.close()


def read_inputs(path: str, limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` input events (logins and access: identity changes left out, as
    for the simulated day) of the JSON-lines file ``path``; SystemExit with one readable line
    for a file that cannot be read or a line that is not a JSON object."""
    out: list[dict[str, Any]] = []
    try:
        with open(path, "rb") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    e = orjson.loads(line)
                except orjson.JSONDecodeError:
                    raise SystemExit(f"bench_pipeline: {path}:{n}: not JSON") from None
                if type(e) is not dict:
                    raise SystemExit(f"bench_pipeline: {path}:{n}: not a JSON object")
                if "change" in e:
                    continue
                out.append(e)
                if len(out) >= limit:
                    break
    except OSError as exc:
        raise SystemExit(f"bench_pipeline: cannot read {path}: {exc.strerror}") from None
    if not out:
        raise SystemExit(f"bench_pipeline: {path}: no login or access events")
    return out


def main_batch(args: argparse.Namespace) -> int:
    """``--batch N``: one-event messages, batches of up to N events, and ``replay``, on the
    same events in one run; 1 worker (1 partition) and 2 workers (2 partitions) on the
    batches; produce-to-alert latency at 5,000 events/s (one-event messages and batches) and
    20,000 events/s (batches). ``--file``: the events of that JSON-lines file instead of the
    simulated day (another traffic mix: how evenly it spreads over 2 partitions bounds what 2
    workers can take)."""
    from streams.broker import EmbeddedBroker, parse_broker_url
    from streams.produce import Batching, Producer

    limit = args.events or BATCH_EVENTS
    if args.file:
        inputs = read_inputs(args.file, limit)
        source = f"{Path(args.file).name}, identity changes left out"
    else:
        sim = simulate(SimConfig(seed=42, customers=4000, hours=24, attacks=("coupang",)))
        inputs = [e for e in sim.events if "change" not in e][:limit]
        source = "simulated day, seed 42"
    lines = [orjson.dumps(e) for e in inputs]
    background = inputs[:20000]
    batching = Batching(events=args.batch, linger=0.020)
    shares = partition_shares(inputs, 2)
    print(f"{len(inputs):,} events ({source}); by partition of 2: "
          f"{' / '.join(f'{c:,}' for c in shares)} ({max(shares) / sum(shares):.0%} on the "
          f"busiest: 2 workers take at most {sum(shares) / max(shares):.2f}x one)",
          file=sys.stderr)
    rows: list[tuple[str, str]] = []

    def with_broker() -> Any:
        if args.broker:
            from contextlib import nullcontext

            return nullcontext(args.broker)
        return EmbeddedBroker()

    rep, rep_cpu = replay_rate(lines)
    print(f"replay: {rep:,.0f} events/s ({rep_cpu:,.0f} per CPU second)", file=sys.stderr)
    with with_broker() as b:
        url = b if isinstance(b, str) else b.url
        bootstrap = parse_broker_url(url)[0]
        runs: dict[str, tuple[int, float, float]] = {}
        produced: dict[str, tuple[int, int]] = {}
        splits: dict[str, str] = {}
        load0 = os.getloadavg()
        for label, prefix, parts, workers, how in (
                ("single", "s-", 1, 1, None), ("batched", "b-", 1, 1, batching),
                ("batched, 2 workers", "b2-", 2, 2, batching)):
            if workers > args.max_workers:
                continue
            names = TopicNames.prefixed(prefix)
            create_topics(bootstrap, partitions=parts, names=names)
            # the backlog is on the broker before a worker starts: the order across topics
            # at produce time cannot reach the worker (it merges by event time), so batches
            # are produced unordered and fill (ordered, this simulated file, whose event time
            # runs ~100x the wall clock, waits for each login and ships it alone:
            # docs/benchmarks.md, "h-wperf"); a live source's event time runs at wall speed
            with Producer(bootstrap, topics=names, batching=how,
                          ordered=how is None or not args.unordered_backlog) as prod:
                prod.send_lines(lines)
                stats = prod.close()
            msgs = sum(stats.messages.values())
            produced[label] = (stats.total_sent, msgs)
            order = ("one a message" if how is None else "unordered backlog"
                     if args.unordered_backlog else "ordered across topics")
            print(f"{label}: produced {stats.total_sent:,} events in {msgs:,} messages "
                  f"({order})",
                  file=sys.stderr)
            n, dt, cpu = run_full(url, stats.total_sent, 0, timeout=900, workers=workers,
                                  partitions=parts, loop=args.loop, app_id=f"bench-{prefix}",
                                  env=topics_env(names),
                                  broker_pid=None if args.broker else b.pid)
            runs[label] = (n, dt, cpu)
            if parts > 1:  # what the workers sent each other (one message each)
                app = f"bench-{prefix}"
                side = topic_ends(bootstrap, [f"{app}-logins-by-source", f"{app}-partials",
                                              f"{app}-findings"])
                splits["side"] = ", ".join(f"{k[len(app) + 1:]} {v:,}"
                                           for k, v in side.items())
                print(f"{label}: internal topics: {splits['side']} messages", file=sys.stderr)
            split = LAST_SPLIT
            each = " + ".join(f"{c / dt:.2f}" for c in split["workers"])
            broker = (f", broker {split['broker'] / dt:.2f}" if split["broker"] is not None
                      else "")
            splits[label] = (f"workers {each}{broker}, benchmark {split['bench'] / dt:.2f} "
                             f"cores")
            print(f"{label}: {n / dt:,.0f} events/s, workers' CPU {cpu / dt:.2f} cores; "
                  f"CPU split: {splits[label]}; load {os.getloadavg()[0]:.1f}", file=sys.stderr)
        lats = {}
        for label, rate, how, prefix in (("single", 5000, None, "l1-"),
                                         ("batched", 5000, batching, "l5-"),
                                         ("batched", 20000, batching, "l20-")
                                         ) if args.latency else ():
            lat = run_latency(url, bootstrap, rate, args.seconds, background, workers=1,
                              partitions=1, loop=args.loop, batching=how, prefix=prefix)
            lats[(label, rate)] = lat
            (pp50, pp99), (wp50, wp99) = lat["split"]["producer"], lat["split"]["worker"]
            print(f"latency {label} at {rate}/s: offered {lat['offered']:,.0f}/s, "
                  f"p50 {lat['p50']:.3f} s, p99 {lat['p99']:.3f} s, took {int(lat['taken']):,}"
                  f" of {lat['total']:,}; producer (to the record's timestamp) p50 {pp50:.3f}"
                  f" p99 {pp99:.3f} s, record -> alert p50 {wp50:.3f} p99 {wp99:.3f} s",
                  file=sys.stderr)
        load1 = os.getloadavg()
    rate = {k: n / dt for k, (n, dt, _) in runs.items()}
    rows.append(("events", f"{len(lines):,} inputs ({source}), batches of up to "
                 f"{args.batch} events, linger 20 ms"))
    rows.append(("messages", "; ".join(
        f"{k}: {m:,} ({e / m:,.0f} events/message)" for k, (e, m) in produced.items())
        + (" (`accesswatch produce`'s producer; batches produced unordered: the backlog is "
           "on the broker before the worker starts)" if args.unordered_backlog else
           " (`accesswatch produce`'s producer, ordered across topics as by default)")))
    rows.append(("replay (one Engine, every detector, in process)",
                 f"{rep:,.0f} events/s ({rep_cpu:,.0f} per CPU second)"))
    for k, (n, dt, cpu) in runs.items():
        what = {"single": "one-event messages", "batched": "batched messages, 1 worker",
                "batched, 2 workers": "batched messages, 2 workers on 2 partitions"}[k]
        rows.append((f"worker(s), {what}", f"{n / dt:,.0f} events/s ({cpu / dt:.2f} cores "
                     f"of worker CPU, {n / cpu:,.0f} events per worker CPU second; CPU split: "
                     f"{splits[k]})"))
    for (k, r), lat in lats.items():
        rows.append((f"produce -> alert, {k} messages, offered {r:,}/s",
                     f"offered {lat['offered']:,.0f}/s; p50 {lat['p50']:.3f} s, p99 "
                     f"{lat['p99']:.3f} s, max {lat['max']:.3f} s ({lat['alerts']} alerts; "
                     f"took {int(lat['taken']):,} of {lat['total']:,}); in the producer "
                     f"(marker handed over -> its record's timestamp) p50 "
                     f"{lat['split']['producer'][0]:.3f} s, p99 {lat['split']['producer'][1]:.3f}"
                     f" s; record -> alert p50 {lat['split']['worker'][0]:.3f} s, p99 "
                     f"{lat['split']['worker'][1]:.3f} s"))
    rows.append(("load average (1 min) before / after", f"{load0[0]:.1f} / {load1[0]:.1f} on "
                 f"{os.cpu_count()} cores"))
    cpu_rate = {k: n / cpu for k, (n, _, cpu) in runs.items()}
    rows.append(("per CPU second (less disturbed by a loaded machine; the periodic work, "
                 "checkpoints every 2 s, still grows with the wall time): batched / single, "
                 "batched / replay", f"{cpu_rate['batched'] / cpu_rate['single']:.2f}x, "
                 f"{cpu_rate['batched'] / rep_cpu:.2f}x"))
    if "batched, 2 workers" in rate:
        top = max(shares) / sum(shares)
        rows.append(("2 workers / 1 worker, batched",
                     f"{rate['batched, 2 workers'] / rate['batched']:.2f}x events/s; "
                     f"{cpu_rate['batched, 2 workers'] / cpu_rate['batched']:.2f}x events "
                     f"per worker CPU second"))
        rows.append(("events by partition, 2 partitions (keyed by account / actor)",
                     f"{' / '.join(f'{c:,}' for c in shares)}: the busiest partition has "
                     f"{top:.0%} of the events, so 2 workers take at most {1 / top:.2f}x one "
                     f"worker's events/s on this file"))
        rows.append(("internal topics, 2 workers (messages)", splits.get("side", "-")))
    print()
    print("| measure | value |")
    print("|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")
    print()
    p99 = lats[("batched", 20000)]["p99"] if lats else float("nan")
    print(f"batched/single: {rate['batched'] / rate['single']:.2f}x; "
          f"batched/replay: {rate['batched'] / rep:.2f}x; "
          f"p99 at 20000/s: {p99:.2f} s")
    return 0


# ----------------------------------------------------------------------------- main


def main() -> int:
    if len(sys.argv) >= 2 and sys.argv[1] == "--_passthrough":
        passthrough_main(sys.argv[2], int(sys.argv[3]), f"bench-pass-{os.getpid()}", sys.argv[4],
                         sys.argv[5] == "ack")
        return 0
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=0,
                   help=f"backlog size (default 30000; with --batch {BATCH_EVENTS})")
    p.add_argument("--rate", type=int, default=5000, help="offered rate, events/s")
    p.add_argument("--seconds", type=float, default=20.0, help="latency run length")
    p.add_argument("--broker", help="kafka://HOST:PORT (default: embedded Tansu)")
    p.add_argument("--partitions", type=int, default=1, help="input partitions (default 1)")
    p.add_argument("--workers", type=int, default=1,
                   help="workers in the group for the full and latency runs (default 1)")
    p.add_argument("--repeat", type=int, default=3,
                   help="pass-through and full runs, alternated (default 3; the median ratio)")
    p.add_argument("--event-loop", dest="loop", choices=("auto", "uvloop", "asyncio"), default="auto",
                   help="event loop of the pass-through and the workers (default auto)")
    p.add_argument("--batch", type=int, default=0, metavar="N",
                   help="compare one-event messages, batches of up to N events and replay "
                   "(issue 17); its last line: batched/single, batched/replay, p99 at 20000/s")
    p.add_argument("--ordered-backlog", dest="unordered_backlog", action="store_false",
                   help="with --batch: produce the batched backlogs ordered across topics, as "
                   "`accesswatch produce` does by default (default: unordered; the backlog is "
                   "on the broker before the workers start)")
    p.add_argument("--max-workers", type=int, default=2,
                   help="with --batch: 1 skips the 2-worker run (default 2)")
    p.add_argument("--file", metavar="FILE",
                   help="with --batch: the login and access events of this JSON-lines file "
                   "(e.g. a red-team file) instead of the simulated day; the partition shares "
                   "are printed")
    p.add_argument("--no-latency", dest="latency", action="store_false",
                   help="with --batch: the throughput runs only (the last line then has no p99)")
    args = p.parse_args()
    if args.repeat < 1:
        p.error("--repeat must be >= 1")
    if args.batch < 0 or args.batch == 1:
        p.error("--batch must be >= 2 (events per message)")
    if args.file and not args.batch:
        p.error("--file needs --batch")
    if args.batch:
        return main_batch(args)
    args.events = args.events or 30000

    from streams.broker import EmbeddedBroker, parse_broker_url
    from streams.produce import Producer

    sim = simulate(SimConfig(seed=42, customers=4000, hours=24, attacks=("coupang",)))
    events = sim.events
    inputs = [e for e in events if "change" not in e][: args.events]
    lines = [orjson.dumps(e) for e in inputs]
    background = [e for e in events if "change" not in e][:20000]

    def with_broker() -> Any:
        if args.broker:
            from contextlib import nullcontext

            return nullcontext(args.broker)
        return EmbeddedBroker()

    with with_broker() as b:
        url = b if isinstance(b, str) else b.url
        bootstrap = parse_broker_url(url)[0]
        create_topics(bootstrap, partitions=args.partitions)
        t = time.perf_counter()
        with Producer(bootstrap) as prod:
            prod.send_lines(lines)
            stats = prod.close()
        prod_rate = stats.total_sent / (time.perf_counter() - t)
        n_inputs = stats.total_sent
        print(f"produced {n_inputs:,} events at {prod_rate:,.0f}/s", file=sys.stderr)
        load0 = os.getloadavg()
        # per repetition: events/s of the acking pass-through, the never-acking one and the
        # full pipeline (wall clock), then events per CPU second of the acking pass-through
        # and of the full pipeline's worker process(es)
        reps: list[tuple[float, float, float, float, float]] = []
        for r in range(args.repeat):
            pn, pdt, pcpu = run_passthrough(url, n_inputs, timeout=600, loop=args.loop)
            qn, qdt, _ = run_passthrough(url, n_inputs, timeout=600, loop=args.loop, ack=False)
            fn, fdt, fcpu = run_full(url, n_inputs, 0, timeout=900, workers=args.workers,
                                     partitions=args.partitions, loop=args.loop,
                                     app_id=f"bench-full-{r}")
            reps.append((pn / pdt, qn / qdt, fn / fdt, pn / pcpu, fn / fcpu))
            print(f"repetition {r + 1}: pass-through acked {pn / pdt:,.0f} / never acking "
                  f"{qn / qdt:,.0f} ev/s, full {fn / fdt:,.0f} ev/s "
                  f"({fn / fdt / (pn / pdt):.2f}x); per CPU second {pn / pcpu:,.0f} / "
                  f"{fn / fcpu:,.0f} ({pcpu / fcpu * fn / pn:.2f}x); "
                  f"load {os.getloadavg()[0]:.1f}", file=sys.stderr)
        lat = run_latency(url, bootstrap, args.rate, args.seconds, background,
                          workers=args.workers, partitions=args.partitions, loop=args.loop)
        load1 = os.getloadavg()
    med = statistics.median
    pass_rate, noack_rate, full_rate, pass_cpu, full_cpu = (
        med(r[i] for r in reps) for i in range(5))
    ratio = med(r[2] / r[0] for r in reps)
    noack_ratio = med(r[2] / r[1] for r in reps)
    cpu_ratio = med(r[4] / r[3] for r in reps)
    print()
    print("| measure | value |")
    print("|---|---|")
    print(f"| backlog | {n_inputs:,} events (simulated, {args.partitions} partition(s)) |")
    print(f"| event loop | {args.loop} |")
    print("| repetitions (pass-through acked, never acking, full; events/s) | "
          + "; ".join(f"{r[0]:,.0f} / {r[1]:,.0f} / {r[2]:,.0f} ({r[2] / r[0]:.2f}x)"
                      for r in reps)
          + " |")
    print(f"| pass-through Faust agent, acking each event (Faust's default; 1 process), "
          f"median | {pass_rate:,.0f} events/s |")
    print(f"| pass-through Faust agent, never acking (nothing committed), median | "
          f"{noack_rate:,.0f} events/s |")
    print(f"| full pipeline ({args.workers} accesswatch worker(s)), median | "
          f"{full_rate:,.0f} events/s |")
    print(f"| full / pass-through, median of the repetitions' ratios | **{ratio:.2f}x** the "
          f"acking pass-through (target >= 0.7x); {noack_ratio:.2f}x the never-acking one |")
    print(f"| events per CPU second (every thread of the process), pass-through acking / full, "
          f"medians | {pass_cpu:,.0f} / {full_cpu:,.0f}: **{cpu_ratio:.2f}x** (median of the "
          f"repetitions' ratios) |")
    print(f"| offered rate (latency run) | {lat['offered']:,.0f} events/s for "
          f"{args.seconds:g} s, {lat['markers']} markers |")
    print(f"| worker took during/after the run | {int(lat['taken']):,} of {lat['total']:,} |")
    print(f"| produce -> alert latency p50 / p99 / max | {lat['p50']:.3f} s / "
          f"{lat['p99']:.3f} s / {lat['max']:.3f} s ({lat['alerts']} alerts; target p99 <= 1 s) |")
    print(f"| load average (1 min) before / after | {load0[0]:.1f} / {load1[0]:.1f} "
          f"on {os.cpu_count()} cores |")
    return 0


if __name__ == "__main__":
    asyncio.set_event_loop(asyncio.new_event_loop())
    sys.exit(main())
