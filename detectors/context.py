"""What the detectors share with the engine: the identity ``Directory`` (facts from the
``identity-changes`` topic) and the ``Context`` each hook is given (directory, network facts,
event time, timers, victim labels). Part of the detector contract (``detectors.base``);
``detectors.engine`` builds one per engine and re-exports these names."""

from __future__ import annotations

import hashlib
import heapq
import math
from datetime import datetime
from functools import cache, lru_cache
from typing import Any, Protocol, cast

from . import events as E
from .geo import Geo

#: the most entries an alert's ``victims`` field lists (``EngineConfig.victims_max``'s default)
VICTIMS_MAX = 20


class VictimSettings(Protocol):
    """The settings ``Context.configure_victims`` reads (``EngineConfig`` has them)."""

    salt: str
    victim_salt: str
    reveal_victims: bool
    victims_max: int


class Directory:
    """Identity facts from HR and the key store (the ``identity-changes`` topic)."""

    def __init__(self) -> None:
        self.principal_status: dict[str, tuple[str, float]] = {}  # id -> (terminated|suspended, ts)
        self.key_owner: dict[str, str] = {}
        self.key_issued: dict[str, float] = {}
        self.key_revoked: dict[str, float] = {}
        self.session_revoked: dict[str, float] = {}

    def apply(self, e: E.Event) -> None:
        """Apply an identity change that ``detectors.events.decode`` accepted: it has the id
        field its ``change`` needs, and its ``ts`` is epoch seconds (a float). The Event type
        declares the id fields optional (which one is set depends on the kind), hence the casts."""
        c = e.change
        ts = e.ts
        if c == "principal_terminated" or c == "principal_suspended":
            self.principal_status[cast(str, e.principal_id)] = (c.split("_")[1], ts)
        elif c == "principal_reinstated":
            self.principal_status.pop(cast(str, e.principal_id), None)
        elif c == "key_issued":
            key = cast(str, e.key_id)
            self.key_issued[key] = ts
            self.key_revoked.pop(key, None)
            if e.owner_id:
                self.key_owner[key] = e.owner_id
        elif c == "key_revoked":
            self.key_revoked[cast(str, e.key_id)] = ts
        elif c == "session_revoked":
            self.session_revoked[cast(str, e.session_id)] = ts

    def departed(self, principal: str | None) -> tuple[str, float] | None:
        return self.principal_status.get(principal) if principal else None


class Context:
    """What detectors share: the identity directory, network facts, event time, timers."""

    #: the entity kinds whose findings the engine relays (``EngineConfig.relay_kinds``, kept
    #: in step by the engine before each event): a detector whose observations are of a kind
    #: not in it may fold them at once, as the engine would (spread_access)
    relayed: tuple[str, ...] = ()

    def __init__(self, geo: Geo, salt: str) -> None:
        self.geo = geo
        self.directory = Directory()
        self.now = 0.0  # newest event time seen
        #: newest event time of the access stream (or of a watermark: the runtime's statement
        #: that every input stream is quiet up to it). The two input streams are merged by
        #: event time only approximately (a login may reach the engine before older access
        #: records): a detector that closes a window of access records on a timer waits for
        #: this clock, not ``now`` (issue 14 item 5; bulk_lookup)
        self.access_now = 0.0
        self.start: float | None = None  # event time of the first event: when watching began
        self._salt = salt.encode()
        self._timers: list[tuple[float, int, str]] = []
        self._seq = 0
        self._victim_key = _victim_key(salt)  # see ``configure_victims``
        self.reveal_victims = False
        self.victims_max = VICTIMS_MAX
        self._hash_memo: dict[str | tuple[str, ...], int] = {}  # ``hash_id``'s memo (transient)
        self.relayed = Context.relayed  # an instance attribute: read per event (base.py, "Speed")
        #: the deployment's local time (``EngineConfig.timezone``): ``local.offset(ts)``
        self.local = LocalTime()

    def wake_at(self, ts: float, detector_id: str) -> None:
        """Ask for ``on_time`` once event time reaches ``ts``."""
        self._seq += 1
        heapq.heappush(self._timers, (ts, self._seq, detector_id))

    # ---- victims: who an alert may name only by digest (docs/contract.md, "Victims") -------
    def configure_victims(self, cfg: VictimSettings) -> None:
        """Take the digest key and the reveal choice from ``cfg``. The engine does this when
        it is built; a runtime does it again on an engine restored from a checkpoint, whose
        context keeps neither (the key is a secret; both are the deployment's choice now)."""
        self._victim_key = _victim_key(cfg.victim_salt or cfg.salt)
        self.reveal_victims = cfg.reveal_victims
        self.victims_max = cfg.victims_max

    def configure_local(self, setting: str) -> None:
        """Take the deployment's ``timezone`` setting (``EngineConfig.timezone``). A restored
        context keeps its local time (the zone "auto" decided) unless the setting changed."""
        if self.local.setting != setting:
            self.local = LocalTime(setting)

    def victim(self, kind: str, ident: str) -> str:
        """The label an alert names a victim by: ``kind#`` and 8 hex digits of a keyed
        BLAKE2b of the id (stable for the same id and key, so alerts can be correlated).

        >>> from detectors.geo import default_geo
        >>> ctx = Context(default_geo(), "salt")
        >>> ctx.victim("customer", "c-000113") == ctx.victim("customer", "c-000113")
        True
        >>> ctx.victim("customer", "c-000113")[:9], len(ctx.victim("customer", "c-000113"))
        ('customer#', 17)
        """
        h = _victim_blake2b(self._victim_key).copy()
        h.update(ident.encode("utf-8", "surrogatepass"))
        return f"{kind}#{h.hexdigest()}"

    def victims(self) -> Victims:
        """A fresh list of the victims one finding names (see :class:`Victims`)."""
        return Victims(self)

    def __getstate__(self) -> dict[str, Any]:
        # the digest key is a secret: never in a checkpoint (``configure_victims`` after restore)
        state = dict(self.__dict__)
        for k in ("_victim_key", "reveal_victims", "victims_max", "_hash_memo"):
            state.pop(k, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("access_now", self.now)  # a checkpoint from before the clock
        if "local" not in self.__dict__:  # a checkpoint from before the local time: "auto",
            self.local = LocalTime()  # decided again from the next customer logins
        # until the runtime configures it: digests under the state salt, nothing revealed
        self._victim_key = _victim_key(self._salt.decode())
        self.reveal_victims = False
        self.victims_max = VICTIMS_MAX
        self._hash_memo = {}

    def hash_id(self, *parts: str) -> int:
        """A salted 64-bit digest of identifiers, for state that must not hold the ids.

        Memoised (issue 14, speed): the same session or customer is digested on each of its
        events and in each window it is read in (~1.4 µs a digest, ~0.1 µs a look-up). The
        memo is transient (never in a checkpoint: ``__getstate__``) and bounded: emptied when
        it reaches ``_HASH_MEMO_MAX`` ids."""
        # remembered by the id, or by the tuple of ids (no joined string built per look-up)
        memo_key: str | tuple[str, ...] = parts[0] if len(parts) == 1 else parts
        memo = self._hash_memo
        v = memo.get(memo_key)
        if v is None:
            ident = parts[0] if len(parts) == 1 else "\x1f".join(parts)
            h = _keyed_blake2b(self._salt).copy()  # a copy of the keyed state: no key set-up
            h.update(ident.encode())
            v = int.from_bytes(h.digest(), "little")
            if len(memo) >= _HASH_MEMO_MAX:
                memo.clear()
            memo[memo_key] = v
        return v

    def hash_one(self, ident: str) -> int:
        """``hash_id(ident)`` of one id: the same digest and memo, called without an argument
        tuple (CPython specialises a call with exact arguments, not one to ``*parts``; most
        calls digest one id: issue 14, speed)."""
        v = self._hash_memo.get(ident)
        return v if v is not None else self.hash_id(ident)


#: ids ``Context.hash_id`` remembers before it starts again (65-140 bytes each, a joined
#: actor + session id being a new string: 2.1-4.6 MB when full, measured)
_HASH_MEMO_MAX = 32_768


@lru_cache(maxsize=8)
def _keyed_blake2b(salt: bytes) -> Any:
    """blake2b (8-byte digest) keyed with ``salt``, nothing hashed yet: copied per digest."""
    return hashlib.blake2b(digest_size=8, key=salt)


def _victim_key(salt: str) -> bytes:
    raw = salt.encode("utf-8", "surrogatepass")
    return raw if len(raw) <= 64 else hashlib.blake2b(raw).digest()  # BLAKE2b keys: <= 64 B


@lru_cache(maxsize=8)
def _victim_blake2b(key: bytes) -> Any:
    """BLAKE2b (4-byte digest) keyed with ``key``, personalised so that a victim label never
    equals a part of the state digests of ``hash_id`` under the same salt."""
    return hashlib.blake2b(digest_size=4, key=key, person=b"aw-victim")


class Victims:
    """The victims one finding names: ``names(kind, id)`` gives the label for its words and
    remembers it; ``extra()`` is what the finding adds to its alert: ``{"victims": [...]}``
    (``kind``, ``id``, ``digest`` of each label used, at most ``victims_max``) when the engine
    reveals victims, else nothing. ``len()`` counts the distinct victims named.

    >>> from detectors.geo import default_geo
    >>> ctx = Context(default_geo(), "salt")
    >>> names = ctx.victims()
    >>> label = names("customer", "c-1")
    >>> label == names("customer", "c-1"), len(names), names.extra()
    (True, 1, {})
    >>> ctx.reveal_victims = True
    >>> names.extra() == {"victims": [{"kind": "customer", "id": "c-1", "digest": label}]}
    True
    """

    __slots__ = ("_ctx", "_named")

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._named: dict[str, tuple[str, str]] = {}  # label -> (kind, id)

    def __call__(self, kind: str, ident: str) -> str:
        label = self._ctx.victim(kind, ident)
        self._named.setdefault(label, (kind, ident))
        return label

    def __len__(self) -> int:
        return len(self._named)

    def extra(self) -> dict[str, Any]:
        ctx = self._ctx
        if not ctx.reveal_victims or not self._named:
            return {}
        named = list(self._named.items())[: max(0, ctx.victims_max)]
        return {"victims": [{"kind": k, "id": i, "digest": d} for d, (k, i) in named]}


# ---- the deployment's local time (``EngineConfig.timezone``) ------------------------------

#: the offset used until the deployment's zone is known (``timezone = "auto"`` before enough
#: customer logins): +9 h, Korea and Japan, the deployments this tool was first built for
DEFAULT_OFFSET = 9 * 3600.0
#: successful customer logins (of known country) that decide the home country under "auto":
#: a bank's customers log in mostly from its own country (travellers, VPNs and expatriates are
#: a minority), so a plurality of 50 names it with room to spare; the first minutes of
#: traffic bring them, so the detectors learn almost nothing under the provisional +9 h
AUTO_LOGINS = 50


class LocalTime:
    """The deployment's local time: the UTC offset (seconds) at an event's time, with DST.

    ``setting`` is an IANA zone name ("Europe/Berlin"), or "auto": the zone of the home
    country, the most common GeoIP country of the first :data:`AUTO_LOGINS` successful
    customer logins (``note_login``), mapped to the first zone the tz database lists for it
    (``zone.tab``: DE -> Europe/Berlin, US -> America/New_York, KR -> Asia/Seoul). Until it is
    decided (or when the country has no zone), :data:`DEFAULT_OFFSET`: a Korean or Japanese
    deployment keeps the hours it always had. The decided ``zone`` is checkpointed, so a
    restored worker keeps it; the tally too, while undecided.

    Partitions: each input engine decides from its own first logins. Customers are spread over
    partitions by account, so each sees a sample of the same customers and names the same home
    country. A bank whose customers are split between countries of similar size (or a
    partition per region) can see partitions decide different zones: set ``timezone``
    explicitly there (the decision is logged per engine).

    ``offset(ts)`` is cached per UTC hour (two comparisons when the hour is the cached one):
    zones whose DST changes at half past an UTC hour (Newfoundland, Lord Howe) are off by
    their DST step for 30 minutes a year.
    """

    def __init__(self, setting: str = "auto") -> None:
        self.setting = setting
        self.zone: str | None = None if setting == "auto" else setting
        self.tally: dict[str, int] = {}
        self.home: str | None = None  # the home country "auto" decided
        self.pending = self.zone is None  # still counting logins (read per login: engine)
        self._reset_cache()

    def _reset_cache(self) -> None:
        self._zi: Any = None
        if self.zone is not None:
            from zoneinfo import ZoneInfo
            self._zi = ZoneInfo(self.zone)  # raises on an unknown name: a config error
        self._lo = self._hi = 0.0  # the hour [lo, hi) whose offset is cached
        if self._zi is None:
            self._lo, self._hi = -math.inf, math.inf
        self._off = DEFAULT_OFFSET

    def offset(self, ts: float) -> float:
        """The local time's offset from UTC at ``ts`` (seconds east of UTC)."""
        if self._lo <= ts < self._hi:
            return self._off
        lo = (ts // 3600.0) * 3600.0
        d = datetime.fromtimestamp(lo, tz=self._zi)
        off = d.utcoffset()
        self._off = off.total_seconds() if off is not None else 0.0
        self._lo, self._hi = lo, lo + 3600.0
        return self._off

    def note_login(self, country: str) -> str | None:
        """Count one successful customer login's GeoIP country; at the :data:`AUTO_LOGINS`-th
        decide the zone. Returns the zone name ("" when the country has none) when decided."""
        t = self.tally
        t[country] = t.get(country, 0) + 1
        if sum(t.values()) < AUTO_LOGINS:
            return None
        home = max(sorted(t), key=t.__getitem__)  # ties: alphabetical, the same on a replay
        self.pending = False
        self.tally = {}
        self.home = home
        self.zone = country_zone(home)
        self._reset_cache()
        return self.zone or ""

    def adopt(self, zone: str) -> None:
        """Take the zone another engine decided (a combiner sees window views, no logins: the
        input engines' ``auto`` zone comes with their views, ``Engine.observe_partial``). An
        unknown name is ignored (UTC+9 stays)."""
        if country_zone_valid(zone):
            self.pending = False
            self.tally = {}
            self.zone = zone
            self._reset_cache()

    def describe(self) -> str:
        """"Europe/Berlin" / "UTC+9 (auto, undecided)" for logs and the entity page."""
        if self.zone:
            return self.zone
        return "UTC+9 (auto, " + ("undecided)" if self.pending else "home country has no zone)")

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset_cache()


@cache
def _zone_table() -> dict[str, str]:
    """country (ISO alpha-2) -> its first zone in ``zone.tab`` (the ``tzdata`` wheel's, else the
    system's)."""
    text = ""
    try:
        from importlib.resources import files
        text = (files("tzdata") / "zoneinfo" / "zone.tab").read_text()
    except (ImportError, OSError):
        for p in ("/usr/share/zoneinfo/zone.tab", "/usr/lib/zoneinfo/zone.tab"):
            try:
                with open(p, encoding="utf-8") as f:
                    text = f.read()
                break
            except OSError:
                continue
    table: dict[str, str] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            cols = line.split("\t")
            if len(cols) >= 3:
                table.setdefault(cols[0], cols[2])
    return table


def country_zone_valid(zone: str) -> bool:
    """Whether ``zone`` names a zone of the tz database (the names ``zone.tab`` lists)."""
    return zone in _zone_table().values()


def country_zone(country: str) -> str | None:
    """The first tz database zone of ``country`` (None when it has none: "??", "EU").

    >>> country_zone("DE"), country_zone("KR"), country_zone("US"), country_zone("??")
    ('Europe/Berlin', 'Asia/Seoul', 'America/New_York', None)
    """
    return _zone_table().get(country)


def legacy_offset(off: float | None) -> float | None:
    """A detector's fixed offset (seconds) restored from a checkpoint written before the
    deployment's local time: +9 h was the default then, taken to mean "the deployment's time"
    (None: the context's local time, +9 h until "auto" decides); any other value was chosen and
    stays."""
    return None if off is None or off == DEFAULT_OFFSET else float(off)
