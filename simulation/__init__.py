"""Seeded, labeled synthetic traffic and its scoring: the ``accesswatch simulate`` and
``accesswatch evaluate`` generator, no detection logic.

A pure and deterministic model of one online shop's access traffic (stdlib ``random.Random``
seeded from the config, no wall clock): customers logging in from Korean broadband and mobile
carriers and reading their own data, support staff reading the customers they help, internal
services with their API keys and a nightly export batch, and the identity facts (keys issued,
people leaving, sessions revoked) around them. Named attacks from :data:`~simulation.config.ATTACKS` are injected
on top; every event carries a ``label`` (``"normal"`` or the attack name) and every attack
yields one ground-truth record.

Events follow the event contract v1 in ``shared/DESIGN.md``; times are RFC 3339 strings with
milliseconds and ``Z``. IP addresses come from real prefixes whose country and ASN were
checked against the bundled geoip2fast data (see :data:`NETWORKS`); only ``src_ip`` is sent,
the engine enriches it, except a few logins that carry their own ``country`` and ``asn``.

Conventions a consumer should know:

- ``event_id`` is ``e-<seed>-<n>``, ``n`` counting from 0 in stream order.
- Every event lies in ``[start, start + hours)``. The key store is replayed at ``start``:
  one ``key_issued`` per existing key, its real issue date (2018-2025) in an extra
  ``issued_at`` field; keys of new hires are issued mid-stream.
- ``label`` is the attack name on the attacker's own actions only. Facts an attack needs
  (its legacy key's ``key_issued``, the owner's ``principal_terminated``) and the victims'
  own genuine activity stay ``"normal"``; the truth record lists the former under
  ``context_event_ids``.
- A truth record: ``attack``, ``description``, ``start_ts``/``end_ts`` (first and last
  attack event), ``event_ids``, ``entities`` (``actor``, ``src_ip``, ``key``, ``account``,
  ``session`` seen in the attack events, leaving out what normal traffic shares: the office
  IP, the active customer and staff keys), ``expected_detectors``, ``victims`` (customers
  whose data was read, in first-touch order; for login-only attacks the accounts taken
  over), ``context_event_ids`` and ``params`` (the seeded choices: servers, keys, people).
- ``accesswatch simulate --truth`` writes the truth as one JSON array; :func:`simulate` also
  returns a ``population`` summary (travellers, VPN and relay users, new hires...) for tests.

The modules, each importing only those above it:

- :mod:`simulation.config`: :class:`SimConfig`, :class:`SimResult`, the attacks by name;
- :mod:`simulation.events`: times and the event records of the contract;
- :mod:`simulation.networks`: the address prefixes, countries and ASNs;
- :mod:`simulation.populations`: customers, staff, services and how they behave;
- :mod:`simulation.world`: the plan from the seed, streamed in time order;
- :mod:`simulation.attacks`: the injected attacks and their ground truth;
- :mod:`simulation.evaluate`: the engine over simulated days, alerts scored against the truth;
- :mod:`simulation.redteam`: a separate generator of traffic the detectors' authors did not
  write (``docs/redteam.md``).

The command lines are in ``streams/simulate_cmd.py`` and ``streams/evaluate_cmd.py``.

>>> res = simulate(SimConfig(seed=1, hours=6, customers=60, employees=8, services=2,
...                          attacks=("coupang",)))
>>> res.events[0]["event_id"], res.truth[0]["attack"], res.truth[0]["params"]["key_id"]
('e-1-0', 'coupang', 'kid-legacy-2019')
>>> all(a["ts"] <= b["ts"] for a, b in zip(res.events, res.events[1:]))
True
"""

from __future__ import annotations

from collections.abc import Iterator

from .attacks import _ATTACK_CLASSES
from .config import ATTACKS, EXPECTED_DETECTORS, SimConfig, SimResult, SimulationError
from .events import fmt_ts, parse_ts
from .networks import NETWORKS, Prefix
from .world import _World


def plan(cfg: SimConfig) -> _World:
    """The world of ``cfg`` with its attacks planned: ``stream()`` its events, then ``truth()``."""
    return _World(cfg, _ATTACK_CLASSES)


def simulate(cfg: SimConfig) -> SimResult:
    """All events (sorted by ``ts``) and the ground truth of every injected attack."""
    world = plan(cfg)
    events = list(world.stream())
    return SimResult(events=events, truth=world.truth(), population=world.population())


def iter_events(cfg: SimConfig) -> Iterator[dict]:
    """The same events as :func:`simulate`, generated lazily (for 1M+ event benchmarks)."""
    return plan(cfg).stream()


__all__ = [
    "ATTACKS",
    "EXPECTED_DETECTORS",
    "NETWORKS",
    "Prefix",
    "SimConfig",
    "SimResult",
    "SimulationError",
    "fmt_ts",
    "iter_events",
    "parse_ts",
    "plan",
    "simulate",
]
