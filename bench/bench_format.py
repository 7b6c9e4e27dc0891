"""What `replay --format` adds to `replay`'s cost per event (target: at most 30%).

Run on purpose (not a test):  .venv/bin/python bench/bench_format.py [--events 40000]

For each format (sshd, okta, mapping) it makes N seeded source records shaped like real ones
(sshd: Failed/Accepted lines with skipped notices between them, about one event per two lines;
okta: user.session.start LogEvents; mapping: nginx JSON gateway reads), adapts them once to
contract lines, and then times, in one process, on the same events:

  1. `replay` of the contract lines (the engine with every detector)
  2. `replay --format` of the source records (the adapter, then the same engine)

and reports CPU seconds per event of each and the overhead of 2 over 1. Each run gets a fresh
engine, with the collector policy ``accesswatch replay`` installs (``streams.gcpolicy``) for
both (``--cpython-gc``: CPython's own; ``--no-gc``: the collector off). The two are alternated
``--rounds`` times, the order swapped every round (what runs first pays the warm-up), and
reported three ways: the best of each (a shared machine's noise only ever adds time), the
median of the rounds' paired ratios (each round's two runs share the machine's load of the
moment), and the adapter's own cost (``AdaptedInput`` drained with no engine, best of the
rounds) as a share of ``replay``'s cost per event: the engine reads the same bytes on both
paths, so that share is what the adapter adds, without the whole replays' noise. The full
collections (generation 2) each path ran are counted too: an adapter whose allocations made
the collector walk the engine's state more often would show there.
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import random
import statistics
import sys
import tempfile
import time

import orjson

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from detectors import adapters  # noqa: E402
from detectors.base import iso  # noqa: E402
from detectors.engine import Engine, EngineConfig  # noqa: E402
from streams import adapt, gcpolicy  # noqa: E402
from streams.replay import replay  # noqa: E402

T0 = 1_750_734_000
MAPPING = """
name = "gateway"
[fields]
ts = "time"
actor_id = "jwt_sub"
src_ip = "remote_addr"
path = "request_uri"
method = "request_method"
status = "status"
session_id = "jwt_sid"
token_issued_at = "jwt_iat"
user_agent = "http_user_agent"
[[routes]]
template = "/customers/{subject_id}/address"
resource = "address"
[[routes]]
template = "/customers/{subject_id}/orders"
resource = "order_history"
"""


def sshd_lines(n: int, rng: random.Random) -> bytes:
    out = []
    for i in range(n):
        t = T0 + i * 0.5
        stamp = time.strftime("%b %d %H:%M:%S", time.gmtime(t)).encode()
        ip = f"{rng.randrange(1, 223)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        user = f"u{rng.randrange(5000)}"
        pid = 20000 + i
        if i % 10 == 0:
            msg = f"Accepted password for {user} from {ip} port {rng.randrange(1024, 65535)} ssh2"
        else:
            msg = f"Failed password for {user} from {ip} port {rng.randrange(1024, 65535)} ssh2"
        out.append(stamp + b" host sshd[%d]: " % pid + msg.encode())
        out.append(stamp + b" host sshd[%d]: Connection closed by %s [preauth]" % (pid, ip.encode()))
    return b"\n".join(out) + b"\n"


def okta_lines(n: int, rng: random.Random) -> bytes:
    out = []
    for i in range(n):
        ok = rng.random() < 0.9
        out.append(orjson.dumps({
            "uuid": f"{i:08x}-0000-4000-8000-000000000000", "published": iso(T0 + i * 0.5),
            "eventType": "user.session.start", "version": "0", "severity": "INFO",
            "displayMessage": "User login to Okta",
            "actor": {"id": f"00u{i % 5000:017d}", "type": "User",
                      "alternateId": f"user{i % 5000}@example.com", "displayName": "User"},
            "client": {"userAgent": {"rawUserAgent": "Mozilla/5.0 (Macintosh)", "os": "Mac OS X",
                                     "browser": "CHROME"},
                       "zone": "null", "device": "Computer",
                       "ipAddress": f"121.134.{rng.randrange(4)}.{rng.randrange(1, 255)}",
                       "geographicalContext": {"city": "Seoul", "country": "South Korea"}},
            "authenticationContext": {"credentialType": "PASSWORD", "authenticationStep": 0,
                                      "externalSessionId": f"102s{i}" if ok else None},
            "outcome": {"result": "SUCCESS" if ok else "FAILURE",
                        "reason": None if ok else "INVALID_CREDENTIALS"},
            "securityContext": {"asNumber": 4766, "asOrg": "kt", "isProxy": False},
            "transaction": {"type": "WEB", "id": f"tx{i}", "detail": {}},
            "request": {"ipChain": []}, "target": []}))
    return b"\n".join(out) + b"\n"


def gateway_lines(n: int, rng: random.Random) -> bytes:
    out = []
    for i in range(n):
        c = f"c-{rng.randrange(20000):06d}"
        out.append(orjson.dumps({
            "time": iso(T0 + i * 0.5), "remote_addr": f"121.134.{rng.randrange(4)}.{rng.randrange(1, 255)}",
            "request_uri": f"/customers/{c}/{'address' if i % 3 else 'orders'}?v=2",
            "request_method": "GET", "status": "200", "jwt_sub": c, "jwt_sid": f"s-{c}",
            "jwt_iat": str(T0 - 60), "http_user_agent": "Mozilla/5.0 (iPhone)",
            "request_id": f"r{i}"}))
    return b"\n".join(out) + b"\n"


def engine() -> Engine:
    return Engine(EngineConfig(max_future_skew=None))


class FullPasses:
    """Counts the collector's full (generation 2) collections while installed."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "stop" and info.get("generation") == 2:
            self.n += 1


FULL = FullPasses()
POLICY = True  # install streams.gcpolicy around each timed replay, as `accesswatch replay` does


def _timed(lines, eng: Engine, source=None) -> tuple[float, int, int]:
    gc.collect()  # each run starts from the same heap, not the previous run's garbage
    full = FULL.n
    if POLICY:
        gcpolicy.install()
    t = time.process_time()
    try:
        replay(lines, eng, None, source=source)
    finally:
        if POLICY:
            gcpolicy.uninstall()
    dt = time.process_time() - t
    return dt, sum(eng.stats[k] for k in ("login", "access", "identity")), FULL.n - full


def timed_contract(lines: list[bytes]) -> tuple[float, int, int]:
    return _timed(lines, engine())


def timed_format(ad: adapters.Adapter, data: bytes) -> tuple[float, int, int]:
    src = adapt.AdaptedInput(ad, [("bench", io.BytesIO(data))])
    return _timed(src, engine(), src)


def timed_adapter(ad: adapters.Adapter, data: bytes) -> tuple[float, int]:
    """The adapter path alone: framing, adapting, the events as JSON lines; no engine."""
    t = time.process_time()
    n = sum(1 for _ in adapt.AdaptedInput(ad, [("bench", io.BytesIO(data))]))
    return time.process_time() - t, n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=40000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--only", default="sshd,okta,mapping", help="comma-separated formats")
    ap.add_argument("--no-gc", action="store_true",
                    help="collector off while timing (how much of the gap is the collector "
                    "walking the engine's state, paid for the adapter's allocations)")
    ap.add_argument("--cpython-gc", action="store_true",
                    help="CPython's own collector policy, not the one replay installs")
    args = ap.parse_args()
    global POLICY
    POLICY = not (args.cpython_gc or args.no_gc)
    if args.no_gc:
        gc.disable()
    gc.callbacks.append(FULL)
    rng = random.Random(15)
    with tempfile.TemporaryDirectory() as d:
        toml = os.path.join(d, "gateway.toml")
        with open(toml, "w") as f:
            f.write(MAPPING)
        cases = [
            ("sshd", adapters.load("sshd", year=2025), sshd_lines(args.events, rng)),
            ("okta", adapters.load("okta"), okta_lines(args.events, rng)),
            ("mapping", adapters.load(f"mapping:{toml}"), gateway_lines(args.events, rng)),
        ]  # all three made, so each format's records are the same whatever --only says
        print(f"load average before: {os.getloadavg()[0]:.2f}")
        for name, ad, data in cases:
            if name not in args.only.split(","):
                continue
            contract = [orjson.dumps(e) for o in adapters.records(ad, io.BytesIO(data))
                        for e in o.events]
            best_c = best_f = best_a = float("inf")
            n_c = n_f = n_a = full_c = full_f = 0
            ratios = []
            for i in range(args.rounds):
                if i % 2 == 0:
                    c, n_c, fc = timed_contract(contract)
                    f_, n_f, ff = timed_format(ad, data)
                else:
                    f_, n_f, ff = timed_format(ad, data)
                    c, n_c, fc = timed_contract(contract)
                a, n_a = timed_adapter(ad, data)
                best_c, best_f, best_a = min(best_c, c), min(best_f, f_), min(best_a, a)
                full_c, full_f = full_c + fc, full_f + ff
                ratios.append(f_ / c)
            assert n_c == n_f == n_a, (n_c, n_f, n_a)
            per_c, per_f, per_a = best_c / n_c * 1e6, best_f / n_f * 1e6, best_a / n_a * 1e6
            print(f"{name:8s} {n_c:>7,} events: replay {per_c:6.1f} us/event, replay --format "
                  f"{per_f:6.1f} us/event: best {(per_f / per_c - 1) * 100:+.0f}%, median of "
                  f"{args.rounds} paired rounds {(statistics.median(ratios) - 1) * 100:+.0f}% "
                  f"(rounds {', '.join(f'{(r - 1) * 100:+.0f}%' for r in ratios)}); adapter "
                  f"alone {per_a:.1f} us/event = +{per_a / per_c * 100:.0f}% of replay; full "
                  f"collections {full_c} / {full_f}")
        print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
