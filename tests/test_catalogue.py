"""The whole detector collection at once: metadata, docs, and every scenario file.

Each ``tests/scenarios/<detector>/<name>.jsonl`` starts with a header naming the alerts it
must raise (detector, entity, at least this severity) and the detectors that must stay quiet;
the events after it are replayed through a fresh engine with every detector on (and the
``EngineConfig`` settings of its ``engine`` key, if any).
"""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from detectors.base import ENTITY_KINDS, SEVERITIES, SEVERITY_RANK, STATUSES, Detector
from detectors.engine import Engine, EngineConfig, discover

SCENARIOS = Path(__file__).parent / "scenarios"
CATALOGUE = discover()
SCENARIO_FILES = sorted(SCENARIOS.glob("*/*.jsonl"))


def test_there_are_detectors() -> None:
    assert "unissued_session" in CATALOGUE


@pytest.mark.parametrize("det_id", sorted(CATALOGUE))
def test_metadata(det_id: str) -> None:
    cls: type[Detector] = CATALOGUE[det_id]
    assert re.fullmatch(r"[a-z][a-z0-9_]+", cls.id)
    assert cls.title and cls.description
    assert cls.severity in SEVERITIES
    assert cls.status in STATUSES
    assert cls.wants and cls.wants <= {"login", "access", "identity"}
    assert cls.entity_kinds and set(cls.entity_kinds) <= set(ENTITY_KINDS)
    assert cls.attack and all(re.fullmatch(r"T\d{4}(\.\d{3})?", t) for t in cls.attack)
    for word in ("Check", "False positives", "Respond"):
        assert word.lower() in cls.triage.lower(), f"{det_id}: triage note lacks '{word}'"
    mod = __import__(f"detectors.{det_id}", fromlist=["x"])
    assert mod.__doc__ and ">>>" in mod.__doc__, f"{det_id}: module docstring needs an example"


@pytest.mark.parametrize("det_id", sorted(CATALOGUE))
def test_every_detector_ships_positive_and_negative_scenarios(det_id: str) -> None:
    files = list((SCENARIOS / det_id).glob("*.jsonl"))
    headers = [orjson.loads(f.read_bytes().split(b"\n", 1)[0]) for f in files]
    positives = [h for h in headers if any(e["detector"] == det_id for e in h["expect"])]
    negatives = [h for h in headers if det_id in h.get("expect_no", [])]
    assert positives, f"{det_id}: no positive scenario"
    if CATALOGUE[det_id].status in ("test", "stable"):
        assert negatives, f"{det_id}: a {CATALOGUE[det_id].status} detector needs a negative"


def _load(path: Path) -> tuple[dict, list[bytes]]:
    lines = [ln for ln in path.read_bytes().splitlines() if ln.strip()]
    return orjson.loads(lines[0]), lines[1:]


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=[f"{p.parent.name}/{p.stem}" for p in SCENARIO_FILES])
def test_scenario(path: Path) -> None:
    header, lines = _load(path)
    eng = Engine(EngineConfig(**header.get("engine", {})))  # e.g. trust_producer_geo
    alerts = []
    for i, line in enumerate(lines, 2):
        out, rej = eng.process_line(line)
        assert rej is None, f"{path.name}:{i}: {rej}"
        alerts.extend(out)
    alerts.extend(eng.flush())
    for exp in header["expect"]:
        hits = [
            a for a in alerts
            if a["detector"] == exp["detector"]
            and a["entity"]["kind"] == exp.get("entity_kind", a["entity"]["kind"])
            and a["entity"]["id"] == exp.get("entity_id", a["entity"]["id"])
            and SEVERITY_RANK[a["severity"]] >= SEVERITY_RANK[exp.get("severity", "info")]
        ]
        got = [(a["detector"], a["entity"], a["severity"]) for a in alerts]
        assert hits, f"{path.name}: expected {exp}, got {got}"
    for quiet in header.get("expect_no", []):
        noisy = [a["summary"] for a in alerts if a["detector"] == quiet]
        assert not noisy, f"{path.name}: {quiet} must stay quiet, said {noisy}"
    for a in alerts:  # every alert keeps the contract
        assert a["alert_id"].startswith("aw-") and a["summary"].endswith(".")
        assert 0.0 <= a["score"] <= 1.0 and a["evidence"] and a["event_ids"]
        assert all({"feature", "observed", "baseline"} <= set(e) for e in a["evidence"])


def test_runbook_document_matches_the_code() -> None:
    from detectors.catalogue import markdown

    doc = Path(__file__).parent.parent / "docs" / "detectors.md"
    assert doc.read_text() == markdown(), "regenerate: python -m detectors.catalogue > docs/detectors.md"
