"""revoked_credential: exact checks against the identity directory, first use pages critical."""

from __future__ import annotations

from typing import Any

from detectors.engine import Engine, EngineConfig


def engine(**params: Any) -> Engine:
    # times in these tests count from 0 (1970): accepted here
    return Engine(EngineConfig(detectors=("revoked_credential",),
                               params={"revoked_credential": params}, ts_min_year=1970))


def feed(eng: Engine, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for obj in events:
        alerts, rej = eng.process_obj(obj)
        assert rej is None, rej
        out.extend(alerts)
    return out + eng.flush()


def issued(ts: float, key: str, owner: str) -> dict[str, Any]:
    return {"event_id": f"ki-{key}-{ts}", "ts": ts, "change": "key_issued", "key_id": key,
            "owner_id": owner}


def change(ts: float, kind: str, **kw: Any) -> dict[str, Any]:
    return {"event_id": f"ch-{kind}-{ts}", "ts": ts, "change": kind, **kw}


def access(i: int, ts: float, key: str | None = None, actor: str | None = None,
           ip: str = "52.95.110.1") -> dict[str, Any]:
    d = {"event_id": f"a{i}", "ts": ts, "actor_id": actor or f"c-{i}", "subject_id": f"c-{i}",
         "resource": "address", "src_ip": ip}
    if key:
        d["key_id"] = key
    return d


def login(i: int, ts: float, acct: str, outcome: str = "success",
          account_type: str = "employee") -> dict[str, Any]:
    d = {"event_id": f"l{i}", "ts": ts, "account_id": acct, "outcome": outcome,
         "src_ip": "121.131.0.7", "account_type": account_type}
    if outcome == "success":
        d["session_id"] = f"s{i}"
    return d


def test_departed_owner_key_pages_once_critical_at_first_use() -> None:
    eng = engine()
    evs = [issued(0, "kid-legacy-2019", "emp-1"), change(100, "principal_terminated",
                                                         principal_id="emp-1")]
    evs += [access(i, 200 + i, key="kid-legacy-2019") for i in range(500)]
    alerts = feed(eng, evs)
    assert len(alerts) == 1
    a = alerts[0]
    assert (a["severity"], a["entity"]) == ("critical", {"kind": "key", "id": "kid-legacy-2019"})
    assert a["event_ids"] == ["a0"]
    assert "emp-1" in a["summary"] and "terminated" in a["summary"]
    feats = {e["feature"]: e for e in a["evidence"]}
    assert feats["credential_state"]["observed"] == "owner terminated"
    assert feats["first_use"]["observed"] == "1970-01-01T00:03:20.000Z"
    # the episode holds the rest: the engine counted refresh findings, sent nothing more
    ep = eng.episodes[("revoked_credential", "key", "kid-legacy-2019")]
    assert ep.count >= 2
    assert eng.suppressed["revoked_credential"] == ep.count - 1


def test_refresh_findings_keep_counts() -> None:
    eng = engine(refresh=60.0)
    evs = [issued(0, "k", "emp-1"), change(1, "principal_suspended", principal_id="emp-1")]
    evs += [access(i, 10 + i, key="k", ip=f"52.95.110.{i % 3 + 1}") for i in range(100)]
    feed(eng, evs)
    det = eng.detectors["revoked_credential"]
    use = det._keys["k"]  # type: ignore[attr-defined]
    assert use.requests == 100 and len(use.accounts) == 100 and len(use.sources) == 3
    assert use.reason == "owner_suspended"


def test_use_before_departure_or_revocation_is_quiet() -> None:
    eng = engine()
    evs = [issued(0, "k", "emp-1"), access(1, 50, key="k"),
           change(100, "principal_terminated", principal_id="emp-1")]
    assert feed(eng, evs) == []
    eng = engine()
    evs = [issued(0, "k2", "svc"), access(1, 50, key="k2"), change(60, "key_revoked", key_id="k2")]
    assert feed(eng, evs) == []


def test_revoked_then_reissued_key_is_valid_again() -> None:
    eng = engine()
    evs = [change(0, "key_revoked", key_id="k"), issued(10, "k", "svc"), access(1, 20, key="k")]
    assert feed(eng, evs) == []


def test_revoked_key_pages_with_time_since_revocation() -> None:
    eng = engine()
    alerts = feed(eng, [issued(0, "k", "svc"), change(100, "key_revoked", key_id="k"),
                        access(1, 100 + 2 * 3600, key="k")])
    assert len(alerts) == 1
    assert "revoked 2.0 h ago" in alerts[0]["summary"]
    assert alerts[0]["evidence"][0]["observed"] == "revoked"


def test_departed_principal_failed_then_successful_login_escalates() -> None:
    eng = engine()
    alerts = feed(eng, [change(0, "principal_terminated", principal_id="emp-9"),
                        login(1, 60, "emp-9", "failure"), login(2, 70, "emp-9", "failure"),
                        login(3, 80, "emp-9", "success")])
    assert [a["severity"] for a in alerts] == ["warning", "critical"]
    assert {a["entity"]["id"] for a in alerts} == {"emp-9"}
    assert "tried to log in" in alerts[0]["summary"]
    assert "just logged in" in alerts[1]["summary"]


def test_a_locked_customer_retrying_is_info_until_the_lock_fails() -> None:
    """A customer the business suspended keeps trying to log in (the door held): info, not a
    page; a login that succeeds despite the lock is critical. An employee's failed login
    after departure still warns (the test above)."""
    eng = engine()
    evs = [change(0, "principal_suspended", principal_id="c-77"),
           *[login(i, 60 + 3600 * i, "c-77", "failure", "customer") for i in range(1, 6)],
           login(9, 60 + 3600 * 9, "c-77", "success", "customer")]
    alerts = feed(eng, evs)
    assert [a["severity"] for a in alerts if a["severity"] != "info"] == ["critical"]
    assert alerts[0]["severity"] == "info" and "tried to log in" in alerts[0]["summary"]


def test_reinstated_principal_is_quiet() -> None:
    eng = engine()
    evs = [change(0, "principal_suspended", principal_id="emp-9"),
           change(10, "principal_reinstated", principal_id="emp-9"), login(1, 60, "emp-9"),
           access(2, 70, actor="emp-9")]
    assert feed(eng, evs) == []


def test_owner_using_own_key_after_leaving_pages_the_key_only() -> None:
    eng = engine()
    evs = [issued(0, "k", "emp-3"), change(5, "principal_terminated", principal_id="emp-3"),
           access(1, 10, key="k", actor="emp-3")]
    alerts = feed(eng, evs)
    assert [a["entity"] for a in alerts] == [{"kind": "key", "id": "k"}]


def test_departed_actor_access_pages_the_actor() -> None:
    eng = engine()
    alerts = feed(eng, [change(0, "principal_terminated", principal_id="emp-4"),
                        access(1, 3600 * 30, actor="emp-4")])
    assert alerts[0]["entity"] == {"kind": "actor", "id": "emp-4"}
    assert "terminated 1.2 days ago" in alerts[0]["summary"]


def test_expire_drops_idle_records() -> None:
    eng = engine(idle=600.0)
    feed(eng, [issued(0, "k", "emp-1"), change(1, "principal_terminated", principal_id="emp-1"),
               access(1, 10, key="k")])
    det = eng.detectors["revoked_credential"]
    assert det.tracked() == {"key": 1, "actor": 0}
    det.expire(500.0)
    assert det.tracked()["key"] == 1
    det.expire(700.0)
    assert det.tracked()["key"] == 0


def test_restored_checkpoint_sees_a_newer_directory() -> None:
    from streams.checkpoint import restore, snapshot
    from streams.snapshot import StateKeys

    keys = StateKeys(["test-revoked-key-0123456789"])
    eng = engine()
    feed(eng, [issued(0, "k", "emp-1"), access(1, 10, key="k")])
    newer = eng.ctx.directory
    blob = snapshot(eng, {}, keys=keys, context="t/0")  # the worker's own checkpoint format
    eng, _ = restore(blob, eng.ctx.geo, newer, keys=keys, context="t/0")
    # as streams.app does: the worker's shared directory learned of a termination meanwhile
    newer.apply(_term())  # (restore attached the worker's directory: ``newer``)
    alerts = feed(eng, [access(2, 30, key="k")])
    assert [a["entity"] for a in alerts] == [{"kind": "key", "id": "k"}]


def _term() -> Any:
    from detectors import events as E

    ev = E.decode_obj(change(20, "principal_terminated", principal_id="emp-1"),
                      policy=E.Policy.years(1970, 2100))
    assert isinstance(ev, E.Event)
    return ev
