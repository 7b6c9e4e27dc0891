"""`accesswatch simulate` — seeded, labeled synthetic traffic (:mod:`simulation`) as JSON
lines, its ground truth as one JSON array."""

from __future__ import annotations

import argparse
import sys

import orjson

from simulation import ATTACKS, SimConfig, SimulationError, plan


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``accesswatch simulate``."""
    d = SimConfig()
    parser.add_argument(
        "--seed", type=int, default=d.seed, help="random seed (default %(default)s)"
    )
    parser.add_argument(
        "--start", default=d.start, help="RFC 3339 start time (default %(default)s)"
    )
    parser.add_argument("--hours", type=float, default=d.hours, help="hours of traffic")
    parser.add_argument("--customers", type=int, default=d.customers, help="customer accounts")
    parser.add_argument(
        "--employees", type=int, default=d.employees, help="support staff and engineers"
    )
    parser.add_argument("--services", type=int, default=d.services, help="internal services")
    parser.add_argument(
        "--attack",
        action="append",
        default=[],
        metavar="NAME",
        help="inject this attack (repeatable; see --list-attacks)",
    )
    parser.add_argument(
        "--attack-start-hour",
        type=float,
        default=d.attack_start_hour,
        help="hours after start when attacks begin (default %(default)s)",
    )
    parser.add_argument("--home-country", default=d.home_country, help=argparse.SUPPRESS)
    parser.add_argument(
        "--out", default="-", metavar="FILE", help="JSON lines of events (default - for stdout)"
    )
    parser.add_argument(
        "--truth",
        default=None,
        metavar="FILE",
        help="write the ground truth (a JSON array, one record per attack)",
    )
    parser.add_argument("--list-attacks", action="store_true", help="list attacks and exit")


def config_from_args(args: argparse.Namespace) -> SimConfig:
    return SimConfig(
        seed=args.seed,
        start=args.start,
        hours=args.hours,
        customers=args.customers,
        employees=args.employees,
        services=args.services,
        attacks=tuple(args.attack or ()),
        home_country=getattr(args, "home_country", "KR"),
        attack_start_hour=getattr(args, "attack_start_hour", 2.0),
    )


def run(args: argparse.Namespace) -> int:
    """``accesswatch simulate``: events as JSON lines to --out, truth to --truth."""
    if getattr(args, "list_attacks", False):
        width = max(map(len, ATTACKS))
        for name, desc in ATTACKS.items():
            print(f"{name:<{width}}  {desc}")
        return 0
    try:
        cfg = config_from_args(args)
        world = plan(cfg)
    except SimulationError as exc:
        print(f"accesswatch simulate: error: {exc}", file=sys.stderr)
        return 2
    out_path = args.out or "-"
    dumps = orjson.dumps
    n = 0
    try:
        sink = sys.stdout.buffer if out_path == "-" else open(out_path, "wb")  # noqa: SIM115
    except OSError as exc:
        print(
            f"accesswatch simulate: error: cannot write {out_path}: {exc.strerror}", file=sys.stderr
        )
        return 2
    try:
        buf: list[bytes] = []
        for ev in world.stream():
            buf.append(dumps(ev))
            n += 1
            if len(buf) >= 8192:
                buf.append(b"")
                sink.write(b"\n".join(buf))
                buf.clear()
        if buf:
            buf.append(b"")
            sink.write(b"\n".join(buf))
        sink.flush()
    except BrokenPipeError:
        _silence_stdout()
        return 0
    except OSError as exc:
        print(f"accesswatch simulate: error: writing {out_path}: {exc.strerror}", file=sys.stderr)
        return 2
    finally:
        if sink is not sys.stdout.buffer:
            sink.close()
    if args.truth:
        try:
            with open(args.truth, "wb") as fh:
                fh.write(orjson.dumps(world.truth(), option=orjson.OPT_INDENT_2) + b"\n")
        except OSError as exc:
            print(
                f"accesswatch simulate: error: cannot write {args.truth}: {exc.strerror}",
                file=sys.stderr,
            )
            return 2
    counts: dict[str, int] = {}
    for t in world.truth():
        counts[t["attack"]] = len(t["event_ids"])
    attacks = ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"
    print(f"accesswatch simulate: {n} events (attack events: {attacks})", file=sys.stderr)
    return 0


def _silence_stdout() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="accesswatch simulate", description="Seeded, labeled synthetic traffic."
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))



if __name__ == "__main__":
    sys.exit(main())
