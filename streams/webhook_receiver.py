"""The reference on-call receiver: Alertmanager webhooks in, one page per new alert out.

Alertmanager (``webhook_configs``) POSTs payloads of version 4 to ``/<receiver-name>``
(``/oncall-pager``, ``/soc-channel`` in ``deploy/alertmanager/alertmanager.yml``). Each
alert in a payload is recorded once per ``(fingerprint, status, startsAt)``: the same
firing alert re-notified (a group's repeat, an Alertmanager restart that lost its
notification log) is a duplicate, its resolution is a new record. New records are
appended to a JSON-lines file (read back at start, so a restarted receiver does not page
again) and printed as one line on stdout.

``GET /received`` returns the records as a JSON list (``?receiver=NAME`` filters),
``GET /stats`` the counters, ``GET /-/healthy`` answers 200.

A shared secret is required: every POST and every GET but ``/-/healthy`` must carry it, as
``Authorization: Bearer TOKEN`` (Alertmanager's ``http_config.authorization`` with a
``credentials_file``) or basic auth (``http_config.basic_auth`` with a ``password_file``).
Anything else is answered 401, counted (``unauthorized`` in ``/stats``) and never stored.
Every field a page line shows came from whoever wrote the event, so control characters
(newlines, terminal escapes, other C0/C1 controls) and invisible Unicode formatting (bidi
overrides, zero-width characters, line separators) are printed escaped (``\n``, ``\x1b``,
``\u202e``): one page is always one line, and what it says is what it shows.

Run it: ``python -m streams.webhook_receiver --port 9095 --out received.jsonl
--bearer-token-file token``; from tests: ``srv = serve("127.0.0.1", 0, path,
auth=Authenticator(bearer=...)); ...; srv.stop()``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import threading
import time
import unicodedata
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qs, urlsplit

from streams.httpauth import Authenticator, CredentialsError

MAX_BODY = 8 * 1024 * 1024
#: The token file ``deploy/alertmanager/alertmanager.yml`` names (compose mounts it there).
DEPLOY_TOKEN_FILE = "/run/secrets/accesswatch/receiver-token"

Key = tuple[str, str, str]


class PayloadError(ValueError):
    """A request body that is not an Alertmanager webhook payload (version 4)."""


def fingerprint_of(labels: dict[str, str]) -> str:
    """A stable stand-in when a payload lacks Alertmanager's own fingerprint."""
    text = "\x00".join(f"{k}\x00{v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def parse_payload(body: bytes, receiver: str) -> list[dict[str, Any]]:
    """The alerts of one webhook payload as flat records (raises PayloadError)."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(f"body is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise PayloadError("payload must be a JSON object")
    if str(payload.get("version")) != "4":
        raise PayloadError(f"unsupported payload version {payload.get('version')!r} (want 4)")
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        raise PayloadError("payload has no alerts list")
    records = []
    for a in alerts:
        if not isinstance(a, dict) or not isinstance(a.get("labels"), dict):
            raise PayloadError("each alert must be an object with labels")
        labels = {str(k): str(v) for k, v in a["labels"].items()}
        records.append(
            {
                "receiver": receiver,
                "payload_receiver": payload.get("receiver"),
                "group_key": payload.get("groupKey"),
                "status": str(a.get("status") or payload.get("status") or ""),
                "fingerprint": str(a.get("fingerprint") or fingerprint_of(labels)),
                "startsAt": str(a.get("startsAt") or ""),
                "endsAt": str(a.get("endsAt") or ""),
                "labels": labels,
                "annotations": {str(k): str(v) for k, v in (a.get("annotations") or {}).items()},
            }
        )
    return records


def visible(text: str) -> str:
    r"""``text`` with every character that could hide, move or forge output escaped.

    Escaped: the backslash itself (so an escape is never ambiguous), C0 and C1 controls and
    DEL (``\n``, ``\x1b``, ``\x9b``), Unicode format characters (bidi embeddings,
    overrides and isolates, zero-width characters) and line/paragraph separators.

    >>> visible("kid-1\n RESOLVED \x1b[32mall clear\u202e")
    'kid-1\\n RESOLVED \\x1b[32mall clear\\u202e'
    """
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            escaped = ch.encode("unicode_escape").decode("ascii")
            out.append(escaped if escaped != ch else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def page_line(rec: dict[str, Any]) -> str:
    """One line an on-call engineer reads on their pager (every field escaped)."""
    lab = rec["labels"]
    what = lab.get("alertname", "?")
    if "detector" in lab:
        what += f" {lab['detector']}"
    if "entity_kind" in lab:
        what += f" {lab['entity_kind']}={lab.get('entity_id', '?')}"
    summary = rec["annotations"].get("summary", "")
    return visible(
        f"PAGE [{rec['receiver']}] {rec['status'].upper()} {lab.get('severity', '-')} "
        f"{what}: {summary}".rstrip(": ")
    )


class Store:
    """The deduplicated records, backed by a JSON-lines file."""

    def __init__(self, out: str | Path, echo: TextIO | None = sys.stdout) -> None:
        self.path = Path(out)
        self.echo = echo
        self._lock = threading.Lock()
        self._seen: set[Key] = set()
        self.records: list[dict[str, Any]] = []
        self.payloads = 0
        self.alerts = 0
        self.duplicates = 0
        self.unauthorized = 0  # requests refused for want of the shared secret
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    rec = json.loads(line)
                    self._seen.add(self._key(rec))
                except (ValueError, KeyError, TypeError):
                    continue  # a torn last line from a crash: skip it
                self.records.append(rec)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def _key(rec: dict[str, Any]) -> Key:
        return (rec["fingerprint"], rec["status"], rec["startsAt"])

    def add(self, records: Sequence[dict[str, Any]]) -> int:
        """Record the new ones; return how many were new."""
        new = 0
        with self._lock:
            self.payloads += 1
            for rec in records:
                self.alerts += 1
                key = self._key(rec)
                if key in self._seen:
                    self.duplicates += 1
                    continue
                self._seen.add(key)
                rec = {**rec, "received_at": time.time()}
                self.records.append(rec)
                with self.path.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(rec, sort_keys=True) + "\n")
                if self.echo is not None:
                    print(page_line(rec), file=self.echo, flush=True)
                new += 1
        return new

    def snapshot(self, receiver: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.records if receiver is None or r["receiver"] == receiver]

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "payloads": self.payloads,
                "alerts": self.alerts,
                "new": len(self.records),
                "duplicates": self.duplicates,
                "unauthorized": self.unauthorized,
            }

    def refused(self) -> None:
        with self._lock:
            self.unauthorized += 1


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        return  # quiet: the page lines are the output

    def _reply(self, code: int, obj: object) -> None:
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _authorized(self) -> bool:
        """True with the shared secret; else answer 401, count it and close."""
        if self.server.auth.check(self.headers.get("Authorization")):
            return True
        self.server.store.refused()
        body = b'{"error": "unauthorized"}'
        self.send_response(401)
        for challenge in self.server.auth.challenges:
            self.send_header("WWW-Authenticate", challenge)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")  # the unread body is not read
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True
        return False

    def do_GET(self) -> None:  # noqa: N802 (stdlib name)
        url = urlsplit(self.path)
        if url.path in ("/-/healthy", "/-/ready"):
            self._reply(200, {"status": "ok"})
            return
        if not self._authorized():
            return
        if url.path == "/received":
            receiver = parse_qs(url.query).get("receiver", [None])[0]
            self._reply(200, self.server.store.snapshot(receiver))
        elif url.path == "/stats":
            self._reply(200, self.server.store.stats())
        else:
            self._reply(404, {"error": "not found"})

    def do_POST(self) -> None:  # noqa: N802 (stdlib name)
        if not self._authorized():
            return
        receiver = urlsplit(self.path).path.strip("/")
        if not receiver or "/" in receiver:
            self._reply(404, {"error": "POST to /<receiver-name>"})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self._reply(413 if length > MAX_BODY else 400, {"error": "bad Content-Length"})
            return
        try:
            records = parse_payload(self.rfile.read(length), receiver)
        except PayloadError as exc:
            self._reply(400, {"error": str(exc)})
            return
        new = self.server.store.add(records)
        self._reply(200, {"new": new, "alerts": len(records)})


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr: tuple[str, int], store: Store, auth: Authenticator) -> None:
        self.store = store
        self.auth = auth
        super().__init__(addr, _Handler)


class ReceiverServer:
    """A running receiver (threaded HTTP server); ``stop()`` shuts it down."""

    def __init__(self, server: _Server) -> None:
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="webhook-receiver", daemon=True
        )
        self._thread.start()

    @property
    def store(self) -> Store:
        return self._server.store

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._server.server_address[0]}:{self.port}"  # type: ignore[str-bytes-safe]  # an AF_INET server: its host is a str

    def received(self, receiver: str | None = None) -> list[dict[str, Any]]:
        return self.store.snapshot(receiver)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve(
    host: str, port: int, out: str | Path, echo: TextIO | None = sys.stdout, *,
    auth: Authenticator,
) -> ReceiverServer:
    """Start a receiver on ``host:port`` (0 = a free port) appending to ``out``, answering
    only requests that carry a credential of ``auth`` (which must not be empty)."""
    if not auth:
        raise ValueError("the receiver needs a shared secret (a bearer token or basic auth)")
    return ReceiverServer(_Server((host, port), Store(out, echo=echo), auth))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m streams.webhook_receiver",
        description="Reference on-call receiver for Alertmanager webhooks (payload version 4).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=9095, help="port (default 9095)")
    parser.add_argument("--out", default="received.jsonl", help="JSON-lines file of pages")
    parser.add_argument("--bearer-token-file", metavar="FILE",
                        help="the token Alertmanager sends (http_config.authorization)")
    parser.add_argument("--basic-auth-file", metavar="FILE",
                        help="user:password lines accepted (http_config.basic_auth)")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        print(f"error: port out of range: {args.port}", file=sys.stderr)
        return 2
    if not (args.bearer_token_file or args.basic_auth_file):
        print("error: a shared secret is required: --bearer-token-file FILE or "
              "--basic-auth-file FILE", file=sys.stderr)
        return 2
    try:
        auth = Authenticator.from_files(args.bearer_token_file, args.basic_auth_file)
    except CredentialsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        srv = serve(args.host, args.port, args.out, auth=auth)
    except OSError as exc:
        print(
            f"error: cannot serve on {args.host}:{args.port} ({exc.strerror or exc})",
            file=sys.stderr,
        )
        return 1
    except ValueError as exc:  # an --out file that is not UTF-8 text
        print(f"error: cannot read {args.out}: {exc}", file=sys.stderr)
        return 1
    print(f"webhook receiver on {srv.url}/<receiver-name>, writing {args.out}", file=sys.stderr)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
