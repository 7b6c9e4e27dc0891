"""Regenerates tests/scenarios/service_baseline/*.jsonl and record_volume/*.jsonl (seeded,
byte-identical on every run).

Run: python tests/scenarios/service_baseline/generate_services.py
"""

import json
import math
import random
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).parent
RV = HERE.parent / "record_volume"
T0 = 1772377200.0  # 2026-03-02T00:00 KST (Sunday 15:00 UTC), a Monday in Seoul
H = 3600.0


def iso(ts):
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class W:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.evs = []

    def access(self, ts, actor, subj, ip, res="payment", action="read", key=None, records=None,
               atype="service"):
        e = {"event_id": f"e{len(self.evs) + 1}", "ts": iso(ts), "actor_id": actor,
             "actor_type": atype, "subject_id": subj, "resource": res, "action": action,
             "src_ip": ip}
        if key:
            e["key_id"] = key
        if records is not None:
            e["records"] = records
        self.evs.append(e)

    def write(self, path, header):
        self.evs.sort(key=lambda e: e["ts"])
        lines = [json.dumps(header)] + [json.dumps(e) for e in self.evs]
        path.write_text("\n".join(lines) + "\n")


def office_service(w, days, name="svc-billing", hosts=("10.10.4.7", "10.10.4.8"), per_h=40):
    """A weekday job, 09:00-18:00 KST, ~per_h customers an hour from its own hosts."""
    rng = w.rng
    for d in range(days):
        for h in range(9, 18):
            for _ in range(per_h):
                w.access(T0 + d * 86400 + h * H + rng.uniform(0, H), name,
                         f"c-{rng.randrange(10**5):05d}", rng.choice(hosts), key=f"k-{name}")


def nightly_batch(w, days, name="svc-notify", host="10.10.9.3", n=500):
    """Every night at 02:00 KST (a few minutes early or late), n customers in two minutes."""
    rng = w.rng
    for d in range(days):
        start = T0 + d * 86400 + 2 * H + rng.uniform(-240, 240)
        for j in range(n):
            w.access(start + j * 0.2, name, f"c-{j:05d}", host, res="email",
                     key=f"k-{name}")


def steady_api(w, days, name="svc-orders", hosts=("10.10.1.11", "10.10.1.12", "10.10.1.13")):
    """Around the clock, following the customers' day (quiet at night, busy in the evening)."""
    rng = w.rng
    for d in range(days):
        for h in range(24):
            rate = 15 + 50 * max(0.0, math.sin(math.pi * (h - 6) / 17)) if 6 <= h <= 23 else 10
            for _ in range(int(rate)):
                w.access(T0 + d * 86400 + h * H + rng.uniform(0, H), name,
                         f"c-{rng.randrange(10**5):05d}", rng.choice(hosts), res="order_history",
                         key=f"k-{name}")


def main():
    w = W(1)
    office_service(w, 1)
    for j in range(150):  # 01:00-02:00 the next night, from a host in a network it never used
        w.access(T0 + 86400 + H + 24 * j, "svc-billing", f"c-{70000 + j}", "10.77.3.25",
                 res="phone", key="k-svc-billing")
    w.write(HERE / "night_from_new_network.jsonl", {
        "scenario": "SK Telecom: a weekday billing service's credential used at 01:00 from an "
                    "internal host in a network it never used: critical",
        "expect": [{"detector": "service_baseline", "severity": "critical",
                    "entity_kind": "actor", "entity_id": "svc-billing"}], "expect_no": []})

    w = W(2)
    steady_api(w, 3)
    for j in range(250):  # day 3, 10:00-11:00: four times its traffic on top, from its own host
        w.access(T0 + 2 * 86400 + 10 * H + 14.4 * j, "svc-orders", f"c-{200000 + j}",
                 "10.10.1.12", res="address", key="k-svc-orders")
    w.write(HERE / "five_times_rate.jsonl", {
        "scenario": "An order API at five times its usual rate for the hour, from its own host: "
                    "warns",
        "expect": [{"detector": "service_baseline", "severity": "warning",
                    "entity_kind": "actor", "entity_id": "svc-orders"}], "expect_no": []})

    w = W(3)
    steady_api(w, 3)
    nightly_batch(w, 3)
    office_service(w, 3)
    for j in range(30):  # a new pod of the order API in its own network, daytime
        w.access(T0 + 86400 + 14 * H + 60 * j, "svc-orders", f"c-{j}", "10.10.2.40",
                 res="order_history", key="k-svc-orders")
    w.write(HERE / "batches_and_steady_services.jsonl", {
        "scenario": "Three days of a nightly batch (02:00, a few minutes early or late), a "
                    "weekday job and an API following the customers' day, a new pod in its "
                    "network: no page",
        "expect": [], "expect_no": ["service_baseline", "record_volume"]})

    w = W(4)
    rng = w.rng
    for d in range(3):  # 3-6 exports a day in office hours, 10-80 rows each
        for _ in range(rng.randint(3, 6)):
            w.access(T0 + d * 86400 + rng.uniform(9, 18) * H, "svc-cards", "c-00001",
                     "10.20.5.4", res="payment", action="export", key="k-cards",
                     records=rng.randint(10, 80))
    w.access(T0 + 3 * 86400 + 14 * H, "svc-cards", "c-00001", "10.20.5.4", res="payment",
             action="export", key="k-cards", records=42000)
    w.write(RV / "lotte_card_export.jsonl", {
        "scenario": "Lotte Card: a service that exports tens of rows exports 42,000 in one call: "
                    "critical at that export",
        "expect": [{"detector": "record_volume", "severity": "critical",
                    "entity_kind": "actor", "entity_id": "svc-cards"}], "expect_no": []})

    w = W(5)
    rng = w.rng
    for d in range(3):  # a nightly export batch with heavy-tailed rows per export
        for j in range(600):
            w.access(T0 + d * 86400 + 2 * H + 5 * j, "svc-analytics", f"c-{j:05d}",
                     "10.24.9.31", res="order_history", action="export", key="k-analytics",
                     records=max(1, round(rng.lognormvariate(3.0, 1.1))))
    for k in range(6):  # support staff searching, 1-12 rows
        for j in range(60):
            w.access(T0 + 9 * H + 500 * j, f"e-{k}", f"c-{rng.randrange(10**5):05d}",
                     "211.234.10.5", atype="employee", res="profile", action="search",
                     key="kid-sso", records=rng.randint(1, 12))
    w.write(RV / "heavy_tailed_batch_and_searches.jsonl", {
        "scenario": "Three nights of an export batch (rows per export log-normal, median 20, 1 to ~1,000) "
                    "and support searches: no page",
        "expect": [], "expect_no": ["record_volume"]})


if __name__ == "__main__":
    main()
