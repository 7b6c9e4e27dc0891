"""unusual_hour: learned hours per principal, peer priors, volume gates, protection."""

from __future__ import annotations

import random
from typing import Any

from detectors.engine import Engine, EngineConfig
from detectors.unusual_hour import UnusualHour, _usual_hours

T0 = 1750723200.0  # 2025-06-24 00:00 UTC = 09:00 KST
DAY, HOUR = 86400.0, 3600.0


class Feed:
    def __init__(self, **params: Any) -> None:
        self.eng = Engine(EngineConfig(detectors=("unusual_hour",),
                                       params={"unusual_hour": params}))
        det = self.eng.detectors["unusual_hour"]
        assert isinstance(det, UnusualHour)
        self.det = det
        self.n = 0
        self.alerts: list[dict] = []

    def access(self, ts: float, actor: str, typ: str = "employee") -> list[dict]:
        self.n += 1
        out = self.eng.process_obj({"event_id": f"a{self.n}", "ts": ts, "actor_id": actor,
                                    "actor_type": typ, "subject_id": f"c-{self.n}",
                                    "resource": "address", "src_ip": "203.246.168.10"})[0]
        self.alerts += out
        return out

    def office_days(self, actor: str, days: int, rng: random.Random, per_hour: int = 4) -> None:
        for d in range(days):  # 10:00-17:00 KST
            for h in range(1, 8):
                for _ in range(per_hour):
                    self.access(T0 + d * DAY + h * HOUR + rng.uniform(0, 3500), actor)

    def burst(self, start: float, actor: str, n: int, typ: str = "employee") -> list[dict]:
        out: list[dict] = []
        for k in range(n):
            out += self.access(start + k * 20, actor, typ)
        return out


def test_info_then_warning_at_volume_thresholds() -> None:
    f = Feed()
    f.office_days("e-1", 5, random.Random(1))
    night = T0 + 5 * DAY + 18 * HOUR  # 03:00 KST
    sev = [(k + 1, a["severity"]) for k in range(60) for a in f.access(night + 20 * k, "e-1")]
    assert sev == [(20, "info"), (50, "warning")]
    a = f.alerts[-1]
    assert a["entity"] == {"kind": "actor", "id": "e-1"}
    assert "made 50 requests at 03:00-04:00 (UTC+9)" in a["summary"]
    assert "usual hours are 10-16" in a["summary"]
    ev = {e["feature"]: e for e in a["evidence"]}
    assert ev["events_in_hour"]["observed"] == 50
    assert ev["hour_probability"]["observed"] < 0.01
    assert ev["hour_probability"]["baseline"] == "< 0.01 is unusual"


def test_a_single_late_login_is_not_a_page() -> None:
    f = Feed()
    f.office_days("e-1", 5, random.Random(2))
    f.burst(T0 + 5 * DAY + 14 * HOUR, "e-1", 8)  # 23:00 KST, a handful of requests
    assert f.alerts == []


def test_cold_start_uses_the_peer_prior_for_employees() -> None:
    f = Feed()
    out = f.burst(T0 + 18 * HOUR, "e-new", 60)  # first ever activity, 03:00 KST
    assert [a["severity"] for a in out] == ["info", "warning"]


def test_services_are_judged_on_their_own_hours_not_office_hours() -> None:
    f = Feed()
    # nightly batch at 02:00 KST from the first night: services have no office-hour prior
    for d in range(15):
        f.burst(T0 + d * DAY + 17 * HOUR, "svc-batch", 120, typ="service")
    assert f.alerts == []
    # the same service suddenly busy at 14:00 KST once its own hours are known (two weeks)
    out = f.burst(T0 + 15 * DAY + 5 * HOUR, "svc-batch", 60, typ="service")
    assert [a["severity"] for a in out] == ["info", "warning"]


def test_customers_are_ignored() -> None:
    f = Feed()
    f.burst(T0 + 18 * HOUR, "c-1", 100, typ="customer")
    assert f.alerts == [] and f.det.tracked() == {"actor": 0}


def test_hours_follow_the_configured_offset() -> None:
    f = Feed(tz_offset_hours=0.0)
    out = f.burst(T0 + 18 * HOUR, "e-1", 60)  # 18:00 UTC: evening, not night
    assert out == []
    f2 = Feed(tz_offset_hours=0.0)
    out = f2.burst(T0 + 3 * HOUR, "e-1", 60)  # 03:00 UTC
    assert "(UTC)" in out[-1]["summary"]


def test_neighbouring_hours_are_smoothed() -> None:
    f = Feed()
    rng = random.Random(3)
    for d in range(6):  # works 10:00-20:00 KST
        for h in range(1, 11):
            for _ in range(3):
                f.access(T0 + d * DAY + h * HOUR + rng.uniform(0, 3500), "e-1")
    st = f.det._state["e-1"]
    assert f.det.prob(st, "employee", 20) > 0.01  # 20:00 next to the last working hour
    assert f.det.prob(st, "employee", 3) < 0.001


def test_flagged_slots_are_not_learned() -> None:
    f = Feed()
    f.office_days("e-1", 3, random.Random(4))
    for d in range(3, 6):  # three nights of bulk reads at 03:00 KST
        f.burst(T0 + d * DAY + 18 * HOUR, "e-1", 60)
    st = f.det._state["e-1"]
    assert st.hist[3] == 0
    assert [a["severity"] for a in f.alerts] == ["info", "warning"] * 3


def test_histogram_is_small_and_halves_before_overflow() -> None:
    f = Feed()
    for k in range(300):  # 300 days, one request at 10:00 KST
        f.access(T0 + k * DAY + HOUR, "e-1")
    st = f.det._state["e-1"]
    assert isinstance(st.hist, bytearray) and len(st.hist) == 24
    assert 100 < st.hist[10] <= 255


def test_expiry_and_warmup() -> None:
    f = Feed(ttl=DAY, grace=10)
    assert f.det.warmup() == 0.0
    for h in range(12):
        f.access(T0 + h * HOUR, "e-1")
    assert f.det.warmup() == 1.0
    f.det.expire(T0 + 3 * DAY)
    assert f.det.tracked() == {"actor": 0}


def test_usual_hours_text() -> None:
    h = bytearray(24)
    for i in (2, 9, 10, 11):
        h[i] = 5
    assert _usual_hours(h) == "2, 9-11"
    assert _usual_hours(bytearray(24)) == "none learned yet"

