"""streams/faust_compat.py: every workaround there still meets the upstream it works around,
and no private reach or patch of a foreign library lives anywhere else.

Per workaround, a test builds the real upstream object (a Faust consumer of an app that never
connects: nothing here needs a broker) and checks the private attribute or method it uses is
still there with the expected shape, and, where that can be done without a broker, that
upstream still behaves the way the docstring says (Faust's commit steps over a booked gap,
Faust's consumer still fixes ``fetch_max_wait_ms=1500``). An upgrade of faust-streaming,
aiokafka or kafka-python that changes one of them fails here.

The scan (``private_reaches``, ``patches``) reads every module of ``detectors/``, ``streams/``,
``local/`` and ``simulation/`` (those that exist) except ``streams/faust_compat.py``:

- a **private reach** is ``<expr>._name`` (one leading underscore, not a dunder) where
  ``<expr>`` is not ``self`` or ``cls`` and ``_name`` is not a private name the project
  itself defines somewhere in those packages (a ``def``/``class`` named so, an assignment to
  ``_name`` or ``<x>._name``, an annotated attribute, a ``__slots__`` entry, a keyword
  argument ``_name=``): those are the project's own objects. What is left reaches into a
  library. The only ones allowed outside faust_compat are listed in ``ALLOWED`` with why
  (none of them Faust, aiokafka or kafka-python). A Faust private name that happened to
  equal one the project defines would slip through: the rule trades that for no false
  positives;
- a **patch** is an assignment (or ``setattr``) to an attribute of a name bound by importing
  a module that is not the project's (``import faust.x as driver; driver.aiokafka = ...``,
  ``from faust... import Consumer; Consumer.wait_first = ...``).
"""

from __future__ import annotations

import ast
import asyncio
import importlib.metadata as md
import inspect
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from faust.types import TP

from streams import faust_compat as compat

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("detectors", "streams", "local", "simulation")
OWN_TOP = {"detectors", "streams", "local", "simulation", "tests", "bench"}
COMPAT = ROOT / "streams" / "faust_compat.py"

#: (file, attribute) -> why this private reach may stay outside faust_compat
ALLOWED = {
    ("streams/metrics.py", "_metrics"): "prometheus_client's labelled children of a metric "
    "(not the Faust stack): no public list of a metric's label sets",
    ("streams/metrics.py", "_upper_bounds"): "prometheus_client's histogram bounds, read "
    "once per histogram to tally observations in batches (HistogramBatch)",
    ("streams/worker.py", "_exit"): "os._exit, the stdlib's documented immediate exit",
    ("streams/checkpoint_fork.py", "_exit"): "os._exit, the stdlib's documented exit of a "
    "forked child (h-fork)",
    ("detectors/geo.py", "_private_networks"): "the stdlib ipaddress's private ranges, read "
    "once so the engine's is_private is a range lookup",
    ("detectors/geo.py", "_loopback_network"): "as _private_networks",
    ("detectors/geo.py", "_linklocal_network"): "as _private_networks",
    ("simulation/redteam.py", "_BaseNetwork"): "a type annotation (ipaddress's network base)",
    ("detectors/river_compat.py", "_tree_nodes"): "River's HalfSpaceTrees: the node lists "
    "its window pivot walks (one walk for score and learn; pinned by test_river_compat)",
    ("detectors/river_compat.py", "_max_score"): "as _tree_nodes: the score's normaliser",
    ("detectors/river_compat.py", "_first_window"): "as _tree_nodes: the warm-up flag",
    ("detectors/geo.py", "_ip2int"): "geoip2fast's address parser, with its tables, read by "
    "GeoIP2FastSource._country_org_fast (lookup without its result object; pinned by "
    "test_geo_fast)",
}


# ---------------------------------------------------------------- the scan


def modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py") if p != COMPAT)


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def own_private_names(paths: list[Path]) -> set[str]:
    """Private names the project defines (see the module docstring)."""
    names: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    for sub in ast.walk(t):
                        if isinstance(sub, ast.Name):
                            names.add(sub.id)
                        elif isinstance(sub, ast.Attribute):
                            names.add(sub.attr)
                if isinstance(node, ast.Assign) and any(
                        isinstance(t, ast.Name) and t.id == "__slots__" for t in node.targets):
                    names.update(c.value for c in ast.walk(node.value)
                                 if isinstance(c, ast.Constant) and isinstance(c.value, str))
            elif isinstance(node, ast.keyword) and node.arg:
                names.add(node.arg)
    return {n for n in names if _private(n)}


def private_reaches(paths: list[Path]) -> set[tuple[str, int, str]]:
    """(file, line, attribute) of every private reach (see the module docstring)."""
    own = own_private_names(paths)
    out: set[tuple[str, int, str]] = set()
    for path in paths:
        rel = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Attribute) and _private(node.attr)):
                continue
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            if node.attr in own or (rel, node.attr) in ALLOWED:
                continue
            out.add((rel, node.lineno, node.attr))
    return out


def patches(paths: list[Path]) -> set[tuple[str, int, str]]:
    """(file, line, target) of every assignment to an attribute of a foreign import."""
    out: set[tuple[str, int, str]] = set()
    for path in paths:
        rel = path.relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_text(), str(path))
        foreign: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.split(".")[0] not in OWN_TOP:
                        foreign.add(a.asname or a.name.split(".")[0])
            elif isinstance(node, ast.ImportFrom) and not node.level and (
                    node.module or "").split(".")[0] not in OWN_TOP:
                foreign.update(a.asname or a.name for a in node.names)
        for node in ast.walk(tree):
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = list(node.targets)
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
                targets = [node.target]
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                  and node.func.id in ("setattr", "delattr") and node.args):
                if isinstance(node.args[0], ast.Name) and node.args[0].id in foreign:
                    out.add((rel, node.lineno, f"{node.func.id}({node.args[0].id}, ...)"))
                continue
            for t in targets:
                if (isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name)
                        and t.value.id in foreign):
                    out.add((rel, node.lineno, f"{t.value.id}.{t.attr}"))
    return out


def test_the_scan_finds_a_private_reach_and_a_patch(tmp_path: Path) -> None:
    mod = tmp_path / "m.py"
    mod.write_text("import faust.transport.consumer as fc\n"
                   "from aiokafka import AIOKafkaConsumer\n"
                   "class Mine:\n    def __init__(self):\n        self._own = 1\n"
                   "def f(app, other):\n"
                   "    app.consumer._gap.clear()\n"      # a reach into Faust
                   "    other._own = 2\n"                # the project's own name
                   "    fc.Consumer.wait_first = f\n"     # not a patch of fc (of fc.Consumer)
                   "    AIOKafkaConsumer.start = f\n"     # a patch
                   "    setattr(fc, 'x', 1)\n")           # a patch
    old = globals()["ROOT"]
    globals()["ROOT"] = tmp_path
    try:
        assert private_reaches([mod]) == {("m.py", 7, "_gap")}
        assert patches([mod]) == {("m.py", 10, "AIOKafkaConsumer.start"),
                                  ("m.py", 11, "setattr(fc, ...)")}
    finally:
        globals()["ROOT"] = old


def test_no_private_reach_into_a_library_outside_faust_compat() -> None:
    assert private_reaches(modules()) == set()


def test_no_patch_of_a_library_outside_faust_compat() -> None:
    assert patches(modules()) == set()


def test_the_compat_module_is_where_the_reaches_are() -> None:
    """The scan, run on faust_compat itself, sees its reaches and patches (so a rule that
    found nothing anywhere would fail here)."""
    found = {attr for _, _, attr in private_reaches([COMPAT])}
    assert {"_committed_offset", "_read_offset", "_paused_partitions", "_gap", "_thread",
            "_client"} <= found
    assert {t for _, _, t in patches([COMPAT])} >= {"driver.aiokafka", "Consumer.wait_first"}


# ---------------------------------------------------------------- the pins


def test_the_installed_upstream_is_the_one_the_workarounds_were_written_for() -> None:
    """An upgrade re-reads faust_compat: each workaround may be obsolete or broken."""
    assert {name: md.version(name) for name in compat.PINNED} == compat.PINNED


# ---------------------------------------------------------------- one test per workaround


@pytest.fixture
def consumer() -> Any:
    """The consumer Faust builds for an app (aiokafka driver), never started."""
    app = faust.App("compat-probe", broker="kafka://127.0.0.1:1", store="memory://")
    return app.consumer


def test_committed_and_read_offsets_are_faust_defaultdicts_of_tp(consumer: Any) -> None:
    tp = TP("t", 0)
    for books in (compat.committed_offsets(consumer), compat.read_offsets(consumer)):
        assert isinstance(books, defaultdict) and books[tp] is None  # unknown: None
    consumer._committed_offset[tp] = 7
    assert compat.committed_offsets(consumer).get(tp) == 7
    # Faust still has no public reader of committed offsets (only seek_to_committed)
    assert not hasattr(consumer, "committed") and not hasattr(consumer, "committed_offsets")


def test_paused_partitions_is_the_set_faust_flow_control_fills(consumer: Any) -> None:
    tp = TP("t", 0)
    assert compat.paused_partitions(consumer) == set()
    consumer.pause_partitions([tp])
    assert tp in compat.paused_partitions(consumer)
    consumer.resume_partitions([tp])
    assert tp not in compat.paused_partitions(consumer)


def test_faust_commit_steps_over_a_booked_gap_and_forget_gap_stops_it(consumer: Any) -> None:
    """The upstream behaviour: offsets booked as a gap count as acked in the commit."""
    tp = TP("t", 0)

    def commit_after_gap(forget: bool) -> int | None:
        consumer._gap.clear()
        consumer._acked.clear()
        consumer._acked_index.clear()
        consumer._committed_offset[tp] = 90
        asyncio.run(consumer._add_gap(tp, 92, 121))  # records 92..121 dropped, 122 arrived
        consumer._acked[tp].extend([90, 91, 122])
        if forget:
            compat.forget_gap(consumer, tp, 92, 122)
        return consumer._new_offset(tp)

    assert commit_after_gap(forget=False) == 123  # Faust's commit: 92..121 committed unread
    assert commit_after_gap(forget=True) == 92  # the commit stops at the hole
    compat.forget_gap(consumer, TP("t", 9), 0, 5)  # no gap booked there: nothing to do


def test_faust_commits_nothing_past_a_hole_at_its_committed_offset_until_booked_done(
        consumer: Any) -> None:
    """The upstream behaviour ``book_done`` works around: with the records at the committed
    offset and the one after never acked, Faust's commit stays put whatever is acked above;
    booked as done, it steps over them."""
    tp = TP("t", 0)
    consumer._committed_offset[tp] = 27
    consumer._acked[tp].extend(range(29, 627))
    assert compat.lowest_acked(consumer, tp) == 29
    assert consumer._new_offset(tp) is None  # stuck: 29 - 27 > 1
    compat.book_done(consumer, tp, 27, 29)
    assert consumer._new_offset(tp) == 627
    assert compat.lowest_acked(consumer, TP("t", 5)) is None


def test_book_done_books_acks_a_later_ack_of_the_same_offset_does_not_repeat(
        consumer: Any) -> None:
    """Booked as done, then one of those records is fetched again and acked with the next
    checkpoint before a commit round: the commit still takes every offset in one round.
    (Booked as a gap, as before, the offset was in the acked list twice and Faust's commit
    stopped at the repeat: one offset a round.)"""
    tp = TP("t", 0)
    consumer._committed_offset[tp] = 27
    consumer._acked[tp].extend(range(29, 627))
    consumer._acked_index[tp].update(range(29, 627))
    compat.book_done(consumer, tp, 27, 29)
    compat.book_done(consumer, tp, 27, 29)  # twice: nothing repeats
    # 28 acked again: Consumer.ack adds an offset only when its index lacks it
    if 28 not in consumer._acked_index[tp]:
        consumer._acked_index[tp].add(28)
        consumer._acked[tp].append(28)
    assert consumer._new_offset(tp) == 627


def test_faust_books_a_gap_past_its_read_offset_that_repeats_acks_and_keep_gaps_off_stops_it(
        ) -> None:
    """The upstream behaviour ``keep_gaps_off`` works around: a record beyond the read offset
    books the offsets between as a gap; acked too, they are in the acked list twice, and
    Faust's commit stops at the first repeat. With the topic kept off, no gap is booked."""
    def crawl(keep_off: bool) -> int | None:
        app = faust.App("compat-gaps", broker="kafka://127.0.0.1:1", store="memory://")
        consumer = app.consumer
        tp = TP("t", 0)
        if keep_off:
            compat.keep_gaps_off(consumer, ["t"])
        consumer._committed_offset[tp] = 24
        asyncio.run(consumer._add_gap(tp, 25, 1024))
        consumer._acked[tp].extend(range(24, 2000))
        consumer._acked_index[tp].update(range(24, 2000))
        return consumer._new_offset(tp)

    assert crawl(keep_off=False) == 26  # 24, 25, then the repeat of 25
    assert crawl(keep_off=True) == 2000


def test_last_poll_reads_aiokafkas_timestamp_through_faust_consumer_thread(
        consumer: Any) -> None:
    import aiokafka
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    assert isinstance(consumer._thread, AIOKafkaConsumerThread)
    assert list(inspect.signature(aiokafka.AIOKafkaConsumer.last_poll_timestamp).parameters
                ) == ["self", "partition"]
    tp = TP("t", 0)
    assert compat.last_poll(consumer, tp) is None  # not started: unknown
    consumer._thread._consumer = SimpleNamespace(last_poll_timestamp={tp: 1500}.get)
    try:
        assert compat.last_poll(consumer, tp) == 1.5 and compat.last_poll(consumer,
                                                                         TP("t", 1)) is None
    finally:
        consumer._thread._consumer = None


def test_force_metadata_update_is_aiokafkas_client_coroutine() -> None:
    import aiokafka
    from aiokafka.client import AIOKafkaClient

    # a method of no argument returning an awaitable (a shielded future of the next update)
    assert list(inspect.signature(AIOKafkaClient.force_metadata_update).parameters) == ["self"]
    # without it a hand-assigned consumer sees a new topic after metadata_max_age_ms: 5 min
    params = inspect.signature(aiokafka.AIOKafkaConsumer.__init__).parameters
    assert params["metadata_max_age_ms"].default == 300_000

    async def main() -> None:
        c = aiokafka.AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1")
        assert isinstance(c._client, AIOKafkaClient)
        called: list[bool] = []

        async def update() -> bool:
            called.append(True)
            return True

        c._client.force_metadata_update = update
        await compat.force_metadata_update(c)
        assert called == [True]

    asyncio.run(main())


def test_faust_still_fixes_the_fetch_wait_and_limit_fetch_wait_caps_it() -> None:
    import faust.transport.drivers.aiokafka as driver

    src = inspect.getsource(driver.AIOKafkaConsumerThread._create_worker_consumer)
    assert "fetch_max_wait_ms=1500" in src and "aiokafka.AIOKafkaConsumer(" in src
    saved = driver.aiokafka
    try:
        compat.limit_fetch_wait(100)

        async def main() -> None:
            c = driver.aiokafka.AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1",
                                                 fetch_max_wait_ms=1500)
            assert c._fetch_max_wait_ms == 100
            assert driver.aiokafka.TopicPartition is saved.TopicPartition  # the rest: aiokafka's

        asyncio.run(main())
    finally:
        driver.aiokafka = saved


def test_faust_still_delivers_each_message_through_wait_first() -> None:
    """The call inline_delivery speeds up (its behaviour: tests/test_fastdeliver.py)."""
    from faust.transport.consumer import Consumer

    src = inspect.getsource(Consumer._drain_messages)
    assert "self.wait_first(" in src and "self.suspend_flow.wait()" in src


def test_kafka_python_still_checksums_batches_by_name_and_fast_kafka_crc_swaps_in_the_same_sum(
        ) -> None:
    """kafka-python's record batches call ``calc_crc32c`` by the name imported into
    ``default_records``; fast_kafka_crc puts aiokafka's compiled CRC-32C there, which gives
    the pure Python loop's sums, and batches built after it still verify."""
    import kafka.record.default_records as records
    from kafka.record.util import calc_crc32c

    src = inspect.getsource(records.DefaultRecordBatchBuilder.write_header)
    assert "calc_crc32c(" in src
    saved = records.calc_crc32c  # a Producer built earlier in this process swapped it
    try:
        records.calc_crc32c = calc_crc32c  # kafka-python's own (its pure Python loop here)
        assert compat.fast_kafka_crc()
        fast = records.calc_crc32c
        assert fast is not calc_crc32c
        for data in (b"", b"123456789", bytes(range(256)) * 41):
            assert fast(data) == calc_crc32c(data)
        assert fast(b"123456789") == 0xE3069283  # the CRC-32C check value
        builder = records.DefaultRecordBatchBuilder(
            magic=2, compression_type=0, is_transactional=False, producer_id=-1,
            producer_epoch=-1, base_sequence=-1, batch_size=1 << 20)
        builder.append(0, timestamp=1, key=b"k", value=b"v" * 1000, headers=[])
        batch = records.DefaultRecordBatch(bytes(builder.build()))
        assert batch.validate_crc()
    finally:
        records.calc_crc32c = saved


def test_faust_still_calls_its_monitor_per_message_and_lean_monitor_leaves_that_out() -> None:
    """The Monitor is what Faust's settings name (``Monitor``), and has the per-message
    hooks lean_monitor turns into the base Sensor's no-ops; the other hooks stay its own."""
    import faust.streams as streams_module
    import faust.transport.conductor as conductor
    import faust.transport.consumer as consumer_module
    from faust.sensors import Monitor
    from faust.sensors.base import Sensor

    assert "on_stream_event_in(" in inspect.getsource(streams_module)
    assert "self._on_message_in(" in inspect.getsource(consumer_module)
    assert "sensors.add(self.monitor)" in inspect.getsource(faust.App.on_init_dependencies)
    assert "conf.Monitor(" in inspect.getsource(faust.App.monitor.fget)
    lean = compat.lean_monitor()
    assert issubclass(lean, Monitor)
    for name in compat.MONITOR_PER_EVENT_HOOKS:
        assert getattr(Monitor, name) is not getattr(Sensor, name), name  # Monitor's own
        assert getattr(lean, name) is getattr(Sensor, name), name
    assert lean.on_rebalance_start is Monitor.on_rebalance_start
    app = faust.App("lean-monitor-test", Monitor=lean)
    assert type(app.monitor) is lean
    m = app.monitor
    m.on_message_in(TP("t", 0), 1, SimpleNamespace())
    assert m.on_stream_event_in(TP("t", 0), 1, SimpleNamespace(), SimpleNamespace()) is None
    assert m.messages_received_total == 0 and m.events_total == 0
    assert "wait_until_ebb" in inspect.getsource(conductor)


def test_faust_reads_its_setting_per_buffer_size_and_the_patched_size_counts_the_same() -> None:
    """``ProducerBuffer.size`` looked ``conf.producer_threaded`` up per call; the patched
    property answers what the original does, for an empty and a filled buffer."""
    from faust.transport.producer import ProducerBuffer

    original = ProducerBuffer.__dict__["size"]
    assert "conf.producer_threaded" in inspect.getsource(original.fget)

    async def main() -> None:
        app = faust.App("buffer-size-test")
        buf = ProducerBuffer(loop=asyncio.get_running_loop())
        buf.app = app
        before = original.fget(buf)
        compat.cheap_producer_buffer_size()
        assert buf.size == before == 0
        for i in range(3):
            buf.pending.put_nowait(i)
        assert buf.size == original.fget(buf) == 3

    try:
        asyncio.run(main())
    finally:
        ProducerBuffer.size = original
        compat._PRODUCER_BUFFER_SIZE = False
