"""``accesswatch topics``: create or list the topics on a broker (the command; the topics'
names, configurations and creation are ``streams.topics``)."""

from __future__ import annotations

import argparse
import json
import sys

from streams.broker import BrokerUnavailable, bootstrap_servers, check_reachable
from streams.config import add_config_argument, command_settings, kafka_security
from streams.kafka_security import KafkaSecurityError, check_connection
from streams.kafka_security import add_arguments as add_kafka_security_arguments
from streams.topics import (
    CoPartitionError,
    check_copartitioned,
    create_topics,
    describe_topics,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``accesswatch topics create|list``."""
    sub = parser.add_subparsers(dest="topics_command", metavar="create|list")
    sub.required = True
    broker_help = ("kafka://HOST:PORT[,HOST:PORT] (env ACCESSWATCH_BROKER, else the --config "
                   "file's [kafka] broker, else kafka://127.0.0.1:9092)")
    default_broker = None
    create = sub.add_parser("create", help="create the topics (existing ones are kept)")
    create.add_argument("--broker", default=default_broker, help=broker_help)
    add_kafka_security_arguments(create)
    add_config_argument(create)
    create.add_argument("--partitions", type=int, default=4, help="partitions per topic (4)")
    create.add_argument("--replication", type=int, default=1, help="replication factor (1)")
    create.add_argument(
        "--retention-days", type=float, default=7, help="retention of the input topics (7)"
    )
    create.add_argument(
        "--alerts-retention-days", type=float, default=30, help="alerts retention (30)"
    )
    create.add_argument("--dlq-retention-days", type=float, default=30, help="DLQ retention (30)")

    listing = sub.add_parser("list", help="show the accesswatch topics that exist")
    listing.add_argument("--broker", default=default_broker, help=broker_help)
    add_kafka_security_arguments(listing)
    add_config_argument(listing)
    listing.add_argument("--all", action="store_true", help="show every topic on the broker")
    listing.add_argument("--json", action="store_true", help="one JSON object per topic")


def _fail(message: str, code: int) -> int:
    print(f"accesswatch topics: {message}", file=sys.stderr)
    return code


def run(args: argparse.Namespace) -> int:
    """Run ``accesswatch topics``; returns the exit code (2 = bad input, 1 = broker error)."""
    from kafka.errors import KafkaError

    try:  # flags over the environment over the --config file (issue 16)
        settings = command_settings(args)
        servers = bootstrap_servers(args.broker or settings.broker)
        security = kafka_security(settings, args)
    except ValueError as exc:  # a bad file or URL, a security setting that cannot work
        return _fail(str(exc), 2)
    names = settings.topics
    try:
        check_reachable(servers)
        check_connection(servers, security)
        if args.topics_command == "create":
            reports = create_topics(
                servers,
                args.partitions,
                args.replication,
                names=names,
                input_retention_days=args.retention_days,
                alerts_retention_days=args.alerts_retention_days,
                dlq_retention_days=args.dlq_retention_days,
                security=security,
            )
            for r in reports:
                state = "created" if r.created else "exists "
                note = f"  ({r.note})" if r.note else ""
                print(
                    f"{state} {r.name:<24} partitions={r.partitions} "
                    f"replication={r.replication}{note}"
                )
            return 0
        infos = describe_topics(servers, None if args.all else names.all(), security=security)
        if args.json:
            for info in infos.values():
                print(
                    json.dumps(
                        {
                            "name": info.name,
                            "partitions": info.partitions,
                            "replication": info.replication,
                            "configs": info.configs,
                        }
                    )
                )
        else:
            for name in sorted(infos):
                info = infos[name]
                cfg = ",".join(f"{k}={v}" for k, v in sorted(info.configs.items()))
                print(
                    f"{name:<24} partitions={info.partitions} "
                    f"replication={info.replication}" + (f" {cfg}" if cfg else "")
                )
            if not args.all:
                absent = [n for n in names.all() if n not in infos]
                if absent:
                    print(
                        f"missing: {', '.join(absent)} (run `accesswatch topics create`)",
                        file=sys.stderr,
                    )
        if names.logins in infos and names.access in infos:
            check_copartitioned(infos, names)
        return 0
    except KafkaSecurityError as exc:  # the security settings or the broker's answer to them
        return _fail(str(exc), 2)
    except (CoPartitionError, BrokerUnavailable) as exc:
        return _fail(str(exc), 1)
    except ValueError as exc:
        return _fail(str(exc), 2)
    except (KafkaError, OSError, RuntimeError) as exc:
        detail = " ".join(str(exc).split())
        return _fail(f"broker {args.broker}: {type(exc).__name__}: {detail}", 1)
