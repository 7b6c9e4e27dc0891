"""Kafka security (issue 16, item 1) on a real Apache Kafka with TLS and SASL listeners.

One Apache Kafka 4.x node (the Maven-fetched KRaft broker of ``tests/kafka_fixtures.py``,
started by its ``deploy/kafka/apache-kafka.sh``) with four client listeners:

- ``PLAINTEXT`` (loopback, for the broker's own tools and nothing of ours),
- ``SASL_SSL``: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER (Kafka's unsecured JWS
  validator: it checks the token's claims, not a signature; enough to show the client sends
  the token it read),
- ``SSL`` with ``ssl.client.auth=required`` (mutual TLS).

The CA, the broker's and a client's certificates are made here with ``openssl``; SCRAM
credentials with Kafka's own ``kafka-storage format --add-scram``. Secrets reach our commands
only through environment variables or files. Run:
``.venv/bin/pytest -m kafka tests/test_kafka_security.py`` (about 3 minutes on a loaded
2-core machine, the broker's start included).

The tests without the ``kafka`` marker (the fast tier) check the option builder itself: each
mechanism's options for kafka-python, aiokafka and Faust, secrets from variables and files,
one-line errors, no secret in a flag, a log line or a repr, host name verification.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.kafka_fixtures import (
        KAFKA_VERSION,
        ApacheKafka,
        KafkaUnavailable,
        ensure_fetched,
        free_port_block,
        unavailable,
    )

REPO = Path(__file__).resolve().parents[1]
LOG4J = REPO / "deploy" / "kafka" / "log4j2.properties"

# Test credentials (the broker's, made here): never real secrets.
SCRAM256 = ("alice", "alice-Secret-256")
SCRAM512 = ("bob", "bob-Secret-512")
PLAIN = ("carol", "carol-Secret-plain")


# ------------------------------------------------------------------ certificates


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@dataclass(frozen=True)
class Pki:
    """PEM files: a CA, a broker certificate for localhost / 127.0.0.1 signed by it, a
    client certificate signed by it, and a second CA that signed nothing here."""

    dir: Path

    @property
    def ca(self) -> Path:
        return self.dir / "ca.pem"

    @property
    def other_ca(self) -> Path:
        return self.dir / "other-ca.pem"

    @property
    def broker_keystore(self) -> Path:  # key + certificate, Kafka's PEM keystore
        return self.dir / "broker-keystore.pem"

    @property
    def client_cert(self) -> Path:
        return self.dir / "client.crt"

    @property
    def client_key(self) -> Path:
        return self.dir / "client.key"


def _make_ca(d: Path, name: str) -> None:
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
             "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN={name}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)


def _sign(d: Path, name: str, cn: str, ext: str) -> None:
    (d / f"{name}.ext").write_text(
        f"{ext}\nauthorityKeyIdentifier=keyid,issuer\nsubjectKeyIdentifier=hash\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
             f"{name}.csr", "-subj", f"/CN={cn}", cwd=d)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext",
             cwd=d)


def make_pki(d: Path, host_names: str = "DNS:localhost,IP:127.0.0.1") -> Pki:
    """A CA, a broker certificate for ``host_names``, a client certificate, a foreign CA."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    d.mkdir(parents=True, exist_ok=True)
    _make_ca(d, "ca")
    _make_ca(d, "other-ca")
    _sign(d, "broker", "localhost", f"subjectAltName={host_names}\n"
          "extendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment")
    _sign(d, "client", "accesswatch-client",
          "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment")
    pki = Pki(d)
    pki.broker_keystore.write_text((d / "broker.key").read_text() + (d / "broker.crt").read_text())
    return pki


# ------------------------------------------------------------------ the broker


def unsecured_jwt(subject: str, lifetime_s: float = 3600.0) -> str:
    """An unsigned JWS (``alg: none``), what Kafka's default OAUTHBEARER validator accepts."""

    def part(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    now = time.time()
    return f"{part({'alg': 'none'})}.{part({'sub': subject, 'iat': now, 'exp': now + lifetime_s})}."


class SecureKafka(ApacheKafka):
    """One Apache Kafka node with PLAINTEXT, SASL_SSL and SSL (client certificates) listeners.

    ``server.properties`` and the formatted storage (with the SCRAM users) are written here
    before ``apache-kafka.sh start``, which reuses a node directory it finds set up."""

    def __init__(self, data_dir: Path, port: int, pki: Pki) -> None:
        super().__init__(data_dir, port)
        self.pki = pki
        self.controller_port, self.sasl_port, self.ssl_port = port + 1, port + 2, port + 3
        self.env["KAFKA_CONTROLLER_PORT"] = str(self.controller_port)

    @property
    def sasl_url(self) -> str:
        return f"kafka://127.0.0.1:{self.sasl_port}"

    @property
    def ssl_url(self) -> str:
        return f"kafka://localhost:{self.ssl_port}"

    @property
    def plaintext_url(self) -> str:
        return f"kafka://127.0.0.1:{self.port}"

    def configure(self) -> None:
        node = self.node_dir(1)
        (node / "logs").mkdir(parents=True, exist_ok=True)
        p, c, s, t = self.port, self.controller_port, self.sasl_port, self.ssl_port
        plain_users = f'user_{PLAIN[0]}="{PLAIN[1]}"'
        scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        props = f"""\
process.roles=broker,controller
node.id=1
listeners=SASL_SSL://127.0.0.1:{s},SSL://127.0.0.1:{t},CONTROLLER://127.0.0.1:{c},PLAINTEXT://127.0.0.1:{p}
advertised.listeners=SASL_SSL://127.0.0.1:{s},SSL://localhost:{t},PLAINTEXT://127.0.0.1:{p}
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
controller.quorum.bootstrap.servers=127.0.0.1:{c}
log.dirs={node / "kraft"}
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
num.partitions=1
num.network.threads=2
num.io.threads=4
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
ssl.keystore.type=PEM
ssl.keystore.location={self.pki.broker_keystore}
ssl.truststore.type=PEM
ssl.truststore.location={self.pki.ca}
listener.name.ssl.ssl.client.auth=required
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required {plain_users};
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config={scram}
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={scram}
listener.name.sasl_ssl.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="broker";
"""
        (node / "server.properties").write_text(props)
        (self.data_dir / "layout").write_text("mode=single\nnodes=1\n")
        cluster_id = base64.urlsafe_b64encode(b"accesswatch-tls!").rstrip(b"=").decode()
        (self.data_dir / "cluster.id").write_text(cluster_id + "\n")
        cache = Path(os.environ.get("ACCESSWATCH_CACHE") or Path.home() / ".cache/accesswatch")
        lib = cache / f"kafka-{KAFKA_VERSION}" / "lib"
        # Kafka's own tool writes the SCRAM credentials into the first metadata snapshot.
        out = subprocess.run(
            [os.environ.get("JAVA", "java"), "-Xmx256m", "-XX:+UseSerialGC",
             "-XX:TieredStopAtLevel=1", "-cp", f"{lib}/*", f"-Dkafka.logs.dir={node / 'logs'}",
             f"-Dlog4j2.configurationFile={LOG4J}", "kafka.tools.StorageTool", "format",
             "--standalone", "-t", cluster_id, "-c", str(node / "server.properties"),
             "--add-scram", f"SCRAM-SHA-256=[name={SCRAM256[0]},password={SCRAM256[1]}]",
             "--add-scram", f"SCRAM-SHA-512=[name={SCRAM512[0]},password={SCRAM512[1]}]"],
            capture_output=True, text=True, timeout=120, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"kafka-storage format failed:\n{out.stdout}{out.stderr}")


def start_secure_kafka(data_dir: Path) -> SecureKafka:
    kafka = SecureKafka(data_dir / "kafka", free_port_block(4), make_pki(data_dir / "pki"))
    kafka.configure()
    kafka.start()
    return kafka


# ------------------------------------------------------------------ fast tier: the builder


def _env(**kw: str) -> dict[str, str]:
    return {f"ACCESSWATCH_KAFKA_{k.upper()}": v for k, v in kw.items()}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_options_for_each_library(mechanism: str, pki: Pki) -> None:
    """One mechanism, one set of options: kafka-python's, aiokafka's and Faust's credentials
    (turned into aiokafka's options by Faust itself) agree, over verified TLS."""
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    from streams.kafka_security import KafkaSecurity

    sec = KafkaSecurity.from_env(_env(sasl_mechanism=mechanism, username="svc",
                                      password="pw-1234567890", ca_file=str(pki.ca)))
    assert sec.protocol == "SASL_SSL"  # a mechanism alone never means plaintext
    for opts in (sec.kafka_python_options(), sec.aiokafka_options(),
                 credentials_to_aiokafka_auth(sec.faust_credentials())):
        assert opts["security_protocol"] == "SASL_SSL"
        assert opts["sasl_mechanism"] == mechanism
        assert (opts["sasl_plain_username"], opts["sasl_plain_password"]) == ("svc",
                                                                              "pw-1234567890")
        ctx = opts["ssl_context"]
        assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
        assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_tls_with_client_certificate(pki: Pki) -> None:
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    from streams.kafka_security import KafkaSecurity

    sec = KafkaSecurity.from_env(_env(ca_file=str(pki.ca), cert_file=str(pki.client_cert),
                                      key_file=str(pki.client_key)))
    assert sec.protocol == "SSL"
    faust_opts = credentials_to_aiokafka_auth(sec.faust_credentials())
    assert faust_opts["security_protocol"] == "SSL"
    assert "sasl_mechanism" not in sec.kafka_python_options()
    plain = KafkaSecurity.from_env({})
    assert plain.protocol == "PLAINTEXT" and plain.faust_credentials() is None
    assert plain.kafka_python_options() == {"security_protocol": "PLAINTEXT"}


def test_oauthbearer_token_file_is_read_at_each_authentication(tmp_path: Path) -> None:
    from aiokafka.abc import AbstractTokenProvider as AioProvider
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
    from kafka.net.sasl.oauth import AbstractTokenProvider

    from streams.kafka_security import KafkaSecurity

    token = tmp_path / "token"
    token.write_text("first-token\n")
    sec = KafkaSecurity.from_env(_env(sasl_mechanism="OAUTHBEARER",
                                      oauth_token_file=str(token)))
    kp = sec.kafka_python_options()["sasl_oauth_token_provider"]
    aio = sec.aiokafka_options()["sasl_oauth_token_provider"]
    faust_cb = credentials_to_aiokafka_auth(sec.faust_credentials())["sasl_oauth_token_provider"]
    assert isinstance(kp, AbstractTokenProvider) and isinstance(aio, AioProvider)
    assert isinstance(faust_cb, AioProvider)
    assert kp.token() == "first-token"
    token.write_text("rotated-token")
    assert kp.token() == "rotated-token"
    assert asyncio.run(aio.token()) == "rotated-token"


def test_oauthbearer_token_command(tmp_path: Path) -> None:
    from streams.kafka_security import KafkaSecurity, KafkaSecurityError

    cmd = f"{sys.executable} -c \"print('cmd-token')\""
    sec = KafkaSecurity.from_env(_env(sasl_mechanism="OAUTHBEARER", oauth_token_command=cmd))
    assert sec.kafka_python_options()["sasl_oauth_token_provider"].token() == "cmd-token"
    failing = f"{sys.executable} -c \"print('half-a-token'); raise SystemExit(3)\""
    bad = KafkaSecurity.from_env(_env(sasl_mechanism="OAUTHBEARER", oauth_token_command=failing))
    with pytest.raises(KafkaSecurityError) as e:
        bad.kafka_python_options()["sasl_oauth_token_provider"].token()
    assert "exited 3" in str(e.value) and "half-a-token" not in str(e.value)
    assert "\n" not in str(e.value)


def test_secrets_from_environment_or_files(tmp_path: Path) -> None:
    from streams.kafka_security import KafkaSecurity, KafkaSecurityError

    pw = tmp_path / "pw"
    pw.write_text("from-a-file\n")
    base = _env(sasl_mechanism="SCRAM-SHA-512", username="svc")
    by_file = KafkaSecurity.from_env({**base, "ACCESSWATCH_KAFKA_PASSWORD_FILE": str(pw)})
    assert by_file.password == "from-a-file"  # one trailing newline dropped
    by_env = KafkaSecurity.from_env({**base, "ACCESSWATCH_KAFKA_PASSWORD": "from-env"})
    assert by_env.password == "from-env"
    with pytest.raises(KafkaSecurityError, match="not both"):
        KafkaSecurity.from_env({**base, "ACCESSWATCH_KAFKA_PASSWORD": "x",
                                "ACCESSWATCH_KAFKA_PASSWORD_FILE": str(pw)})


@pytest.mark.parametrize("env, message", [
    (_env(sasl_mechanism="PLAIN", username="svc"), "needs ACCESSWATCH_KAFKA_USERNAME and"),
    (_env(security_protocol="PLAINTEXT", sasl_mechanism="PLAIN", username="u", password="p"),
     "needs security protocol SASL_SSL"),
    (_env(sasl_mechanism="OAUTHBEARER"), "exactly one of"),
    (_env(security_protocol="TLS"), "must be one of"),
    (_env(sasl_mechanism="GSSAPI", username="u", password="p"), "one of PLAIN"),
    (_env(ca_file="/nonexistent/ca.pem"), "ACCESSWATCH_KAFKA_CA_FILE /nonexistent/ca.pem"),
    (_env(key_file="/x/key.pem", ca_file=""), "needs ACCESSWATCH_KAFKA_CERT_FILE"),
])
def test_settings_that_cannot_work_are_one_line(env: dict[str, str], message: str) -> None:
    from streams.kafka_security import KafkaSecurity, KafkaSecurityError

    with pytest.raises(KafkaSecurityError) as e:
        KafkaSecurity.from_env(env)
    assert message in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("command", [
    ["produce", "--broker", "kafka://127.0.0.1:9", "FILE"],
    ["topics", "list", "--broker", "kafka://127.0.0.1:9"],
    ["worker", "--broker", "kafka://127.0.0.1:9"],
])
def test_a_missing_secret_file_is_one_readable_line(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    from streams.cli import main

    events = tmp_path / "events.jsonl"
    events.write_text("{}\n")
    argv = [str(events) if a == "FILE" else a for a in command]
    missing = tmp_path / "no-such-password"
    monkeypatch.setenv("ACCESSWATCH_KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("ACCESSWATCH_KAFKA_USERNAME", "svc")
    monkeypatch.setenv("ACCESSWATCH_KAFKA_PASSWORD_FILE", str(missing))
    monkeypatch.setenv("ACCESSWATCH_STATE_KEY", "k" * 32)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"accesswatch {command[0]}: ACCESSWATCH_KAFKA_PASSWORD_FILE {missing}: "
                   "No such file or directory"]


def test_no_secret_is_a_flag() -> None:
    """Passwords, key passwords and token commands have no flag on any command (a flag shows
    in ``ps``); the flags that exist name files and non-secret values only."""
    from streams.cli import build

    parser = build()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    secret_dests = {"kafka_password", "kafka_key_password", "kafka_oauth_token_command"}
    seen = set()
    for name in ("worker", "produce", "demo"):
        dests = {a.dest for a in sub.choices[name]._actions}
        assert "kafka_sasl_mechanism" in dests and not dests & secret_dests, name
        seen.add(name)
    topics = sub.choices["topics"]
    tsub = next(a for a in topics._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in tsub.choices.items():
        dests = {a.dest for a in p._actions}
        assert "kafka_ca_file" in dests and not dests & secret_dests, name
    with pytest.raises(SystemExit) as e:
        parser.parse_args(["produce", "--kafka-password", "x", "f"])
    assert e.value.code == 2


def test_no_secret_in_a_log_line_or_a_repr(tmp_path: Path) -> None:
    """kafka-python logs its whole configuration at debug level, SASL password included: the
    worker's log handlers drop it (``RedactSecrets``); reprs never show a secret."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    from streams.kafka_security import KafkaSecurity, RedactSecrets
    from streams.settings import Settings

    secret = "pw-never-logged-42"
    sec = KafkaSecurity.build(protocol="SASL_PLAINTEXT", mechanism="PLAIN", username="svc",
                              password=secret)
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    raw, filtered = Keep(), Keep()
    filtered.addFilter(RedactSecrets(sec.secrets()))
    logger = logging.getLogger("kafka")
    saved = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(raw)
    try:
        with pytest.raises(KafkaError):  # nothing listens on port 9
            KafkaAdminClient(bootstrap_servers="127.0.0.1:9", bootstrap_timeout_ms=200,
                             **sec.kafka_python_options())
    finally:
        logger.removeHandler(raw)
        logger.setLevel(saved)
    # the upstream behaviour this guards against is still there ...
    leaked = [r for r in records if secret in r]
    assert leaked, "kafka-python no longer logs its configuration: RedactSecrets may go"
    # ... and the filter takes the secret out of every such line
    records.clear()
    for line in leaked:
        filtered.handle(logging.makeLogRecord({"msg": "%s", "args": (line,)}))
    assert records and not any(secret in r for r in records)
    assert all("***" in r for r in records)
    settings = Settings.from_env({"ACCESSWATCH_KAFKA_SASL_MECHANISM": "PLAIN",
                                  "ACCESSWATCH_KAFKA_USERNAME": "svc",
                                  "ACCESSWATCH_KAFKA_PASSWORD": secret})
    assert secret not in repr(settings) and secret not in repr(settings.kafka_security())


def test_host_name_is_verified(pki: Pki) -> None:
    """A certificate for localhost / 127.0.0.1, served on 127.0.0.2: refused by name, even
    though a trusted CA signed it."""
    from streams.kafka_security import KafkaSecurity, KafkaSecurityError, check_connection

    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(pki.broker_keystore)
    listener = socket.create_server(("127.0.0.2", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        with contextlib.suppress(OSError):
            conn, _ = listener.accept()
            with contextlib.suppress(OSError), server_ctx.wrap_socket(conn, server_side=True):
                pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        sec = KafkaSecurity.build(protocol="SSL", ca_file=str(pki.ca))
        with pytest.raises(KafkaSecurityError) as e:
            check_connection([f"127.0.0.2:{port}"], sec, timeout=5)
        assert "mismatch, certificate is not valid for '127.0.0.2'" in str(e.value)
        assert "use a broker address that the certificate names" in str(e.value)
    finally:
        listener.close()
        t.join(5)


# ------------------------------------------------------------------ kafka tier

REPLAY_SIM = ["--seed", "11", "--customers", "300", "--hours", "1", "--attack", "coupang",
              "--attack-start-hour", "0.3"]
#: a misconfigured command must have said why within this (it takes a second or two)
FAIL_DEADLINE_S = 60.0


@pytest.fixture(scope="module")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureKafka]:
    """The SASL_SSL / SSL node of this module, stopped (by its pid file) at the module's end."""
    try:
        ensure_fetched()
    except KafkaUnavailable as exc:
        unavailable(str(exc))
    d = tmp_path_factory.mktemp("secure-kafka")
    kafka = SecureKafka(d / "kafka", free_port_block(4), make_pki(d / "pki"))
    try:
        kafka.configure()
        kafka.start()
        yield kafka
    finally:
        kafka.cleanup("stop")


def _cli(args: list[str], env: dict[str, str], timeout: float = 180.0
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False,
                          stdin=subprocess.DEVNULL)


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any ACCESSWATCH_KAFKA_* setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCESSWATCH_KAFKA_")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def _scram_env(kafka: SecureKafka, tmp_path: Path, user: tuple[str, str], mechanism: str,
               *, password_in_file: bool) -> dict[str, str]:
    env = _clean_env(ACCESSWATCH_KAFKA_SASL_MECHANISM=mechanism,
                     ACCESSWATCH_KAFKA_USERNAME=user[0],
                     ACCESSWATCH_KAFKA_CA_FILE=str(kafka.pki.ca))
    if password_in_file:
        f = tmp_path / f"{user[0]}-{hashlib.sha256(user[1].encode()).hexdigest()[:8]}.password"
        f.write_text(user[1] + "\n")
        env["ACCESSWATCH_KAFKA_PASSWORD_FILE"] = str(f)
    else:
        env["ACCESSWATCH_KAFKA_PASSWORD"] = user[1]
    return env


def _alert_ids(jsonl: str) -> set[str]:
    return {json.loads(line)["alert_id"] for line in jsonl.splitlines() if line.strip()}


@pytest.mark.kafka
@pytest.mark.timeout(420)
def test_worker_and_produce_over_sasl_ssl_give_the_alerts_of_replay(
    secure_kafka: SecureKafka, tmp_path: Path
) -> None:
    """``topics create`` (SCRAM-SHA-512), ``produce`` (SCRAM-SHA-256, password in a file) and
    a worker (SCRAM-SHA-256, password in its environment, CA by flag), all over SASL_SSL: the
    alert ids on the alerts topic are those of ``replay`` over the same file. No password in
    the worker's command line or in its log."""
    from local.worker import WorkerProcess
    from tests.kafka_fixtures import fresh_names, read_topic, topic_end, topics_env, wait_committed

    sim = tmp_path / "sim.jsonl"
    done = _cli(["simulate", *REPLAY_SIM, "--out", str(sim)], _clean_env())
    assert done.returncode == 0, done.stderr
    replayed = _cli(["replay", str(sim)], _clean_env())
    assert replayed.returncode == 0, replayed.stderr
    expected = _alert_ids(replayed.stdout)
    assert len(expected) >= 5

    names = fresh_names()
    tenv = topics_env(names)
    admin_env = {**_scram_env(secure_kafka, tmp_path, SCRAM512, "SCRAM-SHA-512",
                              password_in_file=False), **tenv}
    made = _cli(["topics", "create", "--broker", secure_kafka.sasl_url, "--partitions", "1"],
                admin_env)
    assert made.returncode == 0, made.stderr
    producer_env = {**_scram_env(secure_kafka, tmp_path, SCRAM256, "SCRAM-SHA-256",
                                 password_in_file=True), **tenv}
    sent = _cli(["produce", "--broker", secure_kafka.sasl_url, str(sim)], producer_env)
    assert sent.returncode == 0, sent.stderr
    lines = sum(1 for line in sim.read_text().splitlines() if line.strip())
    assert f"sent {lines} events" in sent.stderr

    worker_env = _scram_env(secure_kafka, tmp_path, SCRAM256, "SCRAM-SHA-256",
                            password_in_file=False)
    del worker_env["ACCESSWATCH_KAFKA_CA_FILE"]  # given as a flag instead
    group = f"{names.logins}-group"
    _declare_internal_topics(f"127.0.0.1:{secure_kafka.port}", group)
    (tmp_path / "worker").mkdir()
    worker = WorkerProcess(secure_kafka.sasl_url, partitions=1, app_id=group,
                           topics_env=tenv, data_dir=str(tmp_path / "worker"),
                           extra=["--kafka-ca-file", str(secure_kafka.pki.ca),
                                  "--log-level", "info"])
    worker.env = {**worker_env, **tenv, "ACCESSWATCH_STATE_KEY": "s" * 32}
    worker.start()
    observer = f"127.0.0.1:{secure_kafka.port}"  # the test's own eyes: the plaintext listener
    try:
        worker.wait_ready(timeout=120)
        assert worker.proc is not None
        argv = Path(f"/proc/{worker.proc.pid}/cmdline").read_bytes()
        assert SCRAM256[1].encode() not in argv
        # produce batches by partition (contract v1.1): the worker is done when its commits
        # reach the input topics' end offsets (messages), not the count of events
        inputs = {t: topic_end(observer, t) or 0 for t in (names.logins, names.access)}
        assert all(inputs.values()), inputs
        wait_committed(observer, group, inputs, worker, names.alerts, timeout=240)
        # the alerts of timers fired at end of input (the worker's idle flush) may come later
        deadline = time.monotonic() + 120
        got = {a["alert_id"] for a in read_topic(observer, names.alerts)}
        while not expected <= got and time.monotonic() < deadline:
            time.sleep(1)
            got = {a["alert_id"] for a in read_topic(observer, names.alerts)}
    finally:
        rc = worker.stop(timeout=60)
    got = {a["alert_id"] for a in read_topic(observer, names.alerts)}
    if got != expected:
        pytest.fail(f"missing {sorted(expected - got)}, extra {sorted(got - expected)}; the "
                    f"worker's log:\n{worker.log_tail(80)}", pytrace=False)
    log = Path(worker.log_path).read_text(errors="replace")
    assert "accesswatch worker" in log  # the startup line: this is the worker's log
    assert SCRAM256[1] not in log
    assert rc == 0, worker.log_tail(40)


def _declare_internal_topics(bootstrap: str, app_id: str) -> None:
    """The worker's own topics, made before it starts. A worker that creates them itself
    (it does, at start) can join its group before the broker's metadata lists them: Faust's
    assignor then logs "Ignoring missing topic" and never assigns them, and the bulk_lookup
    alerts are missing (seen in this test in 2 of 2 runs on a loaded machine; the worker had
    authenticated and processed every event). That race is not this module's subject."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    compact = {"cleanup.policy": "compact"}
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=60_000)
    try:
        admin.create_topics([
            NewTopic(f"{app_id}-partials", 1, 1),
            NewTopic(f"{app_id}-engine-checkpoints-changelog", 1, 1, topic_configs=compact),
            NewTopic(f"{app_id}-partials-checkpoints-changelog", 1, 1, topic_configs=compact),
        ], timeout_ms=60_000)
    finally:
        admin.close()



CASES = ["wrong-password", "unknown-ca", "plaintext-client"]


@pytest.mark.kafka
@pytest.mark.timeout(300)
@pytest.mark.parametrize("command", ["produce", "topics", "worker"])
def test_a_misconfigured_client_fails_in_one_line(
    secure_kafka: SecureKafka, tmp_path: Path, command: str
) -> None:
    """Against the SASL_SSL listener: a wrong password, a CA that did not sign the broker's
    certificate, and a client without TLS or SASL each end the command with exit 2 and one
    line saying so, well before any deadline: no hang, no traceback, no password."""
    sim = tmp_path / "one.jsonl"
    sim.write_text('{"event_id":"e1","ts":"2025-06-24T00:00:00Z","account_id":"a",'
                   '"outcome":"failure","src_ip":"192.0.2.1"}\n')
    argv = {"produce": ["produce", "--broker", secure_kafka.sasl_url, str(sim)],
            "topics": ["topics", "list", "--broker", secure_kafka.sasl_url],
            "worker": ["worker", "--broker", secure_kafka.sasl_url, "--web-port", "0",
                       "--data-dir", str(tmp_path / "w")]}[command]
    wrong = ("alice", "not-alice-password")
    envs = {
        "wrong-password": (_scram_env(secure_kafka, tmp_path, wrong, "SCRAM-SHA-256",
                                      password_in_file=True),
                           "SASL SCRAM-SHA-256 authentication to 127.0.0.1:"),
        "unknown-ca": ({**_scram_env(secure_kafka, tmp_path, SCRAM256, "SCRAM-SHA-256",
                                     password_in_file=True),
                        "ACCESSWATCH_KAFKA_CA_FILE": str(secure_kafka.pki.other_ca)},
                       "the broker's certificate was refused (unable to get local issuer "
                       "certificate)"),
        "plaintext-client": (_clean_env(), "speaks TLS but the security protocol is PLAINTEXT"),
    }
    for case in CASES:
        env, expected = envs[case]
        env = {**env, "ACCESSWATCH_STATE_KEY": "s" * 32}
        started = time.monotonic()
        done = _cli(argv, env, timeout=FAIL_DEADLINE_S)
        took = time.monotonic() - started
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert done.returncode == 2, (case, done.stderr)
        assert len(lines) == 1 and expected in lines[0], (case, done.stderr)
        assert lines[0].startswith(f"accesswatch {command}: "), (case, lines)
        for secret in (wrong[1], SCRAM256[1]):
            assert secret not in done.stderr + done.stdout
        print(f"{command} {case}: exit 2 after {took:.1f}s: {lines[0]}")


@pytest.mark.kafka
@pytest.mark.timeout(300)
def test_plain_oauthbearer_and_mutual_tls(secure_kafka: SecureKafka, tmp_path: Path) -> None:
    """The other mechanisms against the same broker: PLAIN; OAUTHBEARER with the token in a
    file and printed by a command (an expired token is refused in one line); SSL with a
    client certificate on the listener that requires one."""
    token = tmp_path / "token"
    token.write_text(unsecured_jwt("accesswatch") + "\n")
    expired = tmp_path / "expired"
    expired.write_text(unsecured_jwt("accesswatch", lifetime_s=-60))
    ca = {"ACCESSWATCH_KAFKA_CA_FILE": str(secure_kafka.pki.ca)}
    ok = {
        "plain": _scram_env(secure_kafka, tmp_path, PLAIN, "PLAIN", password_in_file=True),
        "oauth-file": _clean_env(ACCESSWATCH_KAFKA_SASL_MECHANISM="OAUTHBEARER",
                                 ACCESSWATCH_KAFKA_OAUTH_TOKEN_FILE=str(token), **ca),
        "oauth-command": _clean_env(
            ACCESSWATCH_KAFKA_SASL_MECHANISM="OAUTHBEARER",
            ACCESSWATCH_KAFKA_OAUTH_TOKEN_COMMAND=f"cat {token}", **ca),
    }
    for name, env in ok.items():
        done = _cli(["topics", "list", "--all", "--broker", secure_kafka.sasl_url], env)
        assert done.returncode == 0, (name, done.stderr)
    mtls = _clean_env(**ca)
    done = _cli(["topics", "list", "--all", "--broker", secure_kafka.ssl_url,
                 "--kafka-cert-file", str(secure_kafka.pki.client_cert),
                 "--kafka-key-file", str(secure_kafka.pki.client_key)], mtls)
    assert done.returncode == 0, done.stderr
    refused = _cli(["topics", "list", "--broker", secure_kafka.sasl_url],
                   _clean_env(ACCESSWATCH_KAFKA_SASL_MECHANISM="OAUTHBEARER",
                              ACCESSWATCH_KAFKA_OAUTH_TOKEN_FILE=str(expired), **ca))
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode == 2 and len(lines) == 1, refused.stderr
    assert "SASL OAUTHBEARER authentication" in lines[0], lines


@pytest.mark.kafka
@pytest.mark.timeout(420)
def test_demo_with_a_sasl_ssl_broker(secure_kafka: SecureKafka, tmp_path: Path) -> None:
    """``demo --broker`` over SASL_SSL (SCRAM-SHA-512, CA by flag, password in a file): its
    producer, its worker (every event taken) and its alert reader (alerts of ``replay``
    printed) all connect. (Not all of replay's alerts: the demo's worker creates its own
    topics at start, the race ``_declare_internal_topics`` describes.)"""
    from tests.kafka_fixtures import fresh_names, topics_env

    sim = tmp_path / "sim.jsonl"
    assert _cli(["simulate", *REPLAY_SIM, "--out", str(sim)], _clean_env()).returncode == 0
    expected = _alert_ids(_cli(["replay", str(sim)], _clean_env()).stdout)
    env = {**_scram_env(secure_kafka, tmp_path, SCRAM512, "SCRAM-SHA-512",
                        password_in_file=True), **topics_env(fresh_names()),
           "ACCESSWATCH_STATE_KEY": "s" * 32}
    del env["ACCESSWATCH_KAFKA_CA_FILE"]
    done = _cli(["demo", "--broker", secure_kafka.sasl_url, "--events", str(sim), "--json",
                 "--alerting", "off", "--kafka-ca-file", str(secure_kafka.pki.ca)], env,
                timeout=360)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = sum(1 for line in sim.read_text().splitlines() if line.strip())
    assert f"events: {lines:,} produced, {lines:,} taken by the worker" in done.stderr
    shown = _alert_ids(done.stdout)  # the alert reader's, over SASL_SSL too
    assert shown and shown <= expected, (sorted(shown - expected), done.stderr[-3000:])
    assert SCRAM512[1] not in done.stdout + done.stderr


def test_an_encrypted_client_key_takes_its_password_from_a_file(pki: Pki, tmp_path: Path) -> None:
    from streams.kafka_security import KafkaSecurity, KafkaSecurityError

    key = tmp_path / "client-encrypted.key"
    _openssl("pkey", "-in", str(pki.client_key), "-aes256", "-passout", "pass:key-Secret-9",
             "-out", str(key), cwd=tmp_path)
    (tmp_path / "key-password").write_text("key-Secret-9\n")
    base = _env(ca_file=str(pki.ca), cert_file=str(pki.client_cert), key_file=str(key))
    sec = KafkaSecurity.from_env({**base, "ACCESSWATCH_KAFKA_KEY_PASSWORD_FILE":
                                  str(tmp_path / "key-password")})
    assert sec.ssl_context() is not None and "key-Secret-9" not in repr(sec)
    with pytest.raises(KafkaSecurityError) as e:
        KafkaSecurity.from_env({**base, "ACCESSWATCH_KAFKA_KEY_PASSWORD": "bad-Key-pw-77"})
    assert str(e.value) == (f"client certificate {pki.client_cert} / key {key}: not PEM, or a "
                            "key whose password is wrong or missing")
    assert "bad-Key-pw-77" not in str(e.value) and "\n" not in str(e.value)
