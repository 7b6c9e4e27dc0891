"""The Prometheus config and rules: promtool checks them, their unit tests pass, and a
deliberately broken copy of the rules makes those unit tests fail (they have teeth)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from streams.metrics import Metrics
from tests.prom_fixtures import PROM_CONFIG, RULES, RULES_TEST, need, promql_metric_names


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [need("promtool"), *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


@pytest.mark.prom
def test_promtool_check_config() -> None:
    r = promtool("check", "config", str(PROM_CONFIG))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout


@pytest.mark.prom
def test_promtool_check_rules() -> None:
    r = promtool("check", "rules", str(RULES))
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.prom
def test_promtool_unit_tests_pass() -> None:
    r = promtool("test", "rules", str(RULES_TEST))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout


# Each mutation breaks one rule the way a careless edit would; the unit tests must notice.
MUTATIONS = {
    "critical threshold raised": (
        'sum by (detector) (increase(accesswatch_alerts_total{severity="critical"}[1m])) > 0',
        'sum by (detector) (increase(accesswatch_alerts_total{severity="critical"}[1m])) > 1',
    ),
    "warning long window dropped": (
        "          and\n          sum by (detector) (rate(accesswatch_alerts_total"
        '{severity="warning"}[1h])) * 3600 > 10\n',
        "",
    ),
    "worker down waits longer": (
        'expr: up{job="accesswatch"} == 0\n        for: 1m',
        'expr: up{job="accesswatch"} == 0\n        for: 5m',
    ),
    "dead-letter share ignored": ("> 0.01\n          and", "> 0\n          and"),
    "lag growth ignored": (
        "deriv(accesswatch_consumer_lag_messages[10m])) > 0",
        "deriv(accesswatch_consumer_lag_messages[10m])) > -1e9",
    ),
    "event lag threshold raised": ("[5m]))) > 60", "[5m]))) > 600"),
    "drops no longer critical": (
        "increase(accesswatch_alertmanager_dropped_total[5m]) > 0\n        labels:\n"
        "          severity: critical",
        "increase(accesswatch_alertmanager_dropped_total[5m]) > 0\n        labels:\n"
        "          severity: warning",
    ),
}


@pytest.mark.prom
@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_broken_rules_fail_the_unit_tests(name: str, tmp_path: Path) -> None:
    old, new = MUTATIONS[name]
    text = RULES.read_text()
    assert text.count(old) == 1, f"mutation {name!r} no longer matches the rules file"
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "rules" / RULES.name).write_text(text.replace(old, new))
    shutil.copy(RULES_TEST, tmp_path / "tests" / RULES_TEST.name)
    # The copy is still valid rules: the failure below is the unit tests', not a syntax error.
    assert promtool("check", "rules", str(tmp_path / "rules" / RULES.name)).returncode == 0
    r = promtool("test", "rules", str(tmp_path / "tests" / RULES_TEST.name))
    assert r.returncode != 0, f"mutation {name!r} went unnoticed:\n{r.stdout}"
    assert "FAILED" in r.stdout + r.stderr


def _rules() -> list[dict[str, object]]:
    yaml = pytest.importorskip("yaml")
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_every_alert_has_severity_summary_runbook_and_a_unit_test() -> None:
    tested = RULES_TEST.read_text()
    alerts = [r for r in _rules() if "alert" in r]
    assert len(alerts) >= 8
    for rule in alerts:
        labels = rule.get("labels") or {}
        annotations = rule.get("annotations") or {}
        assert isinstance(labels, dict) and isinstance(annotations, dict)
        assert labels.get("severity") in ("info", "warning", "critical"), rule["alert"]
        assert annotations.get("summary"), rule["alert"]
        assert str(annotations.get("runbook_url", "")).startswith("https://"), rule["alert"]
        assert f"alertname: {rule['alert']}" in tested, f"{rule['alert']} has no promtool test"


def test_rules_use_only_metrics_the_workers_export() -> None:
    exported = Metrics(CollectorRegistry()).names()
    recorded = {str(r["record"]) for r in _rules() if "record" in r}
    for rule in _rules():
        for name in promql_metric_names(str(rule["expr"])):
            assert name in exported or name in recorded, (
                f"{name} in {rule.get('alert') or rule.get('record')}"
            )
