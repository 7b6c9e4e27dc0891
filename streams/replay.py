"""`accesswatch replay FILE... | -` — the engine over JSON-lines files, alerts to stdout.

Exit codes: 0 the input was read to the end (alerts or not; an event the engine failed on
is a rejected line with reason ``internal_error``); 1 an unexpected error outside the engine
(one line on stderr); 2 a bad flag or an unreadable file (one line on stderr); 130
interrupted. Never a traceback.

Each line's arrival is the wall clock when it is read: an event dated more than
``--max-future-skew`` seconds after that is rejected as ``future_ts``. A file dated in the
future (a simulation starting tomorrow) needs that raised, or turned off with 0.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import IO, Any

import orjson

from detectors import events as E
from detectors.engine import INTERNAL_ERROR, Engine, EngineConfig
from streams import adapt, gcpolicy
from streams.progress import ProgressLine
from streams.settings import Settings, SettingsError

log = logging.getLogger("accesswatch.replay")


class InputError(Exception):
    """A file that cannot be read: one readable line for the user."""


def open_inputs(paths: list[str]) -> list[IO[bytes]]:
    """Open every input before reading any, so a missing file fails fast."""
    files: list[IO[bytes]] = []
    for p in paths:
        if p == "-":
            files.append(sys.stdin.buffer)
            continue
        try:
            files.append(open(p, "rb"))  # noqa: SIM115 - closed by the caller
        except FileNotFoundError:
            raise InputError(f"no such file: {p}") from None
        except IsADirectoryError:
            raise InputError(f"is a directory, not a file: {p}") from None
        except PermissionError:
            raise InputError(f"permission denied: {p}") from None
        except OSError as e:
            raise InputError(f"cannot read {p}: {e.strerror or type(e).__name__}") from None
    return files


def iter_lines(files: list[IO[bytes]]) -> Iterator[bytes]:
    for f in files:
        try:
            yield from f
        except OSError as e:  # a read that fails part-way (EIO, a vanished mount)
            name = getattr(f, "name", "?")
            raise InputError(f"cannot read {name}: {e.strerror or type(e).__name__}") from None


def replay(
    lines: Iterable[bytes],
    engine: Engine,
    out: IO[bytes] | None,
    rejects: IO[bytes] | None = None,
    progress: ProgressLine | None = None,
    source: Any = None,
    ocsf: bool = False,
) -> list[dict[str, Any]]:
    """Feed lines to the engine; write alerts (and rejects) as they come. Returns the alerts.

    ``source``: the :class:`streams.adapt.AdaptedInput` the lines come from (``--format``);
    a rejected event is then recorded with the file and record it came from. ``ocsf``:
    write OCSF Detection Findings instead of the alerts (``--output ocsf``, issue 18.5)."""
    alerts_all: list[dict[str, Any]] = []
    dumps: Callable[[Any], bytes] = orjson.dumps
    findings = None
    if ocsf and out is not None:
        from streams.ocsf_out import Findings

        findings = Findings()
        dumps = lambda a: orjson.dumps(findings.add(a))  # noqa: E731
    process = engine.process_line
    clock = time.time
    n = 0
    for n, line in enumerate(lines, 1):  # noqa: B007
        try:  # the engine isolates its detectors; this catches the rest (free if no raise)
            alerts, rej = process(line, None, clock())  # arrival: now, as it is read
        except Exception as exc:
            log.error("line %d: engine failed (%s)", n, type(exc).__name__, exc_info=exc)
            engine.rejected[INTERNAL_ERROR] += 1
            alerts, rej = [], E.Rejection(INTERNAL_ERROR, None, type(exc).__name__)
        if alerts:
            alerts_all.extend(alerts)
            if out is not None:
                for a in alerts:
                    out.write(dumps(a) + b"\n")
        if rej is not None and rejects is not None:
            raw = line.decode("utf-8", "replace").rstrip("\n")
            rec: dict[str, Any] = {"line": n} if source is None else {
                "file": source.file, "record": source.position, "stage": "engine", "event": n}
            rec |= {
                "reason": rej.reason,
                "field": rej.field,
                "detail": rej.detail,
                "raw": raw[:4096],
            }
            rejects.write(dumps(rec) + b"\n")
        if n % 4096 == 0:
            if progress is not None and progress.due():
                progress.show(f"  {n:>12,} events  {len(alerts_all):>7,} alerts  "
                              f"{progress.rate(n):>10,.0f} ev/s")
            if findings is not None:
                _write_closes(engine, findings, out)  # type: ignore[arg-type]  # findings: out is set
    tail = engine.flush()
    alerts_all.extend(tail)
    if out is not None:
        for a in tail:
            out.write(dumps(a) + b"\n")
        if findings is not None:
            _write_closes(engine, findings, out)
        out.flush()
    return alerts_all


def _write_closes(engine: Engine, findings: Any, out: IO[bytes]) -> None:
    """A Close for each episode the engine has ended (``Findings.ended``); episodes still
    active when the input ends get none."""
    for f in findings.ended(engine, sole=True):
        out.write(orjson.dumps(f) + b"\n")


def summary(engine: Engine, seconds: float, source: Any = None) -> str:
    s = engine.stats
    events = s["login"] + s["access"] + s["identity"]
    rejected = sum(engine.rejected.values())
    both = dict(engine.rejected)
    if source is not None:  # --format: the adapter's rejects beside the engine's
        for r, c in source.rejected.items():
            both[f"{source.name}:{r}"] = c
        rejected += sum(source.rejected.values())
    conflicts = s["duplicate_conflict"]
    lines = [
        f"events: {events:,} (logins {s['login']:,}, access {s['access']:,}, "
        f"identity {s['identity']:,}; late {s['late']:,}"
        + (f"; duplicate_conflict {conflicts:,}: ids seen before with other content, "
           "processed" if conflicts else "")
        + (f"; invalid_claim {s['invalid_claim']:,}: a token_issued_at, user_agent, device, "
           "session or key id not taken as sent, processed" if s["invalid_claim"] else "")
        + ")",
        f"rejected: {rejected:,}"
        + (
            " (" + ", ".join(f"{r} {c:,}" for r, c in sorted(both.items())) + ")"
            if rejected
            else ""
        ),
    ]
    errors = engine.__dict__.get("internal_errors")
    if errors:
        lines.append(f"internal errors: {sum(errors.values()):,} ("
                     + ", ".join(f"{d} {c:,}" for d, c in sorted(errors.items()))
                     + "; see the log lines above)")
    by_det: dict[str, dict[str, int]] = {}
    for (det, sev), c in engine.alerts_by.items():
        by_det.setdefault(det, {})[sev] = c
    total = sum(engine.alerts_by.values())
    lines.append(f"alerts: {total:,}" + ("" if total else " (none)"))
    for det in sorted(by_det):
        sevs = ", ".join(f"{sev} {c}" for sev, c in sorted(by_det[det].items()))
        sup = engine.suppressed.get(det, 0)
        lines.append(f"  {det}: {sevs}" + (f" (+{sup:,} repeats in open episodes)" if sup else ""))
    held = engine._allow.held if "_allow" in engine.__dict__ else {}  # issue 18
    if held:
        lines.append(f"held back by the allow-list: {sum(held.values()):,} ("
                     + ", ".join(f"{d} {c:,}" for d, c in sorted(held.items())) + ")")
    rate = (events + rejected) / seconds if seconds > 0 else 0.0
    if source is not None:
        lines.insert(0, source.summary())
    lines.append(f"time: {seconds:.2f}s, {rate:,.0f} events/s")
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="FILE", help="JSON-lines files; - for stdin")
    p.add_argument("--rejects", metavar="FILE", help="write every rejected line here as JSON "
                   "(with --format: every source record that gave no event, and why)")
    adapt.add_arguments(p)
    p.add_argument("--detectors", metavar="IDS", help="comma-separated detector ids (default all)")
    p.add_argument("--quiet", action="store_true", help="no summary on stderr")
    p.add_argument("--output", choices=("json", "ocsf"), default="json",
                   help="json: the alerts (default); ocsf: OCSF Detection Findings (class "
                   "2004), Create, Update on escalation, Close when an episode ends")
    p.add_argument("--allowlist", metavar="FILE", help="allow-list file, as the worker's "
                   "($ACCESSWATCH_ALLOWLIST): findings it matches are held back and counted")
    p.add_argument("--reveal-victims", action="store_true",
                   help="also write victims' ids in each alert's victims field (the digests "
                   "in summaries and evidence use $ACCESSWATCH_VICTIM_SALT or _FILE, as the "
                   "worker's do)")
    # issue 12, input slice
    # (no argparse defaults: a flag not given leaves the environment's or the file's value)
    p.add_argument("--ts-min-year", dest="ts_min_year", type=int, metavar="YEAR",
                   help="reject times before this year as ts_out_of_range "
                   f"($ACCESSWATCH_TS_MIN_YEAR; default {EngineConfig.ts_min_year})")
    p.add_argument("--ts-max-year", dest="ts_max_year", type=int, metavar="YEAR",
                   help="reject times after this year as ts_out_of_range "
                   f"($ACCESSWATCH_TS_MAX_YEAR; default {EngineConfig.ts_max_year})")
    p.add_argument("--max-future-skew", dest="max_future_skew", type=float, metavar="SECONDS",
                   help="reject events dated more than this after the moment they are read "
                   "as future_ts ($ACCESSWATCH_MAX_FUTURE_SKEW; default "
                   f"{EngineConfig.max_future_skew:g}; 0 = off: a file dated in the future)")
    p.add_argument("--trust-producer-geo", dest="trust_producer_geo", action="store_true",
                   help="believe the events' own country / asn (default: GeoIP decides)")
    from streams.settings import add_log_format_argument  # issue 16: operations

    add_log_format_argument(p)
    from streams.config import add_config_argument  # issue 16: the configuration file

    add_config_argument(p)


def _settings(args: argparse.Namespace) -> Settings:
    """The ``--config`` file's settings with the environment laid over them (issue 16); the
    flags are laid over these where they are used. ``InputError`` for a bad file."""
    from streams.config import command_settings

    try:
        return command_settings(args)
    except ValueError as e:
        raise InputError(str(e)) from None


class _OneLine(logging.Formatter):
    """Log records as one readable line each on stderr: the traceback is left out (the
    worker's logs keep it; here it would bury the summary)."""

    def format(self, record: logging.LogRecord) -> str:
        return f"accesswatch replay: {record.levelname.lower()}: {record.getMessage()}"


def run(args: argparse.Namespace) -> int:
    """Exit codes in the module docstring; whatever fails, one line on stderr."""
    from streams.logs import json_formatter, say

    settings = _settings(args)
    fmt = _log_format(args, settings)
    root = logging.getLogger("accesswatch")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(json_formatter() if fmt == "json" else _OneLine())
    handler.setLevel(logging.WARNING)
    root.addHandler(handler)
    propagate, root.propagate = root.propagate, False
    try:
        return _run(args, settings)
    except (InputError, KeyboardInterrupt, BrokenPipeError):
        raise  # the command line turns these into their line and exit code
    except Exception as e:  # a bug outside the engine's isolation: say what, not where
        say(f"accesswatch replay: internal error: {type(e).__name__}: {e}", fmt,
            logger="accesswatch.replay", level=logging.ERROR)
        return 1
    finally:
        root.removeHandler(handler)
        root.propagate = propagate


def _given(flag: Any, setting: Any) -> Any:
    """The flag when it was given, else the setting (environment over file over default)."""
    return setting if flag is None else flag


def _run(args: argparse.Namespace, settings: Settings | None = None) -> int:
    s = Settings() if settings is None else settings
    if getattr(args, "allowlist", None):  # issue 18
        s = replace(s, allowlist=args.allowlist)
    dets = (tuple(d.strip() for d in args.detectors.split(",")) if args.detectors
            else s.detectors or None)
    skew = _given(args.max_future_skew, s.max_future_skew)
    try:
        if not skew >= 0:
            raise ValueError(f"--max-future-skew must be >= 0 seconds, not {skew}")
        cfg = EngineConfig(detectors=dets, ts_min_year=_given(args.ts_min_year, s.ts_min_year),
                           ts_max_year=_given(args.ts_max_year, s.ts_max_year),
                           max_future_skew=skew or None,
                           trust_producer_geo=args.trust_producer_geo
                           or "*" in s.trust_producer_geo,
                           reveal_victims=args.reveal_victims or s.reveal_victims,
                           victim_salt=s.victim_salt,
                           # issue 16: the file's engine settings, as the worker's
                           max_entities=s.max_entities, max_state_bytes=s.max_state_bytes,
                           timezone=s.timezone,
                           params=s.engine_params(),
                           allowlist=s.allow_list(),  # issue 18: the allow-list in force
                           feedback_suppress=s.feedback_suppress,
                           feedback_watch=s.feedback_watch)
        cfg.decode_policy()  # a bad year range fails here, as one line
        engine = Engine(cfg)
        adapter_of = adapt.load(args)
    except (ValueError, SettingsError) as e:
        raise InputError(str(e)) from None
    except (TypeError, KeyError) as e:  # a detector parameter of the --config file
        raise InputError(f"detectors: {e}") from None
    files = open_inputs(args.files)
    rejects = None
    if args.rejects:
        try:
            rejects = open(args.rejects, "wb")  # noqa: SIM115
        except OSError as e:
            raise InputError(f"cannot write {args.rejects}: {e.strerror}") from None
    progress = ProgressLine(sys.stderr if sys.stderr.isatty() and not args.quiet else None)
    source: adapt.AdaptedInput | None = None
    lines: Iterable[bytes] = iter_lines(files)
    if adapter_of is not None:
        out_rej = rejects
        source = adapt.AdaptedInput(
            adapter_of, [(p, f) for p, f in zip(args.files, files, strict=True)],
            None if out_rej is None else (lambda rec: out_rej.write(orjson.dumps(rec) + b"\n")))
        lines = source
    gcpolicy.install()  # the engine's state out of the collector's full passes (issue 12)
    t0 = time.perf_counter()
    try:
        replay(lines, engine, sys.stdout.buffer, rejects, progress, source,
               ocsf=getattr(args, "output", "json") == "ocsf")
    finally:
        gcpolicy.uninstall()  # a caller in the same process (tests) gets CPython's back
        progress.close()
        for f in files:
            if f is not sys.stdin.buffer:
                f.close()
        if rejects is not None:
            rejects.close()
    if not args.quiet:
        from streams.logs import say

        say(summary(engine, time.perf_counter() - t0, source), _log_format(args, s),
            logger="accesswatch.replay")
    return 0


def _log_format(args: argparse.Namespace, settings: Settings | None = None) -> str:
    """``--log-format``, else ``$ACCESSWATCH_LOG_FORMAT``, else the ``--config`` file's
    (``settings``, the environment over the file), else text (issue 16)."""
    import os

    from streams.logs import LOG_FORMATS

    fmt = getattr(args, "log_format", None) or (
        settings.log_format if settings is not None
        else os.environ.get("ACCESSWATCH_LOG_FORMAT", "").strip()) or "text"
    if fmt not in LOG_FORMATS:
        raise InputError(f"$ACCESSWATCH_LOG_FORMAT={fmt!r} is not one of {', '.join(LOG_FORMATS)}")
    return fmt
