"""``accesswatch explain KIND ID``: an entity's page in the terminal (issue 18 item 4).

Two sources, one view (:func:`detectors.explain.explain`):

- ``--url URL``: a running worker's web port (``GET URL/explain?kind=..&id=..&format=json``),
  with its credentials from ``--bearer-token-file`` / ``--basic-auth-file`` or, without
  them, from ``ACCESSWATCH_WEB_BEARER_TOKEN_FILE`` / ``ACCESSWATCH_WEB_BASIC_AUTH_FILE`` as the
  worker's own probes do. This is the live state: baselines learnt over weeks and restored
  from checkpoints, which no file on the analyst's machine holds.
- ``--events FILE...``: the engine over JSON-lines files first (as ``replay``), then the view:
  an investigation of a file without a worker, and the same answer for the same file.

``--output text`` (default), ``json`` or ``html`` (the worker's page, self-contained). Exit 0
when something is known about the entity, 1 when nothing is, 2 for a bad flag, file, URL or
answer (one line on stderr).
"""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import orjson

from detectors.engine import Engine, EngineConfig
from detectors.explain import ExplainError, explain, parse_entity
from streams.explain_render import render_html, render_json, render_text
from streams.replay import InputError, iter_lines, open_inputs, replay

MAX_ANSWER = 16 << 20  # bytes of a worker's answer read at most


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", metavar="KIND",
                   help="account, actor (or principal), src_ip (or ip), subnet, asn, key, session")
    p.add_argument("id", metavar="ID", help="the entity's id as alerts name it")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--url", metavar="URL",
                     help="a running worker's web port, e.g. http://127.0.0.1:6066")
    src.add_argument("--events", nargs="+", metavar="FILE",
                     help="replay these JSON-lines files (- for stdin) and explain from them")
    p.add_argument("--bearer-token-file", metavar="FILE",
                   help="the worker's web bearer token (default $ACCESSWATCH_WEB_BEARER_TOKEN_FILE)")
    p.add_argument("--basic-auth-file", metavar="FILE",
                   help="user:password for the worker's web port (first line used; default "
                        "$ACCESSWATCH_WEB_BASIC_AUTH_FILE)")
    p.add_argument("--output", choices=("text", "json", "html"), default="text",
                   help="what to print (default text)")
    p.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                   help="for --url (default 10)")
    from streams.config import add_config_argument  # the engine settings for --events

    add_config_argument(p)


def _authorization(args: argparse.Namespace) -> str | None:
    from streams.httpauth import (
        Authenticator,
        CredentialsError,
        authorization_for,
        env_authenticator,
    )

    try:
        if args.bearer_token_file or args.basic_auth_file:
            auth = Authenticator.from_files(args.bearer_token_file, args.basic_auth_file)
        else:
            auth = env_authenticator()
    except CredentialsError as exc:
        raise InputError(str(exc)) from None
    return authorization_for(auth)


def fetch(url: str, kind: str, ident: str, authorization: str | None,
          timeout: float = 10.0) -> dict[str, Any]:
    """The worker's view of ``(kind, ident)``; :class:`InputError` with one line otherwise."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InputError(f"--url {url!r}: not an http(s)://HOST:PORT URL")
    query = urllib.parse.urlencode({"kind": kind, "id": ident, "format": "json"})
    target = f"{url.rstrip('/')}/explain?{query}"
    headers = {"Accept": "application/json"}
    if authorization:
        headers["Authorization"] = authorization
    req = urllib.request.Request(target, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (--url)
            body = resp.read(MAX_ANSWER)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:  # nothing known: the body is still the view
            body = exc.read(MAX_ANSWER)
        elif exc.code == 401:
            raise InputError(f"{url}: HTTP 401, the worker wants credentials "
                             "(--bearer-token-file or --basic-auth-file)") from None
        elif exc.code == 400:
            raise InputError(f"{url}: {exc.read(500).decode('utf-8', 'replace').strip()}"
                             ) from None
        else:
            raise InputError(f"{url}: HTTP {exc.code}") from None
    except (OSError, urllib.error.URLError) as exc:
        raise InputError(f"{url}: {getattr(exc, 'reason', exc)}") from None
    try:
        view = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InputError(f"{url}: the answer is not JSON (is this a worker's web port?)"
                         ) from None
    if not isinstance(view, dict) or not isinstance(view.get("entity"), dict):
        raise InputError(f"{url}: the answer is not an entity page")
    return view


def from_events(paths: list[str], kind: str, ident: str,
                args: argparse.Namespace | None = None) -> dict[str, Any]:
    """The engine over ``paths`` (as ``replay``, no output; the engine settings of
    ``--config`` and the environment), then the view."""
    from streams.config import command_settings

    try:
        s = command_settings(args)
        engine = Engine(EngineConfig(detectors=s.detectors or None, params=s.engine_params(),
                                     max_entities=s.max_entities,
                                     max_state_bytes=s.max_state_bytes,
                                     timezone=s.timezone))
    except (ValueError, TypeError, KeyError) as exc:
        raise InputError(str(exc)) from None
    files = open_inputs(paths)
    try:
        replay(iter_lines(files), engine, None)
    finally:
        for f in files:
            if f is not sys.stdin.buffer:
                f.close()
    return explain([engine], kind, ident)


def run(args: argparse.Namespace) -> int:
    try:
        kind, ident = parse_entity(args.kind, args.id)
    except ExplainError as exc:
        raise InputError(str(exc)) from None
    if args.url:
        view = fetch(args.url, kind, ident, _authorization(args), args.timeout)
    elif args.events:
        view = from_events(args.events, kind, ident, args)
    else:
        raise InputError("give --url URL (a running worker's web port) or --events FILE...")
    if args.output == "json":
        sys.stdout.buffer.write(render_json(view))
    elif args.output == "html":
        sys.stdout.write(render_html(view))
    else:
        sys.stdout.write(render_text(view))
    sys.stdout.flush()
    return 0 if view.get("known") else 1
