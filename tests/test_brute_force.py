"""brute_force: many failures on ONE account from one address page; a forgetful owner does not."""

from __future__ import annotations

from typing import Any

from detectors.brute_force import BruteForce
from detectors.engine import Engine, EngineConfig

T0 = 1_750_723_200  # 2025-06-24T00:00:00Z


def fail(i: int, t: float, acct: str = "root", ip: str = "45.33.2.10") -> dict[str, Any]:
    return {"event_id": f"f{i}", "ts": t, "account_id": acct, "outcome": "failure", "src_ip": ip}


def ok(i: int, t: float, acct: str = "root", ip: str = "45.33.2.10") -> dict[str, Any]:
    return {"event_id": f"s{i}", "ts": t, "account_id": acct, "outcome": "success",
            "src_ip": ip, "session_id": f"sess-{i}"}


def run(events: list[dict[str, Any]], **kw: Any) -> tuple[Engine, list[dict[str, Any]]]:
    eng = Engine(EngineConfig(detectors=("brute_force",)),
                 detectors=[BruteForce(**kw)] if kw else None)
    out: list[dict[str, Any]] = []
    for e in events:
        got, rej = eng.process_obj(e)
        assert rej is None, rej
        out += got
    return eng, out + eng.flush()


def test_twenty_failures_on_one_account_page_the_address_once() -> None:
    _, alerts = run([fail(i, T0 + i * 20) for i in range(40)])
    assert [(a["detector"], a["severity"], a["entity"]["id"]) for a in alerts] == [
        ("brute_force", "warning", "45.33.2.10")]
    assert "20 failed logins on one account (account#" in alerts[0]["summary"]
    assert "root" not in alerts[0]["summary"]  # the account is a victim: named by digest


def test_nineteen_failures_then_the_right_password_is_the_owner() -> None:
    _, alerts = run([fail(i, T0 + i * 20) for i in range(19)] + [ok(1, T0 + 400)]
                    + [fail(100 + i, T0 + 500 + i * 20) for i in range(19)])
    assert alerts == []  # the success started the count over


def test_a_success_after_the_threshold_is_critical() -> None:
    _, alerts = run([fail(i, T0 + i * 20) for i in range(25)] + [ok(1, T0 + 600)])
    assert [a["severity"] for a in alerts] == ["warning", "critical"]
    assert "SUCCEEDED" in alerts[-1]["summary"] and alerts[-1]["event_ids"][0] == "s1"


def test_failures_spread_over_accounts_or_outside_the_window_do_not_page() -> None:
    spread = [fail(i, T0 + i * 5, acct=f"u{i % 10}") for i in range(100)]  # 10 each
    slow = [fail(1000 + i, T0 + i * 240, acct="admin", ip="198.51.100.20") for i in range(45)]
    _, alerts = run(spread + slow)
    assert alerts == []


def test_a_hundred_failures_raise_the_page_to_critical() -> None:
    _, alerts = run([fail(i, T0 + i * 2) for i in range(120)])
    assert [a["severity"] for a in alerts] == ["warning", "critical"]


def test_state_is_bounded_per_pair_and_by_the_cap() -> None:
    eng, _ = run([fail(i, T0 + i) for i in range(500)]
                 + [fail(10_000 + i, T0 + 600 + i * 0.01, acct=f"a{i}", ip=f"10.0.{i // 250}.{i % 250}")
                    for i in range(3000)])
    d = eng.detectors["brute_force"]
    assert isinstance(d, BruteForce)
    assert len(d.pairs[("45.33.2.10", "root")].fails) == 100  # critical_factor * min_failures
    d.shed(1000)
    assert len(d.pairs) <= 1000 and ("45.33.2.10", "root") in d.pairs  # flagged pair kept
    d.expire(T0 + 600 + 30 + 3600 + 1)
    assert not d.pairs
