"""``POST /feedback`` on the worker's web port: an analyst's verdict (issue 18 item 3).

The same verdict as ``accesswatch feedback`` (``streams.feedback``), written to the same
``access-feedback`` topic keyed by the id, which every worker reads: a JSON body
``{"id": ALERT_OR_INCIDENT_ID, "verdict": "benign"|"malicious", "reason": TEXT}``
(``alert_id`` is taken for ``id``). The worker sets ``feedback_id`` and ``ts`` (its wall
clock); the ``analyst`` is the user name of the request's Basic credentials when it has
them, else the body's ``analyst`` (the writer's word, as on the command line).

Registered only when the web port requires credentials (``ACCESSWATCH_WEB_*_FILE``): on an
open port anyone who reaches it could silence alerts. It sits behind the port's
authentication like every page (``streams.httpauth.aiohttp_middleware``), and takes only
``Content-Type: application/json``: a page on another site cannot send that from an
analyst's browser without a CORS preflight the worker never answers, so a logged-in browser
cannot be made to post a verdict (cross-site request forgery).

Answers: 202 with the message written, 400 with one line for a bad body, 415 for another
content type, 503 when the broker did not take it.
"""

from __future__ import annotations

import base64
import binascii
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from detectors.feedback import parse

log = logging.getLogger("accesswatch.feedback")

PATH = "/feedback"
MAX_BODY = 16 * 1024  # bytes of a verdict's body (a reason is cut to 1000 characters anyway)


def basic_user(authorization: str | None) -> str | None:
    """The user name of a ``Basic`` Authorization header (checked by the middleware)."""
    if not authorization or not authorization.startswith("Basic "):
        return None
    try:
        raw = base64.b64decode(authorization[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user = raw.split(":", 1)[0]
    return user or None


def answer(body: bytes, content_type: str, authorization: str | None, now: float
           ) -> tuple[int, dict[str, Any] | str]:
    """(status, the message to write) for a request, or (status, the reason it is refused).

    >>> answer(b'{"id": "in-1", "verdict": "malicious", "reason": "real"}',
    ...        "application/json", None, 5.0)[1]["alert_id"]
    'in-1'
    >>> answer(b'id=in-1', "application/x-www-form-urlencoded", None, 5.0)
    (415, 'the body must be application/json')
    """
    if content_type.split(";")[0].strip().lower() != "application/json":
        return 415, "the body must be application/json"
    if len(body) > MAX_BODY:
        return 400, f"the body is over {MAX_BODY} bytes"
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        return 400, "the body is not JSON"
    if not isinstance(obj, dict):
        return 400, "not a JSON object"
    ident = obj.get("id", obj.get("alert_id"))
    analyst = basic_user(authorization) or obj.get("analyst") or "unknown"
    msg = {"feedback_id": uuid.uuid4().hex, "ts": now, "alert_id": ident,
           "verdict": obj.get("verdict"), "reason": obj.get("reason"), "analyst": analyst}
    why = parse(msg)
    if isinstance(why, str):
        return 400, why.replace("alert_id", "id")
    return 202, msg


async def handle(body: bytes, content_type: str, authorization: str | None, now: float,
                 send: Callable[[bytes, bytes], Awaitable[Any]], topic: str
                 ) -> tuple[int, str, bytes]:
    """(status, content type, body) of a request: the verdict written through ``send(key,
    value)`` (to ``topic``), or the one-line reason it was not."""
    status, out = answer(body, content_type, authorization, now)
    if isinstance(out, str):
        return status, "text/plain", f"{out}\n".encode()
    try:
        await send(str(out["alert_id"]).encode(), orjson.dumps(out))
    except Exception as exc:  # the broker's reason, logged; the worker goes on
        log.warning("verdict not written to %s: %s", topic, type(exc).__name__)
        return 503, "text/plain", f"not written to {topic}: {type(exc).__name__}\n".encode()
    return status, "application/json", orjson.dumps(out)


def attach(app: Any, settings: Any) -> bool:
    """Register ``POST /feedback`` on ``app`` (a ``faust.App``) when the web port requires
    credentials; whether it did."""
    if not settings.web_auth():
        return False
    import time

    from faust.web import View

    name = settings.topics.feedback
    topic = app.topic(name, key_serializer="raw", value_serializer="raw")

    async def send(key: bytes, value: bytes) -> None:
        await topic.maybe_declare()  # the topic may not exist yet (as the command does)
        await topic.send(key=key, value=value)

    @app.page(PATH)
    class FeedbackView(View):
        async def post(self, request: Any) -> Any:
            status, ctype, body = await handle(
                await request.read(), request.headers.get("Content-Type", ""),
                request.headers.get("Authorization"), time.time(), send, name)
            return self.bytes(body, content_type=ctype, status=status,
                              headers={"X-Content-Type-Options": "nosniff"})

    return True
