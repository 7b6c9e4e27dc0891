"""The configuration file (issue 16): one TOML file, typed and validated by pydantic-settings.

``accesswatch worker --config FILE`` (or ``ACCESSWATCH_CONFIG=FILE``) reads it as the lowest
layer of the worker's settings, and so do ``produce``, ``topics``, ``demo`` and ``replay`` (for
the settings each uses, through ``command_settings``): **flags override the environment, which overrides the
file**, which overrides the defaults of ``streams.settings.Settings``. Every setting the
environment and the flags have is in the file, under a section; the file adds what has no
variable: detector parameters, per-key token lifetimes. ``deploy/accesswatch.example.toml``
documents every key.

``accesswatch config check FILE`` prints the effective configuration (the file with the
environment laid over it) with secrets masked, and exits 0; or prints one line per problem
and exits 2. Unknown sections and keys are problems (a misspelt key must not silently do
nothing).

Secrets: a file setting names the file that holds a secret (``key_file``, ``salt_file``,
``bearer_token_file`` ...), as the environment does; the state keys and the victim salt may
also be written inline (``SecretStr``: masked wherever the configuration is shown).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    Field,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from streams.allowlist_file import (  # noqa: F401 - ConfigError, load_allowlist: importable here too
    AllowlistFile,
    ConfigError,
    _problems,
    _Section,
    load_allowlist,
)
from streams.settings import LOOPS, STORES, Settings, SettingsError, _split
from streams.topics import TopicNames

if TYPE_CHECKING:
    from streams.kafka_security import KafkaSecurity

ENV_CONFIG = "ACCESSWATCH_CONFIG"
MASK = "********"


def _url(v: str) -> str:
    if not v.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return v


class Kafka(_Section):
    broker: str | None = Field(None, description="ACCESSWATCH_BROKER")
    app_id: str | None = Field(None, min_length=1)
    partitions: PositiveInt | None = None
    replication: PositiveInt | None = None
    #: issue 16, Kafka security: paths and names only; the password, the key's password and
    #: the OAuth token command come from the environment (``ACCESSWATCH_KAFKA_*``) or files
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] | None = None
    username: str | None = None
    oauth_token_file: str | None = None


class Topics(_Section):
    logins: str | None = Field(None, min_length=1)
    access: str | None = Field(None, min_length=1)
    identity: str | None = Field(None, min_length=1)
    alerts: str | None = Field(None, min_length=1)
    dlq: str | None = Field(None, min_length=1)


class Worker(_Section):
    worker_id: str | None = Field(None, min_length=1)
    store: Literal[STORES] | None = None  # type: ignore[valid-type]  # the names in STORES (pydantic reads them)
    data_dir: str | None = Field(None, min_length=1)
    checkpoint_interval: PositiveFloat | None = None
    watermark_interval: PositiveFloat | None = None
    idle_flush: float | None = Field(None, ge=0)
    merge_wait: float | None = Field(None, ge=0)
    fetch_max_wait_ms: int | None = Field(None, ge=0)
    event_loop: Literal[LOOPS] | None = None  # type: ignore[valid-type]  # as above, LOOPS
    fast_deliver: bool | None = None
    faust_metrics: bool | None = None
    watermark_delay: float | None = Field(None, ge=0)
    ingest: list[str] | None = None
    log_level: Literal["debug", "info", "warning", "error"] | None = None
    log_format: Literal["text", "json"] | None = None
    alerts_format: Literal["json", "ocsf"] | None = None  # issue 18.5: OCSF out


class Web(_Section):
    host: str | None = Field(None, min_length=1)
    port: int | None = Field(None, ge=0, le=65535)
    faust_views: bool | None = None
    bearer_token_file: str | None = None
    basic_auth_file: str | None = None
    allow_unauthenticated: bool | None = None


class Alertmanager(_Section):
    urls: list[str] | None = None
    bearer_token_file: str | None = None
    basic_auth_file: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    runbook_base_url: str | None = None

    @field_validator("urls")
    @classmethod
    def _urls(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else [_url(u) for u in v]

    @field_validator("runbook_base_url")
    @classmethod
    def _runbook(cls, v: str | None) -> str | None:
        return None if v is None else _url(v)


class Input(_Section):
    ts_min_year: int | None = Field(None, ge=1970, le=9998)
    ts_max_year: int | None = Field(None, ge=1970, le=9998)
    max_future_skew: float | None = Field(None, ge=0)
    trust_producer_geo: list[str] | None = None


class State(_Section):
    key_file: str | None = None
    keys: list[SecretStr] | None = None
    max_state_bytes: int | None = Field(None, ge=0)


class Victims(_Section):
    salt_file: str | None = None
    salt: SecretStr | None = None
    reveal: bool | None = None


class Detectors(_Section):
    enabled: list[str] | None = None
    max_entities: int | None = Field(None, ge=0)
    #: the deployment's local time: an IANA zone ("Europe/Berlin") or "auto" (the home
    #: country's, from the first customer logins: ``detectors.context.LocalTime``)
    timezone: str | None = None
    #: ``[detectors.params.<detector id>]``: keyword arguments of that detector's class
    params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: ``[detectors.token_lifetimes]``: key id -> seconds a token it signs stays valid
    token_lifetimes: dict[str, PositiveFloat] = Field(default_factory=dict)
    #: networks (CIDR) of the operator's own sources: findings about a source inside one are
    #: held back, as an allow-list entry with no expiry (issue 18)
    trusted_networks: list[str] | None = None
    #: the allow-list file (issue 18, ``streams.allowlist_file.load_allowlist``)
    allowlist: str | None = Field(None, min_length=1)
    #: seconds a benign / malicious verdict holds back / escalates (issue 18)
    feedback_suppress: PositiveFloat | None = None
    feedback_watch: PositiveFloat | None = None

    @field_validator("trusted_networks")
    @classmethod
    def _networks(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return None
        out = []
        for n in v:
            try:
                out.append(str(ipaddress.ip_network(n, strict=True)))
            except ValueError as e:
                raise ValueError(f"{n!r} is not a network in CIDR form ({e})") from None
        return out


class GeoIP(_Section):
    source: Literal["geoip2fast", "maxmind"] | None = None
    country_db: str | None = None
    asn_db: str | None = None
    city_db: str | None = None


class FileConfig(BaseSettings):
    """The TOML file. Every key optional: what it leaves out, the environment or the
    defaults decide."""

    model_config = SettingsConfigDict(extra="forbid", frozen=True)

    kafka: Kafka = Field(default_factory=Kafka)
    topics: Topics = Field(default_factory=Topics)
    worker: Worker = Field(default_factory=Worker)
    web: Web = Field(default_factory=Web)
    alertmanager: Alertmanager = Field(default_factory=Alertmanager)
    input: Input = Field(default_factory=Input)
    state: State = Field(default_factory=State)
    victims: Victims = Field(default_factory=Victims)
    detectors: Detectors = Field(default_factory=Detectors)
    geoip: GeoIP = Field(default_factory=GeoIP)

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # the file only: the environment is laid over it by Settings.from_env, with the
        # parsing every ACCESSWATCH_* variable has always had
        return (TomlConfigSettingsSource(settings_cls, toml_file=_Reading.path),)


class _Reading:
    path: Path | None = None


def load_file(path: str | Path) -> FileConfig:
    """The file, validated; ``ConfigError`` listing every problem."""
    import tomllib

    p = Path(path)
    try:
        with open(p, "rb") as f:
            tomllib.load(f)  # a syntax error or an unreadable file: its own one line
    except OSError as e:
        raise ConfigError([f"{p}: cannot read it ({e.strerror or e})"]) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([f"{p}: not valid TOML ({e})"]) from None
    _Reading.path = p
    try:
        return FileConfig()
    except ValidationError as e:
        raise ConfigError(_problems(e)) from None
    finally:
        _Reading.path = None


# ---- the file as a layer of Settings -------------------------------------------------------

#: (section, key) -> Settings field, for the keys that map one to one
_DIRECT: dict[tuple[str, str], str] = {
    ("kafka", "broker"): "broker", ("kafka", "app_id"): "app_id",
    ("kafka", "partitions"): "partitions", ("kafka", "replication"): "replication",
    **{("worker", n): n for n in (
        "worker_id", "store", "data_dir", "checkpoint_interval", "watermark_interval",
        "idle_flush", "merge_wait", "fetch_max_wait_ms", "event_loop", "fast_deliver",
        "faust_metrics", "log_level", "log_format")},
    ("web", "host"): "web_host", ("web", "port"): "web_port",
    ("web", "faust_views"): "web_faust_views",
    ("web", "bearer_token_file"): "web_bearer_token_file",
    ("web", "basic_auth_file"): "web_basic_auth_file",
    ("web", "allow_unauthenticated"): "web_allow_unauthenticated",
    ("alertmanager", "urls"): "alertmanager",
    **{("alertmanager", n): f"alertmanager_{n}" for n in (
        "bearer_token_file", "basic_auth_file", "ca_file", "cert_file", "key_file")},
    ("alertmanager", "runbook_base_url"): "runbook_base_url",
    ("input", "ts_min_year"): "ts_min_year", ("input", "ts_max_year"): "ts_max_year",
    ("input", "max_future_skew"): "max_future_skew",
    ("input", "trust_producer_geo"): "trust_producer_geo",
    ("state", "max_state_bytes"): "max_state_bytes",
    ("worker", "watermark_delay"): "watermark_delay", ("worker", "ingest"): "ingest",
    **{("kafka", n): f"kafka_{n}" for n in (
        "security_protocol", "ca_file", "cert_file", "key_file", "sasl_mechanism", "username",
        "oauth_token_file")},
    ("victims", "reveal"): "reveal_victims",
    ("detectors", "enabled"): "detectors", ("detectors", "max_entities"): "max_entities",
    ("detectors", "timezone"): "timezone",
    ("detectors", "trusted_networks"): "trusted_networks",
    ("detectors", "allowlist"): "allowlist",
    ("detectors", "feedback_suppress"): "feedback_suppress",
    ("detectors", "feedback_watch"): "feedback_watch",
    ("geoip", "source"): "geoip_source", ("geoip", "country_db"): "geoip_country_db",
    ("geoip", "asn_db"): "geoip_asn_db", ("geoip", "city_db"): "geoip_city_db",
    ("worker", "alerts_format"): "alerts_format",  # issue 18.5: OCSF out
}
_TUPLES = {"alertmanager", "trust_producer_geo", "detectors", "trusted_networks", "ingest"}


def file_settings(cfg: FileConfig) -> Settings:
    """The defaults with the file's values laid over them (before the environment)."""
    from streams.settings import victim_salt_from_env
    from streams.snapshot import keys_from_env

    over: dict[str, Any] = {}
    problems: list[str] = []
    for (section, key), name in _DIRECT.items():
        value = getattr(getattr(cfg, section), key)
        if value is not None:
            over[name] = tuple(value) if name in _TUPLES else value
    t = cfg.topics
    base = TopicNames()
    over["topics"] = TopicNames(**{k: getattr(t, k) or getattr(base, k)
                                   for k in ("logins", "access", "identity", "alerts", "dlq")})
    if cfg.detectors.params:
        over["detector_params"] = {k: dict(v) for k, v in cfg.detectors.params.items()}
    if cfg.detectors.token_lifetimes:
        over["token_lifetimes"] = dict(cfg.detectors.token_lifetimes)
    # secrets: through the same readers as the environment's variables
    st = cfg.state
    if st.key_file is not None or st.keys is not None:
        env = {"ACCESSWATCH_STATE_KEY_FILE": st.key_file or "",
               "ACCESSWATCH_STATE_KEY": ",".join(k.get_secret_value() for k in st.keys or ())}
        try:
            over["state_keys"] = keys_from_env(env)
        except ValueError as e:
            problems.append("state: " + str(e).replace("$ACCESSWATCH_STATE_KEY_FILE", "key_file")
                            .replace("ACCESSWATCH_STATE_KEY_FILE or ACCESSWATCH_STATE_KEY",
                                     "key_file or keys"))
    v = cfg.victims
    if v.salt_file is not None or v.salt is not None:
        env = {"ACCESSWATCH_VICTIM_SALT_FILE": v.salt_file or "",
               "ACCESSWATCH_VICTIM_SALT": v.salt.get_secret_value() if v.salt else ""}
        try:
            over["victim_salt"] = victim_salt_from_env(env)
        except SettingsError as e:
            problems.append("victims: " + str(e).replace(
                "ACCESSWATCH_VICTIM_SALT_FILE", "salt_file").replace(
                "ACCESSWATCH_VICTIM_SALT", "salt"))
    if problems:
        raise ConfigError(problems)
    return replace(Settings(), **over)


def config_path(args: argparse.Namespace | None, env: Mapping[str, str]) -> str | None:
    """``--config``, else ``$ACCESSWATCH_CONFIG``, else None."""
    path = getattr(args, "config", None) if args is not None else None
    return path or env.get(ENV_CONFIG, "").strip() or None


def base_settings(args: argparse.Namespace | None, env: Mapping[str, str]) -> Settings | None:
    """The file's layer when a file is configured (``SettingsError`` with every problem)."""
    path = config_path(args, env)
    if path is None:
        return None
    try:
        return file_settings(load_file(path))
    except ConfigError as e:
        raise SettingsError(f"config {path}: " + "; ".join(e.problems)) from None


def settings_from_args(args: argparse.Namespace, env: Mapping[str, str] | None = None
                       ) -> Settings:
    """Environment settings with every flag that was given laid over them (and both over
    the configuration file of ``--config`` / ``$ACCESSWATCH_CONFIG``, issue 16), validated."""
    file_base = base_settings(args, os.environ if env is None else env)
    base = Settings.from_env(env, base=file_base)
    names = {f.name for f in fields(Settings)}
    over: dict[str, object] = {}
    for k, v in vars(args).items():
        if k in names and v is not None:
            over[k] = _split(v) if k in ("alertmanager", "detectors", "trust_producer_geo",
                                             "ingest", "trusted_networks") else v
    return replace(base, **over).validate()  # type: ignore[arg-type]  # argparse's values are untyped; validate() checks each


# ---- the file for the other commands (produce, topics, demo, replay) ------------------------


def add_config_argument(p: argparse.ArgumentParser) -> None:
    """``--config FILE`` of a command other than ``worker`` (whose flag is in settings)."""
    p.add_argument("--config", metavar="FILE",
                   help="TOML configuration file ($ACCESSWATCH_CONFIG); the environment "
                   "overrides it and flags override both (deploy/accesswatch.example.toml)")


def command_settings(args: argparse.Namespace | None,
                     env: Mapping[str, str] | None = None) -> Settings:
    """The file's settings (``--config`` / ``$ACCESSWATCH_CONFIG``) with the environment laid
    over them; the caller lays its own flags over these. ``SettingsError`` (a ``ValueError``)
    with every problem of a bad file or a bad variable, as one line."""
    env = os.environ if env is None else env
    return Settings.from_env(env, base=base_settings(args, env))


def broker_setting(args: argparse.Namespace | None, env: Mapping[str, str]) -> str | None:
    """``demo``'s broker when ``--broker`` is not given: with a configuration file,
    ``$ACCESSWATCH_BROKER`` else the file's ``[kafka] broker``; else None (the embedded one,
    as without a file: the environment alone does not move the demo off its own broker)."""
    path = config_path(args, env)
    if path is None:
        return None
    return env.get("ACCESSWATCH_BROKER", "").strip() or load_file(path).kafka.broker


def kafka_security(settings: Settings, args: argparse.Namespace | None) -> KafkaSecurity:
    """``settings``' Kafka security with the security flags in ``args`` laid over it."""
    from streams.kafka_security import FLAGS, SETTINGS_FIELDS, KafkaSecurity

    values = {k: getattr(settings, f) for k, f in SETTINGS_FIELDS.items()}
    for name in FLAGS:
        v = getattr(args, SETTINGS_FIELDS[name], None) if args is not None else None
        if v:
            values[name] = v
    return KafkaSecurity.build(**values)


# ---- accesswatch config check ----------------------------------------------------------------

_USERINFO = re.compile(r"(://)[^/@\s']+@")
#: Settings fields whose value is a secret (never printed)
SECRET_FIELDS = ("state_keys", "victim_salt", "kafka_password", "kafka_key_password",
                 "kafka_oauth_token_command")


def effective(settings: Settings) -> list[str]:
    """``name = value`` lines of every setting, secrets masked."""
    out = []
    for f in fields(Settings):
        value = getattr(settings, f.name)
        if f.name in SECRET_FIELDS:
            shown = (f"[{len(value)} key(s) {MASK}]" if f.name == "state_keys" and value
                     else MASK if value else "(unset)")
        elif isinstance(value, TopicNames):
            shown = ", ".join(f"{k}={getattr(value, k)}"
                              for k in ("logins", "access", "identity", "alerts", "dlq"))
        else:
            shown = _USERINFO.sub(r"\1" + MASK + "@", repr(value))  # kafka://user:pw@host
        out.append(f"{f.name} = {shown}")
    return out


def check(path: str, env: Mapping[str, str] | None = None) -> tuple[list[str], list[str]]:
    """(effective configuration lines, problems) of ``path`` with ``env`` laid over it."""
    env = os.environ if env is None else env
    try:
        base = file_settings(load_file(path))
    except ConfigError as e:
        return [], e.problems
    try:
        s = Settings.from_env(env, base=base)
    except SettingsError as e:
        return [], [f"environment: {e}"]
    problems = []
    try:
        s.validate()
    except SettingsError as e:
        problems.append(str(e))
    try:
        s.snapshot_keys()
    except SettingsError as e:
        problems.append(str(e))
    return effective(s), problems


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True,
                           parser_class=type(p))
    c = sub.add_parser("check", help="validate FILE; print the effective configuration "
                       "(secrets masked) or one line per problem (exit 2)")
    c.add_argument("file", metavar="FILE")


def run(args: argparse.Namespace) -> int:
    lines, problems = check(args.file)
    if problems:
        for line in problems:  # a URL's user:password is not shown even where it is wrong
            line = _USERINFO.sub(r"\1" + MASK + "@", line)
            print(f"accesswatch config: {args.file}: {line}", file=sys.stderr)
        return 2
    print(f"# effective configuration: {args.file} with the environment laid over it")
    for line in lines:
        print(line)
    return 0
