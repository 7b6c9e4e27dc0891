"""credential_stuffing: many failing accounts per source, judged against the peer typo rate."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from detectors import _burst
from detectors.engine import Engine, EngineConfig


def engine(**params: Any) -> Engine:
    # times in these tests count from 0 (1970), and the events' AS numbers come from an
    # enriching producer: both accepted here
    return Engine(EngineConfig(detectors=("credential_stuffing",),
                               params={"credential_stuffing": params}, ts_min_year=1970,
                               trust_producer_geo=True))


def login(i: int, ts: float, acct: str, ip: str, outcome: str = "failure",
          **kw: Any) -> dict[str, Any]:
    d = {"event_id": f"l{i}", "ts": ts, "account_id": acct, "outcome": outcome, "src_ip": ip,
         **kw}
    if outcome == "success":
        d["session_id"] = f"s{i}"
    return d


def feed(eng: Engine, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for obj in events:
        alerts, rej = eng.process_obj(obj)
        assert rej is None, rej
        out.extend(alerts)
    return out + eng.flush()


def stuffing(n: int, ip: str = "45.33.2.10", t0: float = 1000.0, step: float = 1.0,
             first: int = 0) -> list[dict[str, Any]]:
    return [login(first + k, t0 + k * step, f"c-{first + k}", ip) for k in range(n)]


def test_threshold_is_ten_distinct_accounts_per_address() -> None:
    assert feed(engine(), stuffing(9)) == []
    alerts = feed(engine(), stuffing(10))
    assert [(a["severity"], a["entity"]["kind"]) for a in alerts] == [("warning", "src_ip")]


def test_same_account_failing_repeatedly_is_not_stuffing() -> None:
    evs = [login(k, 1000 + k, "c-1", "45.33.2.10") for k in range(100)]
    assert feed(engine(), evs) == []


def test_escalates_to_critical_at_five_times_the_threshold() -> None:
    alerts = feed(engine(), stuffing(60))
    assert [a["severity"] for a in alerts] == ["warning", "critical"]
    assert alerts[1]["evidence"][0]["observed"] == 50


def test_a_success_inside_the_burst_is_named_by_digest_and_critical() -> None:
    evs = stuffing(15) + [login(99, 1020, "c-victim", "45.33.2.10", "success")]
    eng = engine()
    alerts = feed(eng, evs)
    assert [a["severity"] for a in alerts] == ["warning", "critical"]
    crit = alerts[1]
    label = eng.ctx.victim("account", "c-victim")
    assert f"1 login succeeded inside the burst ({label})" in crit["summary"]
    succ = next(e for e in crit["evidence"] if e["feature"] == "successes_in_burst")
    assert succ["observed"] == 1 and label in succ["detail"]
    assert "c-victim" not in orjson.dumps(crit).decode()  # the account got in: a victim
    assert crit["event_ids"][0] == "l99"


def test_explanation_names_failure_rate_against_typo_rate() -> None:
    a = feed(engine(), stuffing(10))[0]
    ev = {e["feature"]: e for e in a["evidence"]}
    assert ev["distinct_failed_accounts"]["observed"] == 10
    assert ev["distinct_failed_accounts"]["baseline"] == "< 10 per src_ip in 10 min"
    assert ev["failure_rate"]["observed"] == 1.0
    assert ev["failure_rate"]["baseline"] == pytest.approx(0.1, abs=0.01)
    assert "vs 10% typical" in a["summary"]


def test_typo_rate_is_learned_from_accounts_that_get_in() -> None:
    rng = random.Random(5)
    evs: list[dict[str, Any]] = []
    k = 0
    for i in range(3000):  # 30% of logins preceded by one typo, from each user's own address
        ip = f"121.134.{i // 200}.{i % 200 + 10}"
        if rng.random() < 0.3:
            evs.append(login(k, 1000 + i, f"c-{i}", ip))
            k += 1
        evs.append(login(k, 1000.5 + i, f"c-{i}", ip, "success"))
        k += 1
    eng = engine()
    assert eng.detectors["credential_stuffing"].warmup() == 0.0
    feed(eng, evs)
    t = _burst.tracker(eng.ctx)
    assert 0.2 < t.typo_rate() < 0.26  # ~0.3/1.3 per attempt, the 10% prior washed out
    assert eng.detectors["credential_stuffing"].warmup() > 0.9


def test_failures_on_accounts_that_never_get_in_teach_nothing() -> None:
    evs = [login(k, 1000 + k * 30, f"c-{k}", f"159.89.{k % 7}.{k % 200 + 1}") for k in range(30)]
    eng = engine()
    feed(eng, evs)
    assert _burst.tracker(eng.ctx).typo_rate() == pytest.approx(0.1)


def test_carrier_nat_with_usual_typo_rate_is_quiet() -> None:
    rng = random.Random(9)
    evs: list[dict[str, Any]] = []
    for i in range(500):
        ts = 1000 + i
        if rng.random() < 0.15:
            evs.append(login(10_000 + i, ts - 0.5, f"c-{i}", "223.32.0.7"))
        evs.append(login(i, ts, f"c-{i}", "223.32.0.7", "success"))
    assert feed(engine(), evs) == []


def test_subnet_needs_three_failing_addresses() -> None:
    one_ip = [login(k, 1000 + k, f"c-{k}", "89.187.160.5") for k in range(25)]
    alerts = feed(engine(min_accounts=(1000, 20, 40)), one_ip)
    assert alerts == []  # 25 accounts from one address: the address's page, not the subnet's
    spread = [login(k, 1000 + k, f"c-{k}", f"89.187.160.{k % 5 + 2}") for k in range(25)]
    alerts = feed(engine(min_accounts=(1000, 20, 40)), spread)
    assert [a["entity"] for a in alerts] == [{"kind": "subnet", "id": "89.187.160.0/24"}]
    fa = next(e for e in alerts[0]["evidence"] if e["feature"] == "failing_addresses")
    assert fa["observed"] == 5


def test_slow_attempts_outside_the_window_do_not_add_up() -> None:
    evs = stuffing(30, step=120.0)  # one every two minutes: at most ~5 in any 10-minute window
    assert feed(engine(), evs) == []
    assert feed(engine(window=7200.0), stuffing(30, step=120.0)) != []


def test_an_address_in_a_burst_is_not_charged_to_its_as() -> None:
    evs = [login(k, 1000 + k, f"c-{k}", "167.71.0.238", asn=14061) for k in range(100)]
    evs += [login(200 + k, 1000 + k, f"c-x{k}", f"167.71.{k % 4 + 1}.9", asn=14061)
            for k in range(8)]
    alerts = feed(engine(), evs)
    assert {a["entity"]["kind"] for a in alerts} == {"src_ip"}


def test_stuffed_accounts_logging_in_later_are_not_typos() -> None:
    evs = stuffing(200)
    evs += [login(1000 + k, 1300 + k, f"c-{k}", f"121.134.0.{k % 200 + 1}", "success")
            for k in range(200)]
    eng = engine()
    feed(eng, evs)
    assert _burst.tracker(eng.ctx).typo_rate() < 0.1  # the owners got in at the first try


def test_peer_baseline_is_learned_per_closed_window_and_quoted() -> None:
    rng = random.Random(4)
    evs: list[dict[str, Any]] = []
    for i in range(1500):  # home addresses, one or two people each, 15% mistype, most get in
        ip = f"121.134.{i // 200}.{i % 200 + 10}"
        for j in range(rng.choice((1, 1, 2))):
            acct, ts = f"c-{i}-{j}", 1000 + i * 2 + j * 0.5
            if rng.random() < 0.15:
                evs.append(login(len(evs), ts - 0.2, acct, ip))
                if rng.random() < 0.3:
                    continue  # gave up
            evs.append(login(len(evs), ts, acct, ip, "success"))
    evs += stuffing(30, t0=1000 + 1500 * 2 + 700, first=10_000)
    eng = engine()
    alerts = feed(eng, evs)
    assert [a["entity"]["kind"] for a in alerts] == ["src_ip"]
    t = _burst.tracker(eng.ctx)
    assert t.peer_windows[0] >= 200  # closed windows of failing addresses, not events
    assert t.peer_quantile(0) == pytest.approx(1.0, abs=0.5)
    detail = alerts[0]["evidence"][0]["detail"]
    assert "ordinary src_ips: 99% fail on <= 1 accounts per window" in detail


def test_peer_baseline_never_learns_from_a_burst() -> None:
    eng = engine()
    feed(eng, stuffing(300))
    det = eng.detectors["credential_stuffing"]
    det.expire(1000 + 300 + 1300)  # the flagged address is forgotten
    assert _burst.tracker(eng.ctx).peer_windows == [0, 0, 0]


def test_expire_forgets_idle_sources() -> None:
    eng = engine()
    feed(eng, stuffing(5))
    det = eng.detectors["credential_stuffing"]
    assert det.tracked() == {"src_ip": 1, "subnet": 1, "asn": 1}
    det.expire(1000 + 5 + 601)
    assert det.tracked() == {"src_ip": 0, "subnet": 0, "asn": 0}


def test_flagged_source_is_remembered_for_two_windows() -> None:
    eng = engine()
    feed(eng, stuffing(12))
    det = eng.detectors["credential_stuffing"]
    det.expire(1011 + 700)
    assert det.tracked()["src_ip"] == 1
    det.expire(1011 + 1300)
    assert det.tracked()["src_ip"] == 0

