"""Engine snapshots: an explicit, versioned, authenticated format that cannot carry code.

A checkpoint read back from Kafka (or from the local RocksDB copy of a table) is input like
any other: whoever can write ``<app_id>-engine-checkpoints-changelog`` chooses its bytes.
So nothing here unpickles, imports a module or resolves a name the bytes ask for.

**Envelope** (:func:`seal` / :func:`unseal`)::

    MAGIC (b"AWSNAP") | version (uint16, big-endian) | zlib(payload) | HMAC-SHA256 (32 bytes)

The MAC (stdlib ``hmac``) covers the header, a *context* the reader supplies (the table and
partition the record was read from, so a valid snapshot copied to another partition's key
or another table fails) and the compressed payload. It is checked before anything is
decompressed or decoded. Keys come from :class:`StateKeys` (``ACCESSWATCH_STATE_KEY`` /
``ACCESSWATCH_STATE_KEY_FILE``): the first signs, every one verifies (rotation).

**Payload** (:func:`encode` / :func:`decode`): msgpack (``msgspec.msgpack``) of
``[class names, root]``, where a value is a msgpack scalar (None, bool, int, float, str,
bytes) or a tagged array ``[tag, ...]``: bytearray, list, tuple, dict (any keys), set, frozenset,
deque (with maxlen), Counter, OrderedDict, defaultdict (its factory one of
:data:`CALLABLES`, or a ``functools.partial`` of one), a reference to an object met before
(shared objects and cycles keep their identity: the detectors share one burst tracker, the
engine's routes hold the detectors' bound hooks, River's trees are listed twice), an
instance of a class in :data:`ALLOWED` with its state, a wire form of its own
(:data:`CODECS`: datasketches, River's Rust quantile, ``random.Random``, msgspec structs),
a detector module constant (a shared sentinel tested with ``is``), or a bound hook method.

River's models are stored by their attributes (as pickle stored them): a River release
that renames them would restore models that fail; River is pinned, and the round-trip test
(``tests/test_snapshot.py``) runs every detector through the format on the pinned version.

Decoding creates an allowed class with ``cls.__new__(cls)`` (no ``__init__``) and sets its
``__dict__`` / slots; it calls ``__setstate__`` only of our own classes (``detectors.*``).
A class name outside :data:`ALLOWED` is refused, never imported. Encoding refuses any type
outside them too (:class:`SnapshotError`): a detector that adds a new kind of state fails the
round-trip test (``tests/test_snapshot.py``), not a production checkpoint. Numpy arrays are
not supported: no model in use holds one (the River models used are HalfSpaceTrees over
dicts, GaussianScorer, Quantile); one that does must get a codec (dtype, shape, bytes).

Checkpoints written before this format (a pickle inside zlib chunks) are refused with reason
``legacy_pickle`` and never loaded: there is no unpickler here, nor anywhere in ``streams/`` or
``detectors/`` (``tests/test_no_pickle.py`` fails if one appears). A partition whose checkpoint
is refused starts from a fresh engine at the committed offsets (docs/operations.md, "Upgrading
from a pickle checkpoint", says what that loses).

>>> keys = StateKeys(["k" * 32])
>>> blob = seal(encode({"n": [1, (2, 3)], "s": {4}}), keys, "t/0")
>>> decode(unseal(blob, keys, "t/0"))
{'n': [1, (2, 3)], 's': {4}}
>>> try:
...     unseal(blob, keys, "t/1")  # read under another partition's key
... except SnapshotRejected as e:
...     print(e.reason)
bad_mac
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import hashlib
import hmac
import importlib
import os
import random
import sys
import types
import zlib
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

MAGIC = b"AWSNAP"
VERSION = 1
HEADER = MAGIC + VERSION.to_bytes(2, "big")
MAC_BYTES = 32
MIN_KEY_BYTES = 16
#: every reason a stored checkpoint is rejected (the metric's label values)
REASONS = ("bad_mac", "unknown_version", "undecodable", "legacy_pickle")


class SnapshotError(TypeError):
    """Encoding met a value the format does not allow (a bug to fix in the allow-list)."""


class SnapshotRejected(ValueError):
    """A stored snapshot that is not restored; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


# --------------------------------------------------------------------------- the keys


class StateKeys:
    """Secrets of the snapshot MAC: the first signs, every one verifies (key rotation).

    ``repr`` never shows them."""

    def __init__(self, secrets: Iterable[str | bytes]) -> None:
        keys = [s.encode() if isinstance(s, str) else bytes(s) for s in secrets]
        if not keys:
            raise ValueError("no state key")
        for k in keys:
            if len(k) < MIN_KEY_BYTES:
                raise ValueError(f"a state key must be at least {MIN_KEY_BYTES} bytes "
                                 "(make one with: openssl rand -hex 32)")
        self._keys = tuple(keys)

    def __repr__(self) -> str:
        return f"StateKeys({len(self._keys)} key(s))"

    def sign(self, data: bytes) -> bytes:
        return hmac.new(self._keys[0], data, hashlib.sha256).digest()

    def verify(self, data: bytes, mac: bytes) -> bool:
        ok = False
        for k in self._keys:  # every key, always: the time does not tell which one matched
            ok |= hmac.compare_digest(hmac.new(k, data, hashlib.sha256).digest(), mac)
        return ok


def parse_keys(text: str) -> tuple[str, ...]:
    """Keys from the text of ``ACCESSWATCH_STATE_KEY`` or its file: comma- or line-separated.

    >>> parse_keys(" new-key-0123456789 , old-key-0123456789\\n")
    ('new-key-0123456789', 'old-key-0123456789')
    """
    return tuple(p.strip() for p in text.replace("\n", ",").split(",") if p.strip())


# --------------------------------------------------------------------------- the envelope


def _mac_input(context: str, body: bytes) -> bytes:
    ctx = context.encode()
    return HEADER + len(ctx).to_bytes(4, "big") + ctx + body


def seal(payload: bytes, keys: StateKeys, context: str) -> bytes:
    """The stored form of ``payload``: header, compressed payload, MAC (bound to ``context``)."""
    body = zlib.compress(payload, 1)
    return HEADER + body + keys.sign(_mac_input(context, body))


def is_sealed(blob: bytes) -> bool:
    return blob[:len(MAGIC)] == MAGIC


def unseal(blob: bytes, keys: StateKeys, context: str) -> bytes:
    """The payload of a sealed snapshot; raises :class:`SnapshotRejected`."""
    if not is_sealed(blob):
        if blob[:1] == b"\x80":  # a pickle's PROTO opcode: the format before this one
            raise SnapshotRejected("legacy_pickle", "a pickled checkpoint (the old format)")
        raise SnapshotRejected("undecodable", "not a snapshot")
    if len(blob) < len(HEADER) + MAC_BYTES:
        raise SnapshotRejected("undecodable", "truncated snapshot")
    version = int.from_bytes(blob[len(MAGIC):len(HEADER)], "big")
    if version != VERSION:
        raise SnapshotRejected("unknown_version", f"snapshot format version {version}")
    body, mac = blob[len(HEADER):-MAC_BYTES], blob[-MAC_BYTES:]
    if not keys.verify(_mac_input(context, body), mac):
        raise SnapshotRejected("bad_mac", "the snapshot's MAC does not match any state key")
    try:
        return zlib.decompress(body)
    except zlib.error as exc:  # signed by a writer with our key: a bug, not an attack
        raise SnapshotRejected("undecodable", f"zlib: {exc}") from None


# --------------------------------------------------------------------------- the allow-list

#: every class whose instances a snapshot may hold, by ``module:qualname``
ALLOWED_NAMES: tuple[str, ...] = (
    # the engine (Context and Directory live in detectors.context; detectors.engine
    # re-exports them, and their names here stay, so checkpoints written before still restore)
    "detectors.engine:Engine", "detectors.engine:EngineConfig", "detectors.engine:Context",
    "detectors.engine:Directory", "detectors.engine:Episode",
    "detectors.context:LocalTime",  # the deployment's local time (EngineConfig.timezone)
    "detectors.incidents:Incidents",
    "detectors.base:Finding", "detectors.geo:NetInfo", "detectors.events:Event",
    # the detectors and their state
    "detectors._burst:BurstConfig", "detectors._burst:BurstTracker", "detectors._burst:Source",
    "detectors._burst:Change",
    "detectors.account_takeover:AccountTakeover", "detectors.account_takeover:_Profile",
    "detectors.account_takeover:_Candidate", "detectors.account_takeover:_Suspect",
    "detectors.bulk_lookup:BulkLookup", "detectors.bulk_lookup:Combiner",
    "detectors.bulk_lookup:Partial", "detectors.bulk_lookup:_Acc",
    "detectors.bulk_lookup:_Ewma", "detectors.bulk_lookup:_Entity",
    "detectors.brute_force:BruteForce", "detectors.brute_force:_Pair",
    "detectors.credential_stuffing:CredentialStuffing",
    "detectors.impossible_travel:ImpossibleTravel", "detectors.impossible_travel:_Where",
    "detectors.impossible_travel:_Pool",
    "detectors.overseas_server:OverseasServer", "detectors.overseas_server:_Profile",
    "detectors.overseas_server:_Peer", "detectors.overseas_server:_Source",
    "detectors.password_spray:PasswordSpray",
    "detectors.revoked_credential:RevokedCredential", "detectors.revoked_credential:_Use",
    "detectors.unissued_session:UnissuedSession", "detectors.unissued_session:_Pending",
    "detectors.unissued_session:_EntityWindow",
    "detectors.spread_access:SpreadAccess", "detectors.spread_access:_Agg",
    "detectors.unusual_hour:UnusualHour", "detectors.unusual_hour:_Principal",
    "detectors.unusual_hour:_Peer",
    # issue 14 item 4 (slow insider: the resource classes peers seldom read)
    "detectors.peer_resource:PeerResource", "detectors.peer_resource:_Staff",
    "detectors.peer_resource:_Group",
    # issue 14 item 4 (slow insider: the distinct customers a day against the team's)
    "detectors.team_volume:TeamVolume", "detectors.team_volume:_Member",
    # issue 14 items 3-4 (services and record volume)
    "detectors.service_baseline:ServiceBaseline", "detectors.service_baseline:_Svc",
    "detectors.service_baseline:_Win",
    "detectors.record_volume:RecordVolume", "detectors.record_volume:_Rows",
    "detectors.record_volume:_Day",
    "detectors._sketch:DistinctCounter",
    # issue 14 (red team B): one session used by turns from home and from a server
    "detectors.session_shared:SessionShared", "detectors.session_shared:_Session",
    "detectors.session_shared:_Two", "detectors.session_shared:_Egress",
    # issue 18 item 4 (the entity page)
    "detectors.explain:EntityLog", "detectors.explain:_Rec",
    # issue 18 items 2-3 (allow-lists, suppressions and feedback)
    "detectors.allowlist:AllowList", "detectors.allowlist:Entry",
    "detectors.allowlist:AllowState",
    # the River models the detectors use (river 0.26: plain __dict__ state)
    "river.anomaly.hst:HalfSpaceTrees", "river.tree.padded:PaddedBranch",
    "river.tree.padded:PaddedLeaf", "river.anomaly.gaussian:GaussianScorer",
    "river.proba.gaussian:Gaussian", "river.stats.var:Var", "river.stats.mean:Mean",
    "river.stats.quantile:Quantile", "river._river_rust.stats:RsQuantile",
    "random:Random",
    # datasketches (C++ types: their own serialised form) and the resumed theta sketch
    "datasketches:hll_sketch", "datasketches:compact_theta_sketch",
    "datasketches:update_theta_sketch", "streams.snapshot:_ThetaResumed",
)

#: callables a snapshot may name (defaultdict factories, ``functools.partial`` targets)
CALLABLES: dict[str, Any] = {f"builtins:{c.__name__}": c for c in (
    int, float, str, bytes, bool, list, dict, set, frozenset, tuple)}

#: bound methods a snapshot may hold: the engine's routes to the detectors' hooks
HOOKS = frozenset({"on_login", "on_access", "on_identity", "on_time"})


def _resolve(name: str) -> type:
    module, _, qual = name.partition(":")
    obj: Any = importlib.import_module(module)  # our fixed list, never a name from input
    for part in qual.split("."):
        obj = getattr(obj, part)
    return obj


@functools.cache
def allowed() -> dict[str, type]:
    """name -> class of :data:`ALLOWED_NAMES` (imported once, on first use)."""
    return {n: _resolve(n) for n in ALLOWED_NAMES}


@functools.cache
def _names() -> dict[type, str]:
    return {c: n for n, c in allowed().items()}


def _own(cls: type) -> bool:
    """Our own code: its ``__setstate__`` may run on decode."""
    return cls.__module__.startswith(("detectors.", "streams."))


def _fill_defaults(obj: Any, cls: type) -> None:
    """A field a dataclass of ours gained after the checkpoint was written (a new slot of a
    detector's per-entity record) takes its default, so an upgraded worker reads yesterday's
    checkpoint instead of failing on the first event that touches such a record."""
    for f in dataclasses.fields(cls):
        if hasattr(obj, f.name):
            continue
        if f.default is not dataclasses.MISSING:
            object.__setattr__(obj, f.name, f.default)
        elif f.default_factory is not dataclasses.MISSING:
            object.__setattr__(obj, f.name, f.default_factory())


def _custom(cls: type, attr: str) -> bool:
    """Whether ``cls`` defines ``attr`` itself (not only ``object``'s default)."""
    for base in cls.__mro__[:-1]:
        if attr in vars(base):
            return True
    return False


# --------------------------------------------------------------------------- codecs


class _ThetaResumed:
    """An ``update_theta_sketch`` brought back from a snapshot.

    datasketches can serialise only the compact (read-only) form of a theta sketch, so a
    restored one keeps that as a base and takes new updates in a fresh update sketch;
    estimates and ``compact()`` come from their union (the same estimate as never pausing).
    """

    def __init__(self, compact_bytes: bytes) -> None:
        import datasketches as ds

        self._base = ds.compact_theta_sketch.deserialize(compact_bytes)
        self._upd = ds.update_theta_sketch(THETA_LG_K, 1.0, THETA_SEED)

    def update(self, item: Any) -> None:
        self._upd.update(item)

    def compact(self, ordered: bool = True) -> Any:
        import datasketches as ds

        u = ds.theta_union(THETA_LG_K, 1.0, THETA_SEED)
        u.update(self._base)
        u.update(self._upd)
        return u.get_result(ordered)

    def get_estimate(self) -> float:
        return float(self.compact().get_estimate())

    def is_empty(self) -> bool:
        return bool(self._base.is_empty() and self._upd.is_empty())


THETA_LG_K = 12
THETA_SEED = 9001


def _counter_enc(o: Any) -> Any:
    return [o.to_bytes(o.exact_max), o.exact_max]


def _counter_dec(cls: Any, s: Any) -> Any:
    data, exact_max = s
    return cls.from_bytes(bytes(data), int(exact_max))


def _rs_dec(cls: Any, s: Any) -> Any:
    obj = cls.__new__(cls)
    obj.__setstate__(bytes(s))  # River's Rust type: bincode of its own fields
    return obj


def _random_dec(cls: type, s: Any) -> Any:
    version, internal, gauss = s
    r = random.Random()
    r.setstate((int(version), tuple(int(x) for x in internal), gauss))
    return r


def _theta_dec(cls: type, s: Any) -> Any:
    return _ThetaResumed(bytes(s))


#: class name -> (state of an instance, instance from that state): wire forms of their own
CODECS: dict[str, tuple[Any, Any]] = {
    "detectors._sketch:DistinctCounter": (_counter_enc, _counter_dec),
    "river._river_rust.stats:RsQuantile": (lambda o: o.__getstate__(), _rs_dec),
    "random:Random": (lambda o: o.getstate(), _random_dec),
    "datasketches:hll_sketch": (lambda o: o.serialize_updatable(),
                                lambda c, s: c.deserialize(bytes(s))),
    "datasketches:compact_theta_sketch": (lambda o: o.serialize(),
                                          lambda c, s: c.deserialize(bytes(s))),
    "datasketches:update_theta_sketch": (lambda o: o.compact().serialize(), _theta_dec),
    "streams.snapshot:_ThetaResumed": (lambda o: o.compact().serialize(), _theta_dec),
}

_SCALARS = (int, float, str, bytes, bool, type(None), type, types.ModuleType,
            types.FunctionType, types.BuiltinFunctionType)


@functools.cache
def _constants() -> tuple[dict[int, tuple[str, str]], dict[tuple[str, str], Any]]:
    """The detectors' module-level objects (shared sentinels such as an empty history):
    id -> (module, name), and (module, name) -> object. Callables are left out."""
    by_id: dict[int, tuple[str, str]] = {}
    by_name: dict[tuple[str, str], Any] = {}
    allowed()  # imports every detectors module the state can come from
    for mod_name, mod in list(sys.modules.items()):
        if mod is None or not mod_name.startswith("detectors."):
            continue
        for name, value in vars(mod).items():
            if name.startswith("__") or isinstance(value, _SCALARS) or callable(value):
                continue
            by_id.setdefault(id(value), (mod_name, name))
            by_name[(mod_name, name)] = value
    return by_id, by_name


# --------------------------------------------------------------------------- encode

# tags of the tagged arrays
REF, LIST, TUPLE, DICT, SET, FROZENSET, DEQUE, COUNTER, ODICT, DDICT = range(10)
OBJ, WIRE, STRUCT, CONST, METHOD, CALL, PARTIAL, BIGINT, SDICT, USTR, BYTEARRAY = range(10, 21)
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
_PRIMITIVE = (str, int, float, bool, bytes, type(None))
#: scalars written as they are, without a look (str and int need one: surrogates, range)
_PLAIN = frozenset({float, bool, bytes, type(None)})
_PRIMITIVE_SET = frozenset(_PRIMITIVE)


class _Encoder:
    """``careful``: look at every str (lone surrogates) and int (beyond 64 bits) and tag
    those msgpack cannot carry. Without it they are written as they are, and msgpack
    refuses the rare state holding one: :func:`encode` then encodes again, carefully."""

    def __init__(self, careful: bool = False) -> None:
        self.careful = careful
        self.plain = _PLAIN if careful else _PRIMITIVE_SET
        self.memo: dict[int, int] = {}
        self.alive: list[Any] = []  # memoised objects outlive the encoding: ids stay unique
        self.classes: dict[str, int] = {}
        self.names = _names()
        self.consts = _constants()[0]

    def cls_index(self, name: str) -> int:
        i = self.classes.get(name)
        if i is None:
            i = self.classes[name] = len(self.classes)
        return i

    def remember(self, o: Any) -> None:
        self.memo[id(o)] = len(self.memo)
        self.alive.append(o)

    def callable_name(self, f: Any) -> str:
        for name, c in CALLABLES.items():
            if c is f:
                return name
        raise SnapshotError(f"callable {f!r} is not in the snapshot's CALLABLES")

    def enc(self, o: Any) -> Any:
        t = type(o)
        if t in _PRIMITIVE:
            if not self.careful:
                return o
            if t is int and not _INT_MIN <= o <= _INT_MAX:
                return [BIGINT, str(o)]
            if t is str and not o.isascii():
                try:
                    o.encode()
                except UnicodeEncodeError:  # a lone surrogate (a JSON "\\ud800" escape)
                    return [USTR, o.encode("utf-8", "surrogatepass")]
            return o
        ref = self.memo.get(id(o))
        if ref is not None:
            return [REF, ref]
        const = self.consts.get(id(o))
        if const is not None:
            return [CONST, *const]
        e = self.enc
        if t is tuple:
            return [TUPLE, *[x if type(x) in self.plain else e(x) for x in o]]
        if t is frozenset:
            return [FROZENSET, *[e(x) for x in o]]
        if t is list:
            self.remember(o)
            return [LIST, *[x if type(x) in self.plain else e(x) for x in o]]
        if t is dict or t is collections.Counter or t is collections.OrderedDict:
            self.remember(o)
            out: list[Any] = [DICT if t is dict else COUNTER if t is collections.Counter else ODICT]
            self.pairs(o, out)
            return out
        if t is set:
            self.remember(o)
            return [SET, *[e(x) for x in o]]
        if t is bytearray:
            self.remember(o)
            return [BYTEARRAY, bytes(o)]
        if t is collections.deque:
            self.remember(o)
            return [DEQUE, o.maxlen, *[e(x) for x in o]]
        if t is collections.defaultdict:
            self.remember(o)
            out = [DDICT, self.factory(o.default_factory)]
            for k, v in o.items():
                out.append(e(k))
                out.append(e(v))
            return out
        if t is types.MethodType:
            owner = o.__self__
            if o.__name__ not in HOOKS or type(owner) not in self.names:
                raise SnapshotError(f"bound method {o!r} is not one the snapshot allows "
                                    f"({', '.join(sorted(HOOKS))} of an allowed class)")
            return [METHOD, e(owner), o.__name__]
        name = self.names.get(t)
        if name is None:
            raise SnapshotError(
                f"{t.__module__}.{t.__qualname__} is not in the snapshot allow-list "
                "(streams/snapshot.py ALLOWED_NAMES): add it there, with a test")
        self.remember(o)
        ci = self.cls_index(name)
        codec = CODECS.get(name)
        if codec is not None:
            return [WIRE, ci, e(codec[0](o))]
        if isinstance(o, msgspec.Struct):
            return [STRUCT, ci, *[e(getattr(o, f)) for f in o.__struct_fields__]]
        if _custom(t, "__getstate__"):
            return [OBJ, ci, 1, self.state(o.__getstate__())]
        slots = {}
        for base in t.__mro__:
            for s in vars(base).get("__slots__", ()):
                if s != "__dict__" and s != "__weakref__" and hasattr(o, s):
                    slots[s] = getattr(o, s)
        d = getattr(o, "__dict__", None)
        return [OBJ, ci, 0, [self.state(d) if d else None, self.state(slots) if slots else None]]

    def state(self, s: Any) -> Any:
        """A state container made for this encoding (not shared): no memo entry."""
        if type(s) is dict:
            out: list[Any] = [SDICT]  # made for this encoding: not remembered
            self.pairs(s, out)
            return out
        if type(s) is list or type(s) is tuple:
            return [TUPLE, *[self.enc(x) for x in s]]
        return self.enc(s)

    def pairs(self, m: Any, out: list[Any]) -> None:
        e = self.enc
        plain = self.plain
        for k, v in m.items():
            out.append(k if type(k) in plain else e(k))
            out.append(v if type(v) in plain else e(v))

    def factory(self, f: Any) -> Any:
        if f is None:
            return None
        if type(f) is functools.partial:
            if f.keywords:
                raise SnapshotError(f"partial with keywords {f!r} is not supported")
            return [PARTIAL, self.callable_name(f.func), *[self.enc(a) for a in f.args]]
        return [CALL, self.callable_name(f)]


_msgpack_encoder = msgspec.msgpack.Encoder()
_msgpack_decoder = msgspec.msgpack.Decoder()


def encode(obj: Any) -> bytes:
    """The payload for ``obj`` (an object graph of allowed types); raises :class:`SnapshotError`."""
    enc = _Encoder()
    root = enc.enc(obj)
    try:
        return _msgpack_encoder.encode([list(enc.classes), root])
    except (UnicodeEncodeError, OverflowError):  # a lone surrogate, an int beyond 64 bits
        enc = _Encoder(careful=True)
        root = enc.enc(obj)
        return _msgpack_encoder.encode([list(enc.classes), root])


# --------------------------------------------------------------------------- decode


class _Decoder:
    def __init__(self, classes: list[Any]) -> None:
        table = allowed()
        self.classes: list[type] = []
        self.cnames: list[str] = []
        for name in classes:
            if type(name) is not str or name not in table:
                raise ValueError(f"class {str(name)[:80]!r} is not in the snapshot allow-list")
            self.classes.append(table[name])
            self.cnames.append(name)
        self.memo: list[Any] = []
        self.consts = _constants()[1]

    def dec(self, v: Any) -> Any:
        if type(v) is not list:
            return v
        tag = v[0]
        d = self.dec
        if tag == REF:
            obj = self.memo[v[1]]
            if obj is _PENDING:
                raise ValueError("a reference to an object under construction")
            return obj
        if tag == TUPLE:
            return tuple([x if type(x) is not list else d(x) for x in v[1:]])
        if tag == FROZENSET:
            return frozenset(d(x) for x in v[1:])
        if tag == LIST:
            lst: list[Any] = []
            self.memo.append(lst)
            lst.extend([x if type(x) is not list else d(x) for x in v[1:]])
            return lst
        if tag in (DICT, COUNTER, ODICT, DDICT):
            if tag == DDICT:
                m: Any = collections.defaultdict(self.factory(v[1]))
                self.memo.append(m)
                return self.pairs(m, v[2:])
            m = {DICT: dict, COUNTER: collections.Counter, ODICT: collections.OrderedDict}[tag]()
            self.memo.append(m)
            return self.pairs(m, v[1:])
        if tag == SET:
            s: set[Any] = set()
            self.memo.append(s)
            s.update(d(x) for x in v[1:])
            return s
        if tag == DEQUE:
            maxlen = v[1]
            if maxlen is not None and type(maxlen) is not int:
                raise ValueError("bad deque maxlen")
            q: collections.deque[Any] = collections.deque(maxlen=maxlen)
            self.memo.append(q)
            q.extend(d(x) for x in v[2:])
            return q
        if tag == SDICT:  # a state dict: not remembered
            return self.pairs({}, v[1:])
        if tag == BYTEARRAY:
            b = bytearray(v[1])
            self.memo.append(b)
            return b
        if tag == BIGINT:
            return int(v[1])
        if tag == USTR:
            return v[1].decode("utf-8", "surrogatepass")
        if tag == CONST:
            key = (v[1], v[2])
            if key not in self.consts:
                raise ValueError(f"unknown constant {str(key)[:80]}")
            return self.consts[key]
        if tag == METHOD:
            owner = d(v[1])
            name = v[2]
            if name not in HOOKS or type(owner) not in _names():
                raise ValueError("a bound method the snapshot does not allow")
            fn = getattr(type(owner), name, None)
            if not isinstance(fn, types.FunctionType):
                raise ValueError("a bound method the snapshot does not allow")
            return types.MethodType(fn, owner)
        if tag == WIRE:
            idx = len(self.memo)
            self.memo.append(_PENDING)
            name = self.cnames[v[1]]
            codec = CODECS.get(name)
            if codec is None:
                raise ValueError(f"{name} has no wire form")
            obj = codec[1](self.classes[v[1]], d(v[2]))
            self.memo[idx] = obj
            return obj
        if tag == STRUCT:
            cls = self.classes[v[1]]
            if not issubclass(cls, msgspec.Struct):
                raise ValueError(f"{self.cnames[v[1]]} is not a struct")
            idx = len(self.memo)
            self.memo.append(_PENDING)
            obj = cls(*[d(x) for x in v[2:]])
            self.memo[idx] = obj
            return obj
        if tag == OBJ:
            cls = self.classes[v[1]]
            if self.cnames[v[1]] in CODECS or issubclass(cls, msgspec.Struct):
                raise ValueError(f"{self.cnames[v[1]]} is not stored by its state")
            obj = cls.__new__(cls)
            self.memo.append(obj)
            if v[2] == 0:  # [its __dict__ or None, its slots or None]
                dict_state, slot_state = (d(x) for x in v[3])
            else:  # what its own __getstate__ returned
                state = d(v[3])
                if _own(cls) and _custom(cls, "__setstate__"):
                    obj.__setstate__(state)  # type: ignore[attr-defined]  # _custom: it has one
                    return obj
                dict_state, slot_state = (state, None) if type(state) is dict else state
            if dict_state:
                obj.__dict__.update(dict_state)
            if slot_state:
                for k, val in slot_state.items():
                    object.__setattr__(obj, k, val)
            if _own(cls) and dataclasses.is_dataclass(cls):
                _fill_defaults(obj, cls)
            return obj
        raise ValueError(f"unknown tag {str(tag)[:20]}")

    def pairs(self, m: Any, flat: list[Any]) -> Any:
        d = self.dec
        it = iter(flat)
        for k, v in zip(it, it):  # noqa: B905 - an odd last item is ignored
            if type(k) is list:
                k = d(k)
            m[k] = v if type(v) is not list else d(v)
        return m

    def factory(self, v: Any) -> Any:
        if v is None:
            return None
        if v[0] == CALL:
            return CALLABLES[v[1]]
        if v[0] == PARTIAL:
            return functools.partial(CALLABLES[v[1]], *[self.dec(a) for a in v[2:]])
        raise ValueError("bad defaultdict factory")


_PENDING = object()


def decode(payload: bytes) -> Any:
    """The object graph of :func:`encode`; raises :class:`SnapshotRejected` (``undecodable``)."""
    try:
        classes, root = _msgpack_decoder.decode(payload)
        return _Decoder(classes).dec(root)
    except SnapshotRejected:
        raise
    except Exception as exc:  # any malformation: refused with its reason, never half-used
        raise SnapshotRejected("undecodable", f"{type(exc).__name__}: {str(exc)[:200]}") from None


# --------------------------------------------------------------------------- configuration


def keys_from_env(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The state keys configured in ``env``: ``ACCESSWATCH_STATE_KEY_FILE`` (a file readable
    by the worker only; preferred) or ``ACCESSWATCH_STATE_KEY``. Raises ``ValueError`` with
    one readable line for both set, an unreadable file or a short key; () for none."""
    env = os.environ if env is None else env
    path = env.get("ACCESSWATCH_STATE_KEY_FILE", "").strip()
    value = env.get("ACCESSWATCH_STATE_KEY", "").strip()
    if path and value:
        raise ValueError("set ACCESSWATCH_STATE_KEY_FILE or ACCESSWATCH_STATE_KEY, not both")
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                value = f.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"$ACCESSWATCH_STATE_KEY_FILE={path}: cannot read it "
                             f"({type(exc).__name__})") from None
    keys = parse_keys(value)
    if keys:
        StateKeys(keys)  # check their length now: one line at start-up
    return keys
