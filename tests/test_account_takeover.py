"""account_takeover: a won login (burst or failures), new device and place, then sensitive reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from detectors.engine import Engine, EngineConfig

BOT = "139.162.5.77"
HOME = "121.134.0.10"
DAY = 86400.0
T = 1_750_000_000.0  # event time of "0" in these tests


def engine(*extra: str, **params: Any) -> Engine:
    return Engine(EngineConfig(detectors=("account_takeover", *extra),
                               params={"account_takeover": params}))


class Feed:
    def __init__(self, eng: Engine) -> None:
        self.eng = eng
        self.n = 0
        self.alerts: list[dict[str, Any]] = []

    def _go(self, obj: dict[str, Any]) -> list[dict[str, Any]]:
        self.n += 1
        obj["event_id"] = f"e{self.n}"
        got, rej = self.eng.process_obj(obj)
        assert rej is None, rej
        self.alerts.extend(got)
        return got

    def login(self, ts: float, acct: str, ip: str, outcome: str = "success",
              device: str | None = None) -> list[dict[str, Any]]:
        d: dict[str, Any] = {"ts": T + ts, "account_id": acct, "outcome": outcome, "src_ip": ip}
        if outcome == "success":
            d["session_id"] = f"s-{acct}-{ts}"
        if device:
            d["device_id"] = device
        return self._go(d)

    def read(self, ts: float, acct: str, res: str, ip: str,
             session: str | None = None) -> list[dict[str, Any]]:
        d = {"ts": T + ts, "actor_id": acct, "subject_id": acct, "resource": res, "src_ip": ip}
        if session:
            d["session_id"] = session
        return self._go(d)

    def burst(self, t0: float, n: int = 20, ip: str = BOT) -> None:
        for k in range(n):
            self.login(t0 + k * 0.5, f"x-{t0}-{k}", ip, "failure")

    def history(self, acct: str, days: int = 3, ip: str = HOME, device: str = "d-home") -> None:
        for d in range(days):
            self.login(-DAY * (days - d), acct, ip, device=device)


def test_success_in_burst_warns_then_sensitive_read_is_critical() -> None:
    f = Feed(engine())
    f.burst(0)
    got = f.login(20, "c-1", BOT, device="d-bot")
    assert [(a["severity"], a["entity"]) for a in got] == [
        ("warning", {"kind": "account", "id": "c-1"})]
    assert f.read(30, "c-1", "order_history", BOT, "s-c-1-20") == []  # not sensitive
    got = f.read(80, "c-1", "address", BOT, "s-c-1-20")
    assert [a["severity"] for a in got] == ["critical"]
    ev = {e["feature"]: e for e in got[0]["evidence"]}
    assert ev["sensitive_reads_after_login"]["observed"] == 1
    assert ev["login_source_in_burst"]["observed"] == f"src_ip {BOT}"
    assert "then it read address 60 s later" in got[0]["summary"]
    assert f.read(90, "c-1", "payment", BOT, "s-c-1-20") == []  # one page per account


def test_success_before_the_burst_is_recognised_is_judged_when_it_is() -> None:
    f = Feed(engine())
    f.burst(0, n=4)
    assert f.login(3, "c-early", BOT, device="d-bot") == []
    f.read(4, "c-early", "payment", BOT, "s-c-early-3")
    f.burst(5, n=10)  # now the address crosses 10 failing accounts
    got = [a for a in f.alerts if a["detector"] == "account_takeover"]
    assert [(a["severity"], a["entity"]["id"]) for a in got] == [("critical", "c-early")]


def test_owner_on_usual_device_and_place_inside_a_burst_is_a_bystander() -> None:
    f = Feed(engine())
    f.history("c-2", ip=BOT, device="d-own")  # the customer really uses that network
    f.burst(0)
    assert f.login(20, "c-2", BOT, device="d-own") == []


def test_failures_then_new_device_and_place_with_history() -> None:
    f = Feed(engine())
    f.history("c-3")
    for k in range(3):
        f.login(100 + k, "c-3", "102.88.4.20", "failure", device="d-new")
    got = f.login(110, "c-3", "102.88.4.20", device="d-new")
    assert [a["severity"] for a in got] == ["warning"]
    ev = {e["feature"]: e for e in got[0]["evidence"]}
    assert ev["failed_logins_before"]["observed"] == 3
    assert ev["device"]["detail"] == "new" and ev["place"]["detail"] == "new"
    assert ev["device"]["baseline"] == "one of 1 devices used in 3 logins"
    assert "after 3 failed logins" in got[0]["summary"]


def test_typos_from_usual_device_or_place_do_not_page() -> None:
    f = Feed(engine())
    f.history("c-4")
    for k in range(5):
        f.login(100 + k, "c-4", HOME, "failure", device="d-home")
    assert f.login(110, "c-4", HOME, device="d-home") == []
    f.history("c-5")
    for k in range(5):
        f.login(100 + k, "c-5", HOME, "failure", device="d-new-phone")
    assert f.login(110, "c-5", HOME, device="d-new-phone") == []  # usual place, new phone
    assert f.read(120, "c-5", "payment", HOME) == []


def test_too_few_failures_or_no_history_do_not_page() -> None:
    f = Feed(engine())
    f.history("c-6")
    for k in range(2):
        f.login(100 + k, "c-6", "102.88.4.20", "failure", device="d-new")
    assert f.login(110, "c-6", "102.88.4.20", device="d-new") == []
    for k in range(5):
        f.login(200 + k, "c-7", "102.88.4.20", "failure", device="d-new")
    assert f.login(210, "c-7", "102.88.4.20", device="d-new") == []  # cold start: no history


def test_judged_login_does_not_teach_the_profile() -> None:
    f = Feed(engine())
    f.history("c-8")
    for k in range(3):
        f.login(100 + k, "c-8", "102.88.4.20", "failure", device="d-evil")
    assert f.login(110, "c-8", "102.88.4.20", device="d-evil") != []
    det = f.eng.detectors["account_takeover"]
    prof = det._profiles[f.eng.ctx.hash_id("c-8")]  # type: ignore[attr-defined]
    assert len(prof.devices) == 1 and len(prof.places) == 1


def test_reads_by_the_owner_elsewhere_do_not_escalate() -> None:
    f = Feed(engine())
    f.burst(0)
    f.login(20, "c-9", BOT, device="d-bot")
    assert f.read(60, "c-9", "address", HOME, "s-owner") == []


def test_reads_after_the_watch_window_do_not_escalate() -> None:
    f = Feed(engine(watch=600.0))
    f.burst(0)
    f.login(20, "c-10", BOT, device="d-bot")
    assert f.read(700, "c-10", "address", BOT, "s-c-10-20") == []


def test_profiles_are_kept_under_salted_hashes_and_expire() -> None:
    f = Feed(engine(profile_ttl=10 * DAY))
    f.history("c-11")
    det = f.eng.detectors["account_takeover"]
    assert all(isinstance(k, int) for k in det._profiles)  # type: ignore[attr-defined]
    assert det.tracked() == {"account": 1}
    det.expire(T + 5 * DAY)
    assert det.tracked() == {"account": 1}
    det.expire(T + 20 * DAY)
    assert det.tracked() == {"account": 0}


def test_warmup_follows_the_share_of_logins_with_history() -> None:
    f = Feed(engine())
    det = f.eng.detectors["account_takeover"]
    assert det.warmup() == 0.0
    for d in range(3000):
        f.login(d * 10.0, f"c-{d % 50}", HOME, device="d")
    assert det.warmup() > 0.9


def test_checkpoint_round_trip_gives_the_same_alerts() -> None:
    from streams.checkpoint import restore, snapshot
    from streams.snapshot import StateKeys

    keys = StateKeys(["test-ato-key-0123456789abcdef"])
    lines = (Path(__file__).parent / "scenarios" / "account_takeover" /
             "stuffing_then_payment_read.jsonl").read_bytes().splitlines()[1:]
    ids = ("account_takeover", "credential_stuffing", "password_spray", "revoked_credential")

    def run(cut: int | None) -> list[tuple[str, str, str]]:
        eng = Engine(EngineConfig(detectors=ids))
        out = []
        for i, line in enumerate(lines):
            if i == cut:  # as streams.app checkpoints and restores (streams.checkpoint)
                blob = snapshot(eng, {}, keys=keys, context="t/0")
                eng, _ = restore(blob, eng.ctx.geo, eng.ctx.directory, keys=keys, context="t/0")
            out += eng.process_line(line)[0]
        out += eng.flush()
        return [(a["alert_id"], a["severity"], a["summary"]) for a in out]

    whole = run(None)
    assert any(s == "critical" for _, s, _ in whole)
    assert run(len(lines) // 2) == whole
    assert run(len(lines) - 5) == whole
