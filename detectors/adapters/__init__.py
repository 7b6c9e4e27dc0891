"""Adapters: real log formats in, contract events out (pure; no Kafka, no clocks).

One module per source format. Each module defines:

- ``NAME``: the format's name as given to ``--format`` (``sshd``, ``cloudtrail``, ...);
- ``adapt(record: bytes) -> list[dict]``: one source record to zero or more contract
  events (plain dicts, exactly as a producer of contract v1 would send them: the kind is
  told by the fields, as ``detectors.events.classify`` reads them); raises ``Reject`` with a
  reason when the record cannot be used;
- optionally ``frame(stream: IO[bytes]) -> Iterator[bytes]``: how a file or raw topic
  message splits into source records (default: one record per non-empty line).

Adapters never drop a record silently: a record is events, or a ``Reject`` with a reason
that the caller counts and (with ``--rejects``) records.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import IO, Any

#: every format ``--format`` accepts (``mapping:FILE`` is handled by ``load``).
FORMATS = ("ocsf", "ecs", "cloudtrail", "okta", "entra", "gws", "sshd")


class Reject(Exception):
    """A source record the adapter cannot turn into a contract event."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason if not detail else f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def lines(stream: IO[bytes]) -> Iterator[bytes]:
    """The default framing: one record per non-empty line."""
    for raw in stream:
        line = raw.rstrip(b"\r\n")
        if line.strip():
            yield line


@dataclass(frozen=True)
class Adapter:
    name: str
    adapt: Callable[[bytes], list[dict[str, Any]]]
    frame: Callable[[IO[bytes]], Iterator[bytes]]


def _from_module(mod: ModuleType) -> Adapter:
    return Adapter(name=mod.NAME, adapt=mod.adapt, frame=getattr(mod, "frame", lines))


def load(name: str) -> Adapter:
    """The adapter for ``--format NAME`` (``mapping:FILE`` reads a mapping file).

    Raises ValueError with one readable line for an unknown format or a bad mapping file.
    """
    if name.startswith("mapping:"):
        mod = importlib.import_module("detectors.adapters.mapping")
        return mod.from_file(name.split(":", 1)[1])  # type: ignore[no-any-return]
    if name not in FORMATS:
        raise ValueError(f"unknown format {name!r} (one of: {', '.join(FORMATS)}, mapping:FILE)")
    return _from_module(importlib.import_module(f"detectors.adapters.{name}"))
