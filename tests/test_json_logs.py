"""``--log-format json`` (issue 16): every line one JSON object, no customer identifier at
info level. ``replay`` here; a real worker through a simulated day on the embedded broker."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path
from typing import Any

import orjson
import pytest

from simulation import SimConfig, simulate
from streams.logs import configure, say
from tests.helpers import produce_by_topic

#: the fields of an event that name a customer, an employee, a key or an address
IDENTIFYING = ("account_id", "actor_id", "subject_id", "owner_id", "src_ip", "session_id",
               "key_id")


def identifiers(events: list[dict[str, Any]]) -> set[str]:
    return {str(e[f]) for e in events for f in IDENTIFYING if e.get(f)}


def leaks(text: str, ids: set[str]) -> set[str]:
    """The identifiers that appear in ``text`` as whole tokens."""
    tokens = set(re.findall(r"[\w.:-]+", text))
    found = {i for i in ids if i in tokens}
    # an identifier inside a longer token (``account c-000042,``) is caught too
    found |= {i for i in ids if re.search(rf"(?<![\w.-]){re.escape(i)}(?![\w-]|\.\d)", text)}
    return found


def parse_lines(text: str) -> list[dict[str, Any]]:
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        try:
            obj = json.loads(line)
        except ValueError:
            raise AssertionError(f"line {n} is not JSON: {line[:300]!r}") from None
        assert isinstance(obj, dict), (n, line)
        assert {"time", "level", "logger", "message"} <= set(obj), (n, line)
        out.append(obj)
    return out


def test_leaks_finds_identifiers_as_whole_tokens_only() -> None:
    ids = {"c-000042", "10.20.6.99", "e-0001"}
    text = '{"message": "account c-000042, from 10.20.6.99."} e-00012 110.20.6.99'
    assert leaks(text, ids) == {"c-000042", "10.20.6.99"}


def test_configure_and_say_write_one_json_object_a_line() -> None:
    buf = StringIO()
    root = logging.getLogger()
    saved = list(root.handlers), root.level
    try:
        configure("info", "json", stream=buf)
        try:
            raise ValueError("boom\nsecond line")
        except ValueError:
            logging.getLogger("accesswatch.test").exception("failed %s", "here")
        logging.getLogger("accesswatch.test").debug("not shown at info")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    say("a status line\nwith a second line", "json", logger="accesswatch.test", stream=buf)
    lines = parse_lines(buf.getvalue())
    assert [(o["level"], o["logger"]) for o in lines] == [
        ("ERROR", "accesswatch.test"), ("INFO", "accesswatch.test")]
    assert lines[0]["message"] == "failed here" and "boom" in lines[0]["exc_info"]
    assert lines[1]["message"] == "a status line\nwith a second line"
    assert lines[0]["time"].endswith("+0000")


def test_replay_json_log_every_line_is_json(tmp_path: Path) -> None:
    events = simulate(SimConfig(seed=4, customers=60, hours=2)).events
    data = b"".join(orjson.dumps(e) + b"\n" for e in events) + b"{not json\n"
    r = subprocess.run([sys.executable, "-m", "streams.cli", "replay", "--log-format", "json",
                        "-"], input=data, capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = parse_lines(r.stderr.decode())
    assert any("events:" in o["message"] for o in lines)  # the summary, as JSON
    assert not leaks(r.stderr.decode(), identifiers(events))


def test_a_bad_log_format_is_one_line() -> None:
    r = subprocess.run([sys.executable, "-m", "streams.cli", "worker", "--log-format", "xml"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.mark.broker
@pytest.mark.timeout(600)
def test_worker_json_log_through_a_simulated_day(fresh_tansu: Any, tmp_path: Path) -> None:
    from local.worker import WorkerProcess
    from streams.topics import TopicNames, create_topics

    names = TopicNames()
    events = simulate(SimConfig(seed=8, customers=120, hours=24, attacks=("coupang",),
                                attack_start_hour=10)).events
    lines = [orjson.dumps(e) for e in events]
    # hostile input too: records the DLQ takes, whose reasons are logged
    lines += [b'{"event_id":"x1","actor_id":"c-999999","src_ip":"198.51.100.77"}', b"{oops"]
    create_topics(fresh_tansu.bootstrap, partitions=2)
    sent = produce_by_topic(fresh_tansu.bootstrap, lines)
    inputs = sent.get(names.logins, 0) + sent.get(names.access, 0)
    log = tmp_path / "worker.log"
    worker = WorkerProcess(fresh_tansu.url, partitions=2, data_dir=str(tmp_path),
                           log_path=str(log), checkpoint_interval=1.0,
                           extra=["--log-format", "json", "--log-level", "info"]).start()
    try:
        worker.wait_ready()
        deadline = time.monotonic() + 300
        while worker.metric("accesswatch_events_total") < inputs:
            assert worker.alive(), worker.log_tail(40)
            assert time.monotonic() < deadline, worker.log_tail(40)
            time.sleep(0.2)
        while worker.metric("accesswatch_alerts_total") < 1:  # the attack was seen
            assert time.monotonic() < deadline, worker.log_tail(40)
            time.sleep(0.2)
    finally:
        rc = worker.stop()
    assert rc == 0, worker.log_tail(40)
    text = log.read_text()
    records = parse_lines(text)
    assert len(records) > 20  # Faust's and ours: joining, recovery, checkpoints, shutdown
    assert {o["level"] for o in records} <= {"INFO", "WARNING", "ERROR", "CRITICAL"}
    assert any(o["logger"] == "accesswatch.worker" for o in records)
    assert any("checkpoint" in o["message"] for o in records)
    ids = identifiers(events) | {"c-999999", "198.51.100.77"}
    assert not leaks(text, ids), sorted(leaks(text, ids))[:20]
