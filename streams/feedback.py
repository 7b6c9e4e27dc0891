"""``accesswatch feedback ALERT_OR_INCIDENT_ID --verdict benign|malicious --reason TEXT``
(issue 18).

Writes one analyst verdict to the ``access-feedback`` topic (creating it when missing), keyed
by the alert or incident id (``in-...``). Every worker reads every verdict; the engines that
hold the alert or alerts of the incident apply it (``detectors.feedback``): benign holds that
detector's findings about that entity (for an incident: each detector/entity pair of its
alerts) back for ``feedback_suppress`` seconds, malicious raises the findings about every
entity linked to the incident one severity step for ``feedback_watch`` seconds. The verdict's
time is the wall clock when it is given.

Exit codes: 0 written; 1 the broker did not take it; 2 a bad flag, setting or broker URL.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import sys
import time
import uuid
from typing import Any

import orjson

from detectors.feedback import VERDICTS, parse
from streams.broker import bootstrap_servers
from streams.kafka_security import add_arguments as add_kafka_security_arguments


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("alert_id", metavar="ALERT_OR_INCIDENT_ID",
                   help="the alert's alert_id, or an incident_id (in-...)")
    p.add_argument("--verdict", required=True, choices=VERDICTS)
    p.add_argument("--reason", required=True, help="why (shown in the alert it raises)")
    p.add_argument("--analyst", help="who gives the verdict (default: the login name)")
    p.add_argument("--broker", help="kafka://HOST:PORT (env ACCESSWATCH_BROKER, else the "
                   "--config file's [kafka] broker, else kafka://127.0.0.1:9092)")
    p.add_argument("--partitions", type=int, default=1,
                   help="partitions of the feedback topic when this creates it (default 1)")
    add_kafka_security_arguments(p)
    from streams.config import add_config_argument

    add_config_argument(p)


def message(args: argparse.Namespace, now: float) -> dict[str, Any]:
    analyst = args.analyst
    if not analyst:
        with contextlib.suppress(Exception):
            analyst = getpass.getuser()
    return {"feedback_id": uuid.uuid4().hex, "ts": now, "alert_id": args.alert_id,
            "verdict": args.verdict, "reason": args.reason, "analyst": analyst or "unknown"}


def _fail(text: str, code: int) -> int:
    print(f"accesswatch feedback: {' '.join(text.split())}", file=sys.stderr)
    return code


def run(args: argparse.Namespace) -> int:
    from kafka import KafkaAdminClient, KafkaProducer
    from kafka.errors import KafkaError

    from streams.config import command_settings, kafka_security
    from streams.topics import _create

    msg = message(args, time.time())
    why = parse(msg)
    if isinstance(why, str):
        return _fail(why, 2)
    try:
        settings = command_settings(args)
        servers = bootstrap_servers(args.broker or settings.broker)
        options = kafka_security(settings, args).kafka_python_options()
    except ValueError as exc:
        return _fail(str(exc), 2)
    topic = settings.topics.feedback
    try:
        admin = KafkaAdminClient(bootstrap_servers=servers, client_id="accesswatch-feedback",
                                 bootstrap_timeout_ms=10_000, **options)
        try:
            if topic not in set(admin.list_topics()):
                _create(admin, {topic: {"num_partitions": max(1, args.partitions),
                                        "replication_factor": 1}}, 30.0)
        finally:
            with contextlib.suppress(Exception):
                admin.close()
        producer = KafkaProducer(bootstrap_servers=servers, client_id="accesswatch-feedback",
                                 bootstrap_timeout_ms=10_000, **options)
        try:
            producer.send(topic, key=args.alert_id.encode(),
                          value=orjson.dumps(msg)).get(timeout=30)
        finally:
            producer.close(timeout=5)
    except (KafkaError, RuntimeError) as exc:
        return _fail(f"cannot write to {topic} on {','.join(servers)}: {exc}", 1)
    print(f"verdict {args.verdict} on {args.alert_id} written to {topic}")
    return 0
