"""Incidents: the alerts of one attack under one ``incident_id``, a title and a short story.

An attack raises alerts on several entities at once (Coupang: the signing key, each server's
address and /24, the hosting AS), each with its own ``alert_id``. Paging once per alert is an
alert storm; this module joins them.

**The id is a pure function of the alert** (:func:`incident_link` + :func:`incident_id`), not of
what else one engine happened to see: the alerts of one attack are raised on different workers
(each entity is scored where its partition or its merged partial lives), and every worker must
give the same id. The alert names its *linking entity*, the strongest identity it carries:

1. ``key`` — the alert's entity is a signing/API key, or its evidence lists the keys the
   requests presented (``signing_keys``: the most used one);
2. ``asn`` — the alert's entity is an AS, or its address/subnet (the entity, or the source
   named in its evidence) is in a *hosting* network: an attacker rents servers, customers
   do not browse from them. Broadband and mobile ASes are never a link (millions of
   customers share them);
3. ``subnet`` — the /24 (/48) of an address the alert names;
4. the alert's own entity (a session, an address in a home network, a principal: an
   ``account`` and an ``actor`` of one id are one principal).

The id is ``in-`` and 24 hex digits of SHA-256 over the link and the *time bucket* of the
alert's episode start (``window`` seconds, aligned to the epoch): the same attacker next week
is a new incident. Two alerts of one attack get two incidents when they name no common link
(an address's bulk read names no key) or when their episodes start in different buckets.

**The story** (:class:`Incidents`) is kept per engine: first seen, entities, detectors,
accounts exposed (the largest count an alert of the incident reports), the latest escalation.
It is what this engine has seen of the incident; the id is what every engine agrees on.

>>> a = {"alert_id": "aw-1", "detector": "bulk_lookup", "severity": "critical",
...      "ts": "2025-06-24T01:12:00Z", "entity": {"kind": "key", "id": "kid-legacy-2019"},
...      "evidence": [], "episode": {"started": "2025-06-24T01:07:59Z", "findings": 2}}
>>> incident_link(a)
('key', 'kid-legacy-2019')
>>> b = {**a, "detector": "overseas_server", "entity": {"kind": "subnet", "id": "45.77.0.0/24"},
...      "evidence": [{"feature": "signing_keys", "observed": "kid-legacy-2019 (5)"}]}
>>> incident_id(incident_link(b), 1750727000.0) == incident_id(incident_link(a), 1750727000.0)
True
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from .geo import NetInfo

#: link kinds, strongest identity first; any other entity kind ranks after them
LINK_RANK = {"key": 0, "asn": 1, "subnet": 2, "src_ip": 3}
#: network classes whose AS links the alerts raised from it (rented servers)
LINKING_NET_CLASSES = frozenset({"hosting"})
#: evidence features whose ``observed`` counts distinct customer accounts read
EXPOSED_FEATURES = frozenset({
    "distinct_accounts_24h", "distinct_accounts_1h", "distinct_accounts_local_day",
    "distinct_customer_accounts", "coverage_accounts", "customers_last_day",
    "customers_last_hour",
})
#: entity kinds naming a principal: an account's logins and an actor's reads are one identity
PRINCIPAL_KINDS = frozenset({"account", "actor"})
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
MAX_ENTITIES = 12  # entities named in a story (the rest are counted)
#: entity kinds that may be a victim (a customer whose token was forged, an account taken
#: over, its session): a story only counts them, since it travels in the alerts of the other
#: entities of the incident, which must not name victims (docs/contract.md, "Victims")
PERSON_KINDS = frozenset({"account", "actor", "session"})
MAX_PEOPLE = 10_000  # distinct people an incident's story counts exactly
MAX_ID_CHARS = 256  # a longer entity id (attacker-chosen) is hashed into the link, not kept

_KEY_COUNT = re.compile(r"^\s*(.+?)\s*\((\d+)\)\s*$")
_NAMED_SOURCE = re.compile(r"^(src_ip|subnet) (\S+)$")

NetLookup = Callable[[str], "NetInfo | None"]


def _keys_in(evidence: Any) -> list[tuple[int, str]]:
    """``(count, key)`` of every key an alert's ``signing_keys`` evidence lists."""
    out: list[tuple[int, str]] = []
    if not isinstance(evidence, list):
        return out
    for ev in evidence:
        if not isinstance(ev, Mapping) or ev.get("feature") != "signing_keys":
            continue
        observed = ev.get("observed")
        if not isinstance(observed, str):
            continue
        for part in observed.split(","):
            m = _KEY_COUNT.match(part)
            if m:
                out.append((int(m.group(2)), m.group(1)))
            elif part.strip() and part.strip() != "none":
                out.append((0, part.strip()))
    return out


def _sources_in(alert: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Addresses and subnets the alert is about: its entity, or a source its evidence names
    (``login_source_in_burst``: ``"src_ip 1.2.3.4"``)."""
    ent = alert.get("entity") or {}
    out = []
    if ent.get("kind") in ("src_ip", "subnet"):
        out.append((str(ent["kind"]), str(ent.get("id", ""))))
    for ev in alert.get("evidence") or ():
        if isinstance(ev, Mapping) and ev.get("feature") == "login_source_in_burst":
            m = _NAMED_SOURCE.match(str(ev.get("observed", "")))
            if m:
                out.append((m.group(1), m.group(2)))
    return out


def incident_link(alert: Mapping[str, Any], net: NetLookup | None = None) -> tuple[str, str]:
    """The linking entity ``(kind, id)`` of an alert: the strongest identity it names (see the
    module docstring). ``net`` looks an address up (the engine's geo); without it no address
    is linked through its AS.

    >>> incident_link({"entity": {"kind": "account", "id": "c-1"}, "evidence": []})
    ('principal', 'c-1')
    >>> incident_link({"entity": {"kind": "src_ip", "id": "1.2.3.4"}, "evidence": []})
    ('subnet', '1.2.3.0/24')
    """
    ent = alert.get("entity") or {}
    kind, ident = str(ent.get("kind", "")), str(ent.get("id", ""))
    if kind in PRINCIPAL_KINDS:  # one identity, whether it logged in or read data
        kind = "principal"
    cands: list[tuple[str, str]] = [(kind, ident)]
    keys = _keys_in(alert.get("evidence"))
    if keys:
        cands.append(("key", min(keys, key=lambda c: (-c[0], c[1]))[1]))  # most used
    for skind, sid in _sources_in(alert):
        if skind == "src_ip":
            info = net(sid) if net is not None else None
            subnet = info.subnet if info is not None else _subnet(sid)
            if subnet:
                cands.append(("subnet", subnet))
        else:
            info = net(sid.split("/")[0]) if net is not None and "/" in sid else None
            cands.append(("subnet", sid))
        if info is not None and info.net_class in LINKING_NET_CLASSES:
            cands.append(("asn", info.asn_key))
    return min(cands, key=lambda c: LINK_RANK.get(c[0], len(LINK_RANK)))


def _subnet(ip: str) -> str | None:
    from .geo import subnet_of

    try:
        subnet, _, private = subnet_of(ip)
    except (ValueError, TypeError):
        return None
    return None if private else subnet


def incident_id(link: tuple[str, str], episode_start: float, window: float = 86400.0) -> str:
    """``in-`` + 24 hex digits: the link and the ``window``-second bucket of the episode start.

    >>> incident_id(("key", "k1"), 100.0) == incident_id(("key", "k1"), 86399.0)
    True
    >>> incident_id(("key", "k1"), 100.0) == incident_id(("key", "k1"), 86400.0)
    False
    """
    bucket = int(episode_start // window) if window > 0 else 0
    raw = orjson.dumps([link[0], link[1], bucket])  # a JSON array: no separator to forge
    return f"in-{hashlib.sha256(raw).hexdigest()[:24]}"


def _exposed(alert: Mapping[str, Any]) -> int:
    best = 0
    for ev in alert.get("evidence") or ():
        if isinstance(ev, Mapping) and ev.get("feature") in EXPOSED_FEATURES:
            v = ev.get("observed")
            if isinstance(v, int) and not isinstance(v, bool):
                best = max(best, v)
    return best


def _short(text: str) -> str:
    return text if len(text) <= 64 else text[:63] + "…"


class Incidents:
    """The stories of the incidents one engine has alerts of, bounded: an incident quiet for
    ``2 * window`` seconds of event time is forgotten, and at most ``max_open`` are kept
    (the least recently updated go first). Plain dicts and lists: it is checkpointed with the
    engine."""

    def __init__(self, window: float = 86400.0, max_open: int = 10_000) -> None:
        self.window = window
        self.max_open = max_open
        self.stories: dict[str, dict[str, Any]] = {}
        self.of_alert: dict[str, str] = {}  # alert_id -> incident_id (fixed at its first alert)

    def assign(self, alert: dict[str, Any], episode_start: float, ts: float,
               net: NetLookup | None = None) -> str:
        """Set ``incident_id`` and ``incident`` (title and story) on ``alert``; return the id.
        An alert id keeps the incident of its first alert, so its Alertmanager labels never
        change within an episode."""
        aid = str(alert.get("alert_id", ""))
        iid = self.of_alert.get(aid)
        new_alert = iid is None or iid not in self.stories
        if new_alert:
            link = incident_link(alert, net)
            iid = incident_id(link, episode_start, self.window)
            self.of_alert[aid] = iid
        else:
            assert iid is not None  # not a new alert: of_alert had it
            link = tuple(self.stories[iid]["link"].values())
        story = self.stories.get(iid)
        if story is None:
            story = self.stories[iid] = {
                "link": {"kind": link[0], "id": _short(link[1])},
                "link_full": [link[0], link[1]],  # the link as matched (issue 18.3, feedback)
                "first_seen": alert.get("ts"), "first_ts": ts, "last_ts": ts,
                "entities": [], "more_entities": 0, "people": [], "detectors": [], "alerts": 0,
                "accounts_exposed": 0, "severity": "info", "latest_escalation": None,
            }
            self._prune(ts)
        story["last_ts"] = max(story["last_ts"], ts)
        if ts < story["first_ts"]:
            story["first_ts"], story["first_seen"] = ts, alert.get("ts")
        ent = alert.get("entity") or {}
        kind = str(ent.get("kind"))
        if kind in PERSON_KINDS:
            label = f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"
            ident = str(ent.get("id"))
            if ident not in story["people"] and len(story["people"]) < MAX_PEOPLE:
                story["people"].append(ident)
        else:
            label = f"{kind} {_short(str(ent.get('id')))}"
            if label not in story["entities"]:
                if len(story["entities"]) < MAX_ENTITIES:
                    story["entities"].append(label)
                else:
                    story["more_entities"] += 1
        det = str(alert.get("detector"))
        if det not in story["detectors"]:
            story["detectors"].append(det)
            story["detectors"].sort()
        if new_alert:
            story["alerts"] += 1
        story["accounts_exposed"] = max(story["accounts_exposed"], _exposed(alert))
        sev = str(alert.get("severity"))
        if SEVERITY_RANK.get(sev, 0) > SEVERITY_RANK.get(story["severity"], 0):
            story["severity"] = sev
            story["latest_escalation"] = {"ts": alert.get("ts"), "severity": sev,
                                          "detector": det, "entity": label}
        alert["incident_id"] = iid
        alert["incident"] = self.view(iid)
        return iid

    def links(self) -> dict[str, tuple[str, str]]:
        """The linking entity ``(kind, id)`` of every incident kept, by id (a story from a
        checkpoint before ``link_full`` gives its link unless it was shortened)."""
        out = {}
        for iid, s in self.stories.items():
            full = s.get("link_full")
            if full is not None:
                out[iid] = (str(full[0]), str(full[1]))
            elif not s["link"]["id"].endswith("…"):
                out[iid] = (s["link"]["kind"], s["link"]["id"])
        return out

    def view(self, iid: str) -> dict[str, Any]:
        """The incident as an alert carries it: title and story."""
        s = self.stories[iid]
        link = s["link"]
        n_ent = len(s["entities"]) + s["more_entities"] + len(s["people"])
        title = (f"{s['severity'].capitalize()} incident on {link['kind']} {link['id']}: "
                 f"{len(s['detectors'])} detector(s), {n_ent} entit{'y' if n_ent == 1 else 'ies'}")
        more = f" and {s['more_entities']} more" if s["more_entities"] else ""
        if s["people"]:
            n = len(s["people"])
            more += f"{', ' if s['entities'] else ''}{n} account{'s' if n > 1 else ''}"
            more += " or session(s) (named in their own alerts)"
        esc = s["latest_escalation"]
        story = (f"First seen {s['first_seen']}. Entities: {', '.join(s['entities'])}{more}. "
                 f"Detectors: {', '.join(s['detectors'])}. "
                 f"Accounts exposed: at least {s['accounts_exposed']}. "
                 + (f"Latest escalation: {esc['severity']} by {esc['detector']} on "
                    f"{esc['entity']} at {esc['ts']}." if esc else "No escalation yet."))
        return {
            "title": title, "story": story, "link": dict(link), "first_seen": s["first_seen"],
            "entities": list(s["entities"]), "accounts": len(s["people"]),
            "detectors": list(s["detectors"]),
            "alerts": s["alerts"], "accounts_exposed": s["accounts_exposed"],
            "latest_escalation": dict(esc) if esc else None,
        }

    def _prune(self, now: float) -> None:
        horizon = now - 2 * self.window
        drop = [i for i, s in self.stories.items() if s["last_ts"] < horizon]
        over = len(self.stories) - len(drop) - self.max_open
        if over > 0:
            kept = sorted((s["last_ts"], i) for i, s in self.stories.items() if i not in drop)
            drop += [i for _, i in kept[:over]]
        if not drop:
            return
        gone = set(drop)
        for i in drop:
            del self.stories[i]
        self.of_alert = {a: i for a, i in self.of_alert.items() if i not in gone}
