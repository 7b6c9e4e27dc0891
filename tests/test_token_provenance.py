"""unissued_session: token lifetime per key and keys the key store never announced (issue 14)."""

from __future__ import annotations

from typing import Any

from detectors.engine import Engine, EngineConfig

T0 = 1_750_723_200  # 2025-06-24T00:00:00Z
DAY = 86400


def engine(**params: Any) -> Engine:
    return Engine(EngineConfig(detectors=("unissued_session",),
                               params={"unissued_session": params} if params else {}))


def run(eng: Engine, events: list[dict]) -> list[dict]:
    out: list[dict] = []
    for e in events:
        alerts, rej = eng.process_obj(e)
        assert rej is None, rej
        out += alerts
    return out + eng.flush()


def key_issued(key: str, ts: float, **extra: Any) -> dict:
    return {"event_id": f"k-{key}-{ts}", "ts": ts, "change": "key_issued", "key_id": key, **extra}


def req(i: int, ts: float, key: str, tia: float, sid: str | None = None) -> dict:
    e = {"event_id": f"a-{i}-{ts}", "ts": ts, "actor_id": f"c-{i}", "subject_id": f"c-{i}",
         "resource": "address", "src_ip": f"121.134.{i % 200}.9", "token_issued_at": tia,
         "key_id": key}
    if sid is not None:
        e["session_id"] = sid
    return e


def test_a_backdated_token_is_invalid_under_the_default_lifetime() -> None:
    """A token claiming to be 30 days old was adopted as 'older than the watch' before issue
    14 (no page at all); now it is older than any lifetime the key allows."""
    eng = engine()
    alerts = run(eng, [key_issued("kid-a", T0)] +
                 [req(i, T0 + 2 * DAY + 60 * i, "kid-a", T0 - 30 * DAY, f"s-{i}") for i in range(3)])
    assert [a["severity"] for a in alerts] == ["warning", "critical"]
    assert alerts[0]["entity"] == {"kind": "key", "id": "kid-a"}
    age = next(x for x in alerts[0]["evidence"] if x["feature"] == "token_age_s")
    assert age["observed"] > 30 * DAY


def test_the_configured_lifetime_of_a_key_applies_and_others_keep_the_default() -> None:
    eng = engine(lifetimes={"kid-short": 600.0})
    alerts = run(eng, [key_issued("kid-short", T0), key_issued("kid-long", T0),
                       req(1, T0 + 3600, "kid-short", T0 + 1800, "s-1"),  # 30 min old: > 10 min
                       req(2, T0 + 3600, "kid-long", T0 + 1800, "s-2")])  # fine under 48 h
    assert {a["entity"]["id"] for a in alerts if "token_age_s" in str(a["evidence"])} == {"kid-short"}


def test_max_token_lifetime_s_on_key_issued_sets_the_lifetime_and_bad_values_are_ignored() -> None:
    eng = engine()
    run(eng, [key_issued("kid-a", T0, max_token_lifetime_s=900),
              key_issued("kid-b", T0, max_token_lifetime_s="forever"),
              key_issued("kid-c", T0, max_token_lifetime_s=-5)])
    det = eng.detectors["unissued_session"]
    assert det._lifetime == {"kid-a": 900.0}  # type: ignore[attr-defined]


def test_an_unannounced_key_pages_once_per_account_after_the_grace_and_keys_in_use_are_learned() -> None:
    eng = engine(key_grace=3600.0)
    early = req(1, T0 + 600, "kid-old-but-real", T0 + 590, None)  # in use while the store is learnt
    later = [req(1, T0 + 7200, "kid-old-but-real", T0 + 7190, None)]
    forged = [req(2, T0 + 7200 + k, "kid-never", T0 + 7190, None) for k in range(5)]
    alerts = run(eng, [key_issued("kid-a", T0), early, *later, *forged])
    assert [(a["entity"]["id"], a["severity"]) for a in alerts] == [("kid-never", "warning")]


def test_without_a_key_store_no_key_is_called_unannounced() -> None:
    alerts = run(engine(), [req(1, T0 + 5 * DAY, "kid-x", T0 + 5 * DAY - 10, None)])
    assert alerts == []


def test_a_token_issued_within_the_skew_before_the_watch_began_is_adopted() -> None:
    """Issue 14 item 6: a customer whose app holds a token issued a minute or two before the
    watch began (its login dated before the first event we saw) is adopted, not paged: the
    clocks' skew counts in the token's favour at the watch's start (red-team normal traffic:
    the 8 unissued_session false pages left were such tokens, issued 1-2 min before). A token
    dated well after the start with no login still pages."""
    login = {"event_id": "l-0", "ts": T0, "account_id": "c-0", "outcome": "success",
             "src_ip": "121.134.0.9", "session_id": "s-0"}
    eng = engine()
    quiet = run(eng, [login, req(1, T0 + 3 * 3600, "kid-a", T0 - 90, "s-1"),
                      req(2, T0 + 5 * 3600, "kid-a", T0 - 110, "s-2")])
    assert [a for a in quiet if a["detector"] == "unissued_session"] == []
    eng = engine()
    paged = run(eng, [login, req(3, T0 + 3 * 3600, "kid-a", T0 + 600, "s-3")])
    assert [a["severity"] for a in paged] == ["warning"]


def test_accounts_read_through_several_made_up_key_ids_count_together() -> None:
    """A forger who signs with a new made-up key id every two accounts stays under the
    per-key count for critical (3 accounts) under each id; every id the key store never
    announced is invalid, so the accounts under all of them count together: the third
    account pages critical, whichever id it came through. Accounts under the one key id of
    a store's own (announced) keys are not in that count."""
    eng = engine(key_grace=3600.0)
    forged = [req(i, T0 + 7200 + 10 * i, f"kid-fake-{i // 2}", T0 + 7190, None)
              for i in range(6)]
    alerts = run(eng, [key_issued("kid-a", T0), req(90, T0 + 7100, "kid-a", T0 + 7000, None),
                       *forged])
    got = [(a["entity"]["id"], a["severity"]) for a in alerts]
    # the second account under kid-fake-0 adds to its open warning (one alert per entity
    # and severity), the third account is the first under kid-fake-1
    assert got[:2] == [("kid-fake-0", "warning"), ("kid-fake-1", "critical")]
    every = next(x for x in alerts[1]["evidence"]
                 if x["feature"] == "accounts_under_unannounced_keys")
    assert every["observed"] == 3
    per_key = next(x for x in alerts[1]["evidence"]
                   if x["feature"] == "accounts_with_invalid_tokens")
    assert per_key["observed"] == 1
    # one made-up id alone, one account: a warning as before
    alone = run(engine(key_grace=3600.0),
                [key_issued("kid-a", T0), req(1, T0 + 7200, "kid-never", T0 + 7190, None)])
    assert [a["severity"] for a in alone] == ["warning"]
