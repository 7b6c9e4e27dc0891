"""Every reach into the private parts of Faust, aiokafka and kafka-python, and every patch.

The runtime uses Faust through its public API except here. Each function below is one
workaround: its docstring says what upstream does that the public API cannot change or read,
and ``tests/test_faust_compat.py`` checks, per function, that the installed upstream still has
that shape (and, where it can without a broker, still behaves that way): an upgrade that
changes one fails there, not in a worker at 3 a.m. ``tests/test_faust_compat.py`` also scans
the project's packages and fails when a private attribute of a foreign object is read
anywhere but here.

Pinned to the versions these were written and measured against (``PINNED``); the test of the
pins fails when the installed versions differ, so an upgrade re-reads this file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from faust.types import TP

#: the upstream versions every workaround here was read in and tested against
PINNED = {"faust-streaming": "0.15.3", "aiokafka": "0.14.0", "kafka-python": "3.0.12"}


def committed_offsets(consumer: Any) -> Mapping[TP, int | None]:
    """The group's committed offset of each assigned partition, as Faust's consumer holds it
    (``faust.transport.consumer.Consumer._committed_offset``, a ``defaultdict`` of TP -> the
    next offset to read, None when unknown).

    Faust has no public reader of it (its consumer's only public path to committed offsets
    is ``seek_to_committed``, which moves the read position; aiokafka's ``committed`` is a
    broker round trip per partition, behind Faust's consumer thread), and the runtime asks
    before every event of a merge and when a partition is assigned
    (``PartitionEngines._has_commits``, ``_behind_commits``, ``watch_delivery``,
    ``Runtime._behind``)."""
    return consumer._committed_offset  # noqa: SLF001


def read_offsets(consumer: Any) -> Mapping[TP, int | None]:
    """The offset of the last record Faust handed to a stream, per partition
    (``Consumer._read_offset``): the consumer lag metric is the high watermark minus it.
    Faust has no public accessor (its own sensor reads it the same way)."""
    return consumer._read_offset  # noqa: SLF001


def paused_partitions(consumer: Any) -> set[TP]:
    """The partitions Faust's flow control has paused (``Consumer._paused_partitions``):
    a paused partition hands over nothing by design and must not be re-fetched
    (``PartitionEngines.watch_delivery``). No public accessor in Faust 0.15."""
    return consumer._paused_partitions  # noqa: SLF001


def forget_gap(consumer: Any, tp: TP, start: int, end: int) -> None:
    """Take offsets ``start..end-1`` of ``tp`` out of Faust's gap books.

    Upstream behaviour worked around: when a record arrives beyond the read offset
    (``Consumer._add_gap``, called from ``_drain_messages``: meant for compacted topics and
    transaction markers), Faust books the offsets between as a gap, and ``_new_offset`` adds
    every booked gap below the highest acked offset to the acked ones: its commit steps over
    them. After a SIGKILL restart Faust dropped records it had fetched but not handed over
    (a flow stop cut the hand-over short) and still moved its read offset past them: their
    offsets were booked as a gap and would be committed unprocessed. ``PartitionEngines.admit`` seeks
    back and fetches them again; this makes the commit wait for them. There is no public way
    to un-book a gap."""
    gaps = consumer._gap.get(tp)  # noqa: SLF001
    if gaps:
        gaps.chop(start, end)


def lowest_acked(consumer: Any, tp: TP) -> int | None:
    """The lowest offset of ``tp`` acked and not yet committed (``Consumer._acked``, a list
    per partition; Faust has no public reader of it), None when there is none."""
    acked = consumer._acked.get(tp)  # noqa: SLF001
    return min(acked) if acked else None


def book_done(consumer: Any, tp: TP, start: int, end: int) -> None:
    """Book offsets ``start..end-1`` of ``tp`` as acked in Faust's books (``Consumer._acked``
    and its index ``_acked_index``, as ``Consumer.ack`` does: an offset already acked is not
    added again), so its commit steps over them.

    Upstream behaviour worked around: ``Consumer._new_offset`` commits nothing while the
    lowest acked offset is more than one past the committed one. A record Faust never
    hands over (a flow stop cuts the hand-over short) leaves such a hole for good unless
    someone acks it: ``PartitionEngines.admit`` seeks back and takes it again; where that
    did not happen (before it did: the committed offset unknown at the first record, or
    the refetches given up) and the record lies inside a restored checkpoint, the engine
    needs nothing from it and nothing ever acked it: the group's commit stayed put while
    the worker went on (seen after SIGKILL restarts: auth-logins committed at 27 for
    minutes with every login to 626 processed; a restart then takes every record since
    again). Only offsets a flushed checkpoint covers are booked
    (``PartitionEngines._unstick_commits``). There is no public way to book them.

    Booked as acks, not as a gap (session 16 booked a gap): ``_new_offset`` adds a gap's
    offsets to the acked list without looking at the index, so an offset booked and then
    acked too (a record inside the range fetched again and acked with the next checkpoint,
    before a commit round took the gap) is in the list twice, and the commit crawls
    (``keep_gaps_off``)."""
    index = consumer._acked_index[tp]  # noqa: SLF001
    acked = consumer._acked[tp]  # noqa: SLF001
    for offset in range(start, end):
        if offset not in index:
            index.add(offset)
            acked.append(offset)


_NO_GAPS = False


def keep_gaps_off(consumer: Any, topics: Iterable[str]) -> None:
    """Faust books no gap for ``topics`` on ``consumer`` (a patch of
    ``faust.transport.consumer.Consumer._add_gap``, installed once; the topics are kept per
    consumer): the runtime fills every hole of those topics itself (``PartitionEngines.admit``
    seeks back to it, ``watch_delivery`` fetches a silent partition again) and books as done
    only what a flushed checkpoint covers (``book_done``).

    Upstream behaviour worked around: Faust's fetch loop (``Consumer._drain_messages``) books
    the offsets between its read offset and a record that arrives beyond it as a gap (meant
    for compacted topics and transaction markers), and ``_new_offset`` adds every gap below
    the highest acked offset to the acked ones. After the runtime's seek back (``seek`` sets
    the read offset to the hole), the records of the batch Faust fetched before the seek
    still arrive, and the first of them books the whole range the seek is about to fetch
    again as a gap (seen: ``seek data-access -> 24`` with the read offset at 1023, then a gap
    25..1024, then 25..11751). Two things follow, with fast delivery on or off:

    - the group's commit crawls: those records are fetched again, taken and acked, so each
      offset is in ``_acked`` twice (the gap adds them without looking at ``_acked_index``),
      and ``_new_offset`` commits only the first run of consecutive numbers, which ends at
      the first repeat: one offset per commit round (every 2.8 s). Seen in the SIGKILL tests:
      every record checkpointed and data-access committed 24, 25, 26, ... one per round, the
      acked list holding 39,192 entries for 27,496 offsets; the clean-clone CI's stalls
      (2,982 after a refetch from 2,879: 103 offsets in its 300 s) fit the same rate;
    - had no record been acked twice, the commit would have stepped over records not yet
      processed (the gap reaches past them): lost across a SIGKILL.

    ``_unstick_commits`` could not see the crawl: the lowest acked offset sat one below the
    committed one (a repeat), not above it. ``forget_gap`` (before each seek) was too early:
    the gap is booked after the seek."""
    consumer.__dict__.setdefault("_aw_no_gaps", set()).update(topics)
    global _NO_GAPS
    if _NO_GAPS:
        return
    from faust.transport.consumer import Consumer

    original = Consumer._add_gap  # noqa: SLF001

    async def _add_gap(self: Any, tp: TP, offset_from: int, offset_to: int) -> None:
        if tp.topic in self.__dict__.get("_aw_no_gaps", ()):
            return
        await original(self, tp, offset_from, offset_to)

    Consumer._add_gap = _add_gap  # type: ignore[method-assign]  # the patch itself (see the docstring)
    _NO_GAPS = True


def last_poll(consumer: Any, tp: TP) -> float | None:
    """Wall time (s) of the last fetch answer for ``tp``, or None when unknown.

    aiokafka's ``AIOKafkaConsumer.last_poll_timestamp(tp)`` is public, but Faust keeps its
    aiokafka consumer inside a consumer thread (``ThreadDelegateConsumer._thread``, an
    ``AIOKafkaConsumerThread`` whose ``_ensure_consumer()`` returns it) and exposes neither.
    The event-time merge needs it to tell "nothing unread" from "no fresh answer"
    (``Runtime._behind``)."""
    try:
        ms = consumer._thread._ensure_consumer().last_poll_timestamp(tp)  # noqa: SLF001
    except Exception:  # not the aiokafka driver, not started, not assigned
        return None
    return ms / 1000.0 if ms is not None else None


async def force_metadata_update(consumer: Any) -> None:
    """Ask the broker for fresh topic metadata now (aiokafka's
    ``AIOKafkaConsumer._client.force_metadata_update()``).

    A consumer without a group (``group_id=None``, assigned by hand: the identity and feedback
    readers, which read every partition on every worker) refreshes metadata only every
    ``metadata_max_age_ms`` (5 min): a topic created after the worker started would stay
    unseen that long. aiokafka has no public call for it (``topics()`` returns the cached
    set)."""
    await consumer._client.force_metadata_update()  # noqa: SLF001


def limit_fetch_wait(ms: int) -> None:
    """Cap the fetch wait of the consumers Faust builds at ``ms`` milliseconds (a patch).

    Faust builds its aiokafka consumer with ``fetch_max_wait_ms=1500`` fixed
    (``AIOKafkaConsumerThread._create_worker_consumer``; no setting reaches it). A broker that
    does not answer a waiting fetch as soon as data arrives (Tansu, measured) then adds up to
    1.5 s to every event; cap the wait (on Kafka it only costs idle fetches). The patch swaps
    the ``aiokafka`` name Faust's driver module looks the consumer class up through for a
    proxy whose ``AIOKafkaConsumer`` lowers the argument; everything else is aiokafka's."""
    import aiokafka
    import faust.transport.drivers.aiokafka as driver

    base = aiokafka.AIOKafkaConsumer

    class _Consumer(base):  # type: ignore[misc, valid-type]  # the base class comes from the installed driver at run time
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["fetch_max_wait_ms"] = min(int(kwargs.get("fetch_max_wait_ms", ms)), ms)
            super().__init__(*args, **kwargs)

    class _Module:
        def __getattr__(self, name: str) -> Any:
            return _Consumer if name == "AIOKafkaConsumer" else getattr(aiokafka, name)

    driver.aiokafka = _Module()  # type: ignore[attr-defined]  # the driver module's own import of aiokafka, replaced on purpose (the patch)


_INLINE_DELIVERY = False


def inline_delivery() -> None:
    """Give Faust's consumer the inline delivery path (a patch of
    ``faust.transport.consumer.Consumer.wait_first``; idempotent; ``--fast-deliver``).

    Upstream behaviour worked around: faust-streaming 0.15.3 hands every fetched message to
    its streams with ``await self.wait_first(callback(message), self.suspend_flow.wait())``,
    and ``mode``'s ``wait_first`` wraps each coroutine (plus the service's ``stopped`` and
    ``crashed`` events) in a task: four tasks created and three cancelled per message, about
    half of Faust's per-event CPU (docs/benchmarks.md, "Pipeline"). Faust has no setting for
    its delivery path. The patched ``wait_first`` runs a delivery-shaped call (two
    coroutines, no timeout, flow not suspended) inline up to its first suspension
    (``streams.fastdeliver.run_inline``) and hands anything else, or a callback that
    suspended, to the original."""
    global _INLINE_DELIVERY
    if _INLINE_DELIVERY:
        return
    import asyncio

    from faust.transport.consumer import Consumer
    from mode.services import WaitResults

    from streams.fastdeliver import run_inline

    original = Consumer.wait_first

    async def wait_first(self: Any, *coros: Any, timeout: Any = None) -> Any:
        if (timeout is None and len(coros) == 2 and asyncio.iscoroutine(coros[0])
                and asyncio.iscoroutine(coros[1]) and not self.suspend_flow.is_set()):
            callback, waiter = coros
            done, value = run_inline(callback)
            if done:
                waiter.close()  # never started: nothing to cancel
                return WaitResults([callback], [value], False)
            return await original(self, value, waiter)
        return await original(self, *coros, timeout=timeout)

    Consumer.wait_first = wait_first  # type: ignore[method-assign]  # the inline-delivery patch itself (see its docstring)
    _INLINE_DELIVERY = True


def fast_kafka_crc() -> bool:
    """Give kafka-python's record batches aiokafka's compiled CRC-32C (a patch; idempotent;
    issue 17, ``accesswatch produce``). True when it is in place.

    Upstream behaviour worked around: kafka-python 3.0.12 checksums every v2 record batch
    it builds or reads with ``kafka.record.util.calc_crc32c``, imported by name into
    ``kafka.record.default_records``; without the optional ``crc32c`` package that is its pure
    Python loop: measured here, 73 ms for one 125 KB batch message (500 events), so a
    producer of batched messages could not offer 20,000 events/s. aiokafka, already installed
    with Faust, ships the same checksum compiled (``aiokafka.record._crecords.cutil``, 73 µs
    for the same bytes; no new dependency, and the ``crc32c`` package is LGPL). When aiokafka
    has no compiled records (a platform without its wheels) nothing is changed."""
    import kafka.record.default_records as records

    try:
        from aiokafka.record._crecords.cutil import crc32c_cython
    except ImportError:
        return False
    records.calc_crc32c = crc32c_cython  # type: ignore[attr-defined]  # the patch itself (see the docstring): the name default_records imported, absent from its stubs
    return True


#: the Monitor hooks Faust calls per message, per event or per send (what ``LeanMonitor``
#: turns into the base ``Sensor``'s no-ops)
MONITOR_PER_EVENT_HOOKS = ("on_message_in", "on_stream_event_in", "on_stream_event_out",
                           "on_message_out", "on_send_initiated", "on_send_completed",
                           "on_send_error", "on_table_get", "on_table_set", "on_table_del")


def lean_monitor() -> type:
    """A ``faust.sensors.Monitor`` whose per-message hooks do nothing (pass it as the app's
    ``Monitor`` setting, Faust's public way to choose the class; issue 17).

    Upstream behaviour worked around: Faust always adds its Monitor to the app's sensors
    (``App.on_init_dependencies``) and calls it four times per input message
    (``on_message_in``, ``on_stream_event_in`` with a ``str()`` lookup and a dict per event,
    ``on_stream_event_out``, ``on_message_out``), plus once per send and per table write. Its
    figures feed only Faust's own web views (``/stats``, off here: ``streams.httpauth``) and
    ``app.monitor``, which nothing in accesswatch reads (the worker's figures are
    ``streams.metrics``'s). Faust has no setting to leave the Monitor out. The class returned
    keeps the Monitor's other hooks (rebalances, commits, assignments: rare) and service."""
    from faust.sensors import Monitor
    from faust.sensors.base import Sensor

    members = {name: getattr(Sensor, name) for name in MONITOR_PER_EVENT_HOOKS}
    members["__doc__"] = "Faust's Monitor without its per-message bookkeeping (faust_compat)."
    return type("LeanMonitor", (Monitor,), members)


_PRODUCER_BUFFER_SIZE = False


def cheap_producer_buffer_size() -> None:
    """Give Faust's producer buffer a ``size`` that reads the app's ``producer_threaded``
    setting once per buffer, not per call (a patch of
    ``faust.transport.producer.ProducerBuffer.size``; idempotent; issue 17).

    Upstream behaviour worked around: faust-streaming 0.15.3's conductor awaits
    ``ProducerBuffer.wait_until_ebb`` before handing **every** input message to the streams,
    and that reads the ``size`` property, which looks ``app.conf.producer_threaded`` up through
    Faust's settings descriptors each time (~3% of a worker's samples with one-event
    messages, py-spy). The setting cannot change while the app lives. The patched property
    counts the same queue the original does (``ProducerBuffer.queue``'s when threaded, else
    ``pending``'s, both asyncio queues whose private deque upstream reads too)."""
    global _PRODUCER_BUFFER_SIZE
    if _PRODUCER_BUFFER_SIZE:
        return
    from faust.transport.producer import ProducerBuffer

    def size(self: Any) -> int:
        threaded = self.__dict__.get("_aw_threaded")
        if threaded is None:
            threaded = self.__dict__["_aw_threaded"] = bool(self.app.conf.producer_threaded)
        queue = self.queue if threaded else self.pending
        if not queue:
            return 0
        return len(queue._queue)  # noqa: SLF001

    ProducerBuffer.size = property(size)  # type: ignore[method-assign, assignment]  # the patch itself (see the docstring)
    _PRODUCER_BUFFER_SIZE = True
