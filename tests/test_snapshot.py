"""Engine checkpoints cannot carry code and cannot be forged (``streams.snapshot``).

A record written to ``<app_id>-engine-checkpoints-changelog`` by anyone without the state
key is rejected, counted (``accesswatch_checkpoint_rejected_total{reason}``), logged at
ERROR, and the partition starts from a fresh engine; nothing in it runs. A real engine
round-trips through the format and continues exactly like one that never stopped.
"""

from __future__ import annotations

import collections
import functools
import logging
import os
import pickle
import sys
import zlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import msgspec
import orjson
import pytest

import streams.app as app_mod
from detectors.engine import Directory, Engine
from detectors.geo import default_geo
from simulation import ATTACKS, SimConfig, simulate
from streams import snapshot as S
from streams.checkpoint import assemble_checkpoint, checkpoint_records, restore, snapshot
from streams.runtime import PartitionState, Runtime
from streams.settings import Settings, SettingsError
from tests.helpers import bare_runtime

KEY = "test-state-key-0123456789"
KEYS = S.StateKeys([KEY])
CONTEXT = "accesswatch/engine-checkpoints/0"


# ----------------------------------------------------------------------- helpers


class _Payload:
    """What the attack at ef303a3 wrote: a pickle whose loading runs a shell command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def evil_pickle(marker: Path) -> bytes:
    return pickle.dumps({"v": 1, "engine": _Payload(marker), "offsets": {}}, protocol=5)


def legacy_records(partition: int, blob: bytes) -> list[tuple[bytes, bytes]]:
    """Table records as ef303a3 wrote them: a zlib'd pickle in chunks + a manifest with a
    CRC (version 1, no slot)."""
    data = zlib.compress(blob, 1)
    man = {"v": 1, "chunks": 1, "bytes": len(data), "crc32": zlib.crc32(data)}
    return [(f"p{partition}/0".encode(), data), (f"p{partition}".encode(), orjson.dumps(man))]


def runtime(table: dict[bytes, bytes]) -> Runtime:
    """A Runtime built on a Faust app that never connects (``bare_runtime``: nothing
    committed), its checkpoint table's records ``table``."""
    rt: Runtime = bare_runtime(app_id="accesswatch", state_keys=(KEY,))
    rt.table = SimpleNamespace(get=table.get, name="engine-checkpoints")  # type: ignore[assignment]
    return rt


def rejected(rt: Runtime, reason: str) -> float:
    return rt.metrics.sample("accesswatch_checkpoint_rejected_total", reason=reason) or 0.0


def sealed_records(engine: Engine, offsets: dict[str, int], keys: S.StateKeys = KEYS,
                   context: str = CONTEXT) -> dict[bytes, bytes]:
    return dict(checkpoint_records(0, snapshot(engine, offsets, keys=keys, context=context), 0))


SIM = SimConfig(seed=11, customers=500, hours=10, attacks=tuple(ATTACKS),
                attack_start_hour=1.0)


@functools.cache
def sim_events() -> list[dict[str, Any]]:
    return simulate(SIM).events


# ------------------------------------------------- (a) a pickle payload never runs


def test_a_pickle_payload_with_a_valid_crc_and_manifest_does_not_run(
        tmp_path: Path, caplog: Any) -> None:
    """The record that ran a shell command in the next worker at ef303a3 (a pickle inside
    zlib chunks, a manifest with the right CRC): refused as ``legacy_pickle``, never loaded;
    the file is not created, the partition starts from a fresh engine."""
    marker = tmp_path / "pwned"
    rt = runtime(dict(legacy_records(0, evil_pickle(marker))))
    with caplog.at_level(logging.INFO, logger="accesswatch.app"):
        st = rt.state(0)
    assert not marker.exists()
    reason = "legacy_pickle"
    assert rejected(rt, reason) == 1
    assert sum(rejected(rt, r) for r in S.REASONS) == 1
    assert not st.restored and st.offsets == {} and st.engine.stats == {}
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "learned state is discarded" in errors[0].getMessage()
    assert reason in errors[0].getMessage()


def test_a_pickle_in_the_new_manifest_or_sealed_with_another_key_is_refused(
        tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    blob = evil_pickle(marker)
    # the pickle as the payload of a current (version 2) manifest, no envelope
    rt = runtime(dict(checkpoint_records(0, blob, 0)))
    rt.state(0)
    assert rejected(rt, "legacy_pickle") == 1
    # inside a well-formed envelope, authenticated with a key the worker does not have
    forged = S.seal(blob, S.StateKeys(["an-attackers-own-key-000000"]), CONTEXT)
    rt = runtime(dict(checkpoint_records(0, forged, 0)))
    st = rt.state(0)
    assert rejected(rt, "bad_mac") == 1 and not st.restored
    assert not marker.exists()


# ------------------------------------------------------ (b) a flipped byte fails


def test_a_flipped_byte_anywhere_fails_and_the_mac_binds_the_partition() -> None:
    blob = S.seal(S.encode({"engine": None, "n": list(range(100))}), KEYS, CONTEXT)
    assert S.decode(S.unseal(blob, KEYS, CONTEXT))["n"] == list(range(100))
    for i in range(len(blob)):
        bad = bytearray(blob)
        bad[i] ^= 0x01
        with pytest.raises(S.SnapshotRejected) as exc:
            S.unseal(bytes(bad), KEYS, CONTEXT)
        expect = ("undecodable" if i < len(S.MAGIC) else
                  "unknown_version" if i < len(S.HEADER) else "bad_mac")
        assert exc.value.reason == expect, i
    # a valid snapshot copied under another partition's or another table's key
    for other in ("accesswatch/engine-checkpoints/1", "accesswatch/burst-checkpoints/0"):
        with pytest.raises(S.SnapshotRejected, match="bad_mac"):
            S.unseal(blob, KEYS, other)


def test_key_rotation_the_first_key_signs_every_key_verifies() -> None:
    old, new = "old-state-key-0123456789", "new-state-key-0123456789"
    blob = S.seal(b"payload", S.StateKeys([old]), CONTEXT)
    assert S.unseal(blob, S.StateKeys([new, old]), CONTEXT) == b"payload"
    with pytest.raises(S.SnapshotRejected, match="bad_mac"):
        S.unseal(blob, S.StateKeys([new]), CONTEXT)
    resealed = S.seal(b"payload", S.StateKeys([new, old]), CONTEXT)
    assert S.unseal(resealed, S.StateKeys([new]), CONTEXT) == b"payload"


def test_a_sealed_record_of_a_real_engine_is_restored_by_the_runtime() -> None:
    eng = Engine()
    for e in sim_events()[:2000]:
        eng.process_obj(e)
    rt = runtime(sealed_records(eng, {"data-access": 99}))
    st = rt.state(0)
    assert st.restored and st.offsets == {"data-access": 99}
    assert st.engine.tracked() == eng.tracked()
    assert sum(rejected(rt, r) for r in S.REASONS) == 0
    # the same record under partition 1's key: refused, a fresh engine
    moved = {k.replace(b"p0", b"p1"): v for k, v in sealed_records(eng, {"x": 5}).items()}
    rt = runtime(moved)
    assert not rt.state(1).restored and rejected(rt, "bad_mac") == 1


# ------------------------------- (c) a real engine continues exactly as if never stopped


def test_a_restored_engine_after_a_simulated_day_raises_the_same_alerts() -> None:
    """Every attack of the simulator, every detector that alerts in it: an engine
    checkpointed and restored at three points of the day (at its 10th, 50th and 80th
    alert) raises exactly the alerts (ids, severities, evidence) of the one that never
    stopped, and ends with the same counts, state sizes and warm-up."""
    events = sim_events()
    a = Engine()
    positions = []
    for i, e in enumerate(events):
        positions += [i] * len(a.process_obj(e)[0])
    full = a.flush()
    cuts = sorted({positions[int(len(positions) * f)] for f in (0.1, 0.5, 0.8)})
    assert len(cuts) == 3
    a = Engine()
    restored: list[tuple[int, Engine, list[dict[str, Any]]]] = []
    out_a: list[dict[str, Any]] = []
    for i, e in enumerate(events):
        if cuts and i == cuts[0]:
            blob = snapshot(a, {"data-access": i}, keys=KEYS, context=CONTEXT)
            b, offsets = restore(blob, default_geo(), a.ctx.directory, keys=KEYS,
                                 context=CONTEXT)
            assert offsets == {"data-access": i} and b is not a
            restored.append((len(out_a), b, []))
            cuts.pop(0)
        out_a += a.process_obj(e)[0]
        for _, b, out_b in restored:
            out_b += b.process_obj(e)[0]
    out_a += a.flush()
    assert out_a[-len(full):] == full or not full
    after: set[str] = set()
    for n_before, b, out_b in restored:
        out_b += b.flush()
        assert out_b == out_a[n_before:]
        assert b.stats == a.stats and b.alerts_by == a.alerts_by
        assert b.suppressed == a.suppressed and b.rejected == a.rejected
        assert b.tracked() == a.tracked() and b.warmup() == a.warmup()
        after |= {x["detector"] for x in out_b}
    assert after == {x["detector"] for x in out_a}
    assert len(after) >= 7, after


def test_shared_objects_keep_their_identity() -> None:
    """The detectors share one burst tracker and the engine's context; the engine's routes
    hold the detectors' own hooks; River's trees list their nodes twice."""
    eng = Engine()
    for e in sim_events()[:5000]:
        eng.process_obj(e)
    back, _ = restore(snapshot(eng, {}, keys=KEYS, context=CONTEXT), default_geo(),
                      Directory(), keys=KEYS, context=CONTEXT)
    d = back.detectors
    assert d["account_takeover"]._t is d["credential_stuffing"]._t is not None  # noqa: SLF001
    assert d["credential_stuffing"]._ctx is back.ctx  # noqa: SLF001
    hooks = back._route[("login", "customer")]  # noqa: SLF001
    assert all(h.__self__ is d[h.__self__.id] for h in hooks)
    hst = d["bulk_lookup"]._hst["source"]  # noqa: SLF001
    assert hst.trees[0] is hst._tree_nodes[0][0] or any(  # noqa: SLF001
        n is hst.trees[0] for nodes in hst._tree_nodes for n in nodes)  # noqa: SLF001
    from detectors import bulk_lookup

    ents = d["bulk_lookup"]._ents.values()  # noqa: SLF001
    assert any(ent.own_h is bulk_lookup._NO_HISTORY for ent in ents)  # noqa: SLF001


def test_containers_round_trip_with_their_types() -> None:
    shared = [1]
    value = {
        "t": (1, "x", None, True, 2.5, b"\x00"), "big": 2**70, "neg": -(2**70),
        "u64": 2**64 - 1, "surrogate": "a\ud800b", "fs": frozenset({1, 2}), "s": {3},
        "dq": collections.deque([1, 2], maxlen=5), "c": collections.Counter(a=2),
        "od": collections.OrderedDict(b=1), "ba": bytearray(b"ab"),
        "dd": collections.defaultdict(list, {"k": [1]}),
        "dp": collections.defaultdict(functools.partial(tuple, (0.0, 1.0))),
        ("tuple", "key"): shared, -1: shared, "inf": float("inf"),
    }
    back = S.decode(S.encode(value))
    assert back == value
    for k in ("dq", "c", "od", "ba", "dd", "dp", "fs", "s", "t"):
        assert type(back[k]) is type(value[k])
    assert back["dq"].maxlen == 5 and back["dp"]["new"] == (0.0, 1.0)
    assert back[("tuple", "key")] is back[-1]


def test_datasketches_travel_in_their_own_wire_form() -> None:
    import datasketches as ds

    from detectors._sketch import DistinctCounter

    hll = ds.hll_sketch(12)
    upd = ds.update_theta_sketch(12, 1.0, S.THETA_SEED)
    counter = DistinctCounter(exact_max=4)
    for i in range(1000):
        hll.update(i)
        upd.update(i)
        counter.update(i)
    value = {"hll": hll, "upd": upd, "compact": upd.compact(), "dc": counter,
             "again": counter}
    back = S.decode(S.encode(value))
    assert back["hll"].get_estimate() == hll.get_estimate()
    assert back["compact"].get_estimate() == upd.compact().get_estimate()
    assert back["upd"].get_estimate() == upd.get_estimate()
    back["upd"].update(5000)  # a restored update sketch still takes updates
    assert back["upd"].get_estimate() > upd.get_estimate()
    assert back["dc"] is back["again"] and len(back["dc"]) == len(counter)


# --------------------------------------------------- (d) only the allow-list, both ways


class _NotAllowed:
    pass


def test_encode_refuses_a_type_outside_the_allow_list() -> None:
    eng = Engine()
    eng.detectors["unusual_hour"].novel = _NotAllowed()  # a detector with a new kind of state
    with pytest.raises(S.SnapshotError, match="_NotAllowed is not in the snapshot allow-list"):
        snapshot(eng, {}, keys=KEYS, context=CONTEXT)
    assert eng.ctx.geo is not None  # the engine is left whole
    for value, what in ((collections.defaultdict(lambda: 0), "CALLABLES"),
                        (eng.process, "bound method"), (len, "allow-list"),
                        (Engine, "allow-list")):
        with pytest.raises(S.SnapshotError, match=what):
            S.encode({"x": value})


def test_decode_never_resolves_a_name_outside_the_allow_list() -> None:
    assert "this" not in sys.modules
    payloads = [
        [["this:x"], [S.OBJ, 0, 0, [None, None]]],  # importing it would print the Zen
        [["subprocess:Popen"], [S.OBJ, 0, 0, [None, None]]],
        [["detectors.engine:Engine"], [S.METHOD, [S.OBJ, 0, 0, [None, None]], "__init__"]],
        [[], [S.CONST, "os", "system"]],
        [[], [S.DDICT, [S.CALL, "os:system"]]],
        [["detectors.engine:Engine"], [S.WIRE, 0, b""]],
        [[], [99]],
    ]
    for p in payloads:
        blob = S.seal(msgspec.msgpack.encode(p), KEYS, CONTEXT)
        with pytest.raises(S.SnapshotRejected) as exc:
            S.decode(S.unseal(blob, KEYS, CONTEXT))
        assert exc.value.reason == "undecodable"
    assert "this" not in sys.modules


def test_every_allowed_class_of_ours_has_no_reduce_the_format_would_skip() -> None:
    """A class of the allow-list stored by its state must not rely on ``__reduce__``
    (pickle's hook): the ones that do have a wire form of their own (``CODECS``), or are
    msgspec structs (stored field by field)."""
    for name, cls in S.allowed().items():
        if name in S.CODECS or issubclass(cls, msgspec.Struct):
            continue
        for attr in ("__reduce__", "__reduce_ex__"):
            assert not any(attr in vars(b) for b in cls.__mro__[:-1]), (name, attr)


# ------------------------------------------- (3) pickled checkpoints: refused, never read


def _old_writer_pickle(engine: Engine, offsets: dict[str, int]) -> bytes:
    """A checkpoint as ef303a3's ``streams.app._dumps`` wrote it: a pickle of the engine."""
    ctx = engine.ctx
    geo, directory = ctx.geo, ctx.directory
    ctx.geo = ctx.directory = None  # type: ignore[assignment]
    try:
        return pickle.dumps({"v": 1, "engine": engine, "offsets": dict(offsets)}, protocol=5)
    finally:
        ctx.geo, ctx.directory = geo, directory


def test_a_legacy_checkpoint_is_refused_logged_counted_and_the_partition_starts_fresh(
        caplog: Any, monkeypatch: Any) -> None:
    """A genuine checkpoint of the pickle format (what the workers before the authenticated
    format wrote) is never loaded, not even through a restricted unpickler: ``pickle.loads``
    and ``Unpickler`` are made to fail the test if anything calls them. It is rejected as
    ``legacy_pickle`` (ERROR log, metric) and the partition starts from a fresh engine at the
    committed offsets; the worker's next checkpoint is a sealed snapshot that restores."""
    events = sim_events()
    cut = len(events) // 2
    eng = Engine()
    for e in events[:cut]:
        eng.process_obj(e)
    table = dict(legacy_records(0, _old_writer_pickle(eng, {"data-access": cut})))

    def no_unpickling(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("a pickle was loaded")

    monkeypatch.setattr(pickle, "loads", no_unpickling)
    monkeypatch.setattr(pickle, "load", no_unpickling)
    monkeypatch.setattr(pickle, "Unpickler", no_unpickling)
    with pytest.raises(S.SnapshotRejected, match="legacy_pickle"):
        assemble_checkpoint(0, table.get)
    rt = runtime(table)
    with caplog.at_level(logging.INFO, logger="accesswatch.app"):
        st = rt.state(0)
    assert not st.restored and st.offsets == {} and st.engine.stats == {}
    assert rejected(rt, "legacy_pickle") == 1
    assert sum(rejected(rt, r) for r in S.REASONS) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "legacy_pickle" in errors[0]
    assert "a fresh engine takes over from the committed offsets" in errors[0]
    # the fresh engine's next checkpoint replaces it, and restores
    table.update(sealed_records(st.engine, {"data-access": cut}))
    assert S.is_sealed(assemble_checkpoint(0, table.get) or b"")
    assert runtime(table).state(0).restored


# ------------------------------------------------------------------ configuration


def test_keys_come_from_a_file_or_the_environment_never_both(tmp_path: Path) -> None:
    f = tmp_path / "state-key"
    f.write_text("new-state-key-0123456789\nold-state-key-0123456789\n")
    s = Settings.from_env({"ACCESSWATCH_STATE_KEY_FILE": str(f)})
    assert s.state_keys == ("new-state-key-0123456789", "old-state-key-0123456789")
    assert "state-key-0123" not in repr(s) and "state-key-0123" not in repr(s.snapshot_keys())
    env = {"ACCESSWATCH_STATE_KEY": "a-b-c-d-e-f-g-h-i-j, k-l-m-n-o-p-q-r-s-t"}
    assert len(Settings.from_env(env).state_keys) == 2
    for bad, msg in (({"ACCESSWATCH_STATE_KEY_FILE": str(f), "ACCESSWATCH_STATE_KEY": "x" * 20},
                      "not both"),
                     ({"ACCESSWATCH_STATE_KEY_FILE": str(tmp_path / "none")}, "cannot read"),
                     ({"ACCESSWATCH_STATE_KEY": "short"}, "at least 16 bytes")):
        with pytest.raises(SettingsError, match=msg):
            Settings.from_env(bad)
    with pytest.raises(SettingsError, match="no state key"):
        Settings.from_env({}).snapshot_keys()
    with pytest.raises(SettingsError, match="MIGRATE_PICKLE_STATE is no longer supported"):
        Settings.from_env({"ACCESSWATCH_MIGRATE_PICKLE_STATE": "1"})
    assert Settings.from_env({"ACCESSWATCH_MIGRATE_PICKLE_STATE": "0"}).state_keys == ()


def test_a_worker_without_a_state_key_refuses_to_start_in_one_line(capsys: Any,
                                                                   monkeypatch: Any) -> None:
    from streams.cli import main

    monkeypatch.delenv("ACCESSWATCH_STATE_KEY", raising=False)
    monkeypatch.delenv("ACCESSWATCH_STATE_KEY_FILE", raising=False)
    assert main(["worker", "--broker", "kafka://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no state key" in err[0] and "ACCESSWATCH_STATE_KEY_FILE" in err[0]


def test_the_runtime_is_not_built_without_a_key(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="no state key"):
        app_mod.create_app(Settings(data_dir=str(tmp_path)))


def test_partition_state_of_a_fresh_start_is_not_marked_restored() -> None:
    rt = runtime({})
    st = rt.state(0)
    assert isinstance(st, PartitionState) and not st.restored
    assert sum(rejected(rt, r) for r in S.REASONS) == 0


# ------------------------------------------- (e) against a real broker and worker


@pytest.mark.broker
@pytest.mark.timeout(240)
def test_a_record_crafted_into_the_changelog_does_not_run_in_the_restarted_worker(
        fresh_tansu: Any, tmp_path: Path) -> None:
    """The attack of issue 12 end to end: a worker checkpoints and stops; a pickle payload
    (with a valid manifest and CRC) is produced to ``<app_id>-engine-checkpoints-changelog``;
    the next worker stays up, does not run it, counts the rejection and takes the events."""
    import re
    import time

    from kafka import KafkaProducer

    from local.worker import WorkerProcess
    from streams.topics import create_topics
    from tests.helpers import produce_by_topic, sim_lines

    lines = sim_lines(SimConfig(seed=5, customers=200, hours=1))
    half = len(lines) // 2
    create_topics(fresh_tansu.bootstrap, partitions=1)
    produce_by_topic(fresh_tansu.bootstrap, lines[:half])
    group = "accesswatch-forged"
    opts: dict[str, Any] = {"partitions": 1, "app_id": group, "checkpoint_interval": 1.0,
                            "extra": ["--log-level", "info"]}
    checkpointed = re.compile(r"checkpoint \d+ bytes at offsets \{[^}]*'data-access'")
    marker = tmp_path / "pwned"
    first = WorkerProcess(fresh_tansu.url, data_dir=str(tmp_path / "a"),
                          log_path=str(tmp_path / "a.log"), **opts)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first.start()
    try:
        first.wait_ready()
        deadline = time.monotonic() + 60
        while not checkpointed.search((tmp_path / "a.log").read_text()):
            assert first.alive() and time.monotonic() < deadline, first.log_tail(40)
            time.sleep(0.2)
    finally:
        assert first.stop() == 0
    producer = KafkaProducer(bootstrap_servers=fresh_tansu.bootstrap)
    changelog = f"{group}-engine-checkpoints-changelog"
    for key, value in legacy_records(0, evil_pickle(marker)):
        producer.send(changelog, key=key, value=value, partition=0)
    producer.flush()
    # records of keys no checkpoint uses, one batch each: Tansu reports the end offset of a
    # partition low, and Faust's table recovery reads only up to it
    for i in range(3):
        producer.send(changelog, key=f"pad/{i}".encode(), value=b"", partition=0)
        producer.flush()
    producer.close()

    second = WorkerProcess(fresh_tansu.url, data_dir=str(tmp_path / "b"),
                           log_path=str(tmp_path / "b.log"), **opts)
    second.start()
    try:
        second.wait_ready()
        produce_by_topic(fresh_tansu.bootstrap, lines[half:])
        deadline = time.monotonic() + 60
        while second.metric("accesswatch_checkpoint_rejected_total") < 1 or \
                second.metric("accesswatch_events_total") < 1:
            assert second.alive() and time.monotonic() < deadline, second.log_tail(40)
            time.sleep(0.2)
        assert second.alive()
    finally:
        rc = second.stop()
    log = (tmp_path / "b.log").read_text()
    assert not marker.exists()
    assert "checkpoint rejected (legacy_pickle)" in log, log[-3000:]
    assert "learned state is discarded" in log
    assert rc == 0


def test_a_field_added_to_a_detectors_record_after_the_checkpoint_takes_its_default() -> None:
    """Upgrade: overseas_server's per-identity record gained ``sessions``; a checkpoint
    written before it (the slot absent) restores with the field's default, not a record
    that fails on its first read."""
    from detectors.overseas_server import _Profile

    old = _Profile(home="KR", n=3)
    del old.sessions  # what an older checkpoint holds: no such slot
    back = S.decode(S.encode({"p": old}))["p"]
    assert back.sessions == () and back.home == "KR" and back.n == 3
