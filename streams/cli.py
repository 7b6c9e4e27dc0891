"""The `accesswatch` command.

Every sub-command lives in its own module with ``add_arguments(parser)`` and ``run(args)``;
this file only wires them together and turns expected errors into one readable line.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import NoReturn

COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("streams.demo", "embedded broker + worker + a Coupang-style scenario, alerts live"),
    "worker": ("streams.worker", "a production worker against --broker kafka://..."),
    "replay": ("streams.replay", "the engine over JSON-lines files; alerts as JSON lines"),
    "simulate": ("streams.simulate_cmd", "labeled synthetic traffic (seeded) with attacks"),
    "produce": ("streams.produce", "send JSON-lines events to the topics, keyed"),
    "topics": ("streams.topics_cmd", "create or list the topics on a broker"),
    "evaluate": ("streams.evaluate_cmd", "detection results of every detector on simulated attacks"),
    "config": ("streams.config", "check a configuration file (issue 16)"),
    "explain": ("streams.explain_cmd", "an entity's recent alerts, evidence, baselines, timeline"),
    "feedback": ("streams.feedback", "an analyst's verdict on an alert (benign/malicious)"),
}


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, not a usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def version() -> str:
    """The installed package's version (its metadata), or why there is none."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("accesswatch")
    except PackageNotFoundError:
        return "unknown (not installed: pip install accesswatch)"


def build() -> Parser:
    p = Parser(prog="accesswatch", description="Detect anomalous access to customer data.")
    p.add_argument("--version", action="version", version=f"accesswatch {version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name, (mod, help_) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_, description=help_)
        try:
            module = importlib.import_module(mod)
        except ImportError:
            sp.set_defaults(_missing=mod)
            continue
        module.add_arguments(sp)
        sp.set_defaults(_run=module.run)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    if getattr(args, "_missing", None):
        print(f"accesswatch {args.command}: not available in this build ({args._missing})",
              file=sys.stderr)
        return 2
    from .replay import InputError

    try:
        return int(args._run(args) or 0)
    except InputError as e:
        fmt = getattr(args, "log_format", None) or os.environ.get("ACCESSWATCH_LOG_FORMAT", "")
        if fmt.strip() == "json":  # issue 16: one JSON object a line, the error's too
            from streams.logs import say

            say(f"accesswatch {args.command}: {e}", "json", logger=f"accesswatch.{args.command}",
                level=logging.ERROR)
        else:
            print(f"accesswatch {args.command}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"accesswatch {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
