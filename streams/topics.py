"""Topic names and topic creation (the ``accesswatch topics`` command is ``streams.topics_cmd``).

Names come from the environment, read when ``TopicNames.from_env()`` is called (the
module constants hold the values at import time):

==============================  ====================  ===============================
environment variable            default               content
==============================  ====================  ===============================
``ACCESSWATCH_TOPIC_LOGINS``    ``auth-logins``       logins, keyed by ``account_id``
``ACCESSWATCH_TOPIC_ACCESS``    ``data-access``       data access, keyed by ``actor_id``
``ACCESSWATCH_TOPIC_IDENTITY``  ``identity-changes``  HR and key-store facts
``ACCESSWATCH_TOPIC_ALERTS``    ``access-alerts``     alerts (JSON)
``ACCESSWATCH_TOPIC_DLQ``       ``accesswatch-dlq``   rejected input with its reason
``ACCESSWATCH_TOPIC_PARTIALS``  ``<app id>-partials`` internal: bulk_lookup window views
``ACCESSWATCH_TOPIC_FEEDBACK``  ``access-feedback``   analysts' verdicts (every worker reads all)
==============================  ====================  ===============================

The partials topic (``streams.combine``) is internal to one worker group, like its table
changelogs: empty ``partials`` means ``<app id>-partials`` (``accesswatch-partials``), declared
by the worker itself with the inputs' partition count; ``all()`` lists the five others. So is
``<app id>-logins-by-source`` (``streams.bursts``, only with more than one partition): each
login once more, keyed by its source AS, for credential_stuffing and password_spray.

Logins and access MUST have the same partition count: an account's logins and its own
requests then land in the same partition number and meet in one worker without a
repartition. ``create_topics`` is idempotent and refuses a mismatch.

Tansu accepts topic configs but does not keep them and never compacts: on Tansu,
``describe_topics`` shows no configs. On Kafka they are applied at creation (existing
topics keep theirs: change them with ``kafka-configs`` on purpose).

>>> names = TopicNames()
>>> names.inputs()
('auth-logins', 'data-access', 'identity-changes')
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from streams.broker import bootstrap_servers
from streams.kafka_security import KafkaSecurity, or_env

__all__ = [
    "ACCESS",
    "ALERTS",
    "DLQ",
    "IDENTITY",
    "LOGINS",
    "CoPartitionError",
    "TopicInfo",
    "TopicNames",
    "TopicReport",
    "create_topics",
    "describe_topics",
    "topic_configs",
]

DAY_MS = 24 * 60 * 60 * 1000

ENV_LOGINS = "ACCESSWATCH_TOPIC_LOGINS"
ENV_ACCESS = "ACCESSWATCH_TOPIC_ACCESS"
ENV_IDENTITY = "ACCESSWATCH_TOPIC_IDENTITY"
ENV_ALERTS = "ACCESSWATCH_TOPIC_ALERTS"
ENV_DLQ = "ACCESSWATCH_TOPIC_DLQ"
ENV_PARTIALS = "ACCESSWATCH_TOPIC_PARTIALS"
ENV_FEEDBACK = "ACCESSWATCH_TOPIC_FEEDBACK"  # issue 18 item 3
PARTIALS_RETENTION_DAYS = 1.0  # window views are consumed within seconds


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


@dataclass(frozen=True)
class TopicNames:
    """The five topic names; ``TopicNames.from_env()`` applies the environment overrides."""

    logins: str = "auth-logins"
    access: str = "data-access"
    identity: str = "identity-changes"
    alerts: str = "access-alerts"
    dlq: str = "accesswatch-dlq"
    partials: str = ""  # internal; empty: ``<app id>-partials`` (streams.combine)
    #: analysts' verdicts on alerts (``accesswatch feedback``; issue 18): every worker reads
    #: every partition; created by the ``feedback`` command when missing
    feedback: str = "access-feedback"

    @classmethod
    def from_env(cls) -> TopicNames:
        return cls(
            logins=_env(ENV_LOGINS, cls.logins),
            access=_env(ENV_ACCESS, cls.access),
            identity=_env(ENV_IDENTITY, cls.identity),
            alerts=_env(ENV_ALERTS, cls.alerts),
            dlq=_env(ENV_DLQ, cls.dlq),
            partials=_env(ENV_PARTIALS, cls.partials),
            feedback=_env(ENV_FEEDBACK, cls.feedback),
        )

    @classmethod
    def prefixed(cls, prefix: str) -> TopicNames:
        """Default names behind a prefix (tests: a fresh set of topics on a shared broker)."""
        base = cls()
        return cls(*(prefix + name for name in base.all()), partials=f"{prefix}partials",  # type: ignore[misc]  # all(): the five fields before these two
                   feedback=f"{prefix}{base.feedback}")

    def inputs(self) -> tuple[str, str, str]:
        return (self.logins, self.access, self.identity)

    def all(self) -> tuple[str, str, str, str, str]:
        return (self.logins, self.access, self.identity, self.alerts, self.dlq)

    def for_kind(self, kind: str) -> str:
        """The topic for an event kind: ``login``, ``access`` or ``identity``."""
        return {"login": self.logins, "access": self.access, "identity": self.identity}[kind]


_FROM_ENV = TopicNames.from_env()
LOGINS = _FROM_ENV.logins
ACCESS = _FROM_ENV.access
IDENTITY = _FROM_ENV.identity
ALERTS = _FROM_ENV.alerts
DLQ = _FROM_ENV.dlq


def topic_configs(
    names: TopicNames,
    *,
    input_retention_days: float = 7,
    alerts_retention_days: float = 30,
    dlq_retention_days: float = 30,
) -> dict[str, dict[str, str]]:
    """The configs each topic is created with.

    >>> topic_configs(TopicNames())["identity-changes"]
    {'cleanup.policy': 'compact'}
    """

    def retention(days: float) -> dict[str, str]:
        return {"cleanup.policy": "delete", "retention.ms": str(int(days * DAY_MS))}

    configs = {
        names.logins: retention(input_retention_days),
        names.access: retention(input_retention_days),
        names.identity: {"cleanup.policy": "compact"},
        names.alerts: retention(alerts_retention_days),
        names.dlq: retention(dlq_retention_days),
    }
    if names.partials:
        configs[names.partials] = retention(PARTIALS_RETENTION_DAYS)
    return configs


class CoPartitionError(ValueError):
    """The logins and access topics have different partition counts."""


@dataclass(frozen=True)
class TopicInfo:
    name: str
    partitions: int
    replication: int
    configs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TopicReport:
    """What ``create_topics`` did for one topic."""

    name: str
    created: bool
    partitions: int
    replication: int
    note: str = ""


@contextlib.contextmanager
def _admin(bootstrap: str | list[str], timeout: float,
           security: KafkaSecurity | None = None) -> Iterator[Any]:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap_servers(bootstrap),
        client_id="accesswatch-admin",
        request_timeout_ms=int(timeout * 1000),
        bootstrap_timeout_ms=int(min(timeout, 10.0) * 1000),
        **or_env(security).kafka_python_options(),
    )
    try:
        yield admin
    finally:
        with contextlib.suppress(Exception):
            admin.close()


def _describe(admin: Any, names: Iterable[str] | None, with_configs: bool) -> dict[str, TopicInfo]:
    from kafka.errors import UnknownTopicOrPartitionError, for_code

    wanted = None if names is None else list(names)
    existing = set(admin.list_topics())
    if wanted is not None:
        wanted = [n for n in wanted if n in existing]
        if not wanted:
            return {}
    found: dict[str, TopicInfo] = {}
    for topic in admin.describe_topics(wanted):
        error = for_code(topic.get("error_code", 0))
        if error is UnknownTopicOrPartitionError:
            continue
        parts = topic.get("partitions") or []
        replication = max((len(p.get("replica_nodes") or []) for p in parts), default=0)
        found[topic["name"]] = TopicInfo(topic["name"], len(parts), replication)
    if with_configs and found:
        found = {name: _with_configs(admin, info) for name, info in found.items()}
    return found


def _with_configs(admin: Any, info: TopicInfo) -> TopicInfo:
    from kafka.admin import ConfigResource, ConfigResourceType
    from kafka.errors import KafkaError

    try:
        result = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, info.name)])
    except KafkaError:
        return info
    entries = result.get("topic", {}).get(info.name, {}) or {}
    configs: dict[str, str] = {}
    for key, value in entries.items():
        if isinstance(value, dict):
            value = value.get("value", value.get("config_value"))
        if value is not None:
            configs[str(key)] = str(value)
    return TopicInfo(info.name, info.partitions, info.replication, configs)


def describe_topics(
    bootstrap: str | list[str],
    names: Iterable[str] | None = None,
    *,
    with_configs: bool = True,
    timeout: float = 10.0,
    security: KafkaSecurity | None = None,
) -> dict[str, TopicInfo]:
    """Existing topics (all, or those of ``names`` that exist) with partition counts.
    ``security``: the clients' TLS / SASL options (None: the environment's)."""
    with _admin(bootstrap, timeout, security) as admin:
        return _describe(admin, names, with_configs)


def check_copartitioned(infos: dict[str, TopicInfo], names: TopicNames) -> None:
    """Raise ``CoPartitionError`` if logins and access both exist with different counts."""
    logins, access = infos.get(names.logins), infos.get(names.access)
    if logins and access and logins.partitions != access.partitions:
        raise CoPartitionError(
            f"topics {names.logins!r} ({logins.partitions} partitions) and {names.access!r} "
            f"({access.partitions} partitions) must have the same partition count so that an "
            "account's logins and its own requests meet in one worker; recreate one of them"
        )


def create_topics(
    bootstrap: str | list[str],
    partitions: int = 4,
    replication: int = 1,
    *,
    names: TopicNames | None = None,
    input_retention_days: float = 7,
    alerts_retention_days: float = 30,
    dlq_retention_days: float = 30,
    timeout: float = 30.0,
    security: KafkaSecurity | None = None,
) -> list[TopicReport]:
    """Create the five topics; existing ones are left as they are (idempotent).

    If one of logins / access already exists, the other is created with the same
    partition count (and the report says so). If both exist with different counts,
    ``CoPartitionError`` is raised and nothing is created.
    """

    if partitions < 1:
        raise ValueError(f"partitions must be >= 1, got {partitions}")
    if replication < 1:
        raise ValueError(f"replication must be >= 1, got {replication}")
    names = names or TopicNames.from_env()
    if len(set(names.all())) != len(names.all()):
        raise ValueError(f"topic names must be distinct, got {names.all()}")
    configs = topic_configs(
        names,
        input_retention_days=input_retention_days,
        alerts_retention_days=alerts_retention_days,
        dlq_retention_days=dlq_retention_days,
    )
    with _admin(bootstrap, timeout, security) as admin:
        before = _describe(admin, names.all(), with_configs=False)
        check_copartitioned(before, names)
        wanted = {name: partitions for name in names.all()}
        notes: dict[str, str] = {}
        for this, other in ((names.logins, names.access), (names.access, names.logins)):
            if this not in before and other in before and before[other].partitions != partitions:
                wanted[this] = before[other].partitions
                notes[this] = (
                    f"created with {before[other].partitions} partitions to match "
                    f"existing {other!r} (co-partitioning), not {partitions}"
                )
        missing = [name for name in names.all() if name not in before]
        created = _create(admin, {
            name: {"num_partitions": wanted[name], "replication_factor": replication,
                   "configs": configs[name]} for name in missing}, timeout)
        after = _describe(admin, names.all(), with_configs=False)
        check_copartitioned(after, names)
    reports = []
    for name in names.all():
        info = after.get(name)
        if info is None:
            raise RuntimeError(f"topic {name!r} is still missing after creation")
        note = notes.get(name, "")
        if name not in created and info.partitions != partitions:
            note = f"has {info.partitions} partitions, not the {partitions} asked for"
        reports.append(TopicReport(name, name in created, info.partitions, info.replication, note))
    return reports


# ------------------------------------------------------------------------- CLI


def internal_topics(app: Any) -> list[tuple[str, int, dict[str, str]]]:
    """``(name, partitions, configs)`` of the worker's own topics: its tables' changelogs
    (compacted) and the internal topics its agents read (``<app_id>-partials``,
    ``<app_id>-logins-by-source``), from the Faust app's public tables and agents."""
    specs: list[tuple[str, int, dict[str, str]]] = []
    for table in app.tables.values():
        topic = table.changelog_topic
        specs.append((topic.get_topic_name(), int(topic.partitions or table.partitions),
                      {"cleanup.policy": "compact"}))
    for agent in app.agents.values():
        channel = agent.channel
        if not getattr(channel, "internal", False):
            continue
        configs = {}
        if channel.retention is not None:  # Faust's Seconds: a number or a timedelta
            from mode.utils.times import want_seconds

            configs["retention.ms"] = str(int(want_seconds(channel.retention) * 1000))
        for name in channel.topics:
            specs.append((name, int(channel.partitions), configs))
    return specs


def declare_internal_topics(bootstrap: str | list[str], specs: list[tuple[str, int, dict[str, str]]],
                            replication: int = 1, timeout: float = 30.0,
                            security: KafkaSecurity | None = None) -> list[str]:
    """Create the worker's own topics before it joins its group, and wait until the broker's
    metadata lists them with a leader per partition; returns the names it created.

    Faust creates them itself at start, but its consumer can join the group before the broker
    lists them: the assignor then logs "Ignoring missing topic", never assigns them, and the
    combiner's bulk_lookup alerts are silently missing (seen on Apache Kafka under load, in the
    SASL_SSL test and in the parity test). Existing topics are left as they are."""
    with _admin(bootstrap, timeout, security) as admin:
        existing = set(admin.list_topics())
        return sorted(_create(admin, {
            name: {"num_partitions": parts, "replication_factor": replication, "configs": configs}
            for name, parts, configs in specs if name not in existing}, timeout))


def _create(admin: Any, request: dict[str, dict[str, Any]], timeout: float) -> set[str]:
    """Create the topics of ``request`` (name -> CreateTopics arguments); a topic someone
    else created meanwhile is fine. Returns the names this call created, once the broker's
    metadata lists them: Kafka (KRaft above all) answers CreateTopics before the new topics
    are in its metadata with a leader per partition, so callers wait before using them."""
    from kafka.errors import TopicAlreadyExistsError, for_code

    created: set[str] = set()
    if not request:
        return created
    response = admin.create_topics(request, timeout_ms=int(timeout * 1000), raise_errors=False)
    for result in response.get("topics", []):
        error = for_code(result.get("error_code", 0))
        if error.errno == 0:
            created.add(result["name"])
        elif error is not TopicAlreadyExistsError:  # lost a race: fine
            message = result.get("error_message") or error.__name__
            raise RuntimeError(f"cannot create topic {result['name']!r}: {message}")
    if created:
        admin.wait_for_topics(sorted(created), timeout_ms=int(timeout * 1000))
    return created
