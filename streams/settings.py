"""Worker settings: one dataclass, filled from flags first, then environment variables.

Every field names the environment variable behind it. ``Settings.from_env()`` reads the
environment; ``Settings.from_args(args)`` lays command-line flags over it (a flag given on
the command line wins over the environment, the environment over the default).

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
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

from streams.broker import parse_broker_url
from streams.snapshot import StateKeys, keys_from_env
from streams.topics import TopicNames

if TYPE_CHECKING:
    from streams.httpauth import Authenticator
    from streams.kafka_security import KafkaSecurity

STORES = ("memory", "rocksdb")
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
    #: event). Experimental, off by default (it replaces a method of Faust's consumer). It
    #: once lost records after SIGKILL restarts (3 of 18 runs); since the runtime fills the
    #: holes in what Faust hands over (``Runtime.admit``), 10 of 10 such runs lost nothing.
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
    #: (``ACCESSWATCH_MIGRATE_PICKLE_STATE``) ``1``: read checkpoints of the pickle format
    #: (before the authenticated one) once, through a restricted unpickler, and write them
    #: again in the new format. Only if you trust every writer of the changelog topics.
    migrate_pickle_state: bool = False

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
        if self.event_loop not in LOOPS:
            raise SettingsError(
                f"event loop must be one of {', '.join(LOOPS)}, not {self.event_loop!r}")
        if self.event_loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
            raise SettingsError("event loop uvloop needs the uvloop package: pip install uvloop")
        for url in self.alertmanager:
            if not url.startswith(("http://", "https://")):
                raise SettingsError(f"Alertmanager URL must start with http(s)://: {url}")
        check_victim_salt(self.victim_salt)  # issue 12, privacy of victims
        self._validate_exposure()
        # issue 12, input slice
        if not 1970 <= self.ts_min_year <= self.ts_max_year <= 9998:
            raise SettingsError(f"accepted years must be 1970 <= min <= max <= 9998, not "
                                f"{self.ts_min_year}..{self.ts_max_year}")
        if not self.max_future_skew >= 0:
            raise SettingsError(f"max future skew must be >= 0 seconds, not "
                                f"{self.max_future_skew}")
        self.kafka_security()  # issue 16: Kafka security
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
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            v = env.get(name, "").strip()
            return v or None

        kw: dict[str, object] = {}
        conv = {
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
            "ts_min_year": ("ACCESSWATCH_TS_MIN_YEAR", int),
            "ts_max_year": ("ACCESSWATCH_TS_MAX_YEAR", int),
            "max_future_skew": ("ACCESSWATCH_MAX_FUTURE_SKEW", float),
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
            ("migrate_pickle_state", "ACCESSWATCH_MIGRATE_PICKLE_STATE"),
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
        ):
            raw = get(var)
            if raw is not None:
                kw[name] = _split(raw)
        try:
            kw["state_keys"] = keys_from_env(env)
        except ValueError as e:
            raise SettingsError(str(e)) from None
        kw["topics"] = TopicNames.from_env() if env is os.environ else _topics_from(env)
        kw.update(_victims_from_env(env))  # issue 12, privacy of victims
        kw.update(_kafka_security_from_env(env))  # issue 16: Kafka security
        return cls(**kw)  # type: ignore[arg-type]

    @classmethod
    def from_args(cls, args: argparse.Namespace, env: Mapping[str, str] | None = None) -> Settings:
        """Environment settings with every flag that was given laid over them."""
        base = cls.from_env(env)
        names = {f.name for f in fields(cls)}
        over: dict[str, object] = {}
        for k, v in vars(args).items():
            if k in names and v is not None:
                over[k] = _split(v) if k in ("alertmanager", "detectors",
                                             "trust_producer_geo") else v
        return replace(base, **over).validate()  # type: ignore[arg-type]

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
        items = [p for v in value for p in str(v).split(",")]  # type: ignore[attr-defined]
    return tuple(i.strip() for i in items if i.strip())


def _topics_from(env: Mapping[str, str]) -> TopicNames:
    base = TopicNames()
    pairs = {
        "logins": "ACCESSWATCH_TOPIC_LOGINS",
        "access": "ACCESSWATCH_TOPIC_ACCESS",
        "identity": "ACCESSWATCH_TOPIC_IDENTITY",
        "alerts": "ACCESSWATCH_TOPIC_ALERTS",
        "dlq": "ACCESSWATCH_TOPIC_DLQ",
    }
    kw = {k: (env.get(v, "").strip() or getattr(base, k)) for k, v in pairs.items()}
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
    # ---- issue 16: Kafka security (file paths and names; secrets only from the environment)
    from streams.kafka_security import add_arguments as add_kafka_security_arguments

    add_kafka_security_arguments(p)


# ---- issue 16: Kafka security ---------------------------------------------------------------
def _kafka_security_from_env(env: Mapping[str, str]) -> dict[str, object]:
    """The ``kafka_*`` fields set in ``env``; secrets read from their ``_FILE`` when given."""
    from streams.kafka_security import SETTINGS_FIELDS, KafkaSecurityError, env_values

    try:
        return {SETTINGS_FIELDS[k]: v for k, v in env_values(env).items()}
    except KafkaSecurityError as e:
        raise SettingsError(str(e)) from None
