"""Kafka security: TLS and SASL for every Kafka client the project opens.

One ``KafkaSecurity`` (built from the settings: environment variables, secret files and the
non-secret flags) gives the options of each client library, and nothing else builds them:

- ``kafka_python_options()``: kafka-python's ``KafkaProducer`` / ``KafkaConsumer`` /
  ``KafkaAdminClient`` (``produce``, ``topics``, the worker's topic set-up and changelog
  reads, the demo's alert reader);
- ``aiokafka_options()``: aiokafka's clients outside Faust (the worker's identity reader);
- ``faust_credentials()``: Faust's own ``broker_credentials`` (``faust.SSLCredentials``,
  ``SASLCredentials`` or ``OAuthCredentials``), which Faust turns into the same aiokafka
  options for its consumer, producer and topic creation.

The protocols are the libraries' own (TLS from the standard ``ssl`` module, SASL PLAIN,
SCRAM-SHA-256/512 and OAUTHBEARER from kafka-python and aiokafka); this module only decides
their options. Certificates are always verified and host names always checked.

Secrets (the SASL password, the client key's password, the OAUTHBEARER token command) come
from ``ACCESSWATCH_*`` environment variables or from files (``ACCESSWATCH_*_FILE``), never
from flags: a flag shows in ``ps``. The OAUTHBEARER token is read from its file, or printed
by its command, each time a connection authenticates (rotated tokens are picked up).

``check_connection`` is what the commands run first: one connection through the configured
client, and on failure one line saying what is wrong (the broker's certificate is not trusted,
the host name does not match, the password was refused, the listener speaks TLS ...).

>>> sec = KafkaSecurity.from_env({"ACCESSWATCH_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
...                               "ACCESSWATCH_KAFKA_USERNAME": "svc",
...                               "ACCESSWATCH_KAFKA_PASSWORD": "s3cret"})
>>> sec.protocol, sec
('SASL_SSL', KafkaSecurity(protocol='SASL_SSL', mechanism='SCRAM-SHA-512', username='svc'))
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import re
import shlex
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "MECHANISMS",
    "PROTOCOLS",
    "KafkaSecurity",
    "KafkaSecurityError",
    "RedactSecrets",
    "TokenSource",
    "add_arguments",
    "check_connection",
    "from_env",
]

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")

#: seconds a token command may run
TOKEN_COMMAND_TIMEOUT = 30.0


class KafkaSecurityError(ValueError):
    """A Kafka security setting that cannot work, or a broker that refused it: one line."""


# ------------------------------------------------------------------------ secrets


def read_secret(env: Mapping[str, str], var: str) -> str:
    """``$VAR``, or the contents of the file named by ``$VAR_FILE`` (one trailing newline
    dropped); "" when neither is set. The error names the variable and the path, never the
    value."""
    value = env.get(var, "")
    path = env.get(f"{var}_FILE", "").strip()
    if value and path:
        raise KafkaSecurityError(f"set {var} or {var}_FILE, not both")
    if not path:
        return value
    return _read_file(path, f"{var}_FILE")


def _read_file(path: str, what: str) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        why = (e.strerror or type(e).__name__) if isinstance(e, OSError) else "not UTF-8 text"
        raise KafkaSecurityError(f"{what} {path}: {why}") from None
    return text[:-1] if text.endswith("\n") else text


class TokenSource:
    """The OAUTHBEARER token: the contents of a file, or what a command prints, read anew
    each time a connection authenticates. The command is split like a shell would
    (``shlex``), run without a shell, and its output is never logged."""

    def __init__(self, file: str = "", command: str = "") -> None:
        self.file = file
        self.command = command

    def __repr__(self) -> str:
        return f"TokenSource(file={self.file!r}, command={'***' if self.command else ''!r})"

    def token(self) -> str:
        if self.file:
            token = _read_file(self.file, "ACCESSWATCH_KAFKA_OAUTH_TOKEN_FILE").strip()
            if not token:
                raise KafkaSecurityError(f"ACCESSWATCH_KAFKA_OAUTH_TOKEN_FILE {self.file}: empty")
            return token
        argv = shlex.split(self.command)
        try:
            done = subprocess.run(argv, capture_output=True, text=True, check=False,
                                  timeout=TOKEN_COMMAND_TIMEOUT, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as e:
            why = "timed out" if isinstance(e, subprocess.TimeoutExpired) else e.strerror
            raise KafkaSecurityError(f"the OAUTHBEARER token command {argv[0]!r}: {why}") from None
        token = done.stdout.strip()
        if done.returncode != 0 or not token:
            raise KafkaSecurityError(
                f"the OAUTHBEARER token command {argv[0]!r} exited {done.returncode}"
                + ("" if token else " and printed no token"))
        return token


def _kafka_python_provider(source: TokenSource) -> Any:
    from kafka.net.sasl.oauth import AbstractTokenProvider

    class Provider(AbstractTokenProvider):
        def token(self) -> str:
            return source.token()

    return Provider()


def _aiokafka_provider(source: TokenSource) -> Any:
    from aiokafka.abc import AbstractTokenProvider

    class Provider(AbstractTokenProvider):
        async def token(self) -> str:
            return await asyncio.to_thread(source.token)  # a file read or a command: off-loop

    return Provider()


# ------------------------------------------------------------------------ settings


@dataclass(frozen=True)
class KafkaSecurity:
    """How to reach Kafka: the security protocol, TLS files, the SASL mechanism and secrets."""

    protocol: str = "PLAINTEXT"
    ca_file: str = field(default="", repr=False)
    cert_file: str = field(default="", repr=False)
    key_file: str = field(default="", repr=False)
    key_password: str = field(default="", repr=False)
    mechanism: str = ""
    username: str = ""
    password: str = field(default="", repr=False)
    oauth_token_file: str = field(default="", repr=False)
    oauth_token_command: str = field(default="", repr=False)

    def __repr__(self) -> str:  # only what is set, never a secret
        shown = [f"protocol={self.protocol!r}"]
        if self.mechanism:
            shown.append(f"mechanism={self.mechanism!r}")
        if self.username:
            shown.append(f"username={self.username!r}")
        return f"KafkaSecurity({', '.join(shown)})"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None,
                 args: argparse.Namespace | None = None) -> KafkaSecurity:
        """From the environment, with the flags in ``args`` laid over it."""
        return from_env(env, args)

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    def secrets(self) -> tuple[str, ...]:
        """The secret values in force (for ``RedactSecrets``)."""
        return tuple(s for s in (self.password, self.key_password) if s)

    @classmethod
    def build(cls, *, protocol: str = "", ca_file: str = "", cert_file: str = "",
              key_file: str = "", key_password: str = "", mechanism: str = "",
              username: str = "", password: str = "", oauth_token_file: str = "",
              oauth_token_command: str = "") -> KafkaSecurity:
        """Check the combination and infer the protocol when it is not given: SASL_SSL with a
        mechanism (SASL is never sent in the clear unless asked for), SSL with a CA or a
        client certificate, else PLAINTEXT."""
        protocol = protocol.strip().upper().replace("-", "_")
        mechanism = mechanism.strip().upper()
        if not protocol:
            protocol = ("SASL_SSL" if mechanism else
                        "SSL" if (ca_file or cert_file or key_file) else "PLAINTEXT")
        sec = cls(protocol, ca_file, cert_file, key_file, key_password, mechanism, username,
                  password, oauth_token_file, oauth_token_command)
        sec.validate()
        return sec

    def validate(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise KafkaSecurityError(f"Kafka security protocol must be one of "
                                     f"{', '.join(PROTOCOLS)}, not {self.protocol!r}")
        if self.sasl:
            if self.mechanism not in MECHANISMS:
                raise KafkaSecurityError(
                    f"security protocol {self.protocol} needs ACCESSWATCH_KAFKA_SASL_MECHANISM, "
                    f"one of {', '.join(MECHANISMS)}" + (f", not {self.mechanism!r}"
                                                         if self.mechanism else ""))
            if self.mechanism == "OAUTHBEARER":
                if bool(self.oauth_token_file) == bool(self.oauth_token_command):
                    raise KafkaSecurityError(
                        "SASL OAUTHBEARER needs exactly one of ACCESSWATCH_KAFKA_OAUTH_TOKEN_FILE "
                        "and ACCESSWATCH_KAFKA_OAUTH_TOKEN_COMMAND")
                if self.oauth_token_command and not shlex.split(self.oauth_token_command):
                    raise KafkaSecurityError("ACCESSWATCH_KAFKA_OAUTH_TOKEN_COMMAND is empty")
            elif not self.username or not self.password:
                raise KafkaSecurityError(
                    f"SASL {self.mechanism} needs ACCESSWATCH_KAFKA_USERNAME and "
                    "ACCESSWATCH_KAFKA_PASSWORD (or ACCESSWATCH_KAFKA_PASSWORD_FILE)")
        elif self.mechanism:
            raise KafkaSecurityError(
                f"a SASL mechanism ({self.mechanism}) needs security protocol SASL_SSL "
                f"(or SASL_PLAINTEXT), not {self.protocol}")
        if not self.tls and (self.ca_file or self.cert_file or self.key_file):
            raise KafkaSecurityError(
                f"TLS files are set but the security protocol is {self.protocol}: use SSL or "
                "SASL_SSL")
        if self.key_file and not self.cert_file:
            raise KafkaSecurityError("ACCESSWATCH_KAFKA_KEY_FILE needs "
                                     "ACCESSWATCH_KAFKA_CERT_FILE (the client certificate)")
        if self.tls:
            self.ssl_context()  # the files exist and parse: fail now, in one line

    # ---- what the client libraries take ----------------------------------------------
    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context every client uses: the system's CAs or ``ca_file``, certificates
        verified and host names checked (``ssl.create_default_context``), TLS 1.2 or newer,
        and the client certificate for mutual TLS."""
        if not self.tls:
            return None
        try:
            ctx = ssl.create_default_context(cafile=self.ca_file or None)
        except (OSError, ssl.SSLError) as e:
            raise KafkaSecurityError(
                f"ACCESSWATCH_KAFKA_CA_FILE {self.ca_file}: {_ssl_reason(e)}") from None
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.cert_file:
            try:
                ctx.load_cert_chain(self.cert_file, self.key_file or None,
                                    password=self.key_password or None)
            except (OSError, ssl.SSLError) as e:
                raise KafkaSecurityError(
                    f"client certificate {self.cert_file} / key {self.key_file or '(same file)'}"
                    f": {_ssl_reason(e)}") from None
        return ctx

    def token_source(self) -> TokenSource:
        return TokenSource(self.oauth_token_file, self.oauth_token_command)

    def kafka_python_options(self) -> dict[str, Any]:
        """Keyword arguments for kafka-python's producer, consumer and admin client."""
        return self._client_options(_kafka_python_provider)

    def aiokafka_options(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's clients (the same option names; only the OAuth
        token provider's class differs)."""
        return self._client_options(_aiokafka_provider)

    def _client_options(self, provider: Callable[[TokenSource], Any]) -> dict[str, Any]:
        opts: dict[str, Any] = {"security_protocol": self.protocol}
        if self.tls:
            opts["ssl_context"] = self.ssl_context()
        if self.sasl:
            opts["sasl_mechanism"] = self.mechanism
            if self.mechanism == "OAUTHBEARER":
                opts["sasl_oauth_token_provider"] = provider(self.token_source())
            else:
                opts["sasl_plain_username"] = self.username
                opts["sasl_plain_password"] = self.password
        return opts

    def faust_credentials(self) -> Any:
        """Faust's ``broker_credentials`` (None: plaintext)."""
        import faust

        ctx = self.ssl_context()
        if not self.sasl:
            return faust.SSLCredentials(ctx) if ctx is not None else None
        if self.mechanism == "OAUTHBEARER":
            return faust.OAuthCredentials(oauth_cb=_aiokafka_provider(self.token_source()),
                                          ssl_context=ctx)
        return faust.SASLCredentials(username=self.username, password=self.password,
                                     ssl_context=ctx, mechanism=self.mechanism)


# ------------------------------------------------------------------------ environment

ENV = {  # field -> environment variable (the secrets also take VAR_FILE)
    "protocol": "ACCESSWATCH_KAFKA_SECURITY_PROTOCOL",
    "ca_file": "ACCESSWATCH_KAFKA_CA_FILE",
    "cert_file": "ACCESSWATCH_KAFKA_CERT_FILE",
    "key_file": "ACCESSWATCH_KAFKA_KEY_FILE",
    "key_password": "ACCESSWATCH_KAFKA_KEY_PASSWORD",
    "mechanism": "ACCESSWATCH_KAFKA_SASL_MECHANISM",
    "username": "ACCESSWATCH_KAFKA_USERNAME",
    "password": "ACCESSWATCH_KAFKA_PASSWORD",
    "oauth_token_file": "ACCESSWATCH_KAFKA_OAUTH_TOKEN_FILE",
    "oauth_token_command": "ACCESSWATCH_KAFKA_OAUTH_TOKEN_COMMAND",
}
#: read with ``read_secret`` (VAR or VAR_FILE)
SECRET_FIELDS = ("key_password", "username", "password")
#: field -> the ``Settings`` field (and flag ``dest``) holding it
SETTINGS_FIELDS = {name: f"kafka_{name}" for name in ENV}
SETTINGS_FIELDS.update(protocol="kafka_security_protocol", mechanism="kafka_sasl_mechanism")
#: the flags (file paths and names only: no secret is ever a flag)
FLAGS = {
    "protocol": "--kafka-security-protocol",
    "ca_file": "--kafka-ca-file",
    "cert_file": "--kafka-cert-file",
    "key_file": "--kafka-key-file",
    "mechanism": "--kafka-sasl-mechanism",
    "username": "--kafka-username",
    "oauth_token_file": "--kafka-oauth-token-file",
}


def env_values(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The Kafka security fields set in ``env`` (secrets read from their files)."""
    env = os.environ if env is None else env
    out: dict[str, str] = {}
    for name, var in ENV.items():
        value = read_secret(env, var) if name in SECRET_FIELDS else env.get(var, "")
        if name not in ("password", "key_password"):
            value = value.strip()
        if value:
            out[name] = value
    return out


def from_env(env: Mapping[str, str] | None = None,
             args: argparse.Namespace | None = None) -> KafkaSecurity:
    """``KafkaSecurity`` from the environment, with the flags in ``args`` laid over it."""
    values = env_values(env)
    if args is not None:
        for name in FLAGS:
            v = getattr(args, SETTINGS_FIELDS[name], None)
            if v:
                values[name] = v
    return KafkaSecurity.build(**values)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The Kafka security flags (file paths and names; secrets only from the environment)."""
    g = p.add_argument_group("Kafka security (secrets: environment variables or files only)")
    g.add_argument("--kafka-security-protocol", dest="kafka_security_protocol",
                   choices=PROTOCOLS, help="($ACCESSWATCH_KAFKA_SECURITY_PROTOCOL; default: "
                   "SASL_SSL with a SASL mechanism, SSL with a CA or client certificate, else "
                   "PLAINTEXT)")
    g.add_argument("--kafka-ca-file", dest="kafka_ca_file", metavar="FILE",
                   help="PEM CAs that sign the brokers' certificates ($ACCESSWATCH_KAFKA_CA_FILE; "
                   "default: the system's)")
    g.add_argument("--kafka-cert-file", dest="kafka_cert_file", metavar="FILE",
                   help="client certificate, PEM, for mutual TLS ($ACCESSWATCH_KAFKA_CERT_FILE)")
    g.add_argument("--kafka-key-file", dest="kafka_key_file", metavar="FILE",
                   help="its private key, PEM ($ACCESSWATCH_KAFKA_KEY_FILE; password: "
                   "$ACCESSWATCH_KAFKA_KEY_PASSWORD[_FILE])")
    g.add_argument("--kafka-sasl-mechanism", dest="kafka_sasl_mechanism", choices=MECHANISMS,
                   help="($ACCESSWATCH_KAFKA_SASL_MECHANISM; password: "
                   "$ACCESSWATCH_KAFKA_PASSWORD[_FILE])")
    g.add_argument("--kafka-username", dest="kafka_username", metavar="NAME",
                   help="SASL user name ($ACCESSWATCH_KAFKA_USERNAME[_FILE])")
    g.add_argument("--kafka-oauth-token-file", dest="kafka_oauth_token_file", metavar="FILE",
                   help="OAUTHBEARER token, read at each authentication "
                   "($ACCESSWATCH_KAFKA_OAUTH_TOKEN_FILE; or a command printing it: "
                   "$ACCESSWATCH_KAFKA_OAUTH_TOKEN_COMMAND)")


def or_env(sec: KafkaSecurity | None) -> KafkaSecurity:
    """``sec``, or the environment's when None (library callers that pass nothing)."""
    return sec if sec is not None else from_env()


# ------------------------------------------------------------------------ logs


class RedactSecrets(logging.Filter):
    """Replaces the secrets in force by ``***`` in every record a handler emits. kafka-python
    logs its whole configuration at debug level (``Starting KafkaAdminClient with
    configuration: {...}``), SASL password included; this keeps it out of the worker's log."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is logging's business
            return True
        if any(s in text for s in self.secrets):
            for s in self.secrets:
                text = text.replace(s, "***")
            record.msg, record.args = text, None
        return True


def redact_logs(sec: KafkaSecurity) -> None:
    """Install ``RedactSecrets`` on every handler of the root logger."""
    secrets = sec.secrets()
    if not secrets:
        return
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactSecrets(secrets))


# ------------------------------------------------------------------------ the check


def _ssl_reason(e: BaseException) -> str:
    if isinstance(e, ssl.SSLCertVerificationError):
        return str(e.verify_message or e.reason or e)
    if isinstance(e, ssl.SSLError):
        text = re.sub(r"^\[\w+\] |\s*\(_ssl\.c:\d+\)$", "", str(e.reason or e.strerror or e))
        if text in ("PEM lib", "PEM_LIB"):
            return "not PEM, or a key whose password is wrong or missing"
        if text == "KEY_VALUES_MISMATCH":
            return "the key does not belong to the certificate"
        return text.replace("_", " ").lower()
    if isinstance(e, OSError):
        return e.strerror or type(e).__name__
    return str(e)


def _split(server: str) -> tuple[str, int]:
    host, _, port = server.rpartition(":")
    return host.strip("[]"), int(port)


def _tls_handshake(server: str, ctx: ssl.SSLContext, timeout: float) -> None:
    host, port = _split(server)
    with socket.create_connection((host, port), timeout=timeout) as raw, \
            ctx.wrap_socket(raw, server_hostname=host):
        pass


def _speaks_tls(server: str, timeout: float = 2.0) -> bool:
    """Whether the listener at ``server`` answers a TLS handshake (no verification: this only
    tells a TLS listener from a plaintext one)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        _tls_handshake(server, ctx, timeout)
    except (OSError, ValueError):
        return False
    return True


class _Capture(logging.Handler):
    """The exceptions a client library logs (aiokafka's bootstrap says only "Unable to
    bootstrap from ..." when it fails; the reason, e.g. ``SaslAuthenticationFailed``, is in
    the record it logs first, ``Unable connect to "HOST:PORT": %s``, as the argument)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.errors: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        self.errors.extend(a for a in args if isinstance(a, BaseException))
        # aiokafka 0.14 takes an OAUTHBEARER refusal (``{"status": "invalid_token"}`` in the
        # SaslAuthenticate response, error code 0) for success; the broker then answers every
        # request with empty metadata. The response is in aiokafka's debug record of it.
        for a in args:
            raw = getattr(a, "sasl_auth_bytes", None)
            if isinstance(raw, bytes) and raw.startswith(b"{"):
                with contextlib.suppress(ValueError):
                    status = json.loads(raw).get("status")
                    if status:
                        self.errors.append(TokenRefused(str(status)))


class TokenRefused(Exception):
    """The broker refused an OAUTHBEARER token (its ``status``)."""


async def _bootstrap_once(servers: list[str], sec: KafkaSecurity, timeout: float,
                          errors: list[BaseException]) -> None:
    from aiokafka.client import AIOKafkaClient

    client = AIOKafkaClient(bootstrap_servers=servers, client_id="accesswatch-check",
                            request_timeout_ms=int(timeout * 1000), **sec.aiokafka_options())
    # errors of aiokafka's reader tasks (a TLS alert after the handshake: a refused client
    # certificate) go to the capture, not to the console as "exception was never retrieved"
    asyncio.get_running_loop().set_exception_handler(
        lambda loop, context: errors.append(context.get("exception") or
                                            RuntimeError(str(context.get("message")))))
    try:
        await asyncio.wait_for(client.bootstrap(), timeout)
        if not client.cluster.brokers():  # see _Capture: a refused token looks like this
            raise RuntimeError("the broker's metadata lists no brokers")
    finally:
        await client.close()


def _attempt(servers: list[str], sec: KafkaSecurity, timeout: float
             ) -> tuple[BaseException | None, list[BaseException]]:
    """One aiokafka bootstrap (the library of the worker's own clients) in a thread with its
    own event loop (the caller may be inside one); its failure and the errors it logged,
    kept off the console."""
    logger = logging.getLogger("aiokafka")
    cap = _Capture()
    saved = logger.propagate
    result: list[BaseException | None] = [None]

    def run() -> None:
        try:
            asyncio.run(_bootstrap_once(servers, sec, timeout, cap.errors))
        except Exception as e:  # noqa: BLE001 - the caller explains it
            result[0] = e

    logger.addHandler(cap)
    logger.propagate = False
    level = logger.level
    logger.setLevel(logging.DEBUG)  # aiokafka logs the SASL responses at debug level
    try:
        t = threading.Thread(target=run, name="accesswatch-kafka-check", daemon=True)
        t.start()
        t.join(timeout + 5)
    finally:
        logger.removeHandler(cap)
        logger.propagate = saved
        logger.setLevel(level)
    if t.is_alive():
        return TimeoutError(f"no answer in {timeout:.0f}s"), cap.errors
    return result[0], cap.errors


def check_connection(servers: list[str], sec: KafkaSecurity, timeout: float = 10.0) -> None:
    """Connect and authenticate as the configured clients will; ``KafkaSecurityError`` with one
    line saying what failed, within about ``timeout`` seconds: an untrusted certificate or a
    host name that does not match (told by a TLS handshake of the standard ``ssl`` module),
    a refused password or token, a TLS listener for a plaintext client. Other failures are
    retried until the timeout (a broker still starting). The caller has checked that some
    server accepts TCP connections (``streams.broker.check_reachable``)."""
    from aiokafka.errors import SaslAuthenticationFailed, UnsupportedSaslMechanismError

    refused = (SaslAuthenticationFailed, UnsupportedSaslMechanismError)
    where = ",".join(servers)
    if sec.tls:
        ctx = sec.ssl_context()
        assert ctx is not None
        try:
            _tls_handshake(servers[0], ctx, min(timeout, 5.0))
        except ssl.SSLCertVerificationError as e:
            reason = _ssl_reason(e)
            hint = ("use a broker address that the certificate names" if "mismatch" in reason
                    else f"the CA file {sec.ca_file} did not sign it" if sec.ca_file
                    else "set ACCESSWATCH_KAFKA_CA_FILE to the CA that signed it")
            raise KafkaSecurityError(f"TLS to {servers[0]}: the broker's certificate was "
                                     f"refused ({reason.rstrip('.')}); {hint}") from None
        except (ssl.SSLError, OSError) as e:
            raise KafkaSecurityError(
                f"TLS to {servers[0]} failed ({_ssl_reason(e)}): is this a TLS listener "
                f"(security protocol {sec.protocol})?") from None
    started = time.monotonic()
    deadline = started + timeout
    last: BaseException | None = None
    while True:
        failure, errors = _attempt(servers, sec, max(1.0, deadline - time.monotonic()))
        if failure is None:
            return
        auth = next((e for e in errors if isinstance(e, (*refused, TokenRefused))), None)
        if auth is not None:
            raise KafkaSecurityError(
                f"SASL {sec.mechanism} authentication to {where} failed ({_one_line(auth)}): "
                + ("check the token (ACCESSWATCH_KAFKA_OAUTH_TOKEN_FILE or _COMMAND)"
                   if sec.mechanism == "OAUTHBEARER" else
                   "check ACCESSWATCH_KAFKA_USERNAME and ACCESSWATCH_KAFKA_PASSWORD"))
        if not sec.tls and _speaks_tls(servers[0]):
            raise KafkaSecurityError(
                f"the broker at {servers[0]} speaks TLS but the security protocol is "
                f"{sec.protocol}: set ACCESSWATCH_KAFKA_SECURITY_PROTOCOL=SSL or SASL_SSL "
                "(and the SASL settings)")
        last = errors[-1] if errors else failure
        if time.monotonic() + 0.5 >= deadline:
            break
        time.sleep(0.5)
    hint = ("; a listener that requires client certificates needs ACCESSWATCH_KAFKA_CERT_FILE"
            if sec.tls and not sec.cert_file else "")
    raise KafkaSecurityError(
        f"no Kafka answer from {where} over {sec.protocol} within "
        f"{time.monotonic() - started:.0f}s ({_one_line(last)}): check the broker address "
        f"and the ACCESSWATCH_KAFKA_* security settings{hint}")


def _one_line(e: BaseException) -> str:
    """``Name: message`` on one line, without the repeated class names kafka-python adds."""
    text = " ".join(str(e).split())
    text = re.sub(r"^(\[Error -?\d+\] )?(\w+: )*", "", text)
    return f"{type(e).__name__}: {text}"
