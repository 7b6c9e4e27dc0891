"""``--format NAME``: source records through an adapter, out as contract event lines.

:class:`AdaptedInput` is what ``replay`` and ``produce`` read instead of their files when a
format is given: it runs :func:`detectors.adapters.records` over each file and yields each
event as one JSON line (the bytes a contract producer would send), so the engine and the
producer see exactly what they see on the contract format. A record without events is
counted by its reason: ``skipped`` (read, not an event) or ``rejected`` (unusable), and with
``--rejects`` written as one JSON line each (``{"file", "record", "stage": "adapter",
"reason", "detail", "skipped", "raw"}``). Every record is an event source or a counted reason:
``records == with_events + sum(skipped) + sum(rejected)``.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import IO, Any

import orjson

from detectors import adapters

#: at most this many characters of a rejected record are written to the rejects file
RAW_MAX = 4096


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``--format`` and ``--year`` (shared by replay and produce)."""
    p.add_argument("--format", metavar="NAME", default=None, action="append",
                   help="read FILEs as this source format and adapt them to contract events: "
                   f"{', '.join(adapters.FORMATS)}, mapping:FILE or contract (the default); "
                   "given once per FILE, in order, to mix formats")
    p.add_argument("--year", type=int, default=None, metavar="YEAR",
                   help="the year of syslog lines that carry none (--format sshd; default: "
                   "the latest year that does not put a line in the future); with --format "
                   "lanl, the year whose first second is the data set's time 0 (default 2015)")


def load(args: argparse.Namespace) -> list[adapters.Adapter | None] | None:
    """The adapter of each of ``args.files`` (None: the contract format), or None when no
    ``--format`` was given. One ``--format`` serves every file; several pair with the files
    in order. Raises ValueError (one readable line) for a bad format, mapping file or year."""
    names = getattr(args, "format", None)
    if not names:
        if getattr(args, "year", None) is not None:
            raise ValueError("--year needs --format sshd or lanl")
        return None
    files = list(args.files)
    if len(names) != 1 and len(names) != len(files):
        raise ValueError(f"--format given {len(names)} times for {len(files)} files: give it "
                         "once for all, or once per file in order")
    now = time.time()
    loaded = {n: None if n == "contract" else adapters.load(n, year=args.year, now=now)
              for n in dict.fromkeys(names)}
    if all(a is None for a in loaded.values()):
        return None
    return [loaded[names[0] if len(names) == 1 else names[i]] for i in range(len(files))]


class AdaptedInput:
    """Contract event lines from source files; counts every record's fate. A file whose
    adapter is None is contract lines already: passed through as they are."""

    def __init__(self, adapter: adapters.Adapter | list[adapters.Adapter | None],
                 files: list[tuple[str, IO[bytes]]],
                 rejects: Callable[[dict[str, Any]], object] | None = None) -> None:
        self.adapters = adapter if isinstance(adapter, list) else [adapter] * len(files)
        self.name = "+".join(dict.fromkeys(a.name for a in self.adapters if a is not None))
        self.files = files
        self.rejects = rejects
        self.records = 0
        self.with_events = 0
        self.events = 0
        #: events whose source is a host name (sshd ``src_host``): a stand-in address
        self.host_sources = 0
        self.skipped: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        #: the file and record the last yielded event came from
        self.file = ""
        self.position = 0

    def __iter__(self) -> Iterator[bytes]:
        dumps = orjson.dumps
        for (name, stream), adapter in zip(self.files, self.adapters, strict=True):
            self.file = name
            if adapter is None:  # contract lines: the engine reads them as they are
                for self.position, line in enumerate(stream, 1):  # noqa: B020
                    yield line
                continue
            for o in adapters.records(adapter, stream):
                self.records += 1
                self.position = o.position
                r = o.reject
                if r is not None:
                    skip = isinstance(r, adapters.Skip)
                    (self.skipped if skip else self.rejected)[r.reason] += 1
                    if self.rejects is not None:
                        self.rejects({
                            "file": name, "record": o.position, "stage": "adapter",
                            "reason": r.reason, "detail": r.detail, "skipped": skip,
                            "raw": o.record[:RAW_MAX].decode("utf-8", "replace")})
                    continue
                if o.events:
                    self.with_events += 1
                    self.events += len(o.events)
                else:
                    self.skipped["no_events"] += 1
                for e in o.events:
                    if "src_host" in e:
                        self.host_sources += 1
                    yield dumps(e)

    def summary(self) -> str:
        """One line: the records read and what became of them."""
        def by(c: Counter[str]) -> str:
            return (" (" + ", ".join(f"{r} {n:,}" for r, n in sorted(c.items())) + ")") if c else ""
        return (f"records ({self.name}): {self.records:,}: {self.with_events:,} gave "
                f"{self.events:,} events"
                + (f" ({self.host_sources:,} from host names, not addresses: never "
                   "geolocated)" if self.host_sources else "")
                + f"; skipped {sum(self.skipped.values()):,}{by(self.skipped)}"
                f"; rejected {sum(self.rejected.values()):,}{by(self.rejected)}")
