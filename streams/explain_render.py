"""The entity page's three renderings of :func:`detectors.explain.explain`'s view: JSON, a small
self-contained HTML page (an inline SVG timeline, no script) and terminal text.

Every string of the view may be attacker-chosen (entity ids, summaries quoting them, evidence,
incident ids): the HTML escapes each one with :func:`html.escape` (quotes included) where it is
written, the SVG is built from numbers and escaped text only, and the page is served with a
Content-Security-Policy that allows no script at all (:data:`HTML_HEADERS`). The terminal
text shows control characters as ``\\xNN`` escapes, so an id cannot move the cursor, recolour
the terminal or rewrite a line it follows.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from typing import Any

import orjson

#: served with the HTML page: no script, no external resource, no framing, no sniffing
HTML_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "img-src data:; frame-ancestors 'none'; base-uri 'none'; "
                               "form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def safe_text(value: Any) -> str:
    """``value`` as one terminal-safe line: control and bidi characters as escapes."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                        else f"\\u{ord(m.group()):04x}", str(value))


def render_json(view: dict[str, Any]) -> bytes:
    return orjson.dumps(view, option=orjson.OPT_INDENT_2) + b"\n"


# --------------------------------------------------------------------------- terminal


def render_text(view: dict[str, Any]) -> str:
    e = view["entity"]
    out = [f"{safe_text(e['kind'])} {safe_text(e['id'])}"]
    if not view.get("known"):
        out.append("  nothing known about this entity here (no alert kept, no baseline held)")
    if view.get("as_of"):
        out.append(f"  as of {view['as_of']} (event time)")
    if view.get("partitions") is not None:
        out.append(f"  this worker's partitions: {view['partitions']}")
    ident = view.get("identity") or {}
    if ident:
        out.append("  identity: " + ", ".join(f"{k} {safe_text(v)}" for k, v in ident.items()))
    if view.get("incidents"):
        out.append("  incidents: " + ", ".join(safe_text(i) for i in view["incidents"]))
    out.append(f"\nalerts ({len(view['alerts'])}):")
    for a in view["alerts"]:
        inc = f"  incident {safe_text(a['incident_id'])}" if a.get("incident_id") else ""
        out.append(f"  {a['ts']}  {safe_text(a.get('severity'))}  "
                   f"{safe_text(a.get('detector'))}  {safe_text(a.get('alert_id'))}{inc}")
        out.append(f"    {safe_text(a.get('summary', ''))}")
    if view.get("evidence"):
        out.append("\nevidence (latest alert of each detector):")
        for block in view["evidence"]:
            out.append(f"  {safe_text(block['detector'])}:")
            for line in block["lines"]:
                detail = f"  ({safe_text(line['detail'])})" if line.get("detail") else ""
                out.append(f"    {safe_text(line.get('feature'))}: "
                           f"{safe_text(line.get('observed'))} vs "
                           f"{safe_text(line.get('baseline'))}{detail}")
    if view.get("baselines"):
        out.append("\nbaselines against peers:")
        for b in view["baselines"]:
            rest = ", ".join(f"{k} {safe_text(v)}" for k, v in b.items()
                             if k not in ("detector", "feature"))
            out.append(f"  {safe_text(b.get('detector'))} {safe_text(b.get('feature', ''))}: "
                       f"{rest}")
    if view.get("activity"):
        out.append("\nactivity per hour (events, alerts):")
        peak = max(1, *(h["events"] for h in view["activity"]))
        for h in view["activity"]:
            bar = "#" * max(1 if h["events"] else 0, round(40 * h["events"] / peak))
            alerts = f"  {h['alerts']} alert(s)" if h["alerts"] else ""
            out.append(f"  {h['hour'][:13]}h  {h['events']:>7}  {bar}{alerts}")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- HTML

_E = html.escape  # quote=True by default: safe in text and in quoted attributes

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;max-width:72em}
h1{font-size:1.3em}h2{font-size:1.1em;margin-top:1.4em}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left;
vertical-align:top}code{background:#f3f3f3;padding:0 .2em;word-break:break-all}
.critical{color:#b00;font-weight:bold}.warning{color:#b60}.info{color:#067}.muted{color:#777}
"""


def _cell(value: Any) -> str:
    return "<td>" + _E("" if value is None else str(value)) + "</td>"


def timeline_svg(view: dict[str, Any], width: int = 720, height: int = 160) -> str:
    """Events per hour as bars, each alert as a red tick at its time (numbers and escaped
    text only)."""
    hours = view.get("activity") or []
    alerts = view.get("alerts") or []
    times = [h["t"] for h in hours] + [a["t"] for a in alerts if isinstance(a.get("t"), float | int)]
    if not times:
        return '<p class="muted">no activity recorded for this entity</p>'
    t0 = min(times) // 3600 * 3600
    t1 = max(max(times) // 3600 * 3600 + 3600, t0 + 3600)
    left, bottom, top = 40, 20, 10
    plot_w, plot_h = width - left - 10, height - bottom - top
    peak = max([1] + [h["events"] for h in hours])

    def x(t: float) -> float:
        return left + plot_w * (t - t0) / (t1 - t0)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}">',
             "<title>activity per hour and alerts</title>",
             f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" '
             f'y2="{top + plot_h}" stroke="#888"/>',
             f'<text x="2" y="{top + 10}" font-size="10">{peak}</text>',
             f'<text x="2" y="{top + plot_h}" font-size="10">0</text>']
    bar_w = max(1.0, plot_w * 3600 / (t1 - t0) - 2)
    for h in hours:
        bh = plot_h * h["events"] / peak
        parts.append(f'<rect class="events" x="{x(h["t"]) + 1:.1f}" y="{top + plot_h - bh:.1f}" '
                     f'width="{bar_w:.1f}" height="{bh:.1f}" fill="#7aa6d6">'
                     f'<title>{_E(h["hour"])}: {int(h["events"])} events</title></rect>')
    for a in alerts:
        if not isinstance(a.get("t"), float | int):
            continue
        ax = x(a["t"])
        parts.append(f'<line class="alert" x1="{ax:.1f}" y1="{top}" x2="{ax:.1f}" '
                     f'y2="{top + plot_h}" stroke="#c00" stroke-width="2">'
                     f'<title>{_E(str(a.get("ts")))} {_E(str(a.get("detector")))} '
                     f'{_E(str(a.get("severity")))}</title></line>')
    for t, anchor in ((t0, "start"), (t1, "end")):
        label = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M")
        parts.append(f'<text x="{x(t):.1f}" y="{height - 4}" font-size="10" '
                     f'text-anchor="{anchor}">{label}</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_html(view: dict[str, Any]) -> str:
    e = view["entity"]
    title = f"{e['kind']} {e['id']}"
    out = ["<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
           f"<title>accesswatch: {_E(title)}</title><style>{_STYLE}</style></head><body>",
           f'<h1>{_E(e["kind"])} <code id="entity-id">{_E(e["id"])}</code></h1>']
    meta = []
    if view.get("as_of"):
        meta.append(f"as of {_E(view['as_of'])} (event time)")
    if view.get("partitions") is not None:
        meta.append("this worker's partitions: " + _E(", ".join(map(str, view["partitions"]))))
    if meta:
        out.append(f'<p class="muted">{" · ".join(meta)}</p>')
    if not view.get("known"):
        out.append("<p>Nothing is known about this entity here: no alert kept, no baseline "
                   "held.</p>")
    ident = view.get("identity") or {}
    if ident:
        out.append("<h2>Identity</h2><table>" + "".join(
            f"<tr><th>{_E(k)}</th>{_cell(v if not isinstance(v, list) else ', '.join(v))}</tr>"
            for k, v in ident.items()) + "</table>")
    if view.get("incidents"):
        out.append("<h2>Incidents</h2><ul>" + "".join(
            f"<li><code>{_E(i)}</code></li>" for i in view["incidents"]) + "</ul>")
    out.append("<h2>Timeline</h2>" + timeline_svg(view))
    out.append(f"<h2>Alerts ({len(view['alerts'])})</h2>")
    if view["alerts"]:
        out.append('<table id="alerts"><tr><th>time</th><th>severity</th><th>detector</th>'
                   "<th>summary</th><th>alert</th><th>incident</th></tr>")
        for a in view["alerts"]:
            sev = str(a.get("severity"))
            cls = sev if sev in ("info", "warning", "critical") else ""
            out.append(f'<tr class="alert-row">{_cell(a.get("ts"))}'
                       f'<td class="{cls}">{_E(sev)}</td>{_cell(a.get("detector"))}'
                       f'{_cell(a.get("summary"))}<td><code>{_E(str(a.get("alert_id")))}'
                       f'</code></td>{_cell(a.get("incident_id"))}</tr>')
        out.append("</table>")
    if view.get("evidence"):
        out.append("<h2>Evidence (latest alert of each detector)</h2>")
        for block in view["evidence"]:
            out.append(f"<h3>{_E(block['detector'])} <code>{_E(block['alert_id'])}</code></h3>"
                       "<table><tr><th>feature</th><th>observed</th><th>baseline</th>"
                       "<th>detail</th></tr>")
            for line in block["lines"]:
                out.append("<tr>" + "".join(_cell(line.get(k)) for k in
                                            ("feature", "observed", "baseline", "detail"))
                           + "</tr>")
            out.append("</table>")
    if view.get("baselines"):
        keys: list[str] = []
        for b in view["baselines"]:
            keys.extend(k for k in b if k not in keys)
        out.append("<h2>Baselines against peers</h2><table><tr>"
                   + "".join(f"<th>{_E(k)}</th>" for k in keys) + "</tr>")
        for b in view["baselines"]:
            out.append("<tr>" + "".join(_cell(b.get(k)) for k in keys) + "</tr>")
        out.append("</table>")
    out.append('<p class="muted">read-only · accesswatch entity page · '
               "<code>?format=json</code> for the same as JSON</p></body></html>\n")
    return "".join(out)
