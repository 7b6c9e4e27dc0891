"""The attacks: each plans itself against the world, then streams its labelled events and
yields one ground-truth record.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from .config import ATTACKS, ENTITY_KINDS, EXPECTED_DETECTORS, SimulationError
from .events import (
    HOUR,
    MIN,
    SEC,
    _access,
    _hex,
    _identity,
    _key_snapshot,
    _login,
    _ordered,
    _sorted,
    fmt_ts,
)
from .networks import _FAR, NETWORKS, Prefix
from .populations import (
    _APP_UAS,
    _CUSTOMER_RESOURCES,
    _CUSTOMER_WEIGHTS,
    _STAFF_RESOURCES,
    _STAFF_UA,
    _WEB_UAS,
    CUSTOMER_KEY,
    STAFF_KEY,
)
from .world import _World


class _Attack:
    """One injected attack: plans itself against the world, then streams labeled events.

    ``own_kinds`` are the entity kinds that belong to the attacker (collected from its events
    into the truth record); kinds shared with normal traffic (the office IP, the active
    customer key) are left out so that they do not count as attack entities.
    """

    own_kinds: tuple[str, ...] = ("actor", "src_ip", "account", "session")

    def __init__(self, world: _World, name: str, rng: random.Random) -> None:
        self.w = world
        self.name = name
        self.rng = rng
        self.t_start = world.t0 + round(world.cfg.attack_start_hour * HOUR)
        self.malicious: list[dict] = []
        self.context: list[dict] = []  # setup facts (key issued, termination), label normal
        self.params: dict[str, Any] = {}
        self.plan()

    def plan(self) -> None:  # pragma: no cover - overridden
        pass

    def generate(self) -> Iterator[tuple[int, dict]]:  # pragma: no cover - overridden
        return iter(())

    def events(self) -> Iterator[tuple[int, dict]]:
        t1 = self.w.t1
        for t, ev in self.generate():
            if t >= t1:
                continue
            if ev["label"] != "normal":
                self.malicious.append(ev)
            yield t, ev

    def bad(self, t: int, ev: dict) -> tuple[int, dict]:
        ev["label"] = self.name
        return t, ev

    def ctx(self, t: int, ev: dict) -> tuple[int, dict]:
        self.context.append(ev)
        return t, ev

    def truth(self) -> dict:
        fields = {
            "actor": ("actor_id",),
            "src_ip": ("src_ip",),
            "key": ("key_id",),
            "account": ("account_id",),
            "session": ("session_id",),
        }
        entities: dict[str, list[str]] = {}
        for kind in ENTITY_KINDS:
            seen: dict[str, None] = {}
            if kind in self.own_kinds:
                for ev in self.malicious:
                    for f in fields[kind]:
                        v = ev.get(f)
                        if v is not None and not (kind == "account" and "change" in ev):
                            seen[v] = None
            entities[kind] = list(seen)
        victims: dict[str, None] = {}
        for ev in self.malicious:
            if "subject_id" in ev:
                victims[ev["subject_id"]] = None
        if not victims:
            for ev in self.malicious:
                if ev.get("outcome") == "success":
                    victims[ev["account_id"]] = None
        ms = self.malicious
        return {
            "attack": self.name,
            "description": ATTACKS[self.name],
            "start_ts": ms[0]["ts"] if ms else None,
            "end_ts": ms[-1]["ts"] if ms else None,
            "event_ids": [ev["event_id"] for ev in ms],
            "entities": entities,
            "expected_detectors": list(EXPECTED_DETECTORS[self.name]),
            "victims": list(victims),
            "context_event_ids": [ev["event_id"] for ev in self.context if ev["event_id"]],
            "params": dict(self.params),
        }


class _Coupang(_Attack):
    own_kinds: tuple[str, ...] = ("actor", "src_ip", "key", "account", "session")
    key = "kid-legacy-2019"
    key_issued = "2019-03-14T01:20:00Z"
    predating = False
    active_key = False

    def plan(self) -> None:
        w, rng = self.w, self.rng
        outside = [p for p in NETWORKS["hosting"] if p.country != w.cfg.home_country]
        prefixes = rng.sample(outside, rng.randint(3, 5))
        self.servers = [p.ip(rng) for p in prefixes]
        self.weights = [rng.uniform(0.5, 2.0) for _ in self.servers]
        self.victim_pool = list(range(len(w.customers)))
        rng.shuffle(self.victim_pool)
        self.n_victims = max(10, int(0.6 * len(w.customers)))
        self.engineer = None if self.active_key else w.fresh_employee_id(rng, 300, 499)
        if self.active_key:
            self.key = CUSTOMER_KEY
            self.own_kinds = ("actor", "src_ip", "account", "session")
        self.params = {
            "servers": list(self.servers),
            "server_countries": [p.country for p in prefixes],
            "key_id": self.key,
            "departed_engineer": self.engineer,
            "planned_victims": self.n_victims,
        }

    def generate(self) -> Iterator[tuple[int, dict]]:
        return _ordered(self._visits())

    def _visits(self) -> Iterator[tuple[int, list[tuple[int, dict]]]]:
        w, rng = self.w, self.rng
        t0 = self.t_start + min(rng.randrange(0, 10) * MIN, (w.t1 - self.t_start) // 4)
        if self.engineer is not None:
            t = w.t0
            yield t, [self.ctx(t, _key_snapshot(t, self.key, self.engineer, self.key_issued))]
            t = min(w.t0 + rng.randrange(2, 10) * MIN, t0)
            yield t, [self.ctx(t, _identity(t, "principal_terminated", principal_id=self.engineer))]
        # A slow ramp: ~3 forged page views a minute growing to ~40 (faster if time is short).
        remaining = max(MIN, w.t1 - t0)
        d_min = min(max(20.0, self.n_victims / 14.3), remaining / MIN)
        factor = self.n_victims / (d_min * 14.3)
        r0, r1 = 3.0 * factor, 40.0 * factor
        span = d_min * MIN
        t = t0
        for vi in self.victim_pool[: self.n_victims]:
            frac = min(1.0, (t - t0) / span)
            rate = r0 * (r1 / r0) ** frac  # per minute
            t += 1 + int(rng.expovariate(rate / MIN))
            if t >= w.t1:
                return
            cid = w.customers[vi].cid
            ip = rng.choices(self.servers, self.weights)[0]
            sid = f"s-{_hex(rng)}"
            if self.predating:
                issued = w.t0 - rng.randrange(10, 30 * 24 * 60) * MIN
            else:
                issued = t - rng.randrange(20, 300) * SEC
            iat = fmt_ts(issued)
            ua = rng.choice(_APP_UAS)
            visit: list[tuple[int, dict]] = []
            tt = t
            for _ in range(1 if rng.random() < 0.7 else 2):
                visit.append(
                    self.bad(
                        tt,
                        _access(
                            tt,
                            cid,
                            "customer",
                            cid,
                            "address",
                            "read",
                            ip,
                            self.name,
                            sid,
                            iat,
                            self.key,
                            ua,
                        ),
                    )
                )
                tt += rng.randrange(800, 5000)
            if rng.random() < 0.2:
                visit.append(
                    self.bad(
                        tt,
                        _access(
                            tt,
                            cid,
                            "customer",
                            cid,
                            "order_history",
                            "read",
                            ip,
                            self.name,
                            sid,
                            iat,
                            self.key,
                            ua,
                        ),
                    )
                )
            yield t, visit


class _CoupangPredating(_Coupang):
    key = "kid-legacy-2018"
    key_issued = "2018-05-21T06:00:00Z"
    predating = True


class _CoupangActiveKey(_Coupang):
    active_key = True


class _Insider(_Attack):
    own_kinds = ("actor", "account", "session")  # office IP and staff key are shared

    def plan(self) -> None:
        w, rng = self.w, self.rng
        self.emp = w.pick_employee(rng, "support", after=self.t_start)
        shifts = [(a, b) for a, b, k in self.emp.shifts if k == "shift" and b > self.t_start]
        shift = next((x for x in shifts if x[0] >= self.t_start), shifts[0] if shifts else None)
        if shift is None:
            login, end = self.t_start, min(w.t1, self.t_start + 9 * HOUR)
        else:
            w.skip_shifts.add((self.emp.eid, shift[0]))
            login, end = max(shift[0], self.t_start), shift[1]
        self.login, self.end = login, end
        self.n = min(int(0.8 * len(w.customers)), rng.randint(2000, 3500))
        self.params = {
            "employee": self.emp.eid,
            "distinct_customers": self.n,
            "shift": [fmt_ts(login), fmt_ts(end)],
        }

    def generate(self) -> Iterator[tuple[int, dict]]:
        evs = self.w.shift_events(
            self.rng, self.emp, self.login, self.end, "shift", self.name, lookups=self.n
        )
        return _sorted(evs)


class _DepartedKey(_Attack):
    own_kinds = ("actor", "src_ip", "key", "account", "session")

    def plan(self) -> None:
        w, rng = self.w, self.rng
        try:  # an engineer who works in the stream until the termination...
            self.owner = w.pick_employee(rng, "engineer").eid
        except SimulationError:  # ...or, in a tiny company, one who is not on shift today
            self.owner = w.fresh_employee_id(rng, 100, 299)
        self.t_term = self.t_start
        w.terminated_at[self.owner] = self.t_term
        self.actor = "svc-reporting"
        self.key = "key-svc-reporting-legacy"
        self.ip = rng.choice(NETWORKS["kr_broadband"]).ip(rng)
        self.n = min(len(w.customers), rng.randint(150, 400))
        self.params = {
            "owner": self.owner,
            "key_id": self.key,
            "actor": self.actor,
            "terminated": fmt_ts(self.t_term),
            "src_ip": self.ip,
        }

    def generate(self) -> Iterator[tuple[int, dict]]:
        w, rng = self.w, self.rng
        out: list[tuple[int, dict]] = []
        t = w.t0
        out.append(self.ctx(t, _key_snapshot(t, self.key, self.owner, "2023-02-13T05:00:00Z")))
        out.append(
            self.ctx(
                self.t_term,
                _identity(self.t_term, "principal_terminated", principal_id=self.owner),
            )
        )
        # Before: an hourly internal report job uses the key (legitimately).
        job_ip = f"10.19.{rng.randrange(0, 8)}.{rng.randrange(2, 250)}"
        h = w.t0 + rng.randrange(1, 30) * MIN
        while h < self.t_term:
            for _ in range(rng.randint(5, 20)):
                t = h + rng.randrange(0, 5 * MIN)
                if t < self.t_term:
                    cid = rng.choice(w.customers).cid
                    out.append(
                        (
                            t,
                            _access(
                                t,
                                self.actor,
                                "service",
                                cid,
                                "order_history",
                                "read",
                                job_ip,
                                "normal",
                                key=self.key,
                            ),
                        )
                    )
            h += HOUR
        # After: the key reads customers from someone's home connection.
        room = w.t1 - self.t_term
        t = self.t_term + min(rng.randrange(20, 90) * MIN, room // 4)
        gap = max(SEC, min(rng.randrange(30, 90) * MIN, room // 2) // max(1, self.n))
        for s in rng.sample(range(len(w.customers)), self.n):
            t += 1 + int(rng.expovariate(1 / gap))
            cid = w.customers[s].cid
            res = rng.choice(("address", "phone", "email", "profile"))
            action = "export" if rng.random() < 0.3 else "read"
            out.append(
                self.bad(
                    t,
                    _access(
                        t,
                        self.actor,
                        "service",
                        cid,
                        res,
                        action,
                        self.ip,
                        self.name,
                        key=self.key,
                        ua="python-requests/2.32.3",
                        records=rng.randint(1, 3),
                    ),
                )
            )
        return _sorted(out)


class _TerminatedSession(_Attack):
    own_kinds = ("actor", "account", "session")

    def plan(self) -> None:
        w, rng = self.w, self.rng
        self.emp = w.pick_employee(rng, "support")
        shift = next(
            ((a, b) for a, b, k in self.emp.shifts if k == "shift" and b > self.t_start + 30 * MIN),
            None,
        )
        if shift is None:
            login, end = self.t_start, min(w.t1, self.t_start + 9 * HOUR)
        else:
            login, end = shift
        self.login, self.end = login, end
        self.t_term = max(self.t_start, login + rng.randrange(20, 120) * MIN)
        self.t_term = min(self.t_term, max(login + MIN, w.t1 - 30 * MIN))
        w.terminated_at[self.emp.eid] = self.login  # the attack owns this and later shifts
        self.params = {"employee": self.emp.eid, "terminated": fmt_ts(self.t_term)}

    def generate(self) -> Iterator[tuple[int, dict]]:
        w, rng = self.w, self.rng
        evs = w.shift_events(rng, self.emp, self.login, self.t_term, "shift", "normal")
        out = [(t, ev) for t, ev in evs if t < self.t_term]
        login_ev = out[0][1]
        sid, ip = login_ev["session_id"], login_ev["src_ip"]
        out.append(
            self.ctx(
                self.t_term,
                _identity(self.t_term, "principal_terminated", principal_id=self.emp.eid),
            )
        )
        issued = login_ev["ts"]
        t = self.t_term + rng.randrange(1, 10) * MIN
        stop = t + rng.randrange(60, 120) * MIN
        n_cust = len(w.customers)
        while t < stop:
            cid = w.customers[rng.randrange(n_cust)].cid
            for res in rng.sample(_STAFF_RESOURCES, rng.randint(1, 3)):
                out.append(
                    self.bad(
                        t,
                        _access(
                            t,
                            self.emp.eid,
                            "employee",
                            cid,
                            res,
                            "read",
                            ip,
                            self.name,
                            sid,
                            issued,
                            STAFF_KEY,
                            _STAFF_UA,
                        ),
                    )
                )
                t += rng.randrange(2, 20) * SEC
            t += rng.randrange(10, 60) * SEC
        return _sorted(out)


class _Stuffing(_Attack):
    def plan(self) -> None:
        w, rng = self.w, self.rng
        outside = [p for p in NETWORKS["hosting"] if p.country != w.cfg.home_country]
        self.ips = [p.ip(rng) for p in rng.sample(outside, rng.randint(1, 3))]
        n_cust = len(w.customers)
        self.n = min(3000, max(300, int(n_cust * 1.2)))
        existing = rng.sample(range(n_cust), min(n_cust, int(self.n * 0.7)))
        width = max(6, len(str(n_cust)))
        unknown = [
            f"c-{k:0{width}d}"
            for k in rng.sample(range(n_cust, n_cust * 10 + 1000), self.n - len(existing))
        ]
        self.accounts = [w.customers[i].cid for i in existing] + unknown
        rng.shuffle(self.accounts)
        home = [i for i in existing if w.customers[i].role == "home" and i not in w.reserved]
        self.taken = set(rng.sample(home, min(len(home), rng.randint(3, 6))))
        w.reserved.update(self.taken)
        self.taken_ids = {w.customers[i].cid for i in self.taken}
        self.params = {
            "src_ips": list(self.ips),
            "attempts": self.n,
            "takeovers": sorted(self.taken_ids),
        }

    def generate(self) -> Iterator[tuple[int, dict]]:
        rng = self.rng
        out: list[tuple[int, dict]] = []
        t = self.t_start + min(rng.randrange(0, 30) * MIN, (self.w.t1 - self.t_start) // 6)
        per_s = rng.uniform(3.0, 8.0)
        uas = rng.sample(_WEB_UAS, 3)
        for acct in self.accounts:
            t += 1 + int(rng.expovariate(per_s / SEC))
            ip = rng.choice(self.ips)
            ua = rng.choice(uas)
            if acct in self.taken_ids:
                sid = f"s-{_hex(rng)}"
                dev = f"d-{_hex(rng, 48)}"
                out.append(
                    self.bad(
                        t,
                        _login(
                            t, acct, "customer", "success", ip, "password", self.name, sid, ua, dev
                        ),
                    )
                )
                tt = t + rng.randrange(1, 10) * MIN
                for res in ("profile", "address", "payment", "address"):
                    out.append(
                        self.bad(
                            tt,
                            _access(
                                tt,
                                acct,
                                "customer",
                                acct,
                                res,
                                "read",
                                ip,
                                self.name,
                                sid,
                                fmt_ts(t),
                                CUSTOMER_KEY,
                                ua,
                            ),
                        )
                    )
                    tt += rng.randrange(3, 40) * SEC
            else:
                out.append(
                    self.bad(
                        t, _login(t, acct, "customer", "failure", ip, "password", self.name, ua=ua)
                    )
                )
        return _sorted(out)


class _Spray(_Attack):
    def plan(self) -> None:
        w, rng = self.w, self.rng
        asn_name = "DIGITALOCEAN-ASN"
        prefixes = [p for p in NETWORKS["hosting"] if p.asn_name == asn_name]
        self.ips = [rng.choice(prefixes).ip(rng) for _ in range(rng.randint(40, 80))]
        n_cust = len(w.customers)
        self.n = min(n_cust, 400)
        picks = rng.sample(range(n_cust), self.n)
        self.accounts = [w.customers[i].cid for i in picks]
        home = [i for i in picks if w.customers[i].role == "home" and i not in w.reserved]
        self.hits = {w.customers[i].cid for i in rng.sample(home, min(len(home), 2))}
        w.reserved.update(i for i in picks if w.customers[i].cid in self.hits)
        self.params = {
            "asn_name": asn_name,
            "ips": len(self.ips),
            "attempts": self.n,
            "successes": sorted(self.hits),
        }

    def generate(self) -> Iterator[tuple[int, dict]]:
        w, rng = self.w, self.rng
        out: list[tuple[int, dict]] = []
        t = self.t_start + min(rng.randrange(0, 20) * MIN, (w.t1 - self.t_start) // 6)
        gap = min(55 * SEC, max(SEC, (w.t1 - t) // (self.n + 1)))
        ua = rng.choice(_WEB_UAS)
        for acct in self.accounts:
            t += 1 + int(rng.uniform(0.4, 1.6) * gap)
            ip = rng.choice(self.ips)
            if acct in self.hits:
                out.append(
                    self.bad(
                        t,
                        _login(
                            t,
                            acct,
                            "customer",
                            "success",
                            ip,
                            "password",
                            self.name,
                            f"s-{_hex(rng)}",
                            ua,
                        ),
                    )
                )
            else:
                out.append(
                    self.bad(
                        t, _login(t, acct, "customer", "failure", ip, "password", self.name, ua=ua)
                    )
                )
        return _sorted(out)


class _ImpossibleTravel(_Attack):
    def plan(self) -> None:
        w, rng = self.w, self.rng
        k = min(12, len(w.customers) // 10)
        self.victims = [w.pick_customer(rng) for _ in range(k)]
        self.params = {"accounts": [w.customers[i].cid for i in self.victims]}

    def generate(self) -> Iterator[tuple[int, dict]]:
        w, rng = self.w, self.rng
        out: list[tuple[int, dict]] = []
        lo = self.t_start
        hi = max(lo + 1, min(w.t1 - 90 * MIN, lo + (w.t1 - lo) // 2))
        far_prefixes = [p for p in NETWORKS["residential_abroad"] if p.country in _FAR]
        countries = []
        for i in self.victims:
            c = w.customers[i]
            t = rng.randrange(lo, hi)
            device, ua, _ = c.devices[0]
            ip = c.home_ip if c.net in ("broadband", "v6") else c.prefix.ip(rng)
            sid = f"s-{_hex(rng)}"
            out.append(
                (
                    t,
                    _login(
                        t, c.cid, "customer", "success", ip, "password", "normal", sid, ua, device
                    ),
                )
            )
            tt = t
            for _ in range(rng.randint(1, 4)):
                tt += rng.randrange(5, 90) * SEC
                out.append(
                    (
                        tt,
                        _access(
                            tt,
                            c.cid,
                            "customer",
                            c.cid,
                            "order_history",
                            "read",
                            ip,
                            "normal",
                            sid,
                            fmt_ts(t),
                            CUSTOMER_KEY,
                            ua,
                        ),
                    )
                )
            prefix = rng.choice(far_prefixes)
            countries.append(prefix.country)
            far_ip = prefix.ip(rng)
            t2 = t + min(rng.randrange(5, 40) * MIN, max(MIN, (w.t1 - t) // 3))
            sid2 = f"s-{_hex(rng)}"
            ua2 = rng.choice(_WEB_UAS)
            dev2 = f"d-{_hex(rng, 48)}"
            out.append(
                self.bad(
                    t2,
                    _login(
                        t2,
                        c.cid,
                        "customer",
                        "success",
                        far_ip,
                        "password",
                        self.name,
                        sid2,
                        ua2,
                        dev2,
                    ),
                )
            )
            tt = t2
            for res in rng.sample(
                ("profile", "address", "payment", "order_history"), rng.randint(2, 4)
            ):
                tt += rng.randrange(5, 120) * SEC
                out.append(
                    self.bad(
                        tt,
                        _access(
                            tt,
                            c.cid,
                            "customer",
                            c.cid,
                            res,
                            "read",
                            far_ip,
                            self.name,
                            sid2,
                            fmt_ts(t2),
                            CUSTOMER_KEY,
                            ua2,
                        ),
                    )
                )
        self.params["far_countries"] = countries
        return _sorted(out)


class _SessionHijack(_Attack):
    def plan(self) -> None:
        w, rng = self.w, self.rng
        self.victim = w.pick_customer(rng)
        picks = rng.sample(
            [
                p
                for p in NETWORKS["hosting"] + NETWORKS["residential_abroad"]
                if p.country != w.cfg.home_country
            ],
            12,
        )
        chosen: list[Prefix] = []
        for p in picks:
            if p.country not in {q.country for q in chosen}:
                chosen.append(p)
        self.prefixes = chosen[: rng.randint(3, 4)]
        self.params = {
            "account": w.customers[self.victim].cid,
            "countries": [p.country for p in self.prefixes],
        }

    def generate(self) -> Iterator[tuple[int, dict]]:
        w, rng = self.w, self.rng
        c = w.customers[self.victim]
        out: list[tuple[int, dict]] = []
        room = w.t1 - self.t_start
        t = self.t_start + min(rng.randrange(0, 60) * MIN, room // 6)
        device, ua, _ = c.devices[0]
        ip = c.home_ip if c.net in ("broadband", "v6") else c.prefix.ip(rng)
        sid = f"s-{_hex(rng)}"
        iat = fmt_ts(t)
        self.params["session"] = sid
        out.append(
            (t, _login(t, c.cid, "customer", "success", ip, "password", "normal", sid, ua, device))
        )
        tt = t
        while tt < t + 40 * MIN:  # the owner keeps shopping at home
            tt += rng.randrange(30, 120) * SEC
            res = rng.choices(_CUSTOMER_RESOURCES, _CUSTOMER_WEIGHTS)[0]
            out.append(
                (
                    tt,
                    _access(
                        tt,
                        c.cid,
                        "customer",
                        c.cid,
                        res,
                        "read",
                        ip,
                        "normal",
                        sid,
                        iat,
                        CUSTOMER_KEY,
                        ua,
                    ),
                )
            )
        for p in self.prefixes:
            hip = p.ip(rng)
            hua = rng.choice(_WEB_UAS)
            th = t + min(rng.randrange(3, 10) * MIN, room // 6)
            for _ in range(rng.randint(8, 16)):
                th += rng.randrange(20, 180) * SEC
                res = rng.choice(("address", "payment", "order_history", "profile", "email"))
                out.append(
                    self.bad(
                        th,
                        _access(
                            th,
                            c.cid,
                            "customer",
                            c.cid,
                            res,
                            "read",
                            hip,
                            self.name,
                            sid,
                            iat,
                            CUSTOMER_KEY,
                            hua,
                        ),
                    )
                )
        return _sorted(out)


_ATTACK_CLASSES: dict[str, type[_Attack]] = {
    "coupang": _Coupang,
    "coupang_predating": _CoupangPredating,
    "coupang_active_key": _CoupangActiveKey,
    "insider": _Insider,
    "departed_key": _DepartedKey,
    "terminated_session": _TerminatedSession,
    "stuffing": _Stuffing,
    "spray": _Spray,
    "impossible_travel": _ImpossibleTravel,
    "session_hijack": _SessionHijack,
}
