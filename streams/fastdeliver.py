"""Deliver a fetched message to its stream without four asyncio tasks per message.

faust-streaming 0.15.3's consumer hands every fetched message to the streams with
``await self.wait_first(callback(message), self.suspend_flow.wait())``. ``mode``'s
``wait_first`` wraps each of those two coroutines, plus the service's ``stopped`` and
``crashed`` events, in a task, waits for the first to finish and cancels the other three:
four tasks created and three cancelled per message. A profile of a pass-through agent puts
about half of Faust's per-event CPU there (docs/benchmarks.md, "Pipeline").

Nearly always the callback finishes without ever suspending: it puts the message on the
stream's queue, which has room. ``inline_delivery`` gives the consumer a ``wait_first`` that
first runs the callback inline, up to its first suspension (the patch itself is
``streams.faust_compat.inline_delivery``; this module holds the coroutine driving it):

- it finished: the result is returned as ``wait_first`` would (the callback "won"), and the
  unused ``suspend_flow.wait()`` coroutine is closed. No task, no event-loop round trip;
- it suspended (the queue is full, or a lock is held): the started coroutine is resumed
  inside a task by :func:`_resume` and handed to the original ``wait_first`` together with
  the ``suspend_flow`` waiter, so a rebalance or a stop interrupts it exactly as before.

Only calls shaped like the delivery call take the fast path (two coroutines, no timeout,
flow not suspended); every other ``wait_first`` of the consumer is the original.

**Experimental, off by default** (``--fast-deliver`` / ``ACCESSWATCH_FAST_DELIVER=1``): in
the SIGKILL-restart test (tests/test_recovery.py) some records were not handed to the agent
after the restart in 3 of 18 runs with it and in none of 12 without. Holes of that kind were
later seen without it too (CI), and the runtime now fills them (``Runtime.admit`` seeks back
to the first missing offset; ``Runtime.watch_delivery`` fetches again a partition that hands
over nothing): with it, 10 of 10 SIGKILL-restart runs lost nothing (third session). In
session 14 the four-partition SIGKILL test with batched messages failed in 2 of 2 runs with
it (one alert lost once) and passed without it (docs/benchmarks.md, "h-lat"): keep it off
where alerts must survive a SIGKILL. A suspected mechanism, not
proven: delivering a whole fetched batch without yielding puts more events in the stream
queues before Faust suspends flow for the rebalance/recovery and clears those queues on
resume, while the consumer's read offset has already moved past them, so the re-fetched
records are dropped as already read.
"""

from __future__ import annotations

import types
from collections.abc import Coroutine, Generator
from typing import Any


@types.coroutine
def _drive(coro: Coroutine[Any, Any, Any], yielded: Any) -> Generator[Any, Any, Any]:
    """Go on running ``coro``, already started with ``send(None)`` and suspended on
    ``yielded``, the way ``await coro`` would have: what the task sends or throws in is
    passed through, and the coroutine's return value is returned."""
    while True:
        try:
            sent = yield yielded
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # thrown in by the task: cancellation and the like
            try:
                yielded = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                yielded = coro.send(sent)
            except StopIteration as stop:
                return stop.value


async def _resume(coro: Coroutine[Any, Any, Any], yielded: Any) -> Any:
    return await _drive(coro, yielded)


def run_inline(coro: Coroutine[Any, Any, Any]) -> tuple[bool, Any]:
    """Run ``coro`` up to its first suspension: ``(True, result)`` when it finished,
    ``(False, awaitable)`` when it suspended (await the awaitable to finish it)."""
    try:
        yielded = coro.send(None)
    except StopIteration as stop:
        return True, stop.value
    return False, _resume(coro, yielded)
