"""`accesswatch demo` — embedded broker, a worker, a Coupang-style scenario, alerts live.

1. starts Tansu on a free loopback port (or uses ``--broker kafka://HOST:PORT``) and
   creates the topics; on a ``--broker`` they are named after the run
   (``accesswatch-demo-<time>-<random>-auth-logins`` ...), like its consumer group, so two
   runs never read each other's events;
2. starts ``accesswatch worker`` as a subprocess (its own Faust app and consumer group)
   and waits until its web server answers (``/metrics``);
3. produces a simulated day (:mod:`simulation`: a few thousand customers, the
   ``coupang`` attack: a departed engineer's signing key forging customer tokens, read from
   servers abroad), or ``--events FILE``, in file order;
4. prints each alert from ``access-alerts`` as it arrives (``--json``: one JSON object per
   line on stdout, everything else on stderr);
5. when the worker has taken every event and alerts have gone quiet, prints a summary
   (events, alerts by detector, the attack detected or not, time to detect) and stops the
   worker (SIGTERM) and the broker. ``--follow`` keeps running until Ctrl-C.

Exit codes: 0 done (attack detected or not: the summary says); 2 a bad flag, an unreadable
file, no broker; 1 the worker died.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import secrets
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from local.alerts import AlertReader
from local.worker import WorkerProcess
from streams.replay import InputError

DEMO_CUSTOMERS = 2000
DEMO_HOURS = 3.0
QUIET_SECONDS = 4.0  # no new alert for this long after the worker took every event: done
#: the demo always ends (not with --follow): after this long without progress (no event
#: produced or taken, no alert); a long file takes as long as the worker needs
DEMO_TIMEOUT = 100.0
FILE_MERGE_WAIT = 600.0  # --events: how long one topic waits for the other (s; default 60)


# ---------------------------------------------------------------------- scenario


@dataclass
class Scenario:
    lines: list[bytes]
    truth: list[dict[str, Any]] = field(default_factory=list)
    name: str = ""


def builtin_scenario(seed: int = 7, customers: int = DEMO_CUSTOMERS,
                     hours: float = DEMO_HOURS) -> Scenario:
    from simulation import SimConfig, simulate

    sim = simulate(SimConfig(seed=seed, customers=customers, hours=hours,
                             attacks=("coupang",), attack_start_hour=1.0))
    lines = [orjson.dumps(e) for e in sim.events]
    return Scenario(lines, sim.truth, f"simulated: {customers:,} customers, {hours:g} h, "
                                      "attack 'coupang'")


def file_scenario(path: str) -> Scenario:
    try:
        with open(path, "rb") as f:
            lines = [ln for ln in f if ln.strip()]
    except FileNotFoundError:
        raise InputError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise InputError(f"is a directory, not a file: {path}") from None
    except PermissionError:
        raise InputError(f"permission denied: {path}") from None
    return Scenario(lines, [], path)


# -------------------------------------------------------------------------- output


def alert_line(a: dict[str, Any]) -> str:
    ent = a.get("entity") or {}
    return (f"[{a.get('severity', '?'):<8}] {a.get('detector', '?'):<20} "
            f"{ent.get('kind', '?')} {ent.get('id', '?')}: {a.get('summary', '')}")


def _attack_ids(truth: list[dict[str, Any]]) -> set[str]:
    return {i for t in truth for i in t.get("event_ids", ())}


def summary(scn: Scenario, produced: int, taken: float, alerts: list[dict[str, Any]],
            attack_sent_at: float | None, first_hit_at: float | None,
            first_hit: dict[str, Any] | None) -> str:
    latest: dict[str, dict[str, Any]] = {}
    for a in alerts:
        latest[a["alert_id"]] = a
    by = Counter((a["detector"], a["severity"]) for a in latest.values())
    lines = ["", "summary", f"  scenario: {scn.name}",
             f"  events: {produced:,} produced, {int(taken):,} taken by the worker",
             f"  alerts: {len(latest):,} ({len(alerts):,} messages incl. escalations)"]
    for det in sorted({d for d, _ in by}):
        sev = ", ".join(f"{s} {c}" for (d, s), c in sorted(by.items()) if d == det)
        lines.append(f"    {det}: {sev}")
    incidents = {a["incident_id"] for a in latest.values() if a.get("incident_id")}
    if incidents:
        paged = {a["incident_id"] for a in latest.values()
                 if a.get("incident_id") and a.get("severity") == "critical"}
        lines.append(f"  incidents: {len(incidents):,} ({len(paged):,} paging on-call: "
                     "one page each, then updates)")
    if scn.truth:
        if first_hit is not None and first_hit_at is not None and attack_sent_at is not None:
            lines.append(f"  attack detected: yes — {first_hit['detector']} "
                         f"({first_hit['severity']}) {first_hit_at - attack_sent_at:.1f}s after "
                         "its first event was produced")
            start = scn.truth[0].get("start_ts")
            lines.append(f"    attack began (event time) {start}; first alert at {first_hit['ts']}")
        else:
            lines.append("  attack detected: NO")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- CLI


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--events", metavar="FILE", help="play this JSON-lines file instead")
    p.add_argument("--json", action="store_true",
                   help="alerts as JSON lines on stdout (everything else on stderr)")
    p.add_argument("--broker", metavar="kafka://HOST:PORT",
                   help="use this broker instead of starting the embedded one")
    p.add_argument("--follow", action="store_true", help="keep running until Ctrl-C")
    p.add_argument("--partitions", type=int, default=1,
                   help="partitions of the topics (default 1: aggregates equal a replay)")
    p.add_argument("--customers", type=int, default=DEMO_CUSTOMERS, help=argparse.SUPPRESS)
    p.add_argument("--hours", type=float, default=DEMO_HOURS, help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=7, help="simulation seed (default 7)")
    p.add_argument("--alerting", choices=("auto", "on", "off"), default="auto",
                   help="also start Prometheus, Alertmanager and the on-call receiver "
                        "(auto: when installed)")
    from streams.kafka_security import add_arguments as add_kafka_security_arguments
    from streams.settings import add_log_format_argument  # issue 16: operations

    add_kafka_security_arguments(p)  # issue 16: for --broker (the embedded one is plaintext)
    add_log_format_argument(p)
    from streams.config import add_config_argument  # issue 16: the configuration file

    add_config_argument(p)  # (its broker, topics, Kafka security and log format)


def run_topics(run_id: str, shared: bool, base: Any = None) -> tuple[Any, dict[str, str]]:
    """The topics of one demo run and the worker's environment naming them.

    On a broker of its own (the embedded one, new each run) the usual names. On a broker
    given with ``--broker`` (shared, kept between runs) topics named after the run, so a
    run never reads another run's events (issue 16: a second run took the first's 103,650
    events too); ``ACCESSWATCH_TOPIC_*`` names set in the environment are prefixed alike.
    ``base``: the names to start from (the ``--config`` file's with the environment over them;
    default the environment's), given to the worker in its environment as well."""
    from streams.topics import TopicNames

    given = base is not None
    base = TopicNames.from_env() if base is None else base
    # the internal partials topic is ``<app id>-partials``: the run's own already
    names = TopicNames(*(f"{run_id}-{n}" for n in base.all())) if shared else base
    if not shared and not given:
        return base, {}
    env = {"ACCESSWATCH_TOPIC_LOGINS": names.logins, "ACCESSWATCH_TOPIC_ACCESS": names.access,
           "ACCESSWATCH_TOPIC_IDENTITY": names.identity,
           "ACCESSWATCH_TOPIC_ALERTS": names.alerts, "ACCESSWATCH_TOPIC_DLQ": names.dlq}
    return names, env


@contextlib.contextmanager
def _broker(url: str | None) -> Iterator[str]:
    from streams.broker import BrokerUnavailable, EmbeddedBroker, parse_broker_url

    if url:
        try:
            parse_broker_url(url)
        except ValueError as e:
            raise InputError(str(e)) from None
        yield url
        return
    try:
        with EmbeddedBroker() as b:
            yield b.url
    except BrokerUnavailable as e:
        raise InputError(str(e)) from None


def run(args: argparse.Namespace) -> int:
    out = sys.stderr if args.json else sys.stdout
    if args.partitions < 1:
        raise InputError("--partitions must be >= 1")
    scn = file_scenario(args.events) if args.events else builtin_scenario(
        args.seed, args.customers, args.hours)

    from streams.config import broker_setting, command_settings, config_path
    from streams.logs import say as log_line
    from streams.replay import _log_format

    try:  # issue 16: flags over the environment over the --config file
        settings = command_settings(args)
        broker_url = args.broker or broker_setting(args, os.environ)
    except ValueError as e:
        raise InputError(str(e)) from None
    fmt = _log_format(args, settings)

    def say(msg: str) -> None:
        if fmt == "json":  # issue 16: one JSON object a line, on stderr
            log_line(msg, fmt, logger="accesswatch.demo")
        else:
            print(msg, file=out if not args.json else sys.stderr, flush=True)

    from streams.broker import parse_broker_url
    from streams.config import kafka_security
    from streams.kafka_security import (
        ENV,
        FLAGS,
        SETTINGS_FIELDS,
        KafkaSecurity,
        KafkaSecurityError,
        check_connection,
    )
    from streams.topics import create_topics

    try:  # the embedded broker is plaintext: the security settings serve --broker only
        security = kafka_security(settings, args) if broker_url else KafkaSecurity()
    except KafkaSecurityError as e:
        raise InputError(str(e)) from None
    with _broker(broker_url) as url:
        bootstrap = parse_broker_url(url)
        run_id = f"accesswatch-demo-{time.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(3)}"
        names, topics_env = run_topics(run_id, shared=broker_url is not None,
                                       base=settings.topics if config_path(args, os.environ)
                                       else None)
        if broker_url:
            try:
                check_connection(bootstrap, security)
            except KafkaSecurityError as e:
                raise InputError(str(e)) from None
        try:
            create_topics(bootstrap, args.partitions, names=names, timeout=15,
                          security=security)
        except Exception as e:
            raise InputError(f"broker {url}: cannot create topics: {e}") from None
        app_id = run_id  # a consumer group of its own, too
        chain = _start_chain(args.alerting, say)
        extra = ["--alertmanager", chain.am_url] if chain is not None else []
        extra += ["--log-format", fmt]
        if broker_url:  # the worker gets the same security: flags (paths), env (secrets)
            given = {name: getattr(args, SETTINGS_FIELDS[name], None)
                     or getattr(settings, SETTINGS_FIELDS[name]) for name in FLAGS}
            extra += [a for name, flag in FLAGS.items() if given[name]
                      for a in (flag, given[name])]
        preloaded = None
        if args.events:
            # a file's end is known: all of it is in the broker before the worker reads, so
            # no input partition runs dry mid-file while the producer is behind (its time
            # would move on the wall clock and its idle flush fire every timer, as at the end
            # of its input: docs/contract.md, "Keying and partitioning")
            say(f"producing {len(scn.lines):,} events ({scn.name}) ...")
            preloaded = _produce(scn, bootstrap, names, security, set())
        worker = WorkerProcess(url, partitions=args.partitions, app_id=app_id, extra=extra,
                               topics_env=topics_env)
        # the worker reads no configuration file: what it takes from one (broker, topics,
        # security) the demo gives it above; the rest (alert routes, ...) is production's
        worker.env.pop("ACCESSWATCH_CONFIG", None)
        if preloaded is not None:
            # the whole file is in the broker: a partition's logins and access are merged by
            # event time however long the other topic's next fetch takes on a loaded host
            worker.env.setdefault("ACCESSWATCH_MERGE_WAIT", str(FILE_MERGE_WAIT))
        if broker_url is not None:
            say(f"topics of this run: {', '.join(names.all())} (delete them when done)")
        if not broker_url:
            for var in ENV.values():
                worker.env.pop(var, None)
                worker.env.pop(f"{var}_FILE", None)
        say(f"broker {url}; starting a worker ...")
        worker.start()
        reader = AlertReader(bootstrap, names.alerts, security).start()
        try:
            worker.wait_ready()
            say(f"metrics: {worker.metrics_url}")
            if chain is not None:
                chain.start_prometheus(f"127.0.0.1:{worker.port}")
                say(f"prometheus: {chain.prom_url}/alerts   alertmanager: {chain.am_url}   "
                    f"on-call receiver: {chain.receiver.url}/received "
                    f"(bearer token in {chain.receiver_token_file})")
            say(f"alerts topic: {names.alerts} on {url}")
            if preloaded is None:
                say(f"playing {len(scn.lines):,} events ({scn.name})")
            rc = _play(args, scn, bootstrap, names, worker, reader, say, security, preloaded)
            if chain is not None:
                if any(a.get("severity") == "critical" for a in reader.alerts):
                    chain.wait_for_page(30.0)
                pages = chain.pages()
                say("pages received by the on-call receiver: " + (", ".join(
                    f"{n} {c}" for n, c in sorted(pages.items())) or "none"))
            return rc
        finally:
            reader.stop()
            rc = worker.stop()  # type: ignore[assignment]  # the worker's exit code or None
            if rc not in (0, None):
                say(f"worker exited with {rc}; its log:\n{worker.log_tail()}")
            worker.cleanup()
            if chain is not None:
                chain.stop()


def _start_chain(mode: str, say: Any) -> Any:
    """Prometheus + Alertmanager + receiver beside the demo, when wanted and installed."""
    if mode == "off":
        return None
    from local import chain as chain_mod

    why = chain_mod.available()
    if why is not None:
        if mode == "on":
            raise InputError(f"--alerting on: {why}")
        say(f"alerting chain not started: {why}")
        return None
    chain = chain_mod.Chain()
    try:
        chain.start_alerting()
    except Exception as e:  # noqa: BLE001 - the demo goes on without it, and says so
        chain.stop()
        if mode == "on":
            raise InputError(f"--alerting on: {e}") from None
        say(f"alerting chain not started: {e}")
        return None
    return chain


def _produce(scn: Scenario, bootstrap: list[str], names: Any, security: Any,
             attack: set[str], state: dict[str, Any] | None = None) -> dict[str, Any]:
    """Produce the scenario's events in file order; ``state``: sent so far, when the first
    attack event was delivered, done, the error that stopped it (never raised)."""
    from streams.produce import Producer

    if state is None:
        state = {"sent": 0, "attack_at": None, "done": False, "error": None}
    try:
        with Producer(bootstrap, topics=names, security=security) as prod:
            chunk: list[bytes] = []
            for line in scn.lines:
                chunk.append(line)
                if state["attack_at"] is None and attack and _is_attack(line, attack):
                    prod.send_lines(chunk)
                    chunk = []
                    prod._producer.flush()  # noqa: SLF001 - time the attack from delivery
                    state["attack_at"] = time.monotonic()
                elif len(chunk) >= 500:
                    prod.send_lines(chunk)
                    chunk = []
                state["sent"] = prod.stats.total_sent
            if chunk:
                prod.send_lines(chunk)
            stats = prod.close()
            state["sent"] = stats.total_sent
    except Exception as e:  # shown in the summary, never a traceback
        state["error"] = f"{type(e).__name__}: {e}"
    finally:
        state["done"] = True
    return state


def _play(args: argparse.Namespace, scn: Scenario, bootstrap: list[str], names: Any,
          worker: WorkerProcess, reader: AlertReader, say: Any, security: Any = None,
          preloaded: dict[str, Any] | None = None) -> int:
    attack = _attack_ids(scn.truth)
    if preloaded is not None:  # produced before the worker started (a file)
        state = preloaded
    else:
        state = {"sent": 0, "attack_at": None, "done": False, "error": None}
        t = threading.Thread(target=_produce, args=(scn, bootstrap, names, security, attack,
                                                    state), name="demo-producer", daemon=True)
        t.start()
    t0 = time.monotonic()
    first_hit: dict[str, Any] | None = None
    first_hit_at: float | None = None
    taken = 0.0
    all_taken_at: float | None = None
    progress: tuple[Any, ...] = ()
    progress_at = t0
    while True:
        for a in reader.new():
            if args.json:
                sys.stdout.write(orjson.dumps(a).decode() + "\n")
                sys.stdout.flush()
            else:
                print(alert_line(a), flush=True)
            if first_hit is None and attack and attack & set(a.get("event_ids") or ()):
                first_hit, first_hit_at = a, time.monotonic()
        if not worker.alive():
            say(f"the worker died:\n{worker.log_tail()}")
            return 1
        if state["done"] and not args.follow:
            taken = worker.metric("accesswatch_events_total")
            if taken < state["sent"]:
                all_taken_at = None
            elif all_taken_at is None:
                all_taken_at = time.monotonic()
            # quiet since the last alert and since the worker took every event: the timers
            # its idle flush fires come after the last event (an alert-free start is not quiet)
            quiet = time.monotonic() - max(reader.last_at, all_taken_at or math.inf)
            if taken >= state["sent"] and quiet >= QUIET_SECONDS and _findings_done(worker):
                break
        if not args.follow:
            now = (state["sent"], taken, len(reader.alerts))
            if now != progress:
                progress, progress_at = now, time.monotonic()
            elif time.monotonic() - progress_at > DEMO_TIMEOUT:
                say(f"no progress for {DEMO_TIMEOUT:.0f}s: stopping")
                break
        time.sleep(0.3)
    if state["error"]:
        say(f"producing stopped: {state['error']}")
    say(summary(scn, state["sent"], taken, reader.alerts, state["attack_at"], first_hit_at,
                first_hit))
    return 0


def _findings_done(worker: WorkerProcess) -> bool:
    """With several partitions: every finding sent to the episode builders taken and made
    into alerts, no login held by a burst engine and no window view by a bulk_lookup scorer
    (``streams.episodes``; the metrics are absent with one partition: 0, done)."""
    return (worker.metric("accesswatch_findings_held") == 0
            and worker.metric("accesswatch_burst_logins_held") == 0
            and worker.metric("accesswatch_partials_held") == 0
            and worker.metric("accesswatch_findings_taken_total")
            >= worker.metric("accesswatch_findings_sent_total"))


def _is_attack(line: bytes, ids: set[str]) -> bool:
    i = line.find(b'"event_id":"')
    if i < 0:
        return False
    j = line.find(b'"', i + 12)
    return line[i + 12:j].decode("utf-8", "replace") in ids
