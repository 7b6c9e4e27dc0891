"""The Grafana SOC dashboard and provisioning: every query names real metrics, every data
source exists, and the latest-alerts table reads the labels the sender really sets."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from streams.alertmanager import alert_annotations, alert_labels
from streams.metrics import Metrics
from tests.prom_fixtures import Prometheus, http_json, promql_metric_names

GRAFANA = Path(__file__).resolve().parent.parent / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "accesswatch-soc.json"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "accesswatch.yml"
PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "accesswatch.yml"
BUILTINS = {"up"}



@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return doc


def all_panels(dash: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for p in dash["panels"]:
        yield p
        yield from p.get("panels", [])


def prom_exprs(dash: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for p in all_panels(dash):
        for t in p.get("targets", []):
            ds = t.get("datasource") or p.get("datasource") or {}
            if ds.get("type") == "prometheus":
                out.append((p["title"], t["expr"]))
    return out


def test_every_promql_expr_names_only_exported_metrics(dashboard: dict[str, Any]) -> None:
    exported = Metrics(CollectorRegistry()).names()
    exprs = prom_exprs(dashboard)
    assert len(exprs) >= 20
    used: set[str] = set()
    for title, expr in exprs:
        names = promql_metric_names(expr)
        for word in ("up",):
            if f"{word}{{" in expr.replace(" ", ""):
                names.add(word)
        assert names, f"{title}: no metric in {expr!r}"
        for name in names:
            assert name in exported or name in BUILTINS, f"{title}: unknown metric {name}"
        used |= names
    # the panels the SOC needs are all there, each fed by its metric
    for metric in (
        "accesswatch_alerts_total",
        "accesswatch_events_total",
        "accesswatch_consumer_lag_messages",
        "accesswatch_dlq_messages_total",
        "accesswatch_model_warmup_ratio",
        "accesswatch_event_lag_seconds_bucket",
        "accesswatch_processing_seconds_bucket",
    ):
        assert metric in used, f"no panel shows {metric}"


def test_panel_titles_ids_and_layout(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == "accesswatch-soc"
    ids = [p["id"] for p in all_panels(dashboard)]
    assert len(ids) == len(set(ids))
    titles = " | ".join(p["title"].lower() for p in all_panels(dashboard))
    for words in (
        "alerts by detector and severity",
        "throughput",
        "consumer lag",
        "dead letters",
        "model warm-up",
        "event-time lag",
        "latest alerts",
    ):
        assert words in titles, words
    for p in all_panels(dashboard):
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, p["title"]
        if p["type"] != "row":
            assert p.get("description"), f"{p['title']} has no description"


def test_datasources_exist_and_latest_alerts_come_from_alertmanager(
    dashboard: dict[str, Any],
) -> None:
    yaml = pytest.importorskip("yaml")
    provisioned = {d["uid"]: d for d in yaml.safe_load(DATASOURCES.read_text())["datasources"]}
    assert provisioned["accesswatch-prometheus"]["type"] == "prometheus"
    assert provisioned["accesswatch-alertmanager"]["type"] == "alertmanager"
    for p in all_panels(dashboard):
        for t in p.get("targets", []):
            ds = t.get("datasource") or p["datasource"]
            assert ds["uid"] in provisioned, f"{p['title']}: unknown data source {ds['uid']}"
            assert provisioned[ds["uid"]]["type"] == ds["type"], p["title"]
    [table] = [p for p in all_panels(dashboard) if p["title"].lower().startswith("latest alerts")]
    assert table["type"] == "table"
    assert table["datasource"]["type"] == "camptocamp-prometheus-alertmanager-datasource"
    [target] = table["targets"]
    assert 'alertname="AccesswatchAnomaly"' in target["filters"]
    # the columns it shows are labels and annotations the sender really sets
    sample = {
        "alert_id": "a",
        "ts": 0,
        "detector": "bulk_lookup",
        "severity": "critical",
        "score": 0.9,
        "entity": {"kind": "key", "id": "k"},
        "summary": "s",
        "evidence": [],
        "event_ids": ["e"],
    }
    fields = set(alert_labels(sample)) | set(alert_annotations(sample, "https://x"))
    columns = set(table["transformations"][0]["options"]["indexByName"]) - {"Time"}
    assert columns <= fields, columns - fields
    assert {"summary", "entity_id", "detector", "severity"} <= columns


def test_dashboard_provider_points_at_a_folder() -> None:
    yaml = pytest.importorskip("yaml")
    [provider] = yaml.safe_load(PROVIDERS.read_text())["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"].startswith("/var/lib/grafana/dashboards")


@pytest.mark.prom
def test_every_promql_expr_is_accepted_by_real_prometheus(
    dashboard: dict[str, Any], prometheus_factory: Callable[[list[str], str], Prometheus]
) -> None:
    prom = prometheus_factory([], "http://127.0.0.1:9")
    for title, expr in prom_exprs(dashboard):
        got = http_json(f"{prom.url}/api/v1/query?query={urllib.parse.quote(expr)}")
        assert got["status"] == "success", f"{title}: {expr}"
