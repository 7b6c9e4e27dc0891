"""Worker settings: one dataclass, filled from flags first, then environment variables.

Every field names the environment variable behind it. ``Settings.from_env()`` reads the
environment; ``streams.config.settings_from_args(args)`` lays command-line flags over it (a
flag given on the command line wins over the environment, the environment over the default).

>>> s = Settings.from_env({"ACCESSWATCH_BROKER": "kafka://127.0.0.1:9092",
...                        "ACCESSWATCH_PARTITIONS": "8"})
>>> s.bootstrap, s.partitions, s.store_url
(['127.0.0.1:9092'], 8, 'memory://')
"""

from __future__ import annotations

import argparse
import importlib.util
import ipaddress
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streams.broker import parse_broker_url
from streams.logs import LOG_FORMATS
from streams.snapshot import StateKeys, keys_from_env
from streams.topics import TopicNames

if TYPE_CHECKING:
    from detectors.allowlist import AllowList
    from streams.httpauth import Authenticator
    from streams.kafka_security import KafkaSecurity

STORES = ("memory", "rocksdb")
GEOIP_SOURCES = ("geoip2fast", "maxmind")  # issue 16: operations
LOOPS = ("auto", "uvloop", "asyncio")
_BOOLS = {"1": True, "true": True, "yes": True, "on": True,
          "0": False, "false": False, "no": False, "off": False}


class SettingsError(ValueError):
    """A setting with a value that cannot work: one readable line."""


def _default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class Settings:
    """Everything a worker needs to know. Each field: ``(env VAR)`` meaning."""

    #: (``ACCESSWATCH_BROKER``) Kafka bootstrap URL, ``kafka://HOST:PORT[,HOST:PORT]``.
    broker: str = "kafka://127.0.0.1:9092"
    #: (``ACCESSWATCH_APP_ID``) Faust app id = consumer group id; prefixes the table topics.
    app_id: str = "accesswatch"
    #: (``ACCESSWATCH_TOPIC_LOGINS`` ... ``_DLQ``) topic names, see ``streams.topics``.
    topics: TopicNames = field(default_factory=TopicNames)
    #: (``ACCESSWATCH_PARTITIONS``) partitions of the input topics and of the checkpoint
    #: table (they must match: the table is co-partitioned with the inputs).
    partitions: int = 4
    #: (``ACCESSWATCH_REPLICATION``) replication factor of topics this worker creates.
    replication: int = 1
    #: (``ACCESSWATCH_STORE``) table store: ``memory`` (tests, demo) or ``rocksdb``
    #: (production; needs the ``rocksdict`` package, ``accesswatch[rocksdb]``).
    store: str = "memory"
    #: (``ACCESSWATCH_WEB_HOST``) address the worker's web server (/metrics) binds to.
    web_host: str = "127.0.0.1"
    #: (``ACCESSWATCH_WEB_PORT``) port of the web server; 0 = pick a free one.
    web_port: int = 6066
    #: (``ACCESSWATCH_ALERTMANAGER``) comma-separated Alertmanager base URLs; empty = off.
    alertmanager: tuple[str, ...] = ()
    #: (``ACCESSWATCH_WORKER_ID``) this worker's name (logs, Faust client id).
    worker_id: str = field(default_factory=_default_worker_id)
    #: (``ACCESSWATCH_DATA_DIR``) where Faust keeps its state (RocksDB files).
    data_dir: str = "./accesswatch-data"
    #: (``ACCESSWATCH_CHECKPOINT_INTERVAL``) seconds between engine checkpoints into the
    #: table; input offsets are committed only up to the last checkpoint.
    checkpoint_interval: float = 2.0
    #: (``ACCESSWATCH_WATERMARK_INTERVAL``) seconds between event-time watermark ticks.
    watermark_interval: float = 1.0
    #: (``ACCESSWATCH_IDLE_FLUSH``) seconds a partition may stay idle before its pending
    #: timers are all fired as at end of input (demo and tests); 0 = never (production).
    idle_flush: float = 0.0
    #: (``ACCESSWATCH_MERGE_WAIT``) seconds an event may wait for records of the other input
    #: topic that the broker reported but this worker has not received yet (or for a
    #: partition that cannot be fetched, a failover) before it is processed anyway. Live,
    #: with both topics caught up, nothing waits; after downtime this keeps one topic from
    #: running ahead of the other in event time (0.5 s was measured too short).
    merge_wait: float = 60.0
    #: (``ACCESSWATCH_FETCH_MAX_WAIT_MS``) cap on the consumer's fetch wait (Faust fixes it
    #: at 1500 ms; Tansu holds a waiting fetch that long even when data arrives); 0 = Faust's.
    fetch_max_wait_ms: int = 100
    #: (``ACCESSWATCH_DETECTORS``) comma-separated detector ids; empty = every detector.
    detectors: tuple[str, ...] = ()
    #: (``ACCESSWATCH_FAUST_METRICS``) also export Faust's own Prometheus sensor (names
    #: ``faust_*``, runtime histograms in milliseconds, ~10% more CPU per event). Off: the
    #: worker's health (consumer lag in messages, rebalances) is in ``accesswatch_*``.
    faust_metrics: bool = False
    #: (``ACCESSWATCH_FAST_DELIVER``) ``1``: hand each fetched message to its stream inline
    #: instead of through four asyncio tasks (``streams.fastdeliver``; halves Faust's CPU per
    #: event). Off by default (it replaces a method of Faust's consumer). Faust drops more
    #: fetched records at a flow stop with it; the runtime fetches them again
    #: (``PartitionEngines.admit``). With it, the four-partition SIGKILL test passed 9 of 9
    #: runs, but the one-partition RocksDB and ten-SIGKILL ones timed out waiting for the
    #: group's commit in 2 of 4 and 2 of 2 (nothing lost; docs/benchmarks.md, "h-fast"). The
    #: same stall was then seen without it and traced (``faust_compat.book_done``); session
    #: 16 re-tested it (95 of 95 broker tests passed) and turned it on, then a clean-clone CI
    #: stalled once more with it on, so it stays off (docs/benchmarks.md, "Session 16").
    fast_deliver: bool = False
    #: (``ACCESSWATCH_LOG_LEVEL``) Faust/worker log level.
    log_level: str = "warning"
    #: (``ACCESSWATCH_EVENT_LOOP``) event loop: ``auto`` (uvloop when installed, else asyncio),
    #: ``uvloop`` or ``asyncio``. Faust's per-event machinery is mostly event-loop work.
    event_loop: str = "auto"
    # ---- issue 12, privacy of victims ----------------------------------------------------
    #: (``ACCESSWATCH_VICTIM_SALT``, or ``ACCESSWATCH_VICTIM_SALT_FILE``: a file holding it)
    #: the secret key of the digests that name victims in alerts (``customer#3fa9c1d2``), at
    #: least 16 characters; the same on every worker and for ``replay``. Unset: a public
    #: default key, under which digests of guessable ids are reversed by trying every id (the
    #: worker warns at start). No flag: a flag would show in the process list.
    victim_salt: str = field(default="", repr=False)
    #: (``ACCESSWATCH_REVEAL_VICTIMS``, ``--reveal-victims``) also put victims' ids in each
    #: alert's ``victims`` field on the alerts topic (for a SIEM); never sent to Alertmanager.
    reveal_victims: bool = False

    # ---- issue 12, exposure: the web port and the Alertmanager push, authenticated -------
    #: (``ACCESSWATCH_WEB_FAUST_VIEWS``) also serve Faust's own web views ``/router/`` and
    #: ``/table/`` (table data, cluster layout). Off: only /metrics and ``/`` are served.
    web_faust_views: bool = False
    #: (``ACCESSWATCH_WEB_BEARER_TOKEN_FILE``) file holding the token every request to the
    #: web port must carry (``Authorization: Bearer TOKEN``); empty = no token.
    web_bearer_token_file: str = ""
    #: (``ACCESSWATCH_WEB_BASIC_AUTH_FILE``) file of ``user:password`` lines accepted by basic
    #: auth on the web port; empty = none. With neither file, the web port is open: the worker
    #: then refuses a non-loopback ``web_host`` unless ``web_allow_unauthenticated``.
    web_basic_auth_file: str = ""
    #: (``ACCESSWATCH_WEB_ALLOW_UNAUTHENTICATED``) serve a non-loopback address without auth.
    web_allow_unauthenticated: bool = False
    #: (``ACCESSWATCH_ALERTMANAGER_BEARER_TOKEN_FILE``) token sent to Alertmanager.
    alertmanager_bearer_token_file: str = ""
    #: (``ACCESSWATCH_ALERTMANAGER_BASIC_AUTH_FILE``) one ``user:password`` line sent to
    #: Alertmanager as basic auth.
    alertmanager_basic_auth_file: str = ""
    #: (``ACCESSWATCH_ALERTMANAGER_CA_FILE``) PEM CA bundle trusted for https Alertmanagers
    #: (default: the system's); host names are always verified.
    alertmanager_ca_file: str = ""
    #: (``ACCESSWATCH_ALERTMANAGER_CERT_FILE``, ``ACCESSWATCH_ALERTMANAGER_KEY_FILE``) client
    #: certificate and key (PEM) for mutual TLS; the key file may be the certificate file.
    alertmanager_cert_file: str = ""
    alertmanager_key_file: str = ""
    # ---- issue 12, input slice: what decoding accepts and which producers it believes ----
    #: (``ACCESSWATCH_TS_MIN_YEAR``) event times (``ts``, ``token_issued_at``) before the
    #: start of this year are rejected as ``ts_out_of_range``.
    ts_min_year: int = 2000
    #: (``ACCESSWATCH_TS_MAX_YEAR``) ... and after the end of this year.
    ts_max_year: int = 2100
    #: (``ACCESSWATCH_MAX_FUTURE_SKEW``) seconds an event's ``ts`` may be ahead of the wall
    #: clock when the worker receives it; further ahead: ``future_ts``. 0 = no such check.
    max_future_skew: float = 300.0
    #: (``ACCESSWATCH_TRUST_PRODUCER_GEO``) comma-separated input topics whose producers'
    #: ``country`` / ``asn`` are believed (``*``: every topic). Empty (default): GeoIP decides.
    trust_producer_geo: tuple[str, ...] = ()

    # ---- issue 12, slice 1: authenticated engine snapshots (streams.snapshot) -------------
    #: (``ACCESSWATCH_STATE_KEY_FILE``: a file holding them, preferred; or
    #: ``ACCESSWATCH_STATE_KEY``) secrets of the engine checkpoints' HMAC-SHA256, at least 16
    #: bytes each, comma- or line-separated: the first signs, every one verifies (rotation).
    #: Every worker of a group needs the same; ``accesswatch worker`` refuses to start without.
    #: No flag: a flag would show in ``ps``.
    state_keys: tuple[str, ...] = field(default=(), repr=False)
    # (``ACCESSWATCH_MIGRATE_PICKLE_STATE`` is gone: pickled checkpoints are never read; set,
    # the worker refuses to start with the reason, see ``from_env``)

    def snapshot_keys(self) -> StateKeys:
        """The checkpoints' MAC keys; ``SettingsError`` when none is configured."""
        if not self.state_keys:
            raise SettingsError(
                "no state key: set ACCESSWATCH_STATE_KEY_FILE (a file holding a secret of at "
                "least 16 bytes, e.g. from `openssl rand -hex 32`), the same for every worker")
        try:
            return StateKeys(self.state_keys)
        except ValueError as e:
            raise SettingsError(str(e)) from None
    # ---- issue 12, engine slice (bounded state) ----
    #: (``ACCESSWATCH_MAX_ENTITIES``) at most this many entities in each per-entity table of
    #: each detector, per input partition's engine (``EngineConfig.max_entities``); over it
    #: the least recently seen and unflagged are evicted. 0 = no cap.
    max_entities: int = 200_000
    #: (``ACCESSWATCH_TIMEZONE``, ``--timezone``) the deployment's local time, in which the
    #: detectors that know working hours read an event's hour (``EngineConfig.timezone``): an
    #: IANA zone ("Europe/Berlin") or "auto" (the home country's zone, from the first
    #: successful customer logins; UTC+9 until then)
    timezone: str = "auto"
    # ---- issue 15, adapters slice (ingest agents) ----
    #: (``ACCESSWATCH_INGEST``) comma-separated ``FORMAT:TOPIC`` pairs (flag ``--ingest``,
    #: repeatable): an ingest agent per pair reads raw source records from TOPIC, adapts them
    #: (docs/ingest.md) and produces the contract events to the input topics, keyed as
    #: detection needs; a record without events goes to the dead-letter topic with its
    #: reason. ``FORMAT`` may be ``mapping:FILE``. Empty (default): no ingest agent.
    ingest: tuple[str, ...] = ()

    def ingest_pairs(self) -> list[tuple[str, str]]:
        """``(format, topic)`` of each ``ingest`` entry (``SettingsError`` for a bad one)."""
        out = []
        for item in self.ingest:
            fmt, sep, topic = item.rpartition(":")
            if not sep or not fmt or not topic:
                raise SettingsError(f"--ingest {item!r}: expected FORMAT:TOPIC")
            from detectors import adapters

            try:
                adapters.load(fmt, now=0.0)
            except ValueError as e:
                raise SettingsError(f"--ingest {item!r}: {e}") from None
            out.append((fmt, topic))
        return out

    # ---- issue 12 leftover (h-failover): the watermark waits for events held up in transit
    #: (``ACCESSWATCH_WATERMARK_DELAY``, ``--watermark-delay``) wall seconds a partition's
    #: input must be quiet before the watermark moves its event time on without events (then
    #: to the newest event's ts + the quiet time - this). A pause shorter than this (a broker
    #: failover, a producer waiting for its acks) fires no timer that events still in transit
    #: precede, so they are judged as a replay of the file judges them. The price: timers
    #: of a quiet partition (grace windows, the last window views) fire this much later.
    watermark_delay: float = 60.0
    # ---- issue 12, state slice (a budget on total state bytes) ----
    #: (``ACCESSWATCH_MAX_STATE_BYTES``: bytes, or with a KiB/MiB/GiB suffix) about this many
    #: bytes of detector state per input partition's engine, estimated from the entities
    #: held (``EngineConfig.max_state_bytes``); over it every table is capped lower, the least
    #: recently seen and unflagged evicted first. 0 = no budget.
    max_state_bytes: int = 1 << 30

    # ---- issue 16: operations ---------------------------------------------------------------
    #: (``ACCESSWATCH_LOG_FORMAT``, ``--log-format``) ``text`` or ``json`` (one JSON object a
    #: line: ``time``, ``level``, ``logger``, ``message``; ``streams.logs``).
    log_format: str = "text"
    #: (``ACCESSWATCH_RUNBOOK_BASE_URL``, ``--runbook-base-url``) base of the runbook links in
    #: Alertmanager annotations (``<base>/docs/detectors.md#<detector>``).
    runbook_base_url: str = "https://github.com/accesswatch/accesswatch/blob/main"
    #: (``ACCESSWATCH_GEOIP_SOURCE``, ``--geoip-source``) ``geoip2fast`` (the bundled data)
    #: or ``maxmind`` (the operator's GeoLite2/GeoIP2 .mmdb files below, via ``maxminddb``).
    geoip_source: str = "geoip2fast"
    #: (``ACCESSWATCH_GEOIP_COUNTRY_DB``, ``ACCESSWATCH_GEOIP_ASN_DB``,
    #: ``ACCESSWATCH_GEOIP_CITY_DB``) the .mmdb files of ``maxmind``: Country (or City, which
    #: holds the countries too) and ASN.
    geoip_country_db: str = ""
    geoip_asn_db: str = ""
    geoip_city_db: str = ""
    #: (``ACCESSWATCH_TRUSTED_NETWORKS``) comma-separated CIDR networks of the operator's own
    #: sources (validated and shown by ``config check``; no detector reads them yet).
    trusted_networks: tuple[str, ...] = ()
    #: (file only: ``[detectors.params.<id>]``) keyword arguments of each detector's class
    #: (``EngineConfig.params``).
    detector_params: dict[str, dict[str, object]] = field(default_factory=dict)
    #: (file only: ``[detectors.token_lifetimes]``) key id -> seconds a token it signs stays
    #: valid (``unissued_session``'s ``lifetimes``; a key's ``max_token_lifetime_s`` on
    #: ``key_issued`` wins).
    token_lifetimes: dict[str, float] = field(default_factory=dict)

    def engine_params(self) -> dict[str, dict[str, object]]:
        """``EngineConfig.params``: the file's detector parameters, with the per-key token
        lifetimes of ``[detectors.token_lifetimes]`` given to ``unissued_session`` (its own
        ``lifetimes`` parameter, if set, wins key by key)."""
        params = {k: dict(v) for k, v in self.detector_params.items()}
        if self.token_lifetimes:
            us = params.setdefault("unissued_session", {})
            given = us.get("lifetimes")
            us["lifetimes"] = {**self.token_lifetimes, **(given if isinstance(given, dict) else {})}
        return params

    def _validate_operations(self) -> None:
        """issue 16: the GeoIP source, the runbook URL, the networks, the detector params."""
        if self.geoip_source not in GEOIP_SOURCES:
            raise SettingsError(f"GeoIP source must be one of {', '.join(GEOIP_SOURCES)}, "
                                f"not {self.geoip_source!r}")
        if self.geoip_source == "maxmind" and not (self.geoip_country_db or self.geoip_city_db):
            raise SettingsError("GeoIP source maxmind needs a Country or City database: set "
                                "ACCESSWATCH_GEOIP_COUNTRY_DB or ACCESSWATCH_GEOIP_CITY_DB")
        if self.geoip_source == "maxmind":
            from streams.geoip import GeoIPError, check_mmdb

            try:
                for what, path in (("country", self.geoip_country_db),
                                   ("city", self.geoip_city_db), ("ASN", self.geoip_asn_db)):
                    if path:
                        check_mmdb(path, what)
            except GeoIPError as e:
                raise SettingsError(str(e)) from None
        if not self.runbook_base_url.startswith(("http://", "https://")):
            raise SettingsError(f"runbook base URL must start with http(s)://: "
                                f"{self.runbook_base_url}")
        for net in self.trusted_networks:
            try:
                ipaddress.ip_network(net, strict=True)
            except ValueError as e:
                raise SettingsError(f"trusted network {net!r}: {e}") from None
        for key, seconds in self.token_lifetimes.items():
            if not (isinstance(seconds, int | float) and seconds > 0):
                raise SettingsError(f"token lifetime of {key!r} must be > 0 seconds")
        from detectors.engine import Engine, EngineConfig
        from detectors.geo import Geo

        if self.timezone != "auto":
            from zoneinfo import ZoneInfo

            try:
                ZoneInfo(self.timezone)
            except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
                raise SettingsError(f"timezone {self.timezone!r}: not an IANA zone "
                                    "(e.g. Europe/Berlin) nor auto") from None
        try:  # (a Geo without data: checking the detectors loads no GeoIP database)
            Engine(EngineConfig(detectors=self.detectors or None, params=self.engine_params()),
                   geo=Geo(None))
        except (TypeError, ValueError, KeyError) as e:
            raise SettingsError(f"detectors: {e}") from None

    # ---- issue 16: Kafka security (streams.kafka_security) --------------------------------
    #: (``ACCESSWATCH_KAFKA_SECURITY_PROTOCOL``, ``--kafka-security-protocol``) PLAINTEXT, SSL,
    #: SASL_PLAINTEXT or SASL_SSL; empty: SASL_SSL with a SASL mechanism, SSL with a CA or
    #: client certificate, else PLAINTEXT.
    kafka_security_protocol: str = ""
    #: (``ACCESSWATCH_KAFKA_CA_FILE``, ``--kafka-ca-file``) PEM CAs trusted for the brokers'
    #: certificates (default: the system's). Certificates and host names are always verified.
    kafka_ca_file: str = ""
    #: (``ACCESSWATCH_KAFKA_CERT_FILE``, ``ACCESSWATCH_KAFKA_KEY_FILE``, ``--kafka-cert-file``,
    #: ``--kafka-key-file``) client certificate and key (PEM) for mutual TLS.
    kafka_cert_file: str = ""
    kafka_key_file: str = ""
    #: (``ACCESSWATCH_KAFKA_KEY_PASSWORD`` or ``_FILE``) the key's password. No flag.
    kafka_key_password: str = field(default="", repr=False)
    #: (``ACCESSWATCH_KAFKA_SASL_MECHANISM``, ``--kafka-sasl-mechanism``) PLAIN, SCRAM-SHA-256,
    #: SCRAM-SHA-512 or OAUTHBEARER.
    kafka_sasl_mechanism: str = ""
    #: (``ACCESSWATCH_KAFKA_USERNAME`` or ``_FILE``, ``--kafka-username``) SASL user name.
    kafka_username: str = ""
    #: (``ACCESSWATCH_KAFKA_PASSWORD`` or ``ACCESSWATCH_KAFKA_PASSWORD_FILE``) SASL password.
    #: No flag: a flag would show in ``ps``.
    kafka_password: str = field(default="", repr=False)
    #: (``ACCESSWATCH_KAFKA_OAUTH_TOKEN_FILE``, ``--kafka-oauth-token-file``) OAUTHBEARER token
    #: file, read at each authentication (a rotated token is picked up).
    kafka_oauth_token_file: str = ""
    #: (``ACCESSWATCH_KAFKA_OAUTH_TOKEN_COMMAND``) or a command printing the token (run without
    #: a shell at each authentication). No flag.
    kafka_oauth_token_command: str = field(default="", repr=False)
    # ---- issue 18 items 2-3 (h-suppress): allow-lists, suppressions, feedback ----------
    #: (``ACCESSWATCH_ALLOWLIST``, ``--allowlist``, ``[detectors] allowlist``) the allow-list
    #: file: trusted networks, keys, principals and suppression rules, each with a reason, an
    #: owner and an expiry (``streams.allowlist_file.AllowlistFile``). Read at start.
    allowlist: str = ""
    #: (``ACCESSWATCH_FEEDBACK_SUPPRESS``, ``[detectors] feedback_suppress``) seconds a benign
    #: verdict holds back that detector's findings about that entity (event time)
    feedback_suppress: float = 86400.0
    #: (``ACCESSWATCH_FEEDBACK_WATCH``, ``[detectors] feedback_watch``) seconds a malicious
    #: verdict raises that entity's findings one severity step
    feedback_watch: float = 7 * 86400.0

    def allow_list(self) -> AllowList | None:
        """The allow-list in force: the file's entries and ``trusted_networks`` (entries with
        no expiry, owner ``configuration``); None when neither is set. ``SettingsError`` with
        every problem of a bad file."""
        from detectors.allowlist import AllowList, Entry
        from detectors.engine import discover
        from streams.allowlist_file import ConfigError, load_allowlist

        base = AllowList(0)
        if self.allowlist:
            try:
                base = load_allowlist(self.allowlist, discover())
            except ConfigError as e:
                raise SettingsError("; ".join(e.problems)) from None
        legacy = tuple(Entry("network", str(ipaddress.ip_network(n, strict=True)),
                             "trusted_networks setting", "configuration")
                       for n in self.trusted_networks)
        if not self.allowlist and not legacy:
            return None
        return AllowList(base.version, legacy + base.entries, base.source)

    # ---- issue 18.5 (h-ocsf): OCSF out ----------------------------------------------------
    #: (``ACCESSWATCH_ALERTS_FORMAT``, ``--alerts-format``) what the worker writes on the
    #: alerts topic: ``json``, the alerts (docs/contract.md), or ``ocsf``, OCSF Detection
    #: Findings (``streams.ocsf_out``, docs/ocsf.md). Alertmanager gets the alerts either way.
    alerts_format: str = "json"
    # ---- issue 17, batched messages (h-batch) -------------------------------------------
    #: (``ACCESSWATCH_PRODUCE_BATCH_EVENTS``, ``produce --batch-events``) events ``produce``
    #: and the ingest agents put in one message at most, all of one partition (1: one event a
    #: message, as contract v1)
    produce_batch_events: int = 500
    #: (``ACCESSWATCH_PRODUCE_BATCH_BYTES``, ``produce --batch-bytes``) bytes of one batch
    #: message at most (a single larger event goes alone); at most 1 MiB (Kafka's default)
    produce_batch_bytes: int = 256 * 1024
    #: (``ACCESSWATCH_PRODUCE_LINGER_MS``, ``produce --linger-ms``) how long ``produce``
    #: holds a partition's batch open for more events
    produce_linger_ms: float = 20.0
    #: (``ACCESSWATCH_MAX_BATCH_EVENTS``) events the worker takes from one message at most; a
    #: bigger batch goes to the dead-letter topic whole (``too_large``)
    max_batch_events: int = 10_000
    # ---- issue 17, checkpoints encoded in a forked child (h-fork) ----------------------
    #: (``ACCESSWATCH_CHECKPOINT_FORK``, on/off) periodic checkpoints are encoded in a forked
    #: child off the event loop (``streams.checkpoint_fork``); off, or where ``os.fork`` does
    #: not exist: on the event loop, under the checkpoint lock, as before
    checkpoint_fork: bool = hasattr(os, "fork")
    #: (``ACCESSWATCH_CHECKPOINT_FORK_TIMEOUT``) seconds a forked child may take to encode
    #: before it is killed (that checkpoint is not written; its events stay held)
    checkpoint_fork_timeout: float = 300.0

    def kafka_security(self) -> KafkaSecurity:
        """The Kafka clients' security (``streams.kafka_security``); ``SettingsError`` when the
        combination cannot work or a file is unreadable."""
        from streams.kafka_security import SETTINGS_FIELDS, KafkaSecurity, KafkaSecurityError

        try:
            return KafkaSecurity.build(**{k: getattr(self, f) for k, f in SETTINGS_FIELDS.items()})
        except KafkaSecurityError as e:
            raise SettingsError(str(e)) from None

    # ---- derived ---------------------------------------------------------------------
    @property
    def bootstrap(self) -> list[str]:
        return parse_broker_url(self.broker)

    @property
    def store_url(self) -> str:
        return "rocksdb://" if self.store == "rocksdb" else "memory://"

    def validate(self) -> Settings:
        """Raise ``SettingsError`` naming the first bad value; return self."""
        try:
            parse_broker_url(self.broker)
        except ValueError as e:
            raise SettingsError(str(e)) from None
        if self.store not in STORES:
            raise SettingsError(f"store must be one of {', '.join(STORES)}, not {self.store!r}")
        if self.store == "rocksdb":
            try:
                import rocksdict  # noqa: F401
            except ImportError:
                raise SettingsError(
                    "store rocksdb needs the rocksdict package: pip install 'accesswatch[rocksdb]'"
                ) from None
        if self.partitions < 1:
            raise SettingsError(f"partitions must be >= 1, not {self.partitions}")
        if not 0 <= self.web_port < 65536:
            raise SettingsError(f"web port must be in 0..65535, not {self.web_port}")
        if self.checkpoint_interval <= 0 or self.watermark_interval <= 0:
            raise SettingsError("checkpoint and watermark intervals must be positive")
        if not self.watermark_delay >= 0:  # h-failover (NaN too)
            raise SettingsError(
                f"watermark delay must be >= 0 seconds, not {self.watermark_delay}")
        if self.log_format not in LOG_FORMATS:  # issue 16: operations
            raise SettingsError(f"log format must be one of {', '.join(LOG_FORMATS)}, "
                                f"not {self.log_format!r}")
        if self.event_loop not in LOOPS:
            raise SettingsError(
                f"event loop must be one of {', '.join(LOOPS)}, not {self.event_loop!r}")
        if self.event_loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
            raise SettingsError("event loop uvloop needs the uvloop package: pip install uvloop")
        for url in self.alertmanager:
            if not url.startswith(("http://", "https://")):
                raise SettingsError(f"Alertmanager URL must start with http(s)://: {url}")
        check_victim_salt(self.victim_salt)  # issue 12, privacy of victims
        self.ingest_pairs()  # issue 15: every --ingest names a format that loads
        self._validate_operations()  # issue 16: operations
        self._validate_exposure()
        # issue 12, input slice
        if not 1970 <= self.ts_min_year <= self.ts_max_year <= 9998:
            raise SettingsError(f"accepted years must be 1970 <= min <= max <= 9998, not "
                                f"{self.ts_min_year}..{self.ts_max_year}")
        if not self.max_future_skew >= 0:
            raise SettingsError(f"max future skew must be >= 0 seconds, not "
                                f"{self.max_future_skew}")
        self.kafka_security()  # issue 16: Kafka security
        if self.alerts_format not in ALERTS_FORMATS:  # issue 18.5: OCSF out
            raise SettingsError(f"alerts format must be one of {', '.join(ALERTS_FORMATS)}, "
                                f"not {self.alerts_format!r}")
        self.allow_list()  # issue 18: the allow-list file loads
        if not (self.feedback_suppress > 0 and self.feedback_watch > 0):
            raise SettingsError("feedback suppress and watch times must be > 0 seconds")
        check_batching(self)  # issue 17: batched messages
        check_fork(self)  # issue 17: checkpoints in a forked child (h-fork)
        return self

    def _validate_exposure(self) -> None:
        """issue 12, exposure: the secret files are readable, a wide bind has auth."""
        from streams.alertmanager import HttpClientConfig
        from streams.httpauth import CredentialsError

        try:
            auth = self.web_auth()
            HttpClientConfig.from_settings(self)
        except (CredentialsError, ValueError) as e:
            raise SettingsError(str(e)) from None
        if not auth and not self.web_allow_unauthenticated and not _is_loopback(self.web_host):
            raise SettingsError(
                f"web host {self.web_host} is not loopback and the web port has no "
                "authentication: set ACCESSWATCH_WEB_BEARER_TOKEN_FILE or "
                "ACCESSWATCH_WEB_BASIC_AUTH_FILE (or ACCESSWATCH_WEB_ALLOW_UNAUTHENTICATED=1)")

    def web_auth(self) -> Authenticator:
        """The credentials the web port requires (empty: none); reads the files."""
        from streams.httpauth import Authenticator

        return Authenticator.from_files(self.web_bearer_token_file or None,
                                        self.web_basic_auth_file or None)

    # ---- constructors ----------------------------------------------------------------
    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *,
                 base: Settings | None = None) -> Settings:
        """The environment's settings over ``base`` (the configuration file's, issue 16),
        else over the defaults."""
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            v = env.get(name, "").strip()
            return v or None

        kw: dict[str, object] = {}
        conv: dict[str, tuple[str, Any]] = {
            "broker": ("ACCESSWATCH_BROKER", str),
            "app_id": ("ACCESSWATCH_APP_ID", str),
            "partitions": ("ACCESSWATCH_PARTITIONS", int),
            "replication": ("ACCESSWATCH_REPLICATION", int),
            "store": ("ACCESSWATCH_STORE", str),
            "web_host": ("ACCESSWATCH_WEB_HOST", str),
            "web_port": ("ACCESSWATCH_WEB_PORT", int),
            "worker_id": ("ACCESSWATCH_WORKER_ID", str),
            "data_dir": ("ACCESSWATCH_DATA_DIR", str),
            "checkpoint_interval": ("ACCESSWATCH_CHECKPOINT_INTERVAL", float),
            "watermark_interval": ("ACCESSWATCH_WATERMARK_INTERVAL", float),
            "idle_flush": ("ACCESSWATCH_IDLE_FLUSH", float),
            "merge_wait": ("ACCESSWATCH_MERGE_WAIT", float),
            "fetch_max_wait_ms": ("ACCESSWATCH_FETCH_MAX_WAIT_MS", int),
            "log_level": ("ACCESSWATCH_LOG_LEVEL", str),
            "event_loop": ("ACCESSWATCH_EVENT_LOOP", str),
            # issue 12, exposure: paths of secret files (never the secrets themselves)
            "web_bearer_token_file": ("ACCESSWATCH_WEB_BEARER_TOKEN_FILE", str),
            "web_basic_auth_file": ("ACCESSWATCH_WEB_BASIC_AUTH_FILE", str),
            "alertmanager_bearer_token_file": ("ACCESSWATCH_ALERTMANAGER_BEARER_TOKEN_FILE", str),
            "alertmanager_basic_auth_file": ("ACCESSWATCH_ALERTMANAGER_BASIC_AUTH_FILE", str),
            "alertmanager_ca_file": ("ACCESSWATCH_ALERTMANAGER_CA_FILE", str),
            "alertmanager_cert_file": ("ACCESSWATCH_ALERTMANAGER_CERT_FILE", str),
            "alertmanager_key_file": ("ACCESSWATCH_ALERTMANAGER_KEY_FILE", str),
            "max_entities": ("ACCESSWATCH_MAX_ENTITIES", int),
            "timezone": ("ACCESSWATCH_TIMEZONE", str),
            "max_state_bytes": ("ACCESSWATCH_MAX_STATE_BYTES", size),  # issue 12, state slice
            "ts_min_year": ("ACCESSWATCH_TS_MIN_YEAR", int),
            "ts_max_year": ("ACCESSWATCH_TS_MAX_YEAR", int),
            "max_future_skew": ("ACCESSWATCH_MAX_FUTURE_SKEW", float),
            "watermark_delay": ("ACCESSWATCH_WATERMARK_DELAY", float),  # h-failover
            # issue 16: operations
            "log_format": ("ACCESSWATCH_LOG_FORMAT", str),
            "runbook_base_url": ("ACCESSWATCH_RUNBOOK_BASE_URL", str),
            "geoip_source": ("ACCESSWATCH_GEOIP_SOURCE", str),
            "geoip_country_db": ("ACCESSWATCH_GEOIP_COUNTRY_DB", str),
            "geoip_asn_db": ("ACCESSWATCH_GEOIP_ASN_DB", str),
            "geoip_city_db": ("ACCESSWATCH_GEOIP_CITY_DB", str),
            "allowlist": ("ACCESSWATCH_ALLOWLIST", str),  # issue 18 (h-suppress)
            "feedback_suppress": ("ACCESSWATCH_FEEDBACK_SUPPRESS", float),
            "feedback_watch": ("ACCESSWATCH_FEEDBACK_WATCH", float),
        }
        for name, (var, typ) in conv.items():
            raw = get(var)
            if raw is not None:
                try:
                    kw[name] = typ(raw)
                except ValueError:
                    raise SettingsError(f"${var}={raw!r} is not a valid {typ.__name__}") from None
        for name, var in (
            ("faust_metrics", "ACCESSWATCH_FAUST_METRICS"),
            ("fast_deliver", "ACCESSWATCH_FAST_DELIVER"),
            ("web_faust_views", "ACCESSWATCH_WEB_FAUST_VIEWS"),
            ("web_allow_unauthenticated", "ACCESSWATCH_WEB_ALLOW_UNAUTHENTICATED"),
        ):
            raw = get(var)
            if raw is not None:
                if raw.lower() not in _BOOLS:
                    raise SettingsError(f"${var}={raw!r} is not one of 1/0, true/false, yes/no")
                kw[name] = _BOOLS[raw.lower()]
        for name, var in (
            ("alertmanager", "ACCESSWATCH_ALERTMANAGER"),
            ("detectors", "ACCESSWATCH_DETECTORS"),
            ("trust_producer_geo", "ACCESSWATCH_TRUST_PRODUCER_GEO"),
            ("ingest", "ACCESSWATCH_INGEST"),  # issue 15
            ("trusted_networks", "ACCESSWATCH_TRUSTED_NETWORKS"),  # issue 16
        ):
            raw = get(var)
            if raw is not None:
                kw[name] = _split(raw)
        try:
            kw["state_keys"] = keys_from_env(env)
        except ValueError as e:
            raise SettingsError(str(e)) from None
        if _BOOLS.get((get("ACCESSWATCH_MIGRATE_PICKLE_STATE") or "0").lower(), True):
            raise SettingsError(
                "$ACCESSWATCH_MIGRATE_PICKLE_STATE is no longer supported: checkpoints of the "
                "pickle format are never read; unset it (docs/operations.md, \"Upgrading from a "
                "pickle checkpoint\")")
        kw.update(_victims_from_env(env))  # issue 12, privacy of victims
        kw.update(_kafka_security_from_env(env))  # issue 16: Kafka security
        kw.update(_ocsf_from_env(env))  # issue 18.5: OCSF out
        kw.update(_batching_from_env(env))  # issue 17: batched messages
        kw.update(_fork_from_env(env))  # issue 17: checkpoints in a forked child (h-fork)
        if base is None:
            kw["topics"] = TopicNames.from_env() if env is os.environ else _topics_from(env)
            return cls(**kw)  # type: ignore[arg-type]  # each value converted and checked above
        # issue 16: over the configuration file's layer, only what the environment sets
        for secret in ("state_keys", "victim_salt"):
            if not kw[secret]:
                del kw[secret]
        kw["topics"] = _topics_from(env, base.topics)
        return replace(base, **kw)  # type: ignore[arg-type]  # as above

    def data_path(self) -> Path:
        return Path(self.data_dir)


# ---- issue 12, privacy of victims -----------------------------------------------------------
VICTIM_SALT_MIN = 16


def victim_salt_from_env(env: Mapping[str, str] | None = None) -> str:
    """``$ACCESSWATCH_VICTIM_SALT``, or the contents of ``$ACCESSWATCH_VICTIM_SALT_FILE`` (one
    trailing newline dropped); "" when neither is set. Shared by the worker and ``replay``."""
    env = os.environ if env is None else env
    value = env.get("ACCESSWATCH_VICTIM_SALT", "")
    path = env.get("ACCESSWATCH_VICTIM_SALT_FILE", "").strip()
    if value and path:
        raise SettingsError("set ACCESSWATCH_VICTIM_SALT or ACCESSWATCH_VICTIM_SALT_FILE, not both")
    if path:
        try:
            value = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            why = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
            raise SettingsError(f"ACCESSWATCH_VICTIM_SALT_FILE {path}: {why}") from None
        value = value[:-1] if value.endswith("\n") else value
    return check_victim_salt(value)


def check_victim_salt(value: str) -> str:
    """The salt unless it is set but too short to be a secret (one readable line)."""
    if value and len(value) < VICTIM_SALT_MIN:
        raise SettingsError(f"the victim salt must be at least {VICTIM_SALT_MIN} characters "
                            f"(it keys the digests that name victims), not {len(value)}")
    return value


def _victims_from_env(env: Mapping[str, str]) -> dict[str, object]:
    kw: dict[str, object] = {"victim_salt": victim_salt_from_env(env)}
    raw = env.get("ACCESSWATCH_REVEAL_VICTIMS", "").strip()
    if raw:
        if raw.lower() not in _BOOLS:
            raise SettingsError(
                f"$ACCESSWATCH_REVEAL_VICTIMS={raw!r} is not one of 1/0, true/false, yes/no")
        kw["reveal_victims"] = _BOOLS[raw.lower()]
    return kw
def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _split(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        items = value.split(",")
    else:
        items = [p for v in value for p in str(v).split(",")]  # type: ignore[attr-defined]  # a list (an append flag)
    return tuple(i.strip() for i in items if i.strip())


def _topics_from(env: Mapping[str, str], base: TopicNames | None = None) -> TopicNames:
    base = base or TopicNames()
    pairs = {
        "logins": "ACCESSWATCH_TOPIC_LOGINS",
        "access": "ACCESSWATCH_TOPIC_ACCESS",
        "identity": "ACCESSWATCH_TOPIC_IDENTITY",
        "alerts": "ACCESSWATCH_TOPIC_ALERTS",
        "dlq": "ACCESSWATCH_TOPIC_DLQ",
    }
    kw = {k: (env.get(v, "").strip() or getattr(base, k)) for k, v in pairs.items()}
    kw["partials"] = env.get("ACCESSWATCH_TOPIC_PARTIALS", "").strip() or base.partials
    kw["feedback"] = env.get("ACCESSWATCH_TOPIC_FEEDBACK", "").strip() or base.feedback
    return TopicNames(**kw)


def add_worker_arguments(p: argparse.ArgumentParser, *, broker_required: bool = False) -> None:
    """Flags shared by ``worker`` and ``demo`` (each defaults to its environment variable)."""
    p.add_argument(
        "--broker",
        required=broker_required,
        metavar="kafka://HOST:PORT",
        help="Kafka bootstrap URL ($ACCESSWATCH_BROKER)",
    )
    p.add_argument(
        "--partitions",
        type=int,
        metavar="N",
        help="partitions of the input topics and checkpoint table "
        "($ACCESSWATCH_PARTITIONS, default 4)",
    )
    p.add_argument(
        "--store", choices=STORES, help="table store ($ACCESSWATCH_STORE, default memory)"
    )
    p.add_argument(
        "--web-port",
        dest="web_port",
        type=int,
        metavar="PORT",
        help="web server port serving /metrics ($ACCESSWATCH_WEB_PORT, default 6066; "
        "0 = free port)",
    )
    p.add_argument(
        "--web-host",
        dest="web_host",
        metavar="ADDR",
        help="web server bind address ($ACCESSWATCH_WEB_HOST, default 127.0.0.1)",
    )
    p.add_argument(
        "--alertmanager",
        action="append",
        metavar="URL",
        help="Alertmanager base URL, repeatable ($ACCESSWATCH_ALERTMANAGER)",
    )
    p.add_argument(
        "--app-id",
        dest="app_id",
        metavar="ID",
        help="consumer group / app id ($ACCESSWATCH_APP_ID, default accesswatch)",
    )
    p.add_argument(
        "--worker-id",
        dest="worker_id",
        metavar="NAME",
        help="this worker's name ($ACCESSWATCH_WORKER_ID)",
    )
    p.add_argument(
        "--data-dir", dest="data_dir", metavar="DIR", help="state directory ($ACCESSWATCH_DATA_DIR)"
    )
    p.add_argument(
        "--checkpoint-interval",
        dest="checkpoint_interval",
        type=float,
        metavar="SECONDS",
        help="seconds between engine checkpoints (default 2)",
    )
    p.add_argument(
        "--idle-flush",
        dest="idle_flush",
        type=float,
        metavar="SECONDS",
        help="fire pending timers of a partition idle this long (default 0 = never)",
    )
    p.add_argument("--detectors", metavar="IDS", help="comma-separated detector ids")
    p.add_argument("--faust-metrics", dest="faust_metrics", action="store_true", default=None,
                   help="also export Faust's own sensor on /metrics ($ACCESSWATCH_FAUST_METRICS)")
    p.add_argument("--fast-deliver", dest="fast_deliver", action="store_true", default=None,
                   help="experimental: deliver fetched messages inline, not through Faust's "
                   "per-message tasks ($ACCESSWATCH_FAST_DELIVER=1)")
    p.add_argument("--event-loop", dest="event_loop", choices=LOOPS,
                   help="event loop ($ACCESSWATCH_EVENT_LOOP, default auto: uvloop when "
                   "installed)")
    # issue 12, exposure: file paths only, so no secret is ever on a command line
    p.add_argument("--web-faust-views", dest="web_faust_views", action="store_true",
                   default=None, help="also serve Faust's /router/ and /table/ views "
                   "($ACCESSWATCH_WEB_FAUST_VIEWS)")
    p.add_argument("--web-bearer-token-file", dest="web_bearer_token_file", metavar="FILE",
                   help="require this token on the web port ($ACCESSWATCH_WEB_BEARER_TOKEN_FILE)")
    p.add_argument("--web-basic-auth-file", dest="web_basic_auth_file", metavar="FILE",
                   help="user:password lines accepted on the web port "
                   "($ACCESSWATCH_WEB_BASIC_AUTH_FILE)")
    p.add_argument("--alertmanager-ca-file", dest="alertmanager_ca_file", metavar="FILE",
                   help="CA bundle for https Alertmanagers ($ACCESSWATCH_ALERTMANAGER_CA_FILE)")
    p.add_argument(
        "--log-level",
        dest="log_level",
        choices=("debug", "info", "warning", "error"),
        help="log level",
    )
    # issue 12, privacy of victims
    p.add_argument("--reveal-victims", dest="reveal_victims", action="store_true", default=None,
                   help="also put victims' ids in each alert's victims field on the alerts "
                   "topic, never sent to Alertmanager ($ACCESSWATCH_REVEAL_VICTIMS)")
    # issue 12, input slice
    p.add_argument("--ts-min-year", dest="ts_min_year", type=int, metavar="YEAR",
                   help="reject event times before this year ($ACCESSWATCH_TS_MIN_YEAR, "
                   "default 2000)")
    p.add_argument("--ts-max-year", dest="ts_max_year", type=int, metavar="YEAR",
                   help="reject event times after this year ($ACCESSWATCH_TS_MAX_YEAR, "
                   "default 2100)")
    p.add_argument("--max-future-skew", dest="max_future_skew", type=float, metavar="SECONDS",
                   help="reject events dated more than this after they are received "
                   "($ACCESSWATCH_MAX_FUTURE_SKEW, default 300; 0 = off)")
    p.add_argument("--trust-producer-geo", dest="trust_producer_geo", action="append",
                   metavar="TOPIC", help="believe country / asn sent on this input topic, "
                   "repeatable, * = all ($ACCESSWATCH_TRUST_PRODUCER_GEO; default: GeoIP)")
    # ---- issue 12, engine slice (bounded state) ----
    p.add_argument("--max-entities", dest="max_entities", type=int, metavar="N",
                   help="at most N entities per detector table and partition; least recently "
                   "seen evicted first ($ACCESSWATCH_MAX_ENTITIES, default 200000; 0 = no cap)")
    p.add_argument("--timezone", dest="timezone", metavar="ZONE",
                   help="the deployment's local time: an IANA zone such as Europe/Berlin, or "
                   "auto: the home country's, from the first customer logins "
                   "($ACCESSWATCH_TIMEZONE, default auto)")
    # ---- issue 12 leftover (h-failover): the watermark waits for events in transit ----
    p.add_argument("--watermark-delay", dest="watermark_delay", type=float, metavar="SECONDS",
                   help="move a quiet partition's event time on the wall clock only after "
                   "its input was quiet this long ($ACCESSWATCH_WATERMARK_DELAY, default 60)")
    # ---- issue 15, adapters slice (ingest agents) ----
    p.add_argument("--ingest", dest="ingest", action="append", metavar="FORMAT:TOPIC",
                   help="also run an ingest agent: raw FORMAT records from TOPIC adapted to "
                   "contract events (docs/ingest.md), repeatable ($ACCESSWATCH_INGEST)")
    # ---- issue 12, state slice (a budget on total state bytes) ----
    p.add_argument("--max-state-bytes", dest="max_state_bytes", type=size, metavar="SIZE",
                   help="about this much detector state per partition (estimated), e.g. 512MiB; "
                   "least recently seen evicted first ($ACCESSWATCH_MAX_STATE_BYTES, default "
                   "1GiB; 0 = no budget)")
    # ---- issue 16: operations ----
    add_log_format_argument(p)
    p.add_argument("--config", metavar="FILE",
                   help="TOML configuration file ($ACCESSWATCH_CONFIG); the environment "
                   "overrides it and flags override both (deploy/accesswatch.example.toml)")
    p.add_argument("--runbook-base-url", dest="runbook_base_url", metavar="URL",
                   help="base of the runbook links sent to Alertmanager "
                   "($ACCESSWATCH_RUNBOOK_BASE_URL)")
    p.add_argument("--geoip-source", dest="geoip_source", choices=GEOIP_SOURCES,
                   help="geoip2fast (bundled, default) or maxmind ($ACCESSWATCH_GEOIP_SOURCE)")
    p.add_argument("--geoip-country-db", dest="geoip_country_db", metavar="FILE",
                   help="MaxMind Country .mmdb ($ACCESSWATCH_GEOIP_COUNTRY_DB)")
    p.add_argument("--geoip-asn-db", dest="geoip_asn_db", metavar="FILE",
                   help="MaxMind ASN .mmdb ($ACCESSWATCH_GEOIP_ASN_DB)")
    p.add_argument("--geoip-city-db", dest="geoip_city_db", metavar="FILE",
                   help="MaxMind City .mmdb, instead of Country ($ACCESSWATCH_GEOIP_CITY_DB)")

    # ---- issue 16: Kafka security (file paths and names; secrets only from the environment)
    from streams.kafka_security import add_arguments as add_kafka_security_arguments

    add_kafka_security_arguments(p)
    # ---- issue 18.5: OCSF out ----
    p.add_argument("--alerts-format", dest="alerts_format", choices=ALERTS_FORMATS,
                   help="json: the alerts on the alerts topic (default); ocsf: OCSF Detection "
                   "Findings instead ($ACCESSWATCH_ALERTS_FORMAT)")

    # ---- issue 18 items 2-3 (h-suppress)
    p.add_argument("--allowlist", dest="allowlist", metavar="FILE",
                   help="allow-list file: trusted networks, keys, principals and suppressions, "
                   "each with reason, owner and expiry ($ACCESSWATCH_ALLOWLIST)")

# ---- issue 12, state slice (a budget on total state bytes) -----------------------------------
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20,
          "g": 1 << 30, "gib": 1 << 30}


def size(text: str) -> int:
    """A byte count: digits, optionally with a binary unit (``KiB``/``MiB``/``GiB``, ``k``/
    ``m``/``g``); ``ValueError`` otherwise.

    >>> size("1073741824"), size("512MiB"), size("2g"), size("0")
    (1073741824, 536870912, 2147483648, 0)
    """
    t = text.strip().lower().replace("_", "")
    digits = t.rstrip("abcdefghijklmnopqrstuvwxyz").strip()
    unit = t[len(digits):].strip()
    if not digits.isdigit() or unit not in _UNITS:
        raise ValueError(f"not a byte count: {text!r}")
    return int(digits) * _UNITS[unit]


def add_log_format_argument(p: argparse.ArgumentParser) -> None:
    """``--log-format text|json`` (worker, replay, demo)."""
    p.add_argument("--log-format", dest="log_format", choices=LOG_FORMATS,
                   help="text, or json: every log line one JSON object "
                   "($ACCESSWATCH_LOG_FORMAT, default text)")


# ---- issue 16: Kafka security ---------------------------------------------------------------
def _kafka_security_from_env(env: Mapping[str, str]) -> dict[str, object]:
    """The ``kafka_*`` fields set in ``env``; secrets read from their ``_FILE`` when given."""
    from streams.kafka_security import SETTINGS_FIELDS, KafkaSecurityError, env_values

    try:
        return {SETTINGS_FIELDS[k]: v for k, v in env_values(env).items()}
    except KafkaSecurityError as e:
        raise SettingsError(str(e)) from None


# ---- issue 18.5: OCSF out -------------------------------------------------------------------
ALERTS_FORMATS = ("json", "ocsf")


def _ocsf_from_env(env: Mapping[str, str]) -> dict[str, object]:
    raw = env.get("ACCESSWATCH_ALERTS_FORMAT", "").strip()
    return {"alerts_format": raw.lower()} if raw else {}
# ---- issue 17, batched messages (h-batch) ---------------------------------------------------
#: the largest batch message (Kafka's default ``message.max.bytes`` is about 1 MiB)
MAX_BATCH_BYTES = 1 << 20


def _batching_from_env(env: Mapping[str, str]) -> dict[str, object]:
    """The batching settings set in ``env``."""
    out: dict[str, object] = {}
    for name, var, typ in (
            ("produce_batch_events", "ACCESSWATCH_PRODUCE_BATCH_EVENTS", int),
            ("produce_batch_bytes", "ACCESSWATCH_PRODUCE_BATCH_BYTES", size),
            ("produce_linger_ms", "ACCESSWATCH_PRODUCE_LINGER_MS", float),
            ("max_batch_events", "ACCESSWATCH_MAX_BATCH_EVENTS", int)):
        raw = env.get(var, "").strip()
        if raw:
            try:
                out[name] = typ(raw)
            except ValueError:
                raise SettingsError(f"${var}={raw!r} is not a valid "
                                    f"{getattr(typ, '__name__', 'value')}") from None
    return out


def check_batching(s: Settings) -> None:
    """``SettingsError`` for batching settings that cannot work.

    >>> check_batching(Settings(produce_batch_events=0))
    Traceback (most recent call last):
    ...
    streams.settings.SettingsError: produce batch events must be >= 1, not 0
    """
    if s.produce_batch_events < 1:
        raise SettingsError(f"produce batch events must be >= 1, not {s.produce_batch_events}")
    if not 1 <= s.produce_batch_bytes <= MAX_BATCH_BYTES:
        raise SettingsError(f"produce batch bytes must be in 1..{MAX_BATCH_BYTES}, not "
                            f"{s.produce_batch_bytes}")
    if not 0 <= s.produce_linger_ms <= 10_000:
        raise SettingsError(f"produce linger must be in 0..10000 ms, not {s.produce_linger_ms}")
    if s.max_batch_events < 1:
        raise SettingsError(f"max batch events must be >= 1, not {s.max_batch_events}")


# ---- issue 17, checkpoints encoded in a forked child (h-fork) -------------------------------
def _fork_from_env(env: Mapping[str, str]) -> dict[str, object]:
    """``checkpoint_fork`` / ``checkpoint_fork_timeout`` as set in ``env``."""
    out: dict[str, object] = {}
    raw = env.get("ACCESSWATCH_CHECKPOINT_FORK", "").strip().lower()
    if raw:
        if raw not in _BOOLS:
            raise SettingsError(f"$ACCESSWATCH_CHECKPOINT_FORK={raw!r} is not one of on/off, "
                                "1/0, true/false, yes/no")
        out["checkpoint_fork"] = _BOOLS[raw]
    raw = env.get("ACCESSWATCH_CHECKPOINT_FORK_TIMEOUT", "").strip()
    if raw:
        try:
            out["checkpoint_fork_timeout"] = float(raw)
        except ValueError:
            raise SettingsError(f"$ACCESSWATCH_CHECKPOINT_FORK_TIMEOUT={raw!r} is not a valid "
                                "float") from None
    return out


def check_fork(s: Settings) -> None:
    """``SettingsError`` for fork settings that cannot work.

    >>> check_fork(Settings(checkpoint_fork_timeout=0))
    Traceback (most recent call last):
    ...
    streams.settings.SettingsError: checkpoint fork timeout must be > 0 s, not 0
    """
    if not s.checkpoint_fork_timeout > 0:
        raise SettingsError(f"checkpoint fork timeout must be > 0 s, not "
                            f"{s.checkpoint_fork_timeout:g}")
    if s.checkpoint_fork and not hasattr(os, "fork"):
        raise SettingsError("$ACCESSWATCH_CHECKPOINT_FORK is on but this platform cannot fork")
