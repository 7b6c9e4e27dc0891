"""spread_access: reads spread over many addresses or accounts, counted where spreading fails."""

from __future__ import annotations

import pickle
import random
from typing import Any

from detectors.engine import Engine, EngineConfig

T0 = 1_750_723_200  # 2025-06-24T00:00:00Z, a Tuesday (09:00 KST)
HOUR = 3600
KEY = "kid-cust-2025a"


def engine(**params: Any) -> Engine:
    return Engine(EngineConfig(detectors=("spread_access",),
                               params={"spread_access": {"home_countries": ("KR",), **params}}))


def run(eng: Engine, events: list[dict]) -> list[dict]:
    out: list[dict] = []
    for e in sorted(events, key=lambda e: e["ts"]):
        alerts, rej = eng.process_obj(e)
        assert rej is None, rej
        out += alerts
    return out + eng.flush()


def read(i: int, t: float, ip: str, *, sid: str | None = "s", tia: float | None = None,
         subject: str | None = None, key: str | None = KEY) -> dict:
    actor = f"c-{i:07d}"
    e: dict[str, Any] = {"event_id": f"a-{i}-{t}", "ts": t, "actor_id": actor,
                         "subject_id": subject or actor, "resource": "address", "src_ip": ip,
                         "token_issued_at": t - 60 if tia is None else tia}
    if sid is not None:
        e["session_id"] = f"{sid}-{i}"
    if key is not None:
        e["key_id"] = key
    return e


def home_ip(rng: random.Random) -> str:
    return f"121.134.{rng.randrange(0, 128)}.{rng.randrange(2, 250)}"


def pages(alerts: list[dict]) -> list[dict]:
    return [a for a in alerts if a["severity"] in ("warning", "critical")]


def test_adopted_sessions_that_keep_appearing_after_half_the_lifetime_page() -> None:
    """Tokens claiming to predate the watch are adopted quietly while the lifetime's first half
    runs (they cannot be checked), but a population fixed at the start can only shrink: the
    same steady flow late in the lifetime pages on the key. (The old detectors adopted them
    with no age limit and never counted them.)"""
    rng = random.Random(3)
    life = 10 * HOUR
    early, late = [], []
    first = read(0, T0, home_ip(rng), tia=T0 - 600)  # watching begins
    for h in range(10):
        for j in range(12):  # twelve new adopted sessions every hour
            i = 1 + h * 100 + j
            t = T0 + h * HOUR + j * 250 + 30
            (early if h < 5 else late).append(read(i, t, home_ip(rng), tia=T0 - 3000))
    eng = engine(lifetime=float(life))
    quiet = pages(run(eng, [first, *early]))
    assert quiet == []
    loud = pages(run(eng, late))
    assert any(a["entity"] == {"kind": "key", "id": KEY} for a in loud), loud
    assert all(any(x["feature"] == "population" and x["observed"] == "adopted"
                   for x in a["evidence"]) for a in loud)


def test_many_quiet_addresses_reading_other_customers_add_up_on_the_key() -> None:
    """Forty accounts on forty home lines each read three other customers in a day: no
    address or account reaches any count, the key's day count of cross-customer reads does."""
    rng = random.Random(5)
    events = []
    for i in range(40):
        ip, t = home_ip(rng), T0 + i * 1200
        for j in range(3):
            events.append(read(i, t + 60 * j, ip, subject=f"c-{500_000 + 3 * i + j:07d}"))
    alerts = pages(run(engine(), events))
    on_key = [a for a in alerts if a["entity"] == {"kind": "key", "id": KEY}]
    assert on_key and on_key[0]["severity"] == "warning"
    day = next(x for x in on_key[0]["evidence"] if x["feature"] == "customers_last_day")
    assert day["observed"] < 40  # warned long before all 120 were read


def test_steady_vpn_users_abroad_learn_a_baseline_and_stay_quiet() -> None:
    """Privacy-VPN customers on hosting exits abroad every hour for two days: their own
    baseline, not a page; then a fleet reading 60 customers in an hour pages critical."""
    rng = random.Random(7)
    events = []
    for h in range(48):
        for j in range(rng.randint(3, 8)):
            i = h * 10 + j
            events.append(read(i, T0 + h * HOUR + 400 * j + 10, f"212.102.40.{2 + i % 200}"))
    eng = engine()
    assert pages(run(eng, events)) == []
    fleet = [read(10_000 + i, T0 + 48 * HOUR + 30 * i + 5, f"159.89.{i}.7", sid=None)
             for i in range(60)]
    crit = [a for a in run(eng, fleet) if a["severity"] == "critical"]
    assert crit


def test_state_per_tracked_entity_is_under_a_kibibyte_and_survives_a_checkpoint() -> None:
    rng = random.Random(11)
    events = [read(i, T0 + 20 * i, f"58.120.{i % 250}.{1 + i // 250}", sid=None)
              for i in range(1500)]  # 250 subnets, one busy key, resource and AS
    eng = engine()
    run(eng, events)
    det = eng.detectors["spread_access"]
    aggs = det._aggs  # type: ignore[attr-defined]
    assert len(aggs) >= 250
    size = len(pickle.dumps(aggs, protocol=pickle.HIGHEST_PROTOCOL))
    assert size / len(aggs) < 1024
    # through the worker's own checkpoint format (allow-listed classes, sealed), as after a restart
    from detectors.geo import default_geo
    from streams import snapshot as S
    from streams.checkpoint import restore, snapshot

    keys = S.StateKeys(["test-spread-key-0123456789"])
    blob = snapshot(eng, {"data-access": 1}, keys=keys, context="t/0")
    engine_back, _ = restore(blob, default_geo(), eng.ctx.directory, keys=keys, context="t/0")
    back = engine_back.detectors["spread_access"]
    k = ("no_session", "key", KEY)
    assert abs(back._aggs[k].cur_d.get_estimate() - aggs[k].cur_d.get_estimate()) < 1e-9
    assert rng  # seeded


def test_a_late_event_from_the_previous_hour_does_not_reset_the_counts() -> None:
    """Out-of-order input (within the engine's lateness) must not move an entity's hour back
    and throw away the current hour's count."""
    eng = engine()
    on_time = [read(i, T0 + HOUR + 10 * i, f"58.120.{i}.9", sid=None) for i in range(9)]
    late = read(100, T0 + HOUR - 5, "58.120.200.9", sid=None)
    more = read(101, T0 + HOUR + 200, "58.120.201.9", sid=None)
    alerts = []
    for e in [*on_time, late, more]:
        alerts += eng.process_obj(e)[0]
    warned = [a for a in alerts if a["entity"] == {"kind": "key", "id": KEY}]
    assert warned and warned[0]["severity"] == "warning"  # 11 customers >= the floor of 10


def test_the_sweep_forgets_exactly_the_aggregates_idle_for_two_idle_periods() -> None:
    """The sweep reads a queue instead of the whole table (issue 14, speed); it must forget
    the same aggregates the whole-table rule does (``last`` before ``now - 2 idle``): those
    read again keep their place, an evicted and re-made one is not lost, and after a
    checkpoint (the queue is not in it) the queue is rebuilt from the table."""
    from detectors.geo import default_geo
    from streams import snapshot as S
    from streams.checkpoint import restore, snapshot

    rng = random.Random(17)
    idle = HOUR
    eng = engine(idle=idle)
    det = eng.detectors["spread_access"]
    # reads of other customers under 60 keys (a resource, the global class and each key):
    # each key active in a few random half-hours of 16 hours
    events = []
    for k in range(60):
        for slot in rng.sample(range(32), 3):
            t = T0 + slot * 1800 + rng.randrange(1800)
            events.append(read(k * 100 + slot, t, home_ip(rng), subject="c-9999999",
                               key=f"k-{k}"))
    events.sort(key=lambda e: e["ts"])
    keys = S.StateKeys(["test-spread-key-0123456789"])
    swept = 0
    for i, e in enumerate(events):
        _, rej = eng.process_obj(e)
        assert rej is None, rej
        if i == len(events) // 3:  # evict half, then the keys come again and are made anew
            det.shed(len(det._aggs) // 2)
        if i == len(events) // 2:  # through the worker's checkpoint: no queue in it
            blob = snapshot(eng, {"data-access": 1}, keys=keys, context="t/0")
            eng, _ = restore(blob, default_geo(), eng.ctx.directory, keys=keys, context="t/0")
            det = eng.detectors["spread_access"]
            assert det.__dict__.get("_due") is None
        now = e["ts"] + 1
        lasts = {k: a.last for k, a in det._aggs.items()}
        det.expire(now)
        kept = {k for k, last in lasts.items() if not last < now - 2 * idle}
        assert set(det._aggs) == kept
        swept += len(lasts) - len(kept)
    assert swept >= 10  # the sweeps did forget aggregates along the way


def test_a_read_folded_at_once_counts_as_its_observation_would() -> None:
    """In an engine that relays nothing of the observation's kind (``replay``, one partition)
    a read is counted at once, without the observation's message: the same alerts, in the same
    order, as when every read goes through ``on_observation``. Mixed traffic: reads without a
    session id, adopted tokens, customers reading others, hosting abroad with the home
    countries learnt as it goes, and a ring that pages."""
    from detectors.context import Context

    class Relaying(Context):  # observations made as for a relay, folded by the same engine
        @property  # type: ignore[override]
        def relayed(self) -> tuple[str, ...]:
            return ("asn",)

        @relayed.setter
        def relayed(self, v: tuple[str, ...]) -> None:
            pass

    rng = random.Random(11)
    events = []
    for i in range(1500):
        t = T0 + i * 40 + rng.random()
        r = rng.random()
        ip = (f"52.95.{rng.randrange(0, 4)}.{rng.randrange(1, 250)}" if r < 0.15
              else home_ip(rng))
        if r < 0.35:  # a ring of forty accounts reading other customers
            e = read(rng.randrange(40), t, ip, subject=f"c-{rng.randrange(10**6):07d}")
        elif r < 0.5:
            e = read(i, t, ip, sid=None)
        elif r < 0.6:
            e = read(i, t, ip, tia=T0 - 3600)
        else:
            e = read(i, t, ip)
        events.append(e)
    outs = []
    for observe in (False, True):
        eng = Engine(EngineConfig(detectors=("spread_access",)))
        if observe:
            ctx = eng.ctx
            ctx.__class__ = Relaying
        made = []
        det = eng.detectors["spread_access"]
        real = det.on_observation
        det.on_observation = lambda o, c, _r=real, _m=made: _m.append(1) or _r(o, c)  # type: ignore[method-assign]
        outs.append(run(eng, events))
        assert bool(made) == observe  # the observation path ran only where asked
    assert outs[0] == outs[1]
    assert pages(outs[0]), "the ring pages"


def test_with_home_countries_fixed_hosting_abroad_is_counted() -> None:
    """With ``home_countries`` configured, reads with fresh, issued-looking customer tokens
    (own records, a session id) from hosting networks abroad are the ``hosting_abroad``
    population: a fleet reading 60 customers in an hour pages, and the same reads from
    hosting networks at home do not. (The population was dropped between ``on_access`` and
    the fold when the home countries were fixed: only the learnt case counted it.)"""
    fleet = [read(10_000 + i, T0 + 30 * i + 5, f"159.89.{i}.7") for i in range(60)]
    got = pages(run(engine(), fleet))
    assert got and all(a["detector"] == "spread_access" for a in got)
    assert any("hosting_abroad" in str(a["evidence"]) for a in got)
    at_home = engine(home_countries=("US", "DE"))  # the same fleet, its networks at home
    assert pages(run(at_home, fleet)) == []


def _adopted_flow(per_hour: Any, hours: int, life_h: int) -> list[dict]:
    """Watching begins at T0 with a key whose tokens live ``life_h`` hours (``key_issued``'s
    ``max_token_lifetime_s``); in hour h, ``per_hour(h)`` new customers read through tokens
    issued before the watch (adopted), each from its own home line."""
    rng = random.Random(11)
    evs: list[dict] = [{"event_id": "k", "ts": T0, "change": "key_issued", "key_id": KEY,
                        "max_token_lifetime_s": life_h * HOUR}]
    for h in range(hours):
        n = per_hour(h)
        for j in range(n):
            i = 1 + h * 1000 + j
            evs.append(read(i, T0 + h * HOUR + 30 + j * (HOUR - 60) // max(n, 1),
                            home_ip(rng), tia=T0 - 600))
    return evs


def test_adopted_tokens_that_thin_out_within_their_key_lifetime_stay_quiet() -> None:
    """Tokens issued before the watch keep appearing until the key's lifetime (12 h here) has
    passed since it began, fewer every hour as they expire. Late in the lifetime the last day
    still holds the busy early hours: the day's allowance is the hourly one summed over the
    day, not 24 times the current hour's (which paged red team B's normal traffic at ~11.4 h:
    2 customers in the hour, 137 in the day)."""
    flow = _adopted_flow(lambda h: round(40 * (1 - h / 12)), 12, 12)
    assert pages(run(engine(), flow)) == []


def test_adopted_tokens_that_do_not_thin_out_page_late_in_the_key_lifetime() -> None:
    """The same key, but forty new adopted customers every hour all along: a population fixed
    at the start cannot keep that rate once most of its tokens have expired."""
    loud = pages(run(engine(), _adopted_flow(lambda h: 40, 12, 12)))
    assert loud and all(any(x["feature"] == "population" and x["observed"] == "adopted"
                            for x in a["evidence"]) for a in loud)
    assert any(a["entity"] == {"kind": "key", "id": KEY} for a in loud)


def test_an_alert_shows_the_latest_reads_not_the_aggregates_first() -> None:
    """A day-long count names the reads that raised it: the alert's event ids are the latest
    reads counted (ending with the one that crossed), not those that opened the aggregate."""
    rng = random.Random(7)
    events = []
    for i in range(40):
        ip, t = home_ip(rng), T0 + i * 1200
        for j in range(3):
            events.append(read(i, t + 60 * j, ip, subject=f"c-{500_000 + 3 * i + j:07d}"))
    alerts = pages(run(engine(), events))
    on_key = [a for a in alerts if a["entity"] == {"kind": "key", "id": KEY}]
    assert on_key
    first = on_key[0]
    by_id = {e["event_id"]: e for e in events}
    assert len(first["event_ids"]) == 5
    times = [by_id[i]["ts"] for i in first["event_ids"]]
    assert times == sorted(times)
    assert events[0]["event_id"] not in first["event_ids"]
    crossing = max(e["ts"] for e in events if e["ts"] <= first_ts(first))
    assert times[-1] == crossing


def first_ts(alert: dict) -> float:
    from datetime import datetime

    return datetime.fromisoformat(alert["ts"].replace("Z", "+00:00")).timestamp()
