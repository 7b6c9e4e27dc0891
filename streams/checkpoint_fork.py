"""Checkpoints encoded off the event loop, in a forked child (issue 17, h-fork).

Encoding a partition engine (``streams.checkpoint.snapshot``: the allow-listed encoder,
msgpack, zlib, the MAC) is pure Python and takes 0.1-0.2 s for a day's state, seconds for
millions of entities; done on the event loop under the checkpoint lock, no partition takes
an event meanwhile, and at 20,000 events/s each pause builds a backlog that dominates the
produce-to-alert p99 (docs/benchmarks.md, "h-fork").

``fork_encode`` forks the worker under the checkpoint lock: the child has a copy-on-write
image of the engines exactly as they are at that instant (what a checkpoint taken in
process would have encoded), encodes and seals them, writes the blobs to a pipe and leaves
with ``os._exit``. The parent releases the lock at once and ``ForkedEncode.result`` waits
for the bytes without blocking the loop (``loop.add_reader`` on the pipe). A child that
fails, dies, is killed or writes anything but a complete answer gives no blob: the caller
treats its partitions as "could not be encoded" (their events stay held). A child that does
not answer within ``timeout`` seconds is killed.

The child only encodes and writes. Everything it inherits and must not touch, and every
workaround that forking a threaded asyncio process needs, is in ``_child`` with its reason:

- it never returns into the caller (asyncio, Faust, the test runner): ``os._exit`` in a
  ``finally``, so no ``atexit`` handler, no flush of an inherited buffer (stdio, a log
  handler, the Kafka producer's), no second run of anything;
- it does not log (a log handler's lock may have been held by another thread at the fork;
  the parent logs what the child reports);
- it detaches the signal wakeup fd it inherited from the parent's loop (a signal to the
  child must not wake the parent's loop with a signal that was not the parent's) and takes
  SIGINT/SIGTERM at their defaults (a Ctrl-C to the process group ends it at once);
- it disables the cyclic GC (a collection would touch every object and copy every page of
  the parent's heap for nothing: the child lives only to encode).

While a child lives, the parent's cyclic GC is off (``gc.disable``, on again when the last
child ends, if it was on): a full collection walks every object of the state and writes to
its header, which copies every page of it for nothing while a child shares them (measured:
a 0.4 s collection in the parent, docs/benchmarks.md "h-fork"). Not ``gc.freeze``: the
process's collector policy (``streams.gcpolicy``) owns the permanent generation, and an
``unfreeze`` at a child's end would undo its freezes (a full pass over the whole state after
every checkpoint). Garbage made meanwhile is freed by reference counting as usual; only
cycles wait for the child's end.

Python 3.12+ warns (``DeprecationWarning``) when a process with threads forks (the worker has
the Alertmanager sender and the Prometheus HTTP server): the warning is about a child that
goes on running arbitrary code, which this one does not; ``fork_encode`` silences that one
warning around the call.

The answer on the pipe: an 8-byte big-endian length, then a msgpack array
``[seconds, [[partition, blob | nil, error | nil], ...]]`` (msgspec: plain values only, no
pickle), checked against the partitions asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import struct
import time
import traceback
import warnings
from collections.abc import Callable
from typing import Any

import msgspec

#: an answer is at most this big (a blob is bounded by the state budget; this only refuses
#: a length that cannot be one)
MAX_ANSWER = 1 << 36
_HEADER = struct.Struct(">Q")

#: what fork_encode asks the child to encode: (partition, engine, offsets, context)
Job = tuple[int, Any, dict[str, int], str]
#: a partition's outcome: its blob, or why there is none
Outcome = tuple[bytes | None, str | None]


def available() -> bool:
    """True where this platform can fork (POSIX)."""
    return hasattr(os, "fork")


class ForkFailed(Exception):
    """The child gave no usable answer: ``reason`` says why (died, killed, timeout, garbage)."""


def _child(r: int, w: int, jobs: list[Job],
           encode: Callable[[Any, dict[str, int], str], bytes]) -> None:
    """The child's whole life: encode ``jobs``, write the answer to ``w``, ``os._exit``."""
    code = 70  # EX_SOFTWARE unless the answer was written whole
    try:
        os.close(r)
        with contextlib.suppress(Exception):  # the parent loop's wakeup fd (see above)
            signal.set_wakeup_fd(-1)
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(Exception):
                signal.signal(sig, signal.SIG_DFL)
        gc.disable()  # no collection touches (and copies) the parent's pages
        t0 = time.perf_counter()
        out: list[list[Any]] = []
        for partition, engine, offsets, context in jobs:
            try:
                out.append([partition, encode(engine, offsets, context), None])
            except Exception as exc:  # reported; the parent logs it and keeps the events
                detail = "".join(traceback.format_exception(exc))[-4000:]
                out.append([partition, None, f"{type(exc).__name__}\n{detail}"])
        body = msgspec.msgpack.encode([time.perf_counter() - t0, out])
        data = memoryview(_HEADER.pack(len(body)) + body)
        while data:
            data = data[os.write(w, data):]
        code = 0
    finally:
        os._exit(code)


#: children alive; the parent's GC is off while there is one (see the module docstring)
_alive = 0
#: whether the GC was on when the first living child was forked
_gc_was_on = False


def _child_started() -> None:
    global _alive, _gc_was_on
    if _alive == 0:
        _gc_was_on = gc.isenabled()
        gc.disable()
    _alive += 1


def _child_ended() -> None:
    global _alive
    _alive -= 1
    if _alive == 0 and _gc_was_on:
        gc.enable()


class ForkedEncode:
    """A child encoding checkpoints: ``await result()`` for its blobs."""

    def __init__(self, pid: int, r: int, partitions: list[int], timeout: float) -> None:
        self.pid = pid
        self.fd = r
        self.partitions = partitions
        self.timeout = timeout
        self.started = time.perf_counter()
        #: the child's own encoding time (its answer's), else the time until it failed
        self.seconds = 0.0
        self._reaped = False

    async def result(self) -> dict[int, Outcome]:
        """partition -> (blob, None) or (None, error text). Raises ``ForkFailed`` when the
        child died, was killed, timed out or answered garbage; the child is reaped and the
        pipe closed whatever happens (cancellation too)."""
        loop = asyncio.get_running_loop()
        buf = bytearray()
        done: asyncio.Future[None] = loop.create_future()

        def readable() -> None:
            try:
                while True:
                    chunk = os.read(self.fd, 1 << 20)
                    if not chunk:  # EOF: the child has exited (or closed its end by dying)
                        if not done.done():
                            done.set_result(None)
                        return
                    buf.extend(chunk)
                    if len(buf) > MAX_ANSWER + _HEADER.size and not done.done():
                        done.set_exception(ForkFailed("an answer too long"))
                        return
            except BlockingIOError:
                return
            except OSError as exc:
                if not done.done():
                    done.set_exception(ForkFailed(f"pipe: {exc.strerror}"))

        os.set_blocking(self.fd, False)
        loop.add_reader(self.fd, readable)
        try:
            try:
                await asyncio.wait_for(done, self.timeout)
            except TimeoutError:
                self._kill()
                raise ForkFailed(f"no answer within {self.timeout:g} s (killed)") from None
            status = self._reap(block=True)
            if status is not None and status != 0:
                raise ForkFailed(_describe(status))
            return self._parse(bytes(buf))
        finally:
            self.seconds = self.seconds or time.perf_counter() - self.started
            loop.remove_reader(self.fd)
            os.close(self.fd)
            if not self._reaped:  # cancelled, or failed before the child ended
                self._kill()
            _child_ended()

    def _parse(self, raw: bytes) -> dict[int, Outcome]:
        if len(raw) < _HEADER.size or _HEADER.unpack_from(raw)[0] != len(raw) - _HEADER.size:
            raise ForkFailed(f"a truncated answer ({len(raw)} bytes)")
        try:
            seconds, items = msgspec.msgpack.decode(raw[_HEADER.size:])
            out: dict[int, Outcome] = {}
            for partition, blob, error in items:
                if type(partition) is not int or not (
                        (type(blob) is bytes and error is None)
                        or (blob is None and type(error) is str)):
                    raise ValueError("an item of the wrong shape")
                out[partition] = (blob, error)
            if sorted(out) != sorted(self.partitions) or len(items) != len(out):
                raise ValueError("not the partitions asked for")
            if not isinstance(seconds, float | int) or not 0 <= seconds < 1e9:
                raise ValueError("a bad encoding time")
        except (msgspec.DecodeError, ValueError, TypeError) as exc:
            raise ForkFailed(f"an answer that does not decode ({exc})") from None
        self.seconds = float(seconds)
        return out

    def _kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        self._reap(block=True)

    def _reap(self, block: bool) -> int | None:
        """The child's wait status once it has ended (None: still running, or reaped)."""
        if self._reaped:
            return None
        try:
            pid, status = os.waitpid(self.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:  # reaped by someone else: its status is unknown
            self._reaped = True
            return None
        if pid == 0:
            return None
        self._reaped = True
        return status


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"the child was killed by signal {os.WTERMSIG(status)}"
    return f"the child exited with {os.waitstatus_to_exitcode(status)}"


def fork_encode(jobs: list[Job], encode: Callable[[Any, dict[str, int], str], bytes], *,
                timeout: float) -> ForkedEncode:
    """Fork a child that encodes ``jobs`` with ``encode(engine, offsets, context)``, as they
    are now. Returns at once in the parent (the child never returns). Raises ``OSError`` when
    the fork itself fails (no memory, too many processes): the caller encodes in process."""
    r, w = os.pipe()
    _child_started()
    try:
        with warnings.catch_warnings():  # see the module's docstring: the child only encodes
            warnings.filterwarnings("ignore", category=DeprecationWarning,
                                    message=r".*fork\(\) may lead to deadlocks.*")
            pid = os.fork()
    except BaseException:
        os.close(r)
        os.close(w)
        _child_ended()
        raise
    if pid == 0:  # pragma: no cover - the child (coverage of a forked child is not collected)
        _child(r, w, jobs, encode)
    os.close(w)
    return ForkedEncode(pid, r, [j[0] for j in jobs], timeout)
