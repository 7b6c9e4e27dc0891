"""HTTP authentication shared by the worker's web port and the reference webhook receiver.

Secrets come from files only (a Kubernetes Secret, a compose volume): the environment and
the command line name the file, never the secret itself, so neither ``ps`` nor ``docker
inspect`` shows it.

- A bearer token file holds one token (surrounding whitespace ignored).
- A basic auth file holds ``user:password`` lines (blank lines and ``#`` comments ignored);
  the password is stored as written, like the ``password_file`` Prometheus and Alertmanager
  read on the sending side: the file is itself the secret (mode 0600, a Secret volume).

Both may be configured at once; a request passes with either. Comparison is constant-time
(``hmac.compare_digest`` over SHA-256 digests, so neither the length nor the first wrong
byte of a guess shows in the answer time), and every configured credential is compared, so
the time does not tell which user names exist.

``python -m streams.httpauth probe URL`` GETs ``URL`` with the worker's own credentials
(``ACCESSWATCH_WEB_BEARER_TOKEN_FILE`` / ``ACCESSWATCH_WEB_BASIC_AUTH_FILE``) and exits 0 on
a 2xx answer: the container health checks and Kubernetes probes use it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_SECRET_FILE = 64 * 1024
REALM = "accesswatch"


class CredentialsError(ValueError):
    """A secret file that cannot be used: one readable line naming the file."""


def _read(path: str | Path, what: str) -> str:
    p = Path(path)
    try:
        if p.stat().st_size > MAX_SECRET_FILE:
            raise CredentialsError(f"{what} {p}: larger than {MAX_SECRET_FILE} bytes")
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise CredentialsError(f"{what} {p}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise CredentialsError(f"{what} {p}: not UTF-8 text") from None
    return text


def _printable(value: str) -> bool:
    return bool(value) and all(0x20 < ord(c) < 0x7F or ord(c) > 0xA0 for c in value)


def read_token(path: str | Path, what: str = "bearer token file") -> str:
    """The token in ``path`` (one token, whitespace around it ignored)."""
    token = _read(path, what).strip()
    if not token:
        raise CredentialsError(f"{what} {path}: empty")
    if not _printable(token):
        raise CredentialsError(f"{what} {path}: the token has spaces or control characters")
    return token


def read_basic_users(path: str | Path, what: str = "basic auth file") -> dict[str, str]:
    """``user -> password`` from ``user:password`` lines."""
    users: dict[str, str] = {}
    for n, raw in enumerate(_read(path, what).splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, password = line.partition(":")
        if not sep or not user or not password:
            raise CredentialsError(f"{what} {path}: line {n} is not user:password")
        if not _printable(user) or any(ord(c) < 0x20 or ord(c) == 0x7F for c in password):
            raise CredentialsError(f"{what} {path}: line {n} has control characters")
        users[user] = password
    if not users:
        raise CredentialsError(f"{what} {path}: no user:password line")
    return users


def read_basic_pair(path: str | Path, what: str = "basic auth file") -> tuple[str, str]:
    """The one ``user:password`` a client sends (the file's first entry)."""
    return next(iter(read_basic_users(path, what).items()))


def _digest(value: str | bytes) -> bytes:
    return hashlib.sha256(value.encode() if isinstance(value, str) else value).digest()


@dataclass(frozen=True)
class Authenticator:
    """Who may read a server's pages; empty (``not auth``) means no authentication."""

    bearer: str | None = field(default=None, repr=False)
    users: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_files(
        cls, bearer_file: str | Path | None = None, basic_file: str | Path | None = None
    ) -> Authenticator:
        return cls(
            bearer=read_token(bearer_file) if bearer_file else None,
            users=read_basic_users(basic_file) if basic_file else {},
        )

    def __bool__(self) -> bool:
        return self.bearer is not None or bool(self.users)

    @property
    def challenges(self) -> list[str]:
        """The ``WWW-Authenticate`` values of a 401 (one per scheme configured)."""
        out = []
        if self.bearer is not None:
            out.append(f'Bearer realm="{REALM}"')
        if self.users:
            out.append(f'Basic realm="{REALM}", charset="UTF-8"')
        return out

    def check(self, authorization: str | None) -> bool:
        """True when no authentication is configured or the header carries a credential."""
        if not self:
            return True
        if not authorization:
            return False
        scheme, _, value = authorization.strip().partition(" ")
        scheme, value = scheme.lower(), value.strip()
        if scheme == "bearer" and self.bearer is not None:
            return hmac.compare_digest(_digest(value), _digest(self.bearer))
        if scheme == "basic" and self.users:
            try:
                decoded = base64.b64decode(value, validate=True).decode("utf-8")
            except (binascii.Error, ValueError):
                return False
            user, sep, password = decoded.partition(":")
            if not sep:
                return False
            wanted = _digest(f"{user}\x00{password}")
            ok = False
            for u, p in self.users.items():  # every entry: the time does not name the user
                ok |= hmac.compare_digest(wanted, _digest(f"{u}\x00{p}"))
            return ok
        return False


def basic_header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


Handler = Callable[[Any], Awaitable[Any]]


def aiohttp_middleware(
    auth: Authenticator, on_refused: Callable[[], None] | None = None,
    open_paths: Collection[str] = (),
) -> Callable[[Any, Handler], Awaitable[Any]]:
    """An aiohttp middleware answering 401 (with ``WWW-Authenticate``) to every request,
    whatever its path, that lacks a valid credential, except a GET or HEAD of exactly one
    of ``open_paths`` (the worker's ``/healthz`` and ``/readyz``, whose bodies are one fixed
    word). Installed through Faust's public ``web_application_options={"middlewares": [...]}``,
    so it guards every page Faust serves, its own views and ours alike."""
    open_paths = frozenset(open_paths)
    from aiohttp import web

    @web.middleware
    async def require_auth(request: Any, handler: Handler) -> Any:
        if request.path in open_paths and request.method in ("GET", "HEAD"):
            return await handler(request)  # health probes: a fixed word, nothing else
        if auth.check(request.headers.get("Authorization")):
            return await handler(request)
        if on_refused is not None:
            on_refused()
        resp = web.Response(status=401, text="401 Unauthorized\n")
        for challenge in auth.challenges:
            resp.headers.add("WWW-Authenticate", challenge)
        return resp

    return require_auth


# ---- the worker's web server under Faust ------------------------------------------------

#: Faust reads these from the environment and lets them override what the app passes
#: (``faust.types.settings.base.SettingsRegistry._init_settings``): a stray ``WEB_BIND`` or
#: ``APP_WEB_TABLES_ENABLED`` would silently widen the bind or turn a view on. The worker
#: hands Faust its environment without them (Faust's public ``env`` setting).
FAUST_WEB_ENV = ("WEB_BIND", "WEB_HOST", "WEB_PORT", "APP_WEB_ENABLED",
                 "APP_WEB_STATS_ENABLED", "APP_WEB_GRAPH_ENABLED", "APP_WEB_ROUTER_ENABLED",
                 "APP_WEB_TABLES_ENABLED", "APP_WEB_METRICS_ENABLED", "APP_ENV_PREFIX")


def faust_web_options(settings: Any, on_refused: Callable[[], None] | None = None
                      ) -> dict[str, Any]:
    """The ``faust.App`` keyword arguments of the worker's web server: bound where the
    settings say, Faust's own views (``/router/``, ``/table/``; ``/graph/``, ``/stats/``,
    ``/performance/``) off unless ``web_faust_views`` (the first two) and every request
    authenticated when credentials are configured. All through Faust's public settings."""
    auth = settings.web_auth()
    env = {k: v for k, v in os.environ.items()
           if k not in FAUST_WEB_ENV and not k.endswith(tuple("_" + n for n in FAUST_WEB_ENV))}
    opts: dict[str, Any] = {
        "env": env,
        "web_enabled": True,
        "web_bind": settings.web_host,
        "web_host": settings.web_host,
        "web_port": settings.web_port,
        "web_in_thread": False,
        "web_router_enabled": bool(settings.web_faust_views),
        "web_tables_enabled": bool(settings.web_faust_views),
        "web_stats_enabled": False,
        "web_graph_enabled": False,
        "web_metrics_enabled": False,
    }
    if auth:
        from streams.health import HEALTH_PATHS

        opts["web_application_options"] = {
            "middlewares": [aiohttp_middleware(auth, on_refused, open_paths=HEALTH_PATHS)]}
    return opts


def env_authenticator(env: dict[str, str] | None = None) -> Authenticator:
    """The worker's web credentials named by its environment (for probes)."""
    env = dict(os.environ) if env is None else env
    return Authenticator.from_files(
        env.get("ACCESSWATCH_WEB_BEARER_TOKEN_FILE", "").strip() or None,
        env.get("ACCESSWATCH_WEB_BASIC_AUTH_FILE", "").strip() or None,
    )


def authorization_for(auth: Authenticator) -> str | None:
    """The ``Authorization`` header a client with these credentials sends."""
    if auth.bearer is not None:
        return f"Bearer {auth.bearer}"
    if auth.users:
        return basic_header(*next(iter(auth.users.items())))
    return None


def probe(url: str, timeout: float = 3.0, env: dict[str, str] | None = None) -> int:
    """GET ``url`` with the worker's own credentials: 0 on 2xx, 1 otherwise (one line)."""
    try:
        header = authorization_for(env_authenticator(env))
    except CredentialsError as exc:
        print(f"probe: {exc}", file=sys.stderr)
        return 1
    req = urllib.request.Request(url, headers={"Authorization": header} if header else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (probe URL)
            resp.read()
    except urllib.error.HTTPError as exc:
        print(f"probe: {url}: HTTP {exc.code}", file=sys.stderr)
        return 1
    except (OSError, urllib.error.URLError) as exc:
        print(f"probe: {url}: {getattr(exc, 'reason', exc)}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] != "probe":
        print("usage: python -m streams.httpauth probe URL", file=sys.stderr)
        return 2
    return probe(args[1])


if __name__ == "__main__":
    sys.exit(main())
