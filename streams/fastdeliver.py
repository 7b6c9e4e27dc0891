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

**Off by default** (``--fast-deliver`` / ``ACCESSWATCH_FAST_DELIVER=1``). Inline or not,
Faust can drop records it fetched but did not hand over when a flow stop (a rebalance, table
recovery) cuts the hand-over short or clears the stream queues, while its read offset moves
past them; inline delivery puts more records in the queues before such a stop, so it drops
more of them. The runtime takes records without holes whichever way they were dropped
(``PartitionEngines.admit``: from the group's committed offset at a partition's first record,
then after each record taken; ``watch_delivery``: a partition that hands over nothing is
fetched again). It stayed off because one-partition SIGKILL tests with it on timed out, now
and then, waiting for the group's commit (docs/benchmarks.md, "h-fast", "Session 16" and
"h-fd"). Session 17 found that stall: after the runtime's seek back, a record Faust fetched
before the seek booked the refetched range as a gap in Faust's books, those offsets were then
acked twice and Faust's commit took one offset per round (possible with either delivery;
why inline delivery met it more often was not measured). Faust now books
no gap on the runtime's topics (``streams.faust_compat.keep_gaps_off``). Whether it goes on
by default is the lead's call.
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
