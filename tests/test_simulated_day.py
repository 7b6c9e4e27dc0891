"""`accesswatch simulate | accesswatch replay`: the attack is alerted, the population is not paged.

A fixed seed, a simulated half day of a few hundred customers, support staff and services with
the Coupang-style attack injected, piped through replay exactly as a user would.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import orjson
import pytest


def aw(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], input=stdin,
                          capture_output=True, timeout=300)


def attributed(alert: dict[str, Any], truth: list[dict[str, Any]]) -> bool:
    for t in truth:
        if set(alert["event_ids"]) & set(t["event_ids"]):
            return True
        if any(alert["entity"]["id"] in ids for ids in t["entities"].values()):
            return True
    return False


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, Any]], list[dict[str, Any]], bytes]:
    d = tmp_path_factory.mktemp("day")
    ev, tr = d / "day.jsonl", d / "truth.json"
    r = aw("simulate", "--seed", "11", "--customers", "600", "--employees", "20", "--hours", "12",
           "--attack", "coupang", "--out", str(ev), "--truth", str(tr))
    assert r.returncode == 0, r.stderr
    sim = subprocess.Popen([sys.executable, "-m", "streams.cli", "simulate", "--seed", "11",
                            "--customers", "600", "--employees", "20", "--hours", "12",
                            "--attack", "coupang"], stdout=subprocess.PIPE)
    rep = subprocess.run([sys.executable, "-m", "streams.cli", "replay", "-"], stdin=sim.stdout,
                         capture_output=True, timeout=300)
    sim.wait(timeout=60)
    assert sim.returncode == 0 and rep.returncode == 0, rep.stderr
    alerts = [orjson.loads(x) for x in rep.stdout.splitlines()]
    truth = orjson.loads(tr.read_bytes())
    return alerts, truth if isinstance(truth, list) else truth["attacks"], rep.stderr


def test_the_coupang_style_attack_pages(day: tuple[list, list, bytes]) -> None:
    alerts, truth, _ = day
    pages = [a for a in alerts if a["severity"] == "critical" and attributed(a, truth)]
    assert pages, "the attack raised no critical alert"
    assert {"unissued_session", "revoked_credential"} & {a["detector"] for a in pages}


def test_nobody_in_the_normal_population_is_paged(day: tuple[list, list, bytes]) -> None:
    alerts, truth, _ = day
    false_pages = [a["summary"] for a in alerts
                   if a["severity"] == "critical" and not attributed(a, truth)]
    assert false_pages == []


def test_summary_counts_the_events(day: tuple[list, list, bytes]) -> None:
    _, _, stderr = day
    text = stderr.decode()
    assert "events:" in text and "rejected: 0" in text and "events/s" in text
