"""streams.fastdeliver: inline delivery keeps wait_first's meaning.

Unit tests of the driver (a coroutine run up to its first suspension, then resumed in a
task) and of the patched ``Consumer.wait_first`` on a real faust Consumer class. The
end-to-end evidence is every broker-backed streaming test, which runs workers with it on.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from streams.fastdeliver import run_inline
from streams.faust_compat import inline_delivery as install


async def _no_suspend(x: int) -> int:
    return x * 2


async def _suspends(gate: asyncio.Event, log: list[str]) -> str:
    log.append("before")
    await gate.wait()
    log.append("after")
    return "done"


async def _raises() -> None:
    raise ValueError("bad message")


def test_run_inline_finishes_a_coroutine_that_never_suspends() -> None:
    done, value = run_inline(_no_suspend(21))
    assert done and value == 42


def test_run_inline_resumes_a_suspended_coroutine_to_its_result() -> None:
    async def main() -> tuple[list[str], Any]:
        gate = asyncio.Event()
        log: list[str] = []
        done, rest = run_inline(_suspends(gate, log))
        assert not done and log == ["before"]  # ran inline up to the wait
        task = asyncio.ensure_future(rest)
        await asyncio.sleep(0)
        assert not task.done()
        gate.set()
        return log, await task

    log, value = asyncio.run(main())
    assert log == ["before", "after"] and value == "done"


def test_run_inline_propagates_exceptions() -> None:
    with pytest.raises(ValueError, match="bad message"):
        run_inline(_raises())

    async def later() -> None:
        await asyncio.sleep(0)
        raise KeyError("late")

    async def main() -> None:
        done, rest = run_inline(later())
        assert not done
        await rest

    with pytest.raises(KeyError, match="late"):
        asyncio.run(main())


def test_a_resumed_coroutine_can_be_cancelled() -> None:
    cleaned: list[bool] = []

    async def blocked() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.append(True)

    async def main() -> None:
        done, rest = run_inline(blocked())
        task = asyncio.ensure_future(rest)
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert cleaned == [True]


class _FakeConsumer:
    """Just what the patched wait_first reads: a mode Event ``suspend_flow``."""

    def __init__(self) -> None:
        from mode.utils.locks import Event

        self.suspend_flow = Event()
        self.calls: list[tuple[Any, ...]] = []


def test_patched_wait_first_takes_the_inline_path_only_for_deliveries() -> None:
    from faust.transport.consumer import Consumer

    install()
    patched = Consumer.wait_first
    install()  # idempotent: not wrapped twice
    assert Consumer.wait_first is patched

    async def main() -> None:
        c = _FakeConsumer()
        waiter = c.suspend_flow.wait()
        res = await patched(c, _no_suspend(5), waiter)  # type: ignore[arg-type]
        assert res.results == [10] and not res.stopped
        assert waiter.cr_frame is None  # the unused waiter was closed, not left pending

    asyncio.run(main())


def test_patched_wait_first_falls_back_when_the_callback_suspends() -> None:
    from faust.transport.consumer import Consumer

    install()
    seen: list[tuple[Any, ...]] = []

    async def original(self: Any, *coros: Any, timeout: Any = None) -> str:
        seen.append(coros)
        for waiter in coros[1:]:
            waiter.close()
        return str(await coros[0])

    patched = Consumer.wait_first
    # the fallback is the original wait_first captured at install time; exercise it through
    # the closure by swapping the captured function for a recorder
    cell = next(c for c in patched.__closure__ or () if callable(c.cell_contents)
                and getattr(c.cell_contents, "__name__", "") == "wait_first")
    saved = cell.cell_contents
    cell.cell_contents = original
    try:
        async def main() -> str:
            c = _FakeConsumer()
            gate = asyncio.Event()
            log: list[str] = []
            asyncio.get_running_loop().call_later(0.01, gate.set)
            return await patched(c, _suspends(gate, log), c.suspend_flow.wait())  # type: ignore

        assert asyncio.run(main()) == "done"
        assert len(seen) == 1 and len(seen[0]) == 2  # the resumed callback + the waiter

        async def suspended() -> None:
            c = _FakeConsumer()
            c.suspend_flow.set()  # flow suspended (a rebalance): the original path only
            await patched(c, _no_suspend(1), c.suspend_flow.wait())  # type: ignore

        asyncio.run(suspended())
        assert len(seen) == 2
    finally:
        cell.cell_contents = saved
