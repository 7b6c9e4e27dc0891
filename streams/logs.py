"""Log output of ``worker``, ``replay`` and ``demo``: ``--log-format text|json`` (issue 16).

``json``: every line on stderr is one JSON object with ``time`` (ISO 8601, UTC), ``level``,
``logger`` and ``message`` (plus ``exc_info`` with the traceback, as one string, when there
is one). Log records are rendered by python-json-logger, the library made for this; the
commands' own status lines (the worker's start-up line, replay's summary, the demo's
progress) go through :func:`say`, which renders them with the same formatter, so a log
shipper parses every line the same way.

What the worker logs at info level names partitions, topics, offsets and counts, never an
account, a key or an address (tests/test_json_logs.py reads a simulated day's log for them).
"""

from __future__ import annotations

import logging
import sys
import time
from typing import IO, Any

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _UtcJson:
    """Made lazily: the import of python-json-logger is only paid with ``--log-format json``."""

    formatter: logging.Formatter | None = None


def json_formatter() -> logging.Formatter:
    if _UtcJson.formatter is None:
        from pythonjsonlogger.json import JsonFormatter

        fmt = JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            datefmt="%Y-%m-%dT%H:%M:%S%z",
            json_ensure_ascii=False,
        )
        fmt.converter = time.gmtime
        _UtcJson.formatter = fmt
    return _UtcJson.formatter


def configure(level: str, fmt: str, stream: IO[str] | None = None) -> None:
    """The root logger's one handler, on stderr, in ``fmt`` (``text`` or ``json``)."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {fmt!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(json_formatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.captureWarnings(True)  # warnings.warn lines through the same handler


def say(message: str, fmt: str, *, logger: str = "accesswatch", level: int = logging.INFO,
        stream: IO[str] | None = None, **fields: Any) -> None:
    """A command's status line: as written (``text``) or as one JSON object (``json``),
    whatever the log level (these lines are printed at every level today)."""
    out = stream or sys.stderr
    if fmt == "json":
        record = logging.LogRecord(logger, level, __file__, 0, message, None, None)
        record.__dict__.update(fields)
        out.write(json_formatter().format(record) + "\n")
    else:
        out.write(message + "\n")
    out.flush()
