"""`accesswatch worker --broker kafka://HOST:PORT` — one production worker.

Creates the topics if they are missing (idempotent, co-partitioning checked), then runs the
Faust app of ``streams.app`` until SIGTERM or SIGINT. On SIGTERM the worker stops consuming,
lets the event in flight finish, writes a last checkpoint of every engine, flushes alerts
(Kafka and Alertmanager), commits what the checkpoints cover and exits 0.

Metrics: ``http://WEB_HOST:WEB_PORT/metrics`` (Faust's web server).

The engine checkpoints are authenticated (``streams.snapshot``): without a state key
(``ACCESSWATCH_STATE_KEY_FILE`` or ``ACCESSWATCH_STATE_KEY``) the worker does not start.

Exit codes: 0 stopped on a signal; 2 a bad flag, environment value (a missing state key
included) or broker (one line).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import os
import sys
from dataclasses import replace

from streams import gcpolicy
from streams.broker import free_port  # the one definition; imported from here too
from streams.config import settings_from_args
from streams.replay import InputError
from streams.settings import Settings, SettingsError, add_worker_arguments


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_worker_arguments(p)
    p.add_argument(
        "--no-create-topics",
        dest="create_topics",
        action="store_false",
        help="do not create missing topics (they must exist)",
    )


def prepare(settings: Settings, create: bool = True) -> Settings:
    """Check the broker, create or inspect the topics, fix the partition count and web port."""
    from streams.broker import check_reachable
    from streams.kafka_security import KafkaSecurityError, check_connection
    from streams.topics import CoPartitionError, create_topics, describe_topics

    security = settings.kafka_security()
    try:
        check_reachable(settings.bootstrap)
        check_connection(settings.bootstrap, security)
        if create:
            reports = create_topics(
                settings.bootstrap,
                settings.partitions,
                settings.replication,
                names=settings.topics,
                timeout=15,
                security=security,
            )
            parts = {r.name: r.partitions for r in reports}
        else:
            infos = describe_topics(
                settings.bootstrap, settings.topics.inputs(), with_configs=False, timeout=15,
                security=security,
            )
            missing = [t for t in settings.topics.inputs() if t not in infos]
            if missing:
                raise InputError(f"missing topic(s): {', '.join(missing)}")
            parts = {n: i.partitions for n, i in infos.items()}
    except (CoPartitionError, KafkaSecurityError) as e:
        raise InputError(str(e)) from None
    except InputError:
        raise
    except Exception as e:  # unreachable broker and the like: one line
        raise InputError(f"broker {settings.broker}: {type(e).__name__}: {e}") from None
    n = parts.get(settings.topics.logins, settings.partitions)
    port = settings.web_port or free_port(settings.web_host)
    return replace(settings, partitions=n, web_port=port)


def use_loop(choice: str) -> str:
    """Install the event loop policy for ``choice`` (auto|uvloop|asyncio); return its name.

    Must run before Faust creates its loop. uvloop cuts the event-loop share of Faust's
    per-event cost (docs/benchmarks.md, "Pipeline")."""
    if choice == "asyncio":
        return "asyncio"
    try:
        import mode.loop

        mode.loop.use("uvloop")
    except ImportError:
        if choice == "uvloop":
            raise InputError("event loop uvloop needs the uvloop package: pip install uvloop") from None
        return "asyncio"
    return "uvloop"


def freeze_heap() -> None:
    """Move every object alive now (modules, the Faust app, GeoIP tables: they live as long
    as the process) to the collector's permanent generation, which it never scans.

    A full collection runs whenever the objects that survived into the old generation
    since the last one exceed a quarter of it; held events (unacked until a checkpoint) and
    the engines' growing state do that every few seconds of a catch-up, and each full
    collection scanned the ~150,000 import-time objects too: 75-80 ms each, 5-10 ms without
    them (one 30,000-event catch-up: 0.31 s of full collections -> 0.02 s)."""
    gc.collect()
    gc.freeze()


def victim_salt_warning(settings: Settings) -> str | None:
    """The start-up warning of a worker without a secret victim salt (None when it has one)."""
    if settings.victim_salt:
        return None
    return ("accesswatch worker: warning: ACCESSWATCH_VICTIM_SALT is not set; the digests that "
            "name victims in alerts use a public key and can be reversed "
            "(docs/contract.md, Victims)")


def run_worker(settings: Settings) -> int:
    import faust

    from streams.app import create_app
    from streams.logs import configure, say

    level = settings.log_level.upper()
    configure(level, settings.log_format)
    from streams.kafka_security import redact_logs

    redact_logs(settings.kafka_security())  # kafka-python logs its config at debug level
    loop = use_loop(settings.event_loop)
    if settings.fast_deliver:
        from streams.faust_compat import inline_delivery

        inline_delivery()
    app = create_app(settings)
    from streams.topics import declare_internal_topics, internal_topics

    try:  # before the group is joined (see declare_internal_topics); Faust's own would race
        declare_internal_topics(settings.bootstrap, internal_topics(app), settings.replication,
                                timeout=30, security=settings.kafka_security())
    except Exception as e:
        raise InputError(f"broker {settings.broker}: cannot create the worker's own topics: "
                         f"{type(e).__name__}: {e}") from None
    freeze_heap()
    gcpolicy.install()  # the engines' state out of the collector's full passes (issue 12)
    say(f"accesswatch worker {settings.worker_id}: broker {settings.broker}, "
        f"{settings.partitions} partitions, store {settings.store}, {loop} loop, "
        f"metrics at http://{settings.web_host}:{settings.web_port}/metrics",
        settings.log_format, logger="accesswatch.worker")
    warning = victim_salt_warning(settings)
    if warning:
        say(warning, settings.log_format, logger="accesswatch.worker", level=logging.WARNING)
    worker = faust.Worker(
        app, loglevel=level, quiet=True, redirect_stdouts=False, override_logging=False
    )
    # no terminal spinner: it wrote cursor escapes into the log (on stdout, tty or not)
    worker.spinner = None
    code = 0
    try:
        worker.execute_from_commandline()
    except SystemExit as e:
        code = int(e.code or 0)
    return _exit_now(code)


def _exit_now(code: int) -> int:
    """End the process once Faust has stopped its services (offsets committed, producer
    flushed, tables closed), without the interpreter's teardown: the detectors' DataSketches
    objects are nanobind instances still referenced by the engines, and nanobind's teardown
    writes "nanobind: leaked N instances!" to stderr, a line that is no log record (and not
    JSON with ``--log-format json``). Logging and the standard streams are flushed first."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_args(args)
        settings.snapshot_keys()  # checkpoints are authenticated: no key, no worker
    except SettingsError as e:
        raise InputError(str(e)) from None
    settings = prepare(settings, create=args.create_topics)
    os.makedirs(settings.data_dir, exist_ok=True)
    return run_worker(settings)
