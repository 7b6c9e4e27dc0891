"""``GET /explain?kind=KIND&id=ID[&format=json]`` on the worker's web port (issue 18 item 4).

The entity page of :func:`detectors.explain.explain` over the engines this worker holds: one
per input partition assigned to it, and the side engines that score where views meet
(bulk_lookup's sources and keys, the login bursts by AS, the episode builders that make the
alerts with more than one partition). HTML by default, JSON with
``format=json`` or an ``Accept: application/json`` header; 400 with one line for a bad kind or
id, 404 (the page still rendered) for an entity nothing is known about here.

Read-only: a GET reads the engines between two events (the handler never awaits while it
reads), changes nothing and is not counted in any metric. It sits behind the web port's
authentication like every page but ``/healthz`` and ``/readyz``
(``streams.httpauth.aiohttp_middleware``). The kind and the id are query parameters, not path
segments: subnet ids hold a ``/``.

A worker sees only its own partitions: with several workers an entity's alerts may be on
another one (the view names this worker's partitions). :func:`watch_everywhere` makes every
partition engine of the worker count an alerted entity's activity from its first alert on,
whichever engine raised it.
"""

from __future__ import annotations

from typing import Any

from detectors.explain import ExplainError, explain
from streams.explain_render import HTML_HEADERS, render_html, render_json

PATH = "/explain"


def engines_of(app: Any, rt: Any) -> list[Any]:
    """The engines of this worker: its input partitions', then its side engines'."""
    out = [st.engine for _, st in sorted(rt.parts.items())]
    comb = getattr(app, "accesswatch_combine", None)
    if comb is not None:
        out.extend(st.engine for _, st in sorted(comb.scorers.parts.items()))
    bursts = getattr(app, "accesswatch_bursts", None)
    if bursts is not None:
        out.extend(st.engine for _, st in sorted(bursts.engines.parts.items()))
    episodes = getattr(app, "accesswatch_episodes", None)  # issue 17.5: the episode builders
    if episodes is not None:
        out.extend(st.engine for _, st in sorted(episodes.engines.parts.items()))
    return out


def watch_everywhere(rt: Any, alert: dict[str, Any]) -> None:
    """Every input partition engine of ``rt`` counts the alert's entity from now on."""
    ent = alert.get("entity") or {}
    kind, ident = ent.get("kind"), ent.get("id")
    if not isinstance(kind, str) or not isinstance(ident, str):
        return
    for st in rt.parts.values():
        log = getattr(st.engine, "entity_log", None)
        if log is not None and st.engine.config.explain_alerts > 0:
            log.watch(kind, ident, st.engine.ctx.now)


def view_for(app: Any, rt: Any, kind: str, ident: str) -> dict[str, Any]:
    view = explain(engines_of(app, rt), kind, ident, directory=rt.directory)
    view["partitions"] = sorted(rt.parts)
    return view


def answer(query: Any, accept: str, view_of: Any
           ) -> tuple[int, str, dict[str, str], bytes]:
    """(status, content type, headers, body) of a request with ``query`` (its parameters)
    and ``accept`` (its Accept header); ``view_of(kind, id)`` builds the view."""
    as_json = query.get("format") == "json" or (
        "application/json" in accept and "text/html" not in accept)
    try:
        view = view_of(query.get("kind", ""), query.get("id", ""))
    except ExplainError as exc:
        return 400, "text/plain", {"X-Content-Type-Options": "nosniff"}, f"{exc}\n".encode()
    status = 200 if view["known"] else 404
    if as_json:
        return status, "application/json", {"Cache-Control": "no-store",
                                             "X-Content-Type-Options": "nosniff"}, \
            render_json(view)
    return status, "text/html", dict(HTML_HEADERS), render_html(view).encode()


def attach(app: Any, rt: Any) -> None:
    """Register the entity page on ``app`` (a ``faust.App``) for runtime ``rt``."""

    @app.page(PATH)
    async def explain_page(web: Any, request: Any) -> Any:
        status, ctype, headers, body = answer(
            request.query, request.headers.get("Accept", ""),
            lambda kind, ident: view_for(app, rt, kind, ident))
        if ctype == "text/html":
            return web.html(body.decode(), status=status, headers=headers)
        return web.bytes(body, content_type=ctype, status=status, headers=headers)
