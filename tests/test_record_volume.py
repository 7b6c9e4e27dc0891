"""record_volume: rows per response against the principal's, key's and source's own usual."""

from __future__ import annotations

import random
from typing import Any

from detectors.engine import Engine, EngineConfig

T0 = 1772413200.0  # 2026-03-02 10:00 KST
H = 3600.0


def engine() -> Engine:
    return Engine(EngineConfig(detectors=("record_volume",)))


_n = 0


def export(ts: float, actor: str, rows: int, ip: str = "10.20.5.4", key: str = "k-cards",
           atype: str = "service", action: str = "export") -> dict[str, Any]:
    global _n
    _n += 1
    return {"event_id": f"r{_n}", "ts": ts, "actor_id": actor, "actor_type": atype,
            "subject_id": "c-1", "resource": "payment", "action": action, "records": rows,
            "src_ip": ip, "key_id": key}


def run(eng: Engine, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for e in events:
        alerts, rej = eng.process_obj(e)
        assert rej is None, rej
        out += alerts
    return out + eng.flush()


def test_first_export_of_more_than_100x_the_usual_rows_is_critical_at_that_export() -> None:
    rng = random.Random(1)
    usual = [export(T0 + 2 * H * i, "svc-cards", rng.randint(10, 80)) for i in range(12)]
    big = export(T0 + 30 * H, "svc-cards", 25_000)
    alerts = run(engine(), usual + [big])
    assert [a["severity"] for a in alerts] == ["critical"]
    assert alerts[0]["entity"] == {"kind": "actor", "id": "svc-cards"}
    assert alerts[0]["event_ids"] == [big["event_id"]]
    ev = {x["feature"]: x for x in alerts[0]["evidence"]}
    assert set(ev) == {"rows_per_response_actor", "rows_per_response_key",
                       "rows_per_response_src_ip"}


def test_ten_times_the_high_rows_warns_below_100x_usual() -> None:
    usual = [export(T0 + 600 * i, "svc-rep", 100 + 10 * (i % 5)) for i in range(30)]
    alerts = run(engine(), usual + [export(T0 + 30 * H, "svc-rep", 6000)])
    assert [a["severity"] for a in alerts] == ["warning"]


def test_heavy_tailed_batch_exports_stay_quiet() -> None:
    rng = random.Random(2)
    events = [export(T0 + 2 * i, "svc-batch", max(1, round(rng.lognormvariate(3.0, 1.1))),
                     ip="10.24.9.31", key="k-batch") for i in range(20_000)]
    assert run(engine(), events) == []


def test_without_history_a_huge_response_warns_only() -> None:
    alerts = run(engine(), [export(T0, "svc-new", 50_000, key="k-new", ip="10.9.9.9")])
    assert [a["severity"] for a in alerts] == ["warning"]


def test_a_flagged_export_does_not_teach_the_baseline() -> None:
    eng = engine()
    run(eng, [export(T0 + 600 * i, "svc-x", 20) for i in range(10)])
    for i in range(5):  # the attacker repeats: each one still pages
        out = run(eng, [export(T0 + 10 * H + 4 * H * i, "svc-x", 30_000)])
        assert [a["severity"] for a in out] == ["critical"], i
