"""The allow-list file (issue 18): its schema and loader, and the configuration files' error
type and problem lines, below ``streams.settings`` (which loads the allow-list it names) and
``streams.config`` (the configuration file, a layer of ``Settings``)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)

if TYPE_CHECKING:
    from detectors.allowlist import AllowList


class ConfigError(ValueError):
    """A configuration that cannot work: ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _problems(exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(file)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        msg = msg.replace("Input should be", "must be").removeprefix("Value error, ")
        if err["type"] != "extra_forbidden" and "input" in err and not _secret_path(err["loc"]):
            msg += f" (got {err['input']!r})"
        out.append(f"{where}: {msg}")
    return out


def _secret_path(loc: tuple[Any, ...]) -> bool:
    return bool(loc) and (loc[0], loc[1] if len(loc) > 1 else None) in (
        ("state", "keys"), ("victims", "salt"))


class _Vouched(_Section):
    reason: str = Field(min_length=1)
    owner: str = Field(min_length=1)
    expires: AwareDatetime  # TOML's offset date-time, or RFC 3339 text with a zone


def _cidr(v: str) -> str:
    try:
        return str(ipaddress.ip_network(v, strict=True))
    except ValueError as e:
        raise ValueError(f"{v!r} is not a network in CIDR form ({e})") from None


class _Network(_Vouched):
    cidr: str

    _check = field_validator("cidr")(classmethod(lambda cls, v: _cidr(v)))


class _Key(_Vouched):
    id: str = Field(min_length=1)


class _Principal(_Vouched):
    id: str = Field(min_length=1)


class _Suppress(_Vouched):
    detectors: list[str] = Field(default_factory=list)  # empty: every detector
    entity_kind: Literal["account", "actor", "src_ip", "subnet", "asn", "key", "session"] | None \
        = None
    entity: str | None = Field(None, min_length=1)  # an id, or a CIDR for src_ip / subnet

    @model_validator(mode="after")
    def _scope(self) -> _Suppress:
        if not self.detectors and self.entity is None:
            raise ValueError("a suppression names detectors or an entity (or both): one "
                             "that holds back everything is a switch-off, not a rule")
        if "allowlist" in self.detectors:
            raise ValueError("the allow-list's own change alerts cannot be suppressed")
        if self.entity is not None and "/" in self.entity:
            if self.entity_kind not in ("src_ip", "subnet"):
                raise ValueError("a CIDR entity needs entity_kind src_ip or subnet")
            _cidr(self.entity)
        return self


class AllowlistFile(BaseModel):
    """The allow-list file: ``version`` (raise it with every change; it is named in the
    change alerts) and arrays of tables ``[[network]]``, ``[[key]]``, ``[[principal]]``,
    ``[[suppress]]``, each entry with ``reason``, ``owner`` and ``expires``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: PositiveInt
    network: list[_Network] = Field(default_factory=list)
    key: list[_Key] = Field(default_factory=list)
    principal: list[_Principal] = Field(default_factory=list)
    suppress: list[_Suppress] = Field(default_factory=list)

    def allowlist(self, source: str = "") -> AllowList:
        from detectors.allowlist import AllowList, Entry

        out: list[Entry] = []
        for n in self.network:
            out.append(Entry("network", n.cidr, n.reason, n.owner, n.expires.timestamp()))
        for lst, items in (("key", self.key), ("principal", self.principal)):
            out += [Entry(lst, k.id, k.reason, k.owner, k.expires.timestamp()) for k in items]
        for r in self.suppress:
            out.append(Entry("suppress", _cidr(r.entity) if r.entity and "/" in r.entity
                             else r.entity or "", r.reason, r.owner, r.expires.timestamp(),
                             tuple(r.detectors), r.entity_kind or ""))
        return AllowList(self.version, tuple(out), source)


def load_allowlist(path: str | Path, detectors: Any = None) -> AllowList:
    """The allow-list file, validated (``ConfigError`` listing every problem); ``detectors``:
    the known detector ids a suppression may name (None: not checked)."""
    import tomllib

    p = Path(path)
    try:
        with open(p, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise ConfigError([f"allowlist {p}: cannot read it ({e.strerror or e})"]) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([f"allowlist {p}: not valid TOML ({e})"]) from None
    try:
        model = AllowlistFile.model_validate(data)
    except ValidationError as e:
        raise ConfigError([f"allowlist {p}: {line}" for line in _problems(e)]) from None
    if detectors is not None:
        unknown = sorted({d for r in model.suppress for d in r.detectors} - set(detectors))
        if unknown:
            raise ConfigError([f"allowlist {p}: suppress: unknown detector(s) "
                               f"{', '.join(unknown)}"])
    return model.allowlist(str(p))
