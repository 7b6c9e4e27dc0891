"""The world: everything planned up front from the seed (the population, its trips, shifts and
services, the attacks' plans against it), then streamed lazily as one time-ordered stream.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any, Protocol

from .config import ATTACKS, SimConfig, SimulationError
from .events import (
    DAY,
    HOUR,
    MIN,
    SEC,
    _access,
    _hex,
    _identity,
    _key_snapshot,
    _login,
    _ordered,
    _poisson,
    fmt_ts,
    parse_ts,
)
from .networks import _HOME, _TRIPS, NETWORKS, Prefix
from .populations import (
    _APP_UAS,
    _CUSTOMER_RESOURCES,
    _CUSTOMER_WEIGHTS,
    _DIURNAL,
    _DIURNAL_MAX,
    _SERVICE_NAMES,
    _SERVICE_PROFILE,
    _STAFF_RESOURCES,
    _STAFF_UA,
    _WEB_UAS,
    CUSTOMER_KEY,
    STAFF_KEY,
    _Customer,
    _Employee,
)


class Attack(Protocol):
    """What the world needs of an injected attack (:mod:`simulation.attacks` builds them from
    the world, their name and their own seeded generator): its events, then its truth."""

    def events(self) -> Iterator[tuple[int, dict]]: ...

    def truth(self) -> dict: ...


AttackClass = Callable[["_World", str, random.Random], Attack]


class _World:
    """Everything planned up front from the seed; streams expand it lazily."""

    def __init__(self, cfg: SimConfig, attack_classes: Mapping[str, AttackClass]) -> None:
        _validate(cfg)
        self.cfg = cfg
        self.seed = cfg.seed
        self.t0 = parse_ts(cfg.start)
        self.t1 = self.t0 + round(cfg.hours * HOUR)
        self.utc_off = _HOME[cfg.home_country]["utc_offset_h"] * HOUR
        self.customers: list[_Customer] = []
        self.employees: list[_Employee] = []
        self.services: list[str] = []
        self.reserved: set[int] = set()  # customer indexes attacks took over as victims
        self.terminated_at: dict[str, int] = {}  # employee id -> termination (ms)
        self.skip_shifts: set[tuple[str, int]] = set()  # (employee, login ms) attacks own
        self.preopen: list[str] = []
        self.revoked_sessions: list[str] = []
        self.former_staff: list[str] = []
        self.new_hires: list[str] = []
        self.used_employee_ids: set[str] = set()
        self._plan_customers()
        self._plan_employees()
        self._plan_services()
        self.attacks: list[Attack] = []
        arng = random.Random(f"{self.seed}/attacks")
        for name in cfg.attacks:
            self.attacks.append(attack_classes[name](self, name, random.Random(arng.random())))

    # -- time helpers ------------------------------------------------------------------------

    def local_hour(self, ms: int) -> int:
        return ((ms + self.utc_off) // HOUR) % 24

    def local_days(self) -> Iterator[int]:
        """UTC ms of each local midnight from the one before start to the end."""
        d = ((self.t0 + self.utc_off) // DAY) * DAY - self.utc_off
        while d < self.t1:
            yield d
            d += DAY

    def diurnal_time(self, rng: random.Random, lo: int, hi: int) -> int:
        """A time in [lo, hi) drawn by rejection against the customer diurnal curve."""
        for _ in range(64):
            t = rng.randrange(lo, hi)
            if rng.random() * _DIURNAL_MAX <= _DIURNAL[self.local_hour(t)]:
                return t
        return rng.randrange(lo, hi)

    # -- planning ----------------------------------------------------------------------------

    def _plan_customers(self) -> None:
        rng = random.Random(f"{self.seed}/population")
        n = self.cfg.customers
        width = max(6, len(str(n)))
        order = list(range(n))
        rng.shuffle(order)
        small = n >= 20

        def count(frac: float) -> int:
            return max(1 if small else 0, round(frac * n))

        n_trav = count(0.005) if self.cfg.hours >= 7 else 0
        n_vpn, n_relay = count(0.01), count(0.02)
        roles = {}
        for i in order[:n_trav]:
            roles[i] = "traveller"
        for i in order[n_trav : n_trav + n_vpn]:
            roles[i] = "vpn"
        for i in order[n_trav + n_vpn : n_trav + n_vpn + n_relay]:
            roles[i] = "relay"
        vpn_exits = NETWORKS["vpn"]
        for i in range(n):
            cid = f"c-{i:0{width}d}"
            role = roles.get(i, "home")
            r = rng.random()
            if role == "vpn":
                prefix = rng.choice(vpn_exits)
                net = "vpn"
            elif role == "relay":
                prefix, net = rng.choice(NETWORKS["kr_relay"]), "relay"
            elif r < 0.15:
                prefix, net = rng.choice(NETWORKS["kr_v6"]), "v6"
            elif r < 0.55:
                prefix, net = rng.choice(NETWORKS["kr_mobile"]), "mobile"
            else:
                prefix, net = rng.choice(NETWORKS["kr_broadband"]), "broadband"
            c = _Customer(cid, net, prefix, prefix.ip(rng))
            if net == "v6":
                c.net64 = prefix.subnet64(rng)
                c.home_ip = Prefix.ip6(rng, c.net64)
            for _ in range(1 if rng.random() < 0.7 else 2):
                app = rng.random() < 0.65
                ua = rng.choice(_APP_UAS if app else _WEB_UAS)
                c.devices.append((f"d-{_hex(rng, 48)}", ua, app))
            c.activity = min(8.0, rng.lognormvariate(0.0, 0.8))
            c.role = role
            self.customers.append(c)
        for i in order[:n_trav]:
            self._plan_trip(rng, self.customers[i])

    def _plan_trip(self, rng: random.Random, c: _Customer) -> None:
        hours = (self.t1 - self.t0) / HOUR
        feasible = [(cc, fh) for cc, fh in _TRIPS if hours >= fh + 4.5]
        if not feasible:
            c.role = "home"
            return
        cc, flight_h = rng.choice(feasible)
        flight = round((flight_h + rng.uniform(1.5, 3.0)) * HOUR)  # airport to hotel wifi
        lo, hi = self.t0 + 90 * MIN, self.t1 - flight - 2 * HOUR
        if hi <= lo:
            flight = round(flight_h * HOUR)
            hi = self.t1 - flight - 2 * HOUR
        dep = rng.randrange(lo, max(lo + 1, hi))
        c.trip = (dep, dep + flight, cc)

    def _plan_employees(self) -> None:
        rng = random.Random(f"{self.seed}/staff")
        n = self.cfg.employees
        # Two platform engineers (they hold the signing keys), then ~70% support staff.
        n_support = max(min(n - 2, 2), round(0.7 * (n - 2)))
        staff_roles = ["support"] * n_support + ["engineer"] * (n - 2 - n_support)
        rng.shuffle(staff_roles)
        for i in range(1, n + 1):
            eid = f"e-{i:04d}"
            role = "platform" if i <= 2 else staff_roles[i - 3]
            if role == "support":
                start_h, len_h = rng.choice(((9.0, 9.0), (9.0, 9.0), (13.0, 9.0)))
            else:
                start_h, len_h = 10.0, 9.0
            home = rng.choice(NETWORKS["kr_broadband"]).ip(rng)
            self.employees.append(
                _Employee(eid, role, home, start_h, len_h, f"lt-{eid[2:]}-{_hex(rng, 24)}")
            )
            self.used_employee_ids.add(eid)
        # New hires: start on the first working morning after 30% of the stream.
        n_new = max(1, n // 15)
        hire_at = self.t0 + (self.t1 - self.t0) * 3 // 10
        for d in self.local_days():
            morning = d + 9 * HOUR + 30 * MIN
            if morning >= hire_at and morning < self.t1 - HOUR:
                hire_at = morning
                break
        for k in range(n_new):
            eid = f"e-{n + 1 + k:04d}"
            home = rng.choice(NETWORKS["kr_broadband"]).ip(rng)
            emp = _Employee(eid, "support", home, 9.0, 9.0, f"lt-{eid[2:]}-{_hex(rng, 24)}")
            emp.hired_ms = max(self.t0, min(hire_at + k * 20 * MIN, self.t1 - 30 * MIN))
            self.employees.append(emp)
            self.new_hires.append(eid)
            self.used_employee_ids.add(eid)
        # Shifts by local day.
        for emp in self.employees:
            for d in self.local_days():
                weekday = datetime.fromtimestamp((d + self.utc_off) / 1000, UTC).weekday()
                works = rng.random() < (0.9 if weekday < 5 else 0.2)
                login = d + round((emp.shift_start_h + rng.uniform(-0.25, 0.4)) * HOUR)
                end = login + round((emp.shift_len_h + rng.uniform(-0.5, 0.5)) * HOUR)
                if emp.hired_ms is not None:
                    if end <= emp.hired_ms:
                        continue
                    if login <= emp.hired_ms:
                        login, works = emp.hired_ms + 10 * MIN, True
                        end = max(end, login + 2 * HOUR)
                if works and login < self.t1 and end > self.t0:
                    emp.shifts.append((max(login, self.t0), min(end, self.t1), "shift"))
                if emp.role != "support" and rng.random() < 0.12:
                    late = d + round(rng.uniform(22.0, 25.0) * HOUR)
                    if self.t0 <= late < self.t1 - 10 * MIN:
                        emp.shifts.append(
                            (late, min(late + rng.randrange(15, 90) * MIN, self.t1), "late")
                        )
            emp.shifts.sort()
        # Former staff without keys, terminated during the stream.
        for _ in range(max(1, n // 10)):
            self.former_staff.append(self.fresh_employee_id(rng, 500, 899))

    def fresh_employee_id(self, rng: random.Random, lo: int, hi: int) -> str:
        while True:
            eid = f"e-{rng.randint(lo, hi):04d}"
            if eid not in self.used_employee_ids:
                self.used_employee_ids.add(eid)
                return eid

    def _plan_services(self) -> None:
        n = self.cfg.services
        names = list(_SERVICE_NAMES[:n])
        names += [f"svc-extra-{k:02d}" for k in range(1, n - len(names) + 1)]
        self.services = names
        self.batch_service = "svc-analytics" if "svc-analytics" in names else names[-1]

    def pick_customer(self, rng: random.Random, roles: tuple[str, ...] = ("home",)) -> int:
        """An unreserved customer with one of ``roles``; reserves it."""
        pool = [
            i for i, c in enumerate(self.customers) if c.role in roles and i not in self.reserved
        ]
        if not pool:
            raise SimulationError("too few customers for the attacks asked for")
        i = rng.choice(pool)
        self.reserved.add(i)
        return i

    def pick_employee(self, rng: random.Random, role: str, after: int | None = None) -> _Employee:
        """A free employee of ``role``; one with a shift starting at or after ``after`` if any."""
        pool = [
            e
            for e in self.employees
            if e.role == role
            and e.eid not in self.terminated_at
            and e.hired_ms is None
            and not any(k[0] == e.eid for k in self.skip_shifts)
        ]
        if not pool:
            raise SimulationError(f"too few employees (no free {role} staff) for the attacks")
        if after is not None:
            later = [e for e in pool if any(a >= after and k == "shift" for a, _, k in e.shifts)]
            pool = later or pool
        return rng.choice(pool)

    # -- streams -----------------------------------------------------------------------------

    def stream(self) -> Iterator[dict]:
        sources: list[Iterator[tuple[int, dict]]] = [
            self._identity_stream(),
            self._customer_stream(),
            self._employee_stream(),
            self._batch_stream(),
        ]
        sources += [self._service_stream(k, name) for k, name in enumerate(self.services)]
        sources += [a.events() for a in self.attacks]
        prefix = f"e-{self.seed}-"
        n = 0
        for _, ev in heapq.merge(*sources, key=itemgetter(0)):
            ev["event_id"] = prefix + str(n)
            n += 1
            yield ev

    def _identity_stream(self) -> Iterator[tuple[int, dict]]:
        rng = random.Random(f"{self.seed}/identity")
        out: list[tuple[int, dict]] = []
        # The key store as it stands: every active key and its holder, at its issue time.
        # The key store as it stands at the start: every active key, its holder, its age.
        t0 = self.t0
        out.append((t0, _key_snapshot(t0, CUSTOMER_KEY, "e-0001", "2025-01-06T01:00:00Z")))
        out.append((t0, _key_snapshot(t0, STAFF_KEY, "e-0002", "2024-03-04T02:30:00Z")))
        for name in self.services:
            issued = parse_ts("2024-09-02T00:00:00Z") + rng.randrange(0, 200) * DAY
            out.append((t0, _key_snapshot(t0, f"key-{name}-1", name, fmt_ts(issued))))
        for emp in self.employees:
            if emp.hired_ms is not None:
                t = emp.hired_ms
                out.append(
                    (t, _identity(t, "key_issued", key_id=f"pat-{emp.eid}-1", owner_id=emp.eid))
                )
        for eid in self.former_staff:
            t = rng.randrange(self.t0, self.t1)
            out.append((t, _identity(t, "principal_terminated", principal_id=eid)))
        out.sort(key=itemgetter(0))
        return iter(out)

    def _customer_sessions(self) -> list[tuple[int, int, str]]:
        rng = random.Random(f"{self.seed}/sessions")
        days = (self.t1 - self.t0) / DAY
        plan: list[tuple[int, int, str]] = []
        for i, c in enumerate(self.customers):
            for _ in range(_poisson(rng, 1.4 * c.activity * days)):
                plan.append((self.diurnal_time(rng, self.t0, self.t1), i, "login"))
            if rng.random() < 0.08:  # a session already open when the stream starts
                first = self.t0 + rng.randrange(0, min(90 * MIN, self.t1 - self.t0))
                plan.append((first, i, "preopen"))
            if c.trip is not None:
                dep, arr, _ = c.trip
                plan.append((dep - rng.randrange(30, 120) * MIN, i, "login"))
                plan.append(
                    (min(arr + rng.randrange(20, 150) * MIN, self.t1 - 20 * MIN), i, "login")
                )
        plan.sort()
        return plan

    def _customer_stream(self) -> Iterator[tuple[int, dict]]:
        return _ordered(self._expand_customer_sessions())

    def _expand_customer_sessions(self) -> Iterator[tuple[int, list[tuple[int, dict]]]]:
        rng = random.Random(f"{self.seed}/customers")
        t1 = self.t1
        for start, i, kind in self._customer_sessions():
            c = self.customers[i]
            prefix, net = c.prefix, c.net
            if c.trip is not None:
                dep, arr, cc = c.trip
                if dep <= start < arr:
                    continue  # in the air
                if start >= arr:
                    prefix = _trip_prefix(rng, c, cc)
                    net = "abroad"
            if net == "broadband":
                ip = c.home_ip
            elif net == "v6":
                ip = Prefix.ip6(rng, c.net64)
            elif net == "vpn":
                ip = c.home_ip  # one exit server, consistently
            else:
                ip = prefix.ip(rng)
            device, ua, app = rng.choice(c.devices)
            sid = f"s-{_hex(rng)}"
            evs: list[tuple[int, dict]] = []
            t = start
            if kind == "preopen":
                issued_ms = self.t0 - rng.randrange(10, 20 * 60) * MIN
                self.preopen.append(sid)
            else:
                if rng.random() < 0.03:  # a typo or two first
                    for _ in range(rng.randint(1, 2)):
                        evs.append(
                            (
                                t,
                                _login(
                                    t,
                                    c.cid,
                                    "customer",
                                    "failure",
                                    ip,
                                    "password",
                                    "normal",
                                    ua=ua,
                                    device=device,
                                ),
                            )
                        )
                        t += rng.randrange(4, 30) * SEC
                if app and not evs and rng.random() < 0.45:
                    method = "refresh"
                else:
                    method = "mfa" if rng.random() < 0.15 else "password"
                login = _login(
                    t, c.cid, "customer", "success", ip, method, "normal", sid, ua, device
                )
                if net == "broadband" and rng.random() < 0.02:
                    login["country"], login["asn"] = prefix.country, prefix.asn
                evs.append((t, login))
                issued_ms = t
            issued = fmt_ts(issued_ms)
            n = 1 + min(40, int(rng.expovariate(1 / 5.0)))
            for _ in range(n):
                t += round(rng.lognormvariate(3.0, 0.9) * SEC)
                if t >= t1:
                    break
                if net == "mobile" and rng.random() < 0.12:
                    ip = prefix.ip(rng)  # carrier NAT hop
                elif net == "relay" and rng.random() < 0.05:
                    ip = prefix.ip(rng)
                res = rng.choices(_CUSTOMER_RESOURCES, _CUSTOMER_WEIGHTS)[0]
                action = (
                    "update" if res in ("address", "profile") and rng.random() < 0.03 else "read"
                )
                evs.append(
                    (
                        t,
                        _access(
                            t,
                            c.cid,
                            "customer",
                            c.cid,
                            res,
                            action,
                            ip,
                            "normal",
                            sid,
                            issued,
                            CUSTOMER_KEY,
                            ua,
                        ),
                    )
                )
            if rng.random() < 0.01 and t + 2 * MIN < t1:  # logged out everywhere
                t += rng.randrange(1, 30) * MIN
                if t < t1:
                    evs.append((t, _identity(t, "session_revoked", session_id=sid)))
                    self.revoked_sessions.append(sid)
            yield start, evs

    def _employee_stream(self) -> Iterator[tuple[int, dict]]:
        return _ordered(self._expand_shifts())

    def _expand_shifts(self) -> Iterator[tuple[int, list[tuple[int, dict]]]]:
        rng = random.Random(f"{self.seed}/shifts")
        plan = sorted(
            (login, end, kind, k)
            for k, emp in enumerate(self.employees)
            for login, end, kind in emp.shifts
        )
        for login, end, kind, k in plan:
            emp = self.employees[k]
            cut = self.terminated_at.get(emp.eid, self.t1)
            if (emp.eid, login) in self.skip_shifts or login >= cut:
                continue
            evs = self.shift_events(rng, emp, login, min(end, cut), kind, "normal")
            yield login, [(t, ev) for t, ev in evs if t < cut]

    def office_ip(self, rng: random.Random) -> str:
        # Two NAT egress addresses of the office /24.
        base = NETWORKS["kr_office"][0].cidr.rsplit(".", 1)[0]
        return f"{base}.{rng.choice((10, 11))}"

    def shift_events(
        self,
        rng: random.Random,
        emp: _Employee,
        login: int,
        end: int,
        kind: str,
        label: str,
        lookups: int | None = None,
    ) -> list[tuple[int, dict]]:
        """One SSO session of an employee: the login and the customer reads in it."""
        ip = emp.home_ip if kind == "late" else self.office_ip(rng)
        sid = f"s-{_hex(rng)}"
        method = "mfa" if kind == "late" else "sso"
        evs = [
            (
                login,
                _login(
                    login,
                    emp.eid,
                    "employee",
                    "success",
                    ip,
                    method,
                    label,
                    sid,
                    _STAFF_UA,
                    emp.laptop,
                ),
            )
        ]
        issued = fmt_ts(login)
        span = max(MIN, end - login - 10 * MIN)
        if lookups is None:
            if emp.role == "support" and kind == "shift":
                full = rng.lognormvariate(math.log(60), 0.6) * span / (9 * HOUR)
                lookups = max(3, min(250, round(full)))
            else:
                lookups = rng.randint(0, 4 if kind == "shift" else 8)
        n_cust = len(self.customers)
        subjects = rng.sample(range(n_cust), min(lookups, n_cust))
        if lookups > n_cust:
            subjects += [rng.randrange(n_cust) for _ in range(lookups - n_cust)]
        times = sorted(login + 5 * MIN + rng.randrange(span) for _ in subjects)
        for t, s in zip(times, subjects, strict=True):
            cid = self.customers[s].cid
            if rng.random() < 0.6:
                evs.append(
                    (
                        t,
                        _access(
                            t,
                            emp.eid,
                            "employee",
                            cid,
                            "profile",
                            "search",
                            ip,
                            label,
                            sid,
                            issued,
                            STAFF_KEY,
                            _STAFF_UA,
                            records=rng.randint(1, 5),
                        ),
                    )
                )
            for _ in range(rng.randint(1, 3)):
                t += rng.randrange(3, 90) * SEC
                res = rng.choice(_STAFF_RESOURCES)
                evs.append(
                    (
                        t,
                        _access(
                            t,
                            emp.eid,
                            "employee",
                            cid,
                            res,
                            "read",
                            ip,
                            label,
                            sid,
                            issued,
                            STAFF_KEY,
                            _STAFF_UA,
                        ),
                    )
                )
        return [(t, ev) for t, ev in evs if t < self.t1]

    def _service_stream(self, k: int, name: str) -> Iterator[tuple[int, dict]]:
        rng = random.Random(f"{self.seed}/svc/{name}")
        per_s, resources = _SERVICE_PROFILE.get(name, (0.2, ("profile",)))
        rate = per_s * self.cfg.customers / 2000 / SEC  # events per ms at peak-ish
        pods = [f"10.{20 + k}.{rng.randrange(0, 8)}.{rng.randrange(2, 250)}" for _ in range(3)]
        key = f"key-{name}-1"
        ua = f"{name[4:]}-worker/3.{rng.randrange(1, 9)}.{rng.randrange(0, 20)} python-httpx/0.27"
        cids = [c.cid for c in self.customers]
        n = len(cids)
        t = self.t0
        t1 = self.t1
        rnd, expo = rng.random, rng.expovariate
        n_res = len(resources)
        # Traffic follows the shoppers, never below half of its peak (by local hour).
        hourly = [rate * (0.5 + 0.5 * w / _DIURNAL_MAX) for w in _DIURNAL]
        off = self.utc_off
        while True:
            t += 1 + int(expo(hourly[((t + off) // HOUR) % 24]))
            if t >= t1:
                return
            res = resources[0] if rnd() < 0.5 else resources[int(rnd() * n_res)]
            yield (
                t,
                {
                    "event_id": "",
                    "ts": fmt_ts(t),
                    "actor_id": name,
                    "actor_type": "service",
                    "subject_id": cids[int(rnd() * n)],
                    "resource": res,
                    "action": "read",
                    "src_ip": pods[int(rnd() * 3)],
                    "key_id": key,
                    "user_agent": ua,
                    "label": "normal",
                },
            )

    def _batch_stream(self) -> Iterator[tuple[int, dict]]:
        """The nightly export (02:00-03:00 local) over every customer, in id order."""
        rng = random.Random(f"{self.seed}/batch")
        name = self.batch_service
        ip = f"10.{20 + self.services.index(name)}.9.{rng.randrange(2, 250)}"
        key = f"key-{name}-1"
        for d in self.local_days():
            lo = d + 2 * HOUR
            step = HOUR / max(1, len(self.customers))
            for j, c in enumerate(self.customers):
                t = lo + int(j * step) + rng.randrange(0, 500)
                if t < self.t0 or t >= self.t1:
                    continue
                yield (
                    t,
                    _access(
                        t,
                        name,
                        "service",
                        c.cid,
                        "order_history",
                        "export",
                        ip,
                        "normal",
                        key=key,
                        ua="nightly-export/1.4 (spark 3.5)",
                        records=max(1, round(rng.lognormvariate(3.0, 1.1))),
                    ),
                )

    # -- results -----------------------------------------------------------------------------

    def truth(self) -> list[dict]:
        return [a.truth() for a in self.attacks]

    def population(self) -> dict[str, Any]:
        return {
            "travellers": [
                {
                    "customer": c.cid,
                    "departure": fmt_ts(c.trip[0]),
                    "arrival": fmt_ts(c.trip[1]),
                    "destination": c.trip[2],
                }
                for c in self.customers
                if c.trip is not None
            ],
            "vpn_users": [c.cid for c in self.customers if c.role == "vpn"],
            "relay_users": [c.cid for c in self.customers if c.role == "relay"],
            "ipv6_users": [c.cid for c in self.customers if c.net == "v6"],
            "preopen_sessions": list(self.preopen),
            "revoked_sessions": list(self.revoked_sessions),
            "support_staff": [e.eid for e in self.employees if e.role == "support"],
            "engineers": [e.eid for e in self.employees if e.role in ("engineer", "platform")],
            "new_hires": list(self.new_hires),
            "former_staff_terminated": list(self.former_staff),
            "services": list(self.services),
            "batch_service": self.batch_service,
            "customer_key": CUSTOMER_KEY,
            "staff_key": STAFF_KEY,
            "office_prefix": NETWORKS["kr_office"][0].cidr,
        }


def _trip_prefix(rng: random.Random, c: _Customer, cc: str) -> Prefix:
    options = [p for p in NETWORKS["residential_abroad"] if p.country == cc]
    return rng.choice(options)


def _validate(cfg: SimConfig) -> None:
    if cfg.home_country not in _HOME:
        raise SimulationError(
            f"home_country {cfg.home_country!r} is not modelled (known: {', '.join(_HOME)})"
        )
    parse_ts(cfg.start)
    if not cfg.hours > 0 or not math.isfinite(cfg.hours):
        raise SimulationError(f"hours must be > 0, not {cfg.hours}")
    if cfg.customers < 20:
        raise SimulationError(f"customers must be at least 20, not {cfg.customers}")
    if cfg.employees < 4:
        raise SimulationError(f"employees must be at least 4, not {cfg.employees}")
    if not 1 <= cfg.services <= 100:
        raise SimulationError(f"services must be between 1 and 100, not {cfg.services}")
    unknown = [a for a in cfg.attacks if a not in ATTACKS]
    if unknown:
        raise SimulationError(
            f"unknown attack {unknown[0]!r} (known: {', '.join(ATTACKS)}; see --list-attacks)"
        )
    if len(set(cfg.attacks)) != len(cfg.attacks):
        raise SimulationError("each attack can be asked for once")
    if cfg.attacks and not 0 <= cfg.attack_start_hour < cfg.hours:
        raise SimulationError(
            f"attack_start_hour {cfg.attack_start_hour} must lie within the {cfg.hours} hours"
        )
