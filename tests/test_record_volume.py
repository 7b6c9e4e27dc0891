"""record_volume: rows per response against the principal's, key's and source's own usual."""

from __future__ import annotations

import math
import random
import time
from datetime import datetime
from typing import Any

import pytest

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


DAY = 86400.0


def portal(days: int, seed: int, growth: float = 1.0, start: int = 0) -> list[dict[str, Any]]:
    """A self-service portal's exports: ~30 a day in office hours, heavy-tailed sizes around
    ~45 rows (a corporate customer's lines), the level multiplied by ``growth`` a day."""
    rng = random.Random(seed)
    out = []
    for d in range(start, start + days):
        for _ in range(30):
            rows = max(2, round(rng.lognormvariate(math.log(45 * growth ** d), 0.7)))
            out.append(export(T0 + d * DAY + rng.uniform(0, 9 * H), "svc-portal", rows,
                              ip="10.30.2.8", key="k-portal"))
    return sorted(out, key=lambda e: e["ts"])


def test_exports_that_creep_a_quarter_a_day_page_against_the_slow_reference() -> None:
    # The Lotte Card pattern: from its own host and key, beside the portal's own exports,
    # exports that grow 25% a day; a baseline that learns every export follows them.
    creep = [export(T0 + d * DAY + 5 * H + 3 * H * i, "svc-portal", round(60 * 1.25 ** (d - 5)),
                    ip="10.30.2.8", key="k-portal")
             for d in range(5, 31) for i in range(3)]
    alerts = run(engine(), sorted(portal(31, 21) + creep, key=lambda e: e["ts"]))
    assert alerts and {a["entity"]["id"] for a in alerts} == {"svc-portal"}
    by_id = {e["event_id"]: e for e in creep}
    first = by_id[alerts[0]["event_ids"][-1]]["records"]
    crit = [a for a in alerts if a["severity"] == "critical"]
    assert crit, [a["severity"] for a in alerts]
    first_crit = by_id[crit[0]["event_ids"][-1]]["records"]
    # pages at 100-200 times the portal's usual ~45 rows (its own exports reach ~10x that),
    # before the creep ends at ~350 times
    assert first < 200 * 45 and first_crit < 300 * 45, (first, first_crit)


def test_a_portal_steady_or_growing_slowly_for_six_weeks_stays_quiet() -> None:
    assert run(engine(), portal(42, 22)) == []
    assert run(engine(), portal(42, 23, growth=1.015)) == []  # x1.9 in six weeks


def test_a_nightly_batch_export_every_night_stays_quiet() -> None:
    rng = random.Random(24)
    nightly = [export(T0 + d * DAY + 16 * H + rng.uniform(0, 600), "svc-billing",
                      max(1, round(rng.lognormvariate(math.log(200), 0.5))),
                      ip="10.20.9.4", key="k-billing") for d in range(40)]
    assert run(engine(), nightly) == []


def test_a_shared_source_is_judged_per_action() -> None:
    # An office egress: agents' searches of 1-4 rows all day, then analysts' first monthly
    # exports of a corporate customer's lines. The address's searches are not its exports.
    rng = random.Random(25)
    office = "210.138.20.12"
    searches = [export(T0 + 60 * i, f"emp-a{i % 12}", rng.randint(1, 4), ip=office,
                       key="k-sso", atype="employee", action="search") for i in range(2000)]
    exports = [export(T0 + 2000 * 60 + 900 * j, f"emp-b{j % 3}", rng.randint(500, 1700),
                      ip=office, key="k-sso", atype="employee") for j in range(6)]
    assert run(engine(), searches + exports) == []


def test_state_per_entity_is_under_half_a_kibibyte() -> None:
    import tracemalloc

    eng = engine()
    rng = random.Random(26)
    events = [export(T0 + d * DAY + i * H + k, f"svc-{k}", rng.randint(10, 90),
                     ip=f"10.1.{k % 250}.{k % 7 + 2}", key=f"k-{k}")
              for k in range(300) for d in range(5) for i in range(4)]
    events.sort(key=lambda e: e["ts"])
    tracemalloc.start()
    run(eng, events)
    snap = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(True, "*detectors/record_volume.py")])
    tracemalloc.stop()
    det = eng.detectors["record_volume"]
    assert det.tracked() == {"actor": 300, "key": 300, "src_ip": 300, "day": 300}
    assert sum(st.size for st in snap.statistics("filename")) / 1200 < 512


# --------------------------------------------------------------- rows per day (issue 14 item 3)

def daily(days: int, seed: int, actor: str = "svc-portal", n: int = 30, mu: float = 45.0,
          sigma: float = 0.7, start: int = 0, action: str = "export", hours: float = 9.0,
          per_day: Any = None, ip: str = "10.30.2.8", key: str = "k-portal",
          atype: str = "service") -> list[dict[str, Any]]:
    """``n`` responses a day (``per_day(d)`` if given) in office hours, ln(rows) normal around
    ln(``mu``) with ``sigma``."""
    rng = random.Random(seed)
    out = []
    for d in range(start, start + days):
        for _ in range(per_day(d) if per_day else n):
            rows = max(1, round(rng.lognormvariate(math.log(mu), sigma)))
            out.append(export(T0 + d * DAY + rng.uniform(0, hours * H), actor, rows, ip=ip,
                              key=key, atype=atype, action=action))
    return sorted(out, key=lambda e: e["ts"])


def test_a_day_of_three_times_the_usual_rows_warns_though_no_export_is_large() -> None:
    # 30 exports a day for 12 days, then a day of 90 exports of the same sizes: no single
    # export is outside the usual range; the day's total is 3x a total steady to ~15%
    events = daily(12, 31) + daily(1, 32, start=12, n=90)
    alerts = run(engine(), events)
    assert [a["severity"] for a in alerts[:1]] == ["warning"], alerts
    assert {a["entity"]["id"] for a in alerts} == {"svc-portal"}
    ev = {x["feature"]: x for x in alerts[0]["evidence"]}
    assert 2.0 <= ev["rows_today_vs_usual_day"]["observed"] < 3.2
    assert "usual day" in alerts[0]["summary"]


def test_days_rising_over_the_reference_warn_by_the_trend_before_the_day_rule() -> None:
    # from day 10 the count of exports grows 8% a day: each day over the one before and two
    # deviations (~1.6x) over the reference from day ~15, twice the usual day only at ~21
    events = daily(26, 33, per_day=lambda d: 30 if d < 10 else round(30 * 1.08 ** (d - 9)))
    alerts = run(engine(), events)
    assert alerts and "days in a row" in alerts[0]["summary"], alerts[:1]
    day = (datetime.fromisoformat(alerts[0]["ts"]).timestamp() - T0) // DAY
    assert 16 <= day <= 19, day


def test_the_creep_pages_critical_at_the_first_export_over_100x_the_usual_held() -> None:
    # 25% a day from inside the usual range (the portal's ~45 rows): the references stop
    # learning once its days are over the usual day, so the usual at the critical is the
    # one learnt before the drift; critical at 60 x 1.25^20 = 5,204 rows, the first over
    # 100 x 45 (the one before, 4,163, is ~90x)
    creep = [export(T0 + d * DAY + 5 * H + 3 * H * i, "svc-portal",
                    round(60 * 1.25 ** (d - 5)), ip="10.30.2.8", key="k-portal")
             for d in range(5, 31) for i in range(3)]
    alerts = run(engine(), sorted(portal(31, 21) + creep, key=lambda e: e["ts"]))
    by_id = {e["event_id"]: e for e in creep}
    crit = [a for a in alerts if a["severity"] == "critical"]
    assert by_id[crit[0]["event_ids"][-1]]["records"] == 5204, crit[0]["summary"]
    first = alerts[0]
    assert first["severity"] == "warning" and "usual day" in first["summary"]
    assert datetime.fromisoformat(first["ts"]).timestamp() < T0 + 20 * DAY  # creep day < 15


def test_a_month_end_run_that_returns_every_month_stays_quiet() -> None:
    # a reporting service: 20 exports a day, and on the last day of each month (and of the
    # quarter) a closing run of 100 more exports: five times its usual day, every month
    base = 1767225600.0  # 2026-01-01 00:00 UTC
    rng = random.Random(34)
    events = []
    for d in range(120):
        t = time.gmtime(base + d * DAY)
        last = time.gmtime(base + (d + 1) * DAY).tm_mon != t.tm_mon
        for _ in range(120 if last else 20):
            events.append(export(base + d * DAY + rng.uniform(0, 9 * H), "svc-report",
                                 max(1, round(rng.lognormvariate(math.log(40), 0.6))),
                                 ip="10.40.1.2", key="k-report"))
    events.sort(key=lambda e: e["ts"])
    assert run(engine(), events) == []


def test_a_nightly_batch_across_midnight_stays_quiet() -> None:
    # 40 exports from 23:30 to 00:30 UTC every night: each UTC day holds a varying part of
    # two batches
    rng = random.Random(35)
    events = [export(T0 - 10 * H + d * DAY + rng.uniform(-1800, 1800), "svc-batch",
                     max(1, round(rng.lognormvariate(math.log(300), 0.4))), ip="10.24.9.31",
                     key="k-batch") for d in range(45) for _ in range(40)]
    events.sort(key=lambda e: e["ts"])
    assert run(engine(), events) == []


def test_business_growth_and_weekends_stay_quiet() -> None:
    # 4% a month more exports on weekdays, a tenth (or half) of them on weekends, for 90 days
    for weekend in (0.1, 0.5):
        def per_day(d: int, w: float = weekend) -> int:
            wd = time.gmtime(T0 + d * DAY).tm_wday
            return round(30 * 1.04 ** (d / 30) * (w if wd >= 5 else 1.0))
        assert run(engine(), daily(90, 36, per_day=per_day)) == [], weekend


def test_a_new_principal_ramping_up_over_its_first_week_stays_quiet() -> None:
    # a new job rolled out over five days (10%, 25%, 50%, 75%, then all of its traffic)
    share = [0.1, 0.25, 0.5, 0.75]
    assert run(engine(), daily(30, 37, actor="svc-new", per_day=lambda d: round(
        40 * (share[d] if d < 4 else 1.0)))) == []


def test_searches_whose_result_counts_vary_a_lot_stay_quiet() -> None:
    # an analyst's ~12 searches a day whose results range from 1 to thousands of rows, and
    # an employee's one or two exports a day (a day total as wide as one export)
    s = daily(60, 38, actor="emp-an1", n=12, mu=20.0, sigma=1.6, action="search",
              ip="210.138.20.11", key="k-sso", atype="employee")
    x = daily(60, 39, actor="emp-b1", per_day=lambda d: 1 + d % 2, mu=110.0, sigma=0.8,
              ip="210.138.20.11", key="k-sso", atype="employee")
    assert run(engine(), sorted(s + x, key=lambda e: e["ts"])) == []


def test_days_that_paged_or_ran_high_do_not_teach_the_reference() -> None:
    eng = engine()
    high = daily(4, 41, start=12, n=75)  # four days of 2.5x
    run(eng, daily(12, 40) + high[:1])  # (its first response closes day 11)
    det = eng.detectors["record_volume"]
    d = det._ents[("day", "svc-portal", "export")]
    r = det._ents[("actor", "svc-portal", "")]
    before = (d.ref, r.ref, r.href)
    assert run(eng, high[1:])
    run(eng, daily(1, 42, start=16, n=1))  # closes the last of them
    assert (d.ref, r.ref, r.href) == before


def test_the_day_reference_survives_a_checkpoint() -> None:
    from streams.snapshot import decode, encode

    eng = engine()
    run(eng, daily(12, 40))
    det = eng.detectors["record_volume"]
    det2 = decode(encode(det))
    a, b = (d._ents[("day", "svc-portal", "export")] for d in (det, det2))
    assert type(b).__name__ == "_Day"
    assert [getattr(b, k) for k in b.__slots__] == [getattr(a, k) for k in a.__slots__]
    ev = daily(1, 43, start=12, n=90)  # the day rule pages on the restored detector too
    assert [x["severity"] for x in run(eng, ev)][:1] == ["warning"]


def test_one_huge_search_is_not_a_drift_of_a_wide_tailed_searcher() -> None:
    # an analyst's searches spread over three orders of magnitude: one search of 250,000
    # rows pages (on its own), and the next day's search of 2,500 (over 100x its usual ~20,
    # inside its tail) stays quiet: one day made by one response is not a drift
    events = daily(30, 44, actor="emp-an1", n=12, mu=20.0, sigma=1.6, action="search",
                   ip="210.138.20.11", key="k-sso", atype="employee")
    eng = engine()
    assert run(eng, events) == []
    big = export(T0 + 30 * DAY + 2 * H, "emp-an1", 250_000, ip="210.138.20.11", key="k-sso",
                 atype="employee", action="search")
    assert [a["severity"] for a in run(eng, [big])] == ["critical"]
    after = daily(1, 45, actor="emp-an1", n=6, mu=20.0, sigma=0.3, start=31, action="search",
                  ip="210.138.20.11", key="k-sso", atype="employee")
    wide = export(T0 + 31 * DAY + 8 * H, "emp-an1", 2_500, ip="210.138.20.11", key="k-sso",
                  atype="employee", action="search")
    assert run(eng, after + [wide]) == []


# ------------------------------------- a rare exporter's first huge export (issue 14 item 3)

WEEK = 7 * DAY


def partner(i: int, rows: int, hour: float = 0.0) -> dict[str, Any]:
    """The collections partner's export ``i`` weeks in, from its usual address and key."""
    return export(T0 + i * WEEK + hour * H, "partner-ink", rows, ip="88.64.232.215",
                  key="ak-ink-01", atype="service")


def test_a_rare_exporter_pages_critical_at_its_first_export_of_over_100x_what_it_returned() -> None:
    # one weekly export of tens of rows seen (too few for a baseline), then exports of
    # tens of thousands from the same address and key: critical at the first, and each
    # repeat in the episode stays critical (a critical export does not raise "the most seen")
    eng = engine()
    reads = [dict(export(T0 + 600 * i, "partner-ink", 1, ip="88.64.232.215", key="ak-ink-01",
                         action="read"), records=None) for i in range(6)]
    assert run(eng, reads + [partner(0, 71)]) == []
    big = partner(1, 26_994, hour=5)
    out = run(eng, [big])
    assert [a["severity"] for a in out] == ["critical"]
    assert out[0]["entity"] == {"kind": "actor", "id": "partner-ink"}
    assert out[0]["event_ids"] == [big["event_id"]]
    assert "380 times the most it returned before (71 rows" in out[0]["summary"]
    for j in range(1, 4):  # hours apart in the episode
        out = run(eng, [partner(1, 20_000 + j, hour=5 + 4 * j)])
        assert [a["severity"] for a in out] == ["critical"], j


def test_a_few_exports_then_100x_their_largest_is_critical_for_the_key_and_source_too() -> None:
    # three exports seen (10-60 rows): the largest is the reference; 100x it is critical,
    # 99x it (and under the 10,000 of a cold warning) stays quiet
    eng = engine()
    assert run(eng, [partner(0, 10), partner(1, 60), partner(2, 25)]) == []
    assert run(eng, [partner(3, 5_900)]) == []  # 98x the largest: quiet
    eng = engine()
    run(eng, [partner(0, 10), partner(1, 60), partner(2, 25)])
    out = run(eng, [partner(3, 6_100)])
    assert [a["severity"] for a in out] == ["critical"]
    ev = {x["feature"]: x for x in out[0]["evidence"]}
    assert "critical >= 6000" in ev["rows_per_response_key"]["baseline"]
    assert "critical >= 6000" in ev["rows_per_response_src_ip"]["baseline"]


def test_a_rare_exporter_of_one_row_then_150_rows_or_1900_stays_quiet() -> None:
    # 100x of a tiny export is not a bulk export: the critical needs 2,000 rows too
    for rows in (150, 1_900):
        eng = engine()
        assert run(eng, [partner(0, 1), partner(1, 1)]) == []
        assert run(eng, [partner(2, rows)]) == [], rows
    eng = engine()
    run(eng, [partner(0, 1), partner(1, 1)])
    assert [a["severity"] for a in run(eng, [partner(2, 2_100)])] == ["critical"]


def test_a_principals_first_export_ever_warns_only_even_on_a_key_with_exports() -> None:
    # the key and the address have one small export of another principal; this principal's
    # first export ever has no reference of its own: a warning, as with no history at all
    eng = engine()
    assert run(eng, [partner(0, 30)]) == []
    first = export(T0 + WEEK, "partner-new", 30_000, ip="88.64.232.215", key="ak-ink-01")
    assert [a["severity"] for a in run(eng, [first])] == ["warning"]


def test_a_month_end_export_seen_before_at_that_size_is_not_critical_again() -> None:
    # weekly tens and a month-end run of 15,000: the first month-end run the watch sees is
    # 100x everything before it (critical); a month later the same size was seen before
    # (at most the cold warning at 10,000 rows)
    eng = engine()
    march_end = T0 + 28 * DAY  # 2026-03-30, 01:00 UTC
    assert run(eng, [partner(0, 40), partner(1, 35)]) == []
    assert [a["severity"] for a in run(eng, [export(march_end, "partner-ink", 15_000,
                                                    ip="88.64.232.215", key="ak-ink-01")])] \
        == ["critical"]
    run(eng, [partner(5, 38)])
    april_end = export(T0 + 58 * DAY, "partner-ink", 15_200, ip="88.64.232.215",
                       key="ak-ink-01")
    assert [a["severity"] for a in run(eng, [april_end])] in ([], ["warning"])
    # seen first (a warning with no history), then small exports: the next run is no page
    eng = engine()
    assert [a["severity"] for a in run(eng, [export(march_end, "partner-q", 12_000,
                                                    ip="10.40.1.2", key="k-q")])] == ["warning"]
    run(eng, [export(march_end + WEEK + i * DAY, "partner-q", 40, ip="10.40.1.2", key="k-q")
              for i in range(2)])
    again = export(march_end + 30 * DAY, "partner-q", 12_500, ip="10.40.1.2", key="k-q")
    assert [a["severity"] for a in run(eng, [again])] in ([], ["warning"])


def test_a_few_searches_of_widely_varying_result_counts_are_not_critical() -> None:
    # a search's result count is its query's: 2 rows, then a broad filter of 9,000
    eng = engine()
    s = [export(T0 + i * DAY, "emp-an9", rows, ip="210.1.2.3", key="k-sso", atype="employee",
                action="search") for i, rows in enumerate((2, 5, 9_000, 30_000))]
    assert [a["severity"] for a in run(eng, s)] in ([], ["warning"])


def test_a_new_nightly_batch_over_its_first_nights_stays_quiet() -> None:
    # one export a night, sizes spread over two orders of magnitude (sigma 1): its first
    # four nights (too few for a baseline) raise nothing, over many seeds
    for seed in range(40):
        rng = random.Random(seed)
        ev = [export(T0 + d * DAY + 14 * H, "svc-nightly", max(1, round(
            rng.lognormvariate(math.log(400), 1.0))), ip="10.24.9.31", key="k-nightly")
            for d in range(10)]
        assert [a for a in run(engine(), ev) if a["severity"] == "critical"] == [], seed


def test_largest_seen_survives_a_checkpoint_and_an_older_one_without_it() -> None:
    from streams.snapshot import decode, encode

    eng = engine()
    run(eng, [partner(0, 40), partner(1, 50)])
    det = eng.detectors["record_volume"]
    det2 = decode(encode(det))
    r = det2._ents[("actor", "partner-ink", "")]
    assert math.exp(r.largest(T0 + 2 * WEEK)) == pytest.approx(50)
    for k in ("top", "ctop", "cts"):  # an entity of a checkpoint from before them
        delattr(r, k)
    assert math.exp(r.largest(T0 + 2 * WEEK)) > 50  # its high stands for the largest seen
    det._ents = det2._ents  # the running engine reads the restored (older) entities
    assert [a["severity"] for a in run(eng, [partner(2, 40_000)])] == ["critical"]


def test_a_rotated_key_with_one_small_export_is_not_cold_for_a_principal_used_to_the_size() -> None:
    # an analyst's exports spread 20 to 5,000 rows; its key is rotated, the new key's first
    # export is 20 rows and its second 3,000: the principal returned that much before
    events = daily(20, 47, actor="emp-rep", n=4, mu=300.0, sigma=1.3, ip="10.30.9.9",
                   key="k-old", atype="employee")
    eng = engine()
    run(eng, events)
    rot = [export(T0 + 20 * DAY + 2 * H, "emp-rep", 20, ip="10.30.9.9", key="k-new",
                  atype="employee"),
           export(T0 + 20 * DAY + 3 * H, "emp-rep", 3_000, ip="10.30.9.9", key="k-new",
                  atype="employee")]
    assert [a for a in run(eng, rot) if a["severity"] == "critical"] == []
