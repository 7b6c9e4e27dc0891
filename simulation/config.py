"""What a simulation is asked for and what it returns: the attacks it can inject (names,
descriptions, the detectors each should wake), :class:`SimConfig`, :class:`SimResult`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ATTACKS: dict[str, str] = {
    "coupang": "departed engineer's still-valid legacy signing key forges customer tokens; "
    "3-5 hosting servers abroad read address/order history of many customers, ramping up",
    "coupang_predating": "as coupang, but every forged token claims to be issued before the "
    "stream started, so no login can be checked against it",
    "coupang_active_key": "as coupang, but the forged tokens are signed with the active "
    "customer key, so key-owner checks see nothing",
    "insider": "one support employee reads thousands of distinct customers in one shift "
    "from the office",
    "departed_key": "a service API key whose owner was terminated is used after the "
    "termination, from outside the internal network",
    "terminated_session": "an employee is terminated mid-shift and their still-open SSO "
    "session keeps reading customers",
    "stuffing": "credential stuffing: a few hosting IPs try thousands of accounts, a handful "
    "succeed and the takeovers read address/payment from a new device",
    "spray": "password spray: one password across many accounts, slowly, from many IPs of "
    "one hosting ASN",
    "impossible_travel": "12 accounts log in from home and minutes later from another "
    "continent (no VPN, no relay) and read their data there",
    "session_hijack": "one customer's session is used from several countries at once while "
    "its owner is still using it at home",
}

EXPECTED_DETECTORS: dict[str, list[str]] = {
    "coupang": ["overseas_server", "bulk_lookup", "unissued_session", "revoked_credential"],
    "coupang_predating": ["overseas_server", "bulk_lookup", "revoked_credential"],
    "coupang_active_key": ["overseas_server", "bulk_lookup", "unissued_session"],
    "insider": ["bulk_lookup"],
    "departed_key": ["revoked_credential"],
    "terminated_session": ["revoked_credential"],
    "stuffing": ["credential_stuffing", "account_takeover"],
    "spray": ["password_spray"],
    "impossible_travel": ["impossible_travel"],
    "session_hijack": ["impossible_travel"],
}

ENTITY_KINDS = ("actor", "src_ip", "key", "account", "session")


@dataclass
class SimConfig:
    seed: int = 7
    start: str = "2025-06-24T00:00:00Z"  # RFC 3339
    hours: float = 24.0
    customers: int = 2000
    employees: int = 30  # support staff + engineers
    services: int = 5
    attacks: tuple[str, ...] = ()  # names from ATTACKS
    home_country: str = "KR"
    attack_start_hour: float = 2.0  # hours after start when attacks begin


@dataclass
class SimResult:
    events: list[dict]  # sorted by ts, RFC 3339 strings with ms and "Z"
    truth: list[dict]  # one record per injected attack
    # Who is who in the normal population (travellers, VPN users, new hires...): for tests
    # and demos; not part of any wire format.
    population: dict[str, Any] = field(default_factory=dict)


class SimulationError(ValueError):
    """A configuration the generator cannot honour (one readable line)."""
