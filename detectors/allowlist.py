"""Allow-lists and suppressions as data (issue 18): what the SOC has vouched for, watched.

An :class:`AllowList` is a versioned list of :class:`Entry` values, each with a reason, an
owner and an expiry (event time). Four lists:

- ``network``: a CIDR; findings about a source address or subnet inside it (entity kinds
  ``src_ip`` and ``subnet``) are held back;
- ``key``: a key id; findings about that key (entity kind ``key``);
- ``principal``: an account or actor id; findings about it (``account`` and ``actor``);
- ``suppress``: a rule of detector ids (none: every detector), an entity kind (none: any) and
  an entity id or, for ``src_ip`` / ``subnet``, a CIDR (none: any entity).

An entry matches a finding only while the finding's own time is before the entry's expiry,
so a replay and a worker hold back the same findings. A finding held back never becomes an
alert: :class:`AllowState` counts it by detector and keeps it (the last ``held_max``), so
nothing is dropped unseen.

Every change of the list in force is itself an alert (detector ``allowlist``, severity info)
that names the entry, its owner and reason: an entry ``added``, ``changed`` (reason, owner or
expiry), ``removed`` (no longer in the configuration) or ``expired`` (by event time). Its
alert id depends on the change only (not on which engine saw it first), so every partition's
engine announces the same change under the same id. No entry can hold back these alerts.

>>> al = AllowList(version=1, entries=(
...     Entry("network", "198.51.100.0/24", "Seoul office NAT", "alice", expires=2000.0),))
>>> st = AllowState()
>>> [(c.change, c.entry.value) for c in st.tick(al, 1000.0)]
[('added', '198.51.100.0/24')]
>>> al.match("bulk_lookup", "src_ip", "198.51.100.7", 1500.0).reason
'Seoul office NAT'
>>> al.match("bulk_lookup", "src_ip", "203.0.113.7", 1500.0) is None   # another source
True
>>> al.match("bulk_lookup", "src_ip", "198.51.100.7", 2000.0) is None  # expired
True
>>> [(c.change, c.ts) for c in st.tick(al, 2500.0)]
[('expired', 2000.0)]
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from collections import Counter, deque
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import msgspec

from .base import SEVERITIES, SEVERITY_RANK, Finding, iso

#: the ``detector`` of the alerts that announce a change of the allow-list
CHANGES_ID = "allowlist"
LISTS = ("network", "key", "principal", "suppress")
#: the entity kinds a rule may name (``base.ENTITY_KINDS``)
NETWORK_KINDS = ("src_ip", "subnet")
CHANGES = ("added", "changed", "removed", "expired")


class Entry(msgspec.Struct, frozen=True):
    """One allow-list entry. ``value``: the CIDR, key id or principal id; for ``suppress``, an
    entity id or CIDR ("" = any entity). ``expires``: event-time epoch seconds (None: never,
    only for the legacy ``trusted_networks`` setting)."""

    list: str
    value: str
    reason: str
    owner: str
    expires: float | None = None
    detectors: tuple[str, ...] = ()  # suppress: the detectors it holds back (() = all)
    entity_kind: str = ""  # suppress: the entity kind it holds back ("" = any)

    def ident(self) -> str:
        """What the entry is about (its identity across versions of the file)."""
        if self.list != "suppress":
            return f"{self.list}:{self.value}"
        return f"suppress:{','.join(self.detectors) or '*'}:{self.entity_kind or '*'}:" \
               f"{self.value or '*'}"

    def live(self, ts: float) -> bool:
        return self.expires is None or ts < self.expires

    def matches(self, detector: str, kind: str, ident: str) -> bool:
        lst = self.list
        if lst == "network":
            return kind in NETWORK_KINDS and _inside(ident, self.value)
        if lst == "key":
            return kind == "key" and ident == self.value
        if lst == "principal":
            return kind in ("account", "actor") and ident == self.value
        if self.detectors and detector not in self.detectors:
            return False
        if self.entity_kind and kind != self.entity_kind:
            return False
        if not self.value:
            return True
        if ident == self.value:
            return True
        return kind in NETWORK_KINDS and "/" in self.value and _inside(ident, self.value)

    def describe(self) -> str:
        if self.list == "suppress":
            what = (f"suppression of {', '.join(self.detectors) or 'every detector'}"
                    f" for {self.entity_kind or 'any entity'}"
                    + (f" {self.value}" if self.value else ""))
        else:
            what = f"{self.list} {self.value}"
        return what

    def entity(self) -> tuple[str, str]:
        """The entity a change alert is about: what the entry vouches for, else its owner."""
        if self.list == "network":
            net = _network(self.value)
            single = net is not None and net.num_addresses == 1
            return ("src_ip", str(net.network_address)) if single else ("subnet", self.value)  # type: ignore[union-attr]  # single: net is set
        if self.list == "key":
            return "key", self.value
        if self.list == "principal":
            return "account", self.value
        if self.value and self.entity_kind:
            return self.entity_kind, self.value
        return "account", self.owner


class AllowList(msgspec.Struct, frozen=True):
    """The allow-list in force: its ``version`` (from the file) and its entries."""

    version: int
    entries: tuple[Entry, ...] = ()
    source: str = ""  # where it was read from (shown in change alerts)

    def match(self, detector: str, kind: str, ident: str, ts: float) -> Entry | None:
        """The first entry live at ``ts`` that holds back this finding, else None."""
        for e in self.entries:
            if e.live(ts) and e.matches(detector, kind, ident):
                return e
        return None


@dataclass(frozen=True, slots=True)
class Change:
    change: str  # one of CHANGES
    entry: Entry
    ts: float  # event time of the change (an expiry: the entry's own expiry)
    previous: Entry | None = None  # for "changed"


class AllowState:
    """The engine's memory of the allow-list: the entries it announced as in force, the next
    expiry due, and the findings held back (counted by detector; the last ``held_max`` kept).
    """

    held_max = 1000

    def __init__(self) -> None:
        self.applied: dict[str, Entry] = {}  # ident -> entry announced as in force
        self.version = 0  # the version last announced
        self.due = -math.inf  # event time of the next tick (an expiry, or a new list)
        self.held: Counter[str] = Counter()  # detector -> findings held back
        self.kept: deque[dict[str, Any]] = deque(maxlen=self.held_max)
        # analysts' verdicts (detectors/feedback.py)
        self.benign: dict[str, Entry] = {}  # ident -> suppression of a benign verdict
        self.held_feedback: Counter[str] = Counter()  # detector -> findings it held back
        self.watched: dict[tuple[str, str], tuple[float, str]] = {}  # malicious: until, alert

    def match_benign(self, f: Finding) -> Entry | None:
        """The live suppression of a benign verdict that holds ``f`` back (expired ones go)."""
        for ident, e in list(self.benign.items()):
            if not e.live(f.ts):
                if e.expires is not None and f.ts >= e.expires:
                    del self.benign[ident]
                continue
            if e.matches(f.detector, f.entity_kind, f.entity_id):
                return e
        return None

    def escalate(self, f: Finding, link: tuple[str, str] | None = None) -> None:
        """Raise ``f`` one severity step while its entity, or ``link`` (the linking entity
        of the incident its alert would join), is watched after a malicious verdict (the
        evidence says why)."""
        w = self._watch_of((f.entity_kind, f.entity_id), f.ts)
        if w is None and link is not None:
            w = self._watch_of(link, f.ts)
        if w is None:
            return
        rank = SEVERITY_RANK[f.severity]
        if rank + 1 < len(SEVERITIES):
            f.severity = SEVERITIES[rank + 1]
            f.evidence = [*f.evidence, {
                "feature": "verdict", "observed": "malicious", "baseline": None,
                "detail": f"an analyst marked {w[1]} malicious: severity raised one step "
                          f"until {iso(w[0])}"}]

    def _watch_of(self, ent: tuple[str, str], ts: float) -> tuple[float, str] | None:
        """The live watch on ``ent`` at ``ts``; an expired one is forgotten (verdicts are
        few, but a watch must not outlive its week in the state)."""
        w = self.watched.get(ent)
        if w is not None and ts >= w[0]:
            del self.watched[ent]
            return None
        return w

    def tick(self, al: AllowList | None, now: float) -> list[Change]:
        """The changes between what was announced and what ``al`` puts in force at ``now``
        (sorted: a stable order for every engine); remembers the new state."""
        entries = al.entries if al is not None else ()
        live = {e.ident(): e for e in entries if e.live(now)}
        listed = {e.ident(): e for e in entries}
        out: list[Change] = []
        for ident, e in sorted(self.applied.items()):
            if ident not in live:
                gone = listed.get(ident)
                if gone is not None and gone.expires is not None and not gone.live(now):
                    out.append(Change("expired", gone, gone.expires))
                else:
                    out.append(Change("removed", e, now))
            elif live[ident] != e:
                out.append(Change("changed", live[ident], now, e))
        for ident, e in sorted(live.items()):
            if ident not in self.applied:
                out.append(Change("added", e, now))
        self.applied = live
        self.version = al.version if al is not None else 0
        self.due = min((e.expires for e in live.values() if e.expires is not None),
                       default=math.inf)
        return out

    def hold(self, entry: Entry, alert: dict[str, Any], feedback: bool = False) -> None:
        """Count and keep a finding that ``entry`` held back (``alert``: as it would have been)."""
        (self.held_feedback if feedback else self.held)[alert["detector"]] += 1
        self.kept.append({**alert, "held_by": entry.ident(), "held_reason": entry.reason})


def change_alert(c: Change, version: int, source: str = "") -> dict[str, Any]:
    """The info alert announcing ``c``; its id depends on the change alone."""
    e = c.entry
    kind, ident = e.entity()
    until = f"until {iso(e.expires)}" if e.expires is not None else "with no expiry"
    raw = f"{CHANGES_ID}|{c.change}|{e.ident()}|{e.owner}|{e.reason}|{e.expires}|{version}"
    alert_id = f"aw-{hashlib.sha256(raw.encode()).hexdigest()[:24]}"
    if source.startswith("feedback:"):
        summary = (f"Feedback: {e.owner} marked {source[9:]} benign: {e.describe()} is held "
                   f"back {until} ({e.reason}).")
    elif c.change == "expired":
        summary = (f"Allow-list: {e.describe()} (owner {e.owner}: {e.reason}) expired; its "
                   "findings alert again.")
    elif c.change == "removed":
        summary = (f"Allow-list v{version}: {e.describe()} (owner {e.owner}: {e.reason}) was "
                   "removed; its findings alert again.")
    elif c.change == "changed":
        summary = (f"Allow-list v{version}: {e.describe()} changed, now owner {e.owner}, "
                   f"{until} ({e.reason}); check who changed it and why.")
    else:
        summary = (f"Allow-list v{version}: {e.owner} added {e.describe()} {until} "
                   f"({e.reason}); its findings are held back, check this is wanted.")
    evidence: list[dict[str, Any]] = [
        {"feature": "change", "observed": c.change, "baseline": None},
        {"feature": "entry", "observed": e.ident(), "baseline": None},
        {"feature": "owner", "observed": e.owner, "baseline": None},
        {"feature": "reason", "observed": e.reason, "baseline": None},
        {"feature": "expires", "observed": iso(e.expires) if e.expires is not None else None,
         "baseline": None},
        {"feature": "version", "observed": version, "baseline": None},
    ]
    if c.previous is not None:
        p = c.previous
        evidence.append({"feature": "previous", "observed": {
            "owner": p.owner, "reason": p.reason,
            "expires": iso(p.expires) if p.expires is not None else None}, "baseline": None})
    return {
        "alert_id": alert_id,
        "ts": iso(c.ts),
        "detector": CHANGES_ID,
        "severity": "info",
        "score": 0.0,
        "entity": {"kind": kind, "id": ident},
        "summary": summary,
        "evidence": evidence,
        "event_ids": [],
        "allowlist": {"change": c.change, "entry": e.ident(), "owner": e.owner,
                      "reason": e.reason, "version": version, "source": source},
    }


@lru_cache(maxsize=4096)
def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def _inside(ident: str, cidr: str) -> bool:
    """Whether the address or subnet ``ident`` lies inside the network ``cidr``."""
    net, inner = _network(cidr), _network(ident)
    if net is None or inner is None or net.version != inner.version:
        return False
    return inner.subnet_of(net)  # type: ignore[arg-type]  # one IP version (checked above)
