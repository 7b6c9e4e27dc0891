"""password_spray: about one failure per account, many accounts, an hour, one AS or subnet."""

from __future__ import annotations

from typing import Any

import pytest

from detectors.engine import Engine, EngineConfig

T = 1_750_000_000.0


def engine(*extra: str, **params: Any) -> Engine:
    # the events carry their AS number from an enriching producer: believed here
    return Engine(EngineConfig(detectors=("password_spray", *extra),
                               params={"password_spray": params}, trust_producer_geo=True))


def login(i: int, ts: float, acct: str, ip: str, outcome: str = "failure",
          asn: int | None = 14061) -> dict[str, Any]:
    d: dict[str, Any] = {"event_id": f"l{i}", "ts": T + ts, "account_id": acct,
                         "outcome": outcome, "src_ip": ip}
    if asn is not None:
        d["asn"] = asn
    if outcome == "success":
        d["session_id"] = f"s{i}"
    return d


def spray(n: int, step: float = 80.0, subnets: int = 4, t0: float = 0.0,
          accounts: int | None = None) -> list[dict[str, Any]]:
    """n failures, one every ``step`` s, from addresses spread over ``subnets`` /24s."""
    m = accounts or n
    return [login(k, t0 + k * step, f"c-{k % m}", f"167.71.{k % subnets}.{k % 50 + 2}")
            for k in range(n)]


def feed(eng: Engine, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for obj in events:
        alerts, rej = eng.process_obj(obj)
        assert rej is None, rej
        out.extend(alerts)
    return out + eng.flush()


def test_as_pages_at_forty_accounts_spread_over_three_subnets() -> None:
    assert feed(engine(), spray(39)) == []
    alerts = feed(engine(), spray(40))
    assert [(a["severity"], a["entity"]) for a in alerts] == [
        ("warning", {"kind": "asn", "id": "AS14061"})]
    ev = {e["feature"]: e for e in alerts[0]["evidence"]}
    assert ev["distinct_failed_accounts"]["observed"] == 40
    assert ev["distinct_failed_accounts"]["baseline"] == "< 40 per asn in 2 h"
    assert ev["failures_per_account"]["observed"] == 1.0
    assert ev["failing_subnets"]["observed"] == 4
    assert ev["failure_rate"]["baseline"] == pytest.approx(0.1, abs=0.01)


def test_two_subnets_page_as_subnets_not_the_as() -> None:
    alerts = feed(engine(), spray(60, subnets=2))
    assert sorted(a["entity"]["id"] for a in alerts) == ["167.71.0.0/24", "167.71.1.0/24"]


def brute(n: int, per_account: int) -> list[dict[str, Any]]:
    return [login(k, k * 30.0, f"c-{k // per_account}",
                  f"167.71.{k // per_account % 4}.{k % 50 + 2}") for k in range(n)]


def test_brute_force_on_few_accounts_is_not_a_spray() -> None:
    assert feed(engine(), brute(120, per_account=40)) == []  # 3 accounts, 40 tries each
    # 40 accounts with 3 tries each: above max_fails_per_account=2
    assert feed(engine(), brute(120, per_account=3)) == []
    assert feed(engine(max_fails_per_account=4.0), brute(120, per_account=3)) != []


def test_fast_run_is_left_to_credential_stuffing() -> None:
    evs = spray(80, step=2.0)  # 80 accounts in under 3 minutes: stuffing, not a spray
    alerts = feed(engine("credential_stuffing"), evs)
    assert {a["detector"] for a in alerts} == {"credential_stuffing"}


def test_spray_too_slow_for_stuffing_is_paged_once_by_spray() -> None:
    alerts = feed(engine("credential_stuffing"), spray(60))
    assert [(a["detector"], a["severity"]) for a in alerts] == [("password_spray", "warning")]


def test_success_from_a_spraying_address_is_critical_and_named_by_digest() -> None:
    evs = spray(45)
    evs.append(login(999, 45 * 80 + 10, "c-lucky", "167.71.1.7", "success"))
    evs.append(login(1000, 45 * 80 + 20, "c-x", "167.71.2.8"))
    eng = engine()
    alerts = feed(eng, evs)
    assert [a["severity"] for a in alerts] == ["warning", "critical"]
    label = eng.ctx.victim("account", "c-lucky")
    assert f"the sprayed password worked for 1 account ({label})" in alerts[1]["summary"]
    assert "c-lucky" not in str(alerts[1])
    assert alerts[1]["event_ids"][0] == "l999"


def test_success_from_a_bystander_address_is_not_named() -> None:
    evs = spray(45)
    evs.append(login(999, 45 * 80 + 10, "c-home", "167.71.1.250", "success"))
    alerts = feed(engine(), evs)
    assert [a["severity"] for a in alerts] == ["warning"]


def test_long_spray_stays_one_episode() -> None:
    eng = engine(critical_factor=2.0)
    alerts = feed(eng, spray(200, step=80.0))  # 4.4 hours
    assert [a["severity"] for a in alerts] == ["warning", "critical"]  # critical at 80 accounts
    assert len({a["alert_id"] for a in alerts}) == 1
    ep = eng.episodes[("password_spray", "asn", "AS14061")]
    assert ep.count > 5  # refreshes kept the episode open, suppressed


def test_single_address_low_and_slow() -> None:
    evs = [login(k, k * 200.0, f"c-{k}", "146.70.40.77", asn=None) for k in range(25)]
    alerts = feed(engine(), evs)
    assert [a["entity"] for a in alerts] == [{"kind": "src_ip", "id": "146.70.40.77"}]
    assert "over 63 min" in alerts[0]["summary"]


def test_accounts_outside_the_window_are_forgotten() -> None:
    evs = spray(60, step=400.0)  # one account every 6.7 min: < 40 in any two hours
    assert feed(engine(), evs) == []


def test_expire_forgets_idle_sources() -> None:
    eng = engine()
    feed(eng, spray(5))
    det = eng.detectors["password_spray"]
    assert det.tracked() == {"src_ip": 5, "subnet": 4, "asn": 1}
    det.expire(T + 5 * 80 + 7300)
    assert det.tracked() == {"src_ip": 0, "subnet": 0, "asn": 0}

