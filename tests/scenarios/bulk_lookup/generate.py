"""Regenerates tests/scenarios/bulk_lookup/*.jsonl (seeded, byte-identical on every run).

Run: python tests/scenarios/bulk_lookup/generate.py
"""

import json
import random
from datetime import UTC, datetime
from pathlib import Path

OUT = Path(__file__).parent
T0 = 1750723200.0  # 2025-06-24T00:00:00Z (09:00 in Seoul)


def iso(ts):
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class W:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.evs = []
        self.n = 0

    def eid(self):
        self.n += 1
        return f"e{self.n}"

    def login(self, ts, acc, ip, sid, atype="customer"):
        self.evs.append(
            {
                "event_id": self.eid(),
                "ts": ts,
                "account_id": acc,
                "account_type": atype,
                "outcome": "success",
                "src_ip": ip,
                "session_id": sid,
                "method": "password",
            }
        )

    def access(
        self,
        ts,
        actor,
        subj,
        ip,
        atype="customer",
        res="address",
        action="read",
        sid=None,
        key=None,
        records=None,
        tia=None,
    ):
        e = {
            "event_id": self.eid(),
            "ts": ts,
            "actor_id": actor,
            "actor_type": atype,
            "subject_id": subj,
            "resource": res,
            "action": action,
            "src_ip": ip,
        }
        if sid:
            e["session_id"] = sid
        if key:
            e["key_id"] = key
        if records:
            e["records"] = records
        if tia is not None:
            e["token_issued_at"] = tia
        self.evs.append(e)

    def customers_at_home(self, t0, t1, n=60, per_min=4.0):
        """Customers reading their own data from Korean broadband, each with its own login."""
        rng = self.rng
        homes = {
            f"c-{i:06d}": f"121.134.{rng.randrange(0, 128)}.{rng.randrange(2, 250)}"
            for i in range(0, n * 37, 37)
        }
        ids = list(homes)
        t = t0
        while True:
            t += rng.expovariate(per_min / 60)
            if t >= t1:
                break
            c = rng.choice(ids)
            sid = f"s-{rng.getrandbits(40):x}"
            self.login(t, c, homes[c], sid)
            for k in range(rng.randint(1, 3)):
                self.access(
                    t + 1 + 5 * k,
                    c,
                    c,
                    homes[c],
                    sid=sid,
                    key="kid-cust-2025a",
                    tia=t,
                    res=rng.choice(["profile", "address", "order_history"]),
                )

    def write(self, name, header):
        self.evs.sort(key=lambda e: e["ts"])
        for e in self.evs:
            for f in ("ts", "token_issued_at"):
                if f in e:
                    e[f] = iso(e[f])
        with open(OUT / f"{name}.jsonl", "w") as f:
            f.write(json.dumps(header) + "\n")
            for e in self.evs:
                f.write(json.dumps(e, separators=(",", ":")) + "\n")


def main() -> None:
    # 1. Coupang: forged tokens from a departed engineer's key, 3 servers abroad, slow ramp.
    w = W(1)
    w.customers_at_home(T0, T0 + 3600 * 1.5)
    servers = ["3.101.44.17", "159.89.7.201", "139.180.140.9"]
    t = T0 + 3600
    i = 0
    while t < T0 + 3600 * 1.5:
        rate = 3 + 10 * (t - T0 - 3600) / 1800  # per minute
        t += w.rng.expovariate(rate / 60)
        c = f"c-{(i * 7919) % 100000 + 500000:06d}"
        i += 1
        w.access(
            t,
            c,
            c,
            w.rng.choice(servers),
            sid=f"s-f{i}",
            key="kid-legacy-2019",
            tia=T0 - 86400 * 20,
        )  # claims to predate the stream: no login to check against
    w.write(
        "coupang_servers_abroad",
        {
            "scenario": "Coupang: 3 hosting servers abroad read customers' own data with tokens of a "
            "departed engineer's key claiming to predate the stream; pages the key and a server",
            "expect": [
                {
                    "detector": "bulk_lookup",
                    "severity": "critical",
                    "entity_kind": "key",
                    "entity_id": "kid-legacy-2019",
                },
                {
                    "detector": "bulk_lookup",
                    "severity": "critical",
                    "entity_kind": "src_ip",
                    "entity_id": "3.101.44.17",
                },
            ],
            "expect_no": [],
        },
    )

    # 2. Coupang with the active customer key: only the sources stand out.
    w = W(2)
    w.customers_at_home(T0, T0 + 3600 * 1.5, per_min=6.0)
    t = T0 + 3600
    i = 0
    while t < T0 + 3600 * 1.4:
        t += w.rng.expovariate(6 / 60)
        c = f"c-{(i * 7919) % 100000 + 500000:06d}"
        i += 1
        w.access(
            t,
            c,
            c,
            "18.180.9.77" if i % 2 else "18.181.20.5",
            sid=f"s-f{i}",
            key="kid-cust-2025a",
            tia=t - 60,
        )
    w.write(
        "coupang_active_key",
        {
            "scenario": "Coupang variant: forged tokens signed with the active customer key from two "
            "AWS Tokyo servers; the key is busy with real customers, the servers page",
            "expect": [
                {
                    "detector": "bulk_lookup",
                    "severity": "critical",
                    "entity_kind": "src_ip",
                    "entity_id": "18.180.9.77",
                },
                {"detector": "bulk_lookup", "severity": "critical", "entity_kind": "asn"},
            ],
            "expect_no": [],
        },
    )

    # 3. Insider: one support employee reads hundreds of customers in a shift.
    w = W(3)
    w.customers_at_home(T0, T0 + 3600 * 2)
    office = "203.246.168.10"
    for k in range(6):
        emp = f"e-{k:04d}"
        sid = f"s-emp{k}"
        w.login(T0 + 60 * k, emp, office, sid, "employee")
        n = 400 if k == 2 else w.rng.randint(8, 25)
        for j in range(n):
            ts = T0 + 300 + (7000 * j / n) + w.rng.random() * 5
            c = f"c-{w.rng.randrange(0, 900000):06d}"
            w.access(
                ts,
                emp,
                c,
                office,
                "employee",
                "profile",
                "search",
                sid,
                "kid-sso-2024",
                records=w.rng.randint(1, 4),
            )
    w.write(
        "insider_support_shift",
        {
            "scenario": "A support employee reads 400 distinct customers in two hours from the office; "
            "five colleagues read 8-25 each; only the insider pages",
            "expect": [
                {
                    "detector": "bulk_lookup",
                    "severity": "critical",
                    "entity_kind": "actor",
                    "entity_id": "e-0002",
                }
            ],
            "expect_no": [],
        },
    )

    # 4. Enumeration: a customer account walks other customers' ids in sequence (IDOR).
    w = W(4)
    w.customers_at_home(T0, T0 + 3600)
    sid = "s-idor"
    w.login(T0 + 600, "c-777777", "59.6.12.34", sid)
    for j in range(40):
        s = f"c-{120000 + j:06d}"
        w.access(
            T0 + 700 + 20 * j,
            "c-777777",
            s,
            "59.6.12.34",
            "customer",
            "order_history",
            "read",
            sid,
            "kid-cust-2025a",
            tia=T0 + 600,
        )
    w.write(
        "enumeration_idor",
        {
            "scenario": "A customer account reads 40 other customers' order histories, ids in sequence "
            "(an IDOR walk) from home broadband",
            "expect": [
                {
                    "detector": "bulk_lookup",
                    "severity": "critical",
                    "entity_kind": "actor",
                    "entity_id": "c-777777",
                }
            ],
            "expect_no": [],
        },
    )

    # 5. Export: an employee exports large result sets.
    w = W(5)
    w.customers_at_home(T0, T0 + 3600)
    sid = "s-exp"
    w.login(T0 + 300, "e-0042", office, sid, "employee")
    for j in range(6):
        w.access(
            T0 + 400 + 120 * j,
            "e-0042",
            f"c-{j * 1013:06d}",
            office,
            "employee",
            "order_history",
            "export",
            sid,
            "kid-sso-2024",
            records=6000,
        )
    w.write(
        "export_rows",
        {
            "scenario": "An employee runs six exports of 6,000 rows each within 12 minutes",
            "expect": [
                {
                    "detector": "bulk_lookup",
                    "severity": "critical",
                    "entity_kind": "actor",
                    "entity_id": "e-0042",
                }
            ],
            "expect_no": [],
        },
    )

    # 6. Negative: a normal day slice — support staff, a steady internal service, the nightly batch
    #    export walking every id with large row counts, relay and VPN customers.
    w = W(6)
    w.customers_at_home(T0, T0 + 3600 * 3, per_min=5.0)
    for k in range(5):
        emp = f"e-{k:04d}"
        sid = f"s-emp{k}"
        w.login(T0 + 60 * k, emp, office, sid, "employee")
        for _ in range(w.rng.randint(15, 40)):
            ts = T0 + 300 + w.rng.random() * 10000
            c = f"c-{w.rng.randrange(0, 900000):06d}"
            w.access(
                ts,
                emp,
                c,
                office,
                "employee",
                "profile",
                "search",
                sid,
                "kid-sso-2024",
                records=w.rng.randint(1, 5),
            )
    t = T0
    while t < T0 + 3600 * 3:
        t += w.rng.expovariate(0.5)
        w.access(
            t,
            "svc-shipping",
            f"c-{w.rng.randrange(0, 900000):06d}",
            f"10.21.3.{w.rng.choice([7, 8, 9])}",
            "service",
            "address",
            "read",
            key="key-svc-shipping-1",
        )
    for j in range(3000):  # the nightly export, in id order
        w.access(
            T0 + 3600 + j * 1.2,
            "svc-analytics",
            f"c-{j:06d}",
            "10.24.9.31",
            "service",
            "order_history",
            "export",
            key="key-svc-analytics-1",
            records=max(1, round(w.rng.lognormvariate(3.0, 1.1))),
        )
    for k in range(12):  # iCloud Private Relay egress in Korea: a few customers share it
        c = f"c-{800000 + k:06d}"
        ip = "172.224.127.5" if k % 2 else "172.224.127.9"
        ts = T0 + 400 * k + 50
        sid = f"s-r{k}"
        w.login(ts, c, ip, sid)
        w.access(ts + 2, c, c, ip, sid=sid, key="kid-cust-2025a", tia=ts)
    for k in range(3):  # customers behind a commercial VPN exit in Japan
        c = f"c-{810000 + k:06d}"
        ip = f"89.187.160.{20 + k}"
        ts = T0 + 2000 * k + 70
        sid = f"s-v{k}"
        w.login(ts, c, ip, sid)
        w.access(ts + 2, c, c, ip, sid=sid, key="kid-cust-2025a", tia=ts)
    w.write(
        "normal_operations",
        {
            "scenario": "Normal operations: customers at home, 5 support staff reading 15-40 customers, "
            "a steady internal service, the nightly export walking 3,000 ids in order with "
            "large row counts, relay and VPN customers: bulk_lookup stays quiet",
            "expect": [],
            "expect_no": ["bulk_lookup"],
        },
    )

    # 7. Negative: a traveller and a small family behind one home router.
    w = W(7)
    w.customers_at_home(T0, T0 + 3600 * 2)
    for k, c in enumerate(["c-900001", "c-900002", "c-900003"]):
        sid = f"s-fam{k}"
        w.login(T0 + 1000 + 300 * k, c, "58.120.7.7", sid)
        for j in range(5):
            w.access(
                T0 + 1002 + 300 * k + 30 * j,
                c,
                c,
                "58.120.7.7",
                sid=sid,
                key="kid-cust-2025a",
                tia=T0 + 1000 + 300 * k,
            )
    sid = "s-trav"
    w.login(T0 + 5000, "c-900010", "153.150.1.20", sid)
    for j in range(8):
        w.access(
            T0 + 5002 + 60 * j,
            "c-900010",
            "c-900010",
            "153.150.1.20",
            sid=sid,
            key="kid-cust-2025a",
            tia=T0 + 5000,
        )
    w.write(
        "household_and_traveller",
        {
            "scenario": "Three family members behind one home router and a traveller in Japan reading "
            "their own data: no bulk lookup",
            "expect": [],
            "expect_no": ["bulk_lookup"],
        },
    )
    print("ok")


if __name__ == "__main__":
    main()
