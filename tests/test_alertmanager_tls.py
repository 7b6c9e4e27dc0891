"""The Alertmanager push over TLS with authentication, against a real local HTTPS server
whose CA, server and client certificates are made here by the ``openssl`` command."""

from __future__ import annotations

import base64
import json
import logging
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from streams.alertmanager import AlertmanagerSender, HttpClientConfig
from streams.metrics import Metrics
from streams.settings import Settings, SettingsError

TOKEN = "am-token"  # noqa: S105 (a test credential)


def openssl(*args: str, cwd: Path) -> None:
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


@dataclass
class Pki:
    dir: Path

    def path(self, name: str) -> str:
        return str(self.dir / name)


def _ca(d: Path, name: str) -> None:
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj",
            f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)


def _leaf(d: Path, name: str, ca: str, ext: str) -> None:
    (d / f"{name}.ext").write_text(ext + "\nsubjectKeyIdentifier=hash\n"
                                   "authorityKeyIdentifier=keyid\n")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext",
            cwd=d)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    d = tmp_path_factory.mktemp("pki")
    _ca(d, "ca")
    _ca(d, "other-ca")
    # the server's name is localhost only: 127.0.0.1 is not in it (host name checks)
    _leaf(d, "server", "ca", "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth")
    _leaf(d, "client", "ca", "extendedKeyUsage=clientAuth")
    return Pki(d)


@dataclass
class Seen:
    requests: list[dict[str, Any]] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    server: _TLSServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        peer = self.connection.getpeercert()  # type: ignore[attr-defined]
        subject = dict(x[0] for x in peer["subject"]) if peer else {}
        auth = self.headers.get("Authorization")
        self.server.seen.requests.append(
            {"path": self.path, "auth": auth, "client": subject.get("commonName"),
             "alerts": json.loads(body)})
        ok = self.server.want_auth is None or auth == self.server.want_auth
        self.send_response(200 if ok else 401)
        self.send_header("Content-Length", "0")
        self.end_headers()


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, ctx: ssl.SSLContext, want_auth: str | None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.socket = ctx.wrap_socket(self.socket, server_side=True)
        self.seen = Seen()
        self.want_auth = want_auth


@pytest.fixture
def https(pki: Pki) -> Iterator[Any]:
    """``https(require_client_cert, want_auth)`` starts a server; all stop at teardown."""
    servers: list[_TLSServer] = []

    def start(require_client_cert: bool = False, want_auth: str | None = None) -> _TLSServer:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pki.path("server.pem"), pki.path("server.key"))
        if require_client_cert:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(pki.path("ca.pem"))
        srv = _TLSServer(ctx, want_auth)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def alert() -> dict[str, Any]:
    return {"alert_id": "bulk_lookup:key:k1:1", "ts": "2025-06-15T15:06:00Z",
            "detector": "bulk_lookup", "severity": "critical",
            "entity": {"kind": "key", "id": "k1"}, "summary": "s", "evidence": []}


def sender(url: str, cfg: HttpClientConfig, **kw: Any) -> AlertmanagerSender:
    return AlertmanagerSender([url], Metrics(CollectorRegistry()), post=cfg.poster(),
                              backoff_initial=0.01, backoff_max=0.05, timeout=5, **kw)


def port(srv: _TLSServer) -> int:
    return int(srv.server_address[1])


def test_mutual_tls_with_bearer_token(pki: Pki, https: Any, tmp_path: Path) -> None:
    srv = https(require_client_cert=True, want_auth=f"Bearer {TOKEN}")
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    cfg = HttpClientConfig.from_files(bearer_token_file=str(token), ca_file=pki.path("ca.pem"),
                                      cert_file=pki.path("client.pem"),
                                      key_file=pki.path("client.key"))
    s = sender(f"https://localhost:{port(srv)}", cfg)
    s.submit(alert())
    assert s.flush(10)
    [req] = srv.seen.requests
    assert req["path"] == "/api/v2/alerts"
    assert req["auth"] == f"Bearer {TOKEN}"
    assert req["client"] == "client"  # the server verified our certificate
    assert req["alerts"][0]["labels"]["alert_id"] == "bulk_lookup:key:k1:1"


def test_basic_auth_over_tls(pki: Pki, https: Any, tmp_path: Path) -> None:
    want = "Basic " + base64.b64encode(b"accesswatch:p@ss:word").decode()
    srv = https(want_auth=want)
    users = tmp_path / "basic"
    users.write_text("accesswatch:p@ss:word\n")
    cfg = HttpClientConfig.from_files(basic_auth_file=str(users), ca_file=pki.path("ca.pem"))
    s = sender(f"https://localhost:{port(srv)}", cfg)
    s.submit(alert())
    assert s.flush(10)
    assert [r["auth"] for r in srv.seen.requests] == [want]


def _drive(s: AlertmanagerSender, attempts: int) -> int:
    """Tick until ``attempts`` posts failed (the back-off is 10-50 ms); return them."""
    import time

    deadline = time.monotonic() + 20
    errors = 0.0
    while errors < attempts and time.monotonic() < deadline:
        s.tick()
        errors = s.metrics.registry.get_sample_value(
            "accesswatch_alertmanager_posts_total", {"result": "error"}) or 0.0
        time.sleep(0.01)
    return int(errors)


def test_wrong_ca_fails_with_one_clear_error_and_keeps_retrying(
    pki: Pki, https: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    srv = https()
    cfg = HttpClientConfig.from_files(ca_file=pki.path("other-ca.pem"))
    s = sender(f"https://localhost:{port(srv)}", cfg)
    s.submit(alert())
    with caplog.at_level(logging.DEBUG, logger="streams.alertmanager"):
        assert _drive(s, 5) >= 5  # it keeps trying, no exception escapes
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    msg = errors[0].getMessage()
    assert "TLS certificate not trusted" in msg and "ACCESSWATCH_ALERTMANAGER_CA_FILE" in msg
    assert "k1" not in caplog.text  # no entity in logs
    assert srv.seen.requests == [] and s.pending() == 1


def test_host_name_is_verified(pki: Pki, https: Any, caplog: pytest.LogCaptureFixture) -> None:
    srv = https()
    s = sender(f"https://127.0.0.1:{port(srv)}",  # a trusted certificate, for another name
               HttpClientConfig.from_files(ca_file=pki.path("ca.pem")))
    s.submit(alert())
    with caplog.at_level(logging.WARNING, logger="streams.alertmanager"):
        _drive(s, 1)
    assert srv.seen.requests == []
    assert "Hostname mismatch" in caplog.text or "IP address mismatch" in caplog.text


def test_missing_client_certificate_and_refused_credentials_are_errors(
    pki: Pki, https: Any, caplog: pytest.LogCaptureFixture, tmp_path: Path,
) -> None:
    mtls = https(require_client_cert=True)
    s = sender(f"https://localhost:{port(mtls)}",
               HttpClientConfig.from_files(ca_file=pki.path("ca.pem")))
    s.submit(alert())
    with caplog.at_level(logging.WARNING, logger="streams.alertmanager"):
        _drive(s, 2)
    assert mtls.seen.requests == []
    caplog.clear()
    token = tmp_path / "token"
    token.write_text("not-the-token")
    authed = https(want_auth=f"Bearer {TOKEN}")
    s = sender(f"https://localhost:{port(authed)}",
               HttpClientConfig.from_files(bearer_token_file=str(token),
                                           ca_file=pki.path("ca.pem")))
    s.submit(alert())
    with caplog.at_level(logging.WARNING, logger="streams.alertmanager"):
        _drive(s, 3)
    [err] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "HTTP 401" in err.getMessage() and "refused the credentials" in err.getMessage()
    assert "not-the-token" not in caplog.text


def test_settings_name_the_files_and_bad_files_are_one_line(pki: Pki, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text(TOKEN)
    s = Settings.from_env({
        "ACCESSWATCH_ALERTMANAGER": "https://localhost:9093",
        "ACCESSWATCH_ALERTMANAGER_BEARER_TOKEN_FILE": str(token),
        "ACCESSWATCH_ALERTMANAGER_CA_FILE": pki.path("ca.pem"),
        "ACCESSWATCH_ALERTMANAGER_CERT_FILE": pki.path("client.pem"),
        "ACCESSWATCH_ALERTMANAGER_KEY_FILE": pki.path("client.key"),
    }).validate()
    cfg = HttpClientConfig.from_settings(s)
    assert cfg.bearer_token == TOKEN and cfg.cert_file == pki.path("client.pem")
    assert TOKEN not in repr(cfg) and TOKEN not in repr(s)
    for kw, match in (
        ({"alertmanager_ca_file": str(tmp_path / "missing.pem")}, "TLS files"),
        ({"alertmanager_ca_file": str(token)}, "TLS files"),  # not PEM
        ({"alertmanager_cert_file": "", "alertmanager_key_file": pki.path("client.key")},
         "needs its certificate"),
        ({"alertmanager_cert_file": pki.path("client.pem"),
          "alertmanager_key_file": pki.path("server.key")}, "TLS files"),  # key of another
        ({"alertmanager_basic_auth_file": str(token)}, "not both"),
    ):
        with pytest.raises(SettingsError, match=match) as info:
            replace(s, **kw).validate()
        assert "\n" not in str(info.value)
