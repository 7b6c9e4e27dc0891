"""Analyst feedback on alerts (issue 18 item 3): verdicts read from ``access-feedback``.

A verdict names an alert id or an incident id (``in-...``, in the ``alert_id`` field),
``benign`` or ``malicious``, a reason and the analyst. The engine that holds the alert's
episode (for an incident: the episodes of its alerts) applies it (the others do not know the
id and ignore it; every worker reads every verdict):

- ``benign``: that detector's findings about that entity are held back until the verdict's
  time plus ``EngineConfig.feedback_suppress`` (a suppression entry of the allow-list kind,
  owner the analyst; counted as ``suppressed_alerts{reason="feedback"}`` and kept like the
  allow-list's). The alert's episode is closed: the first finding after the suppression
  opens a new episode, so it pages again. The verdict itself is an info alert (detector
  ``allowlist``) naming the analyst: a benign verdict silences, so it is watched like an
  allow-list change. On an incident: the same for each detector/entity pair of the
  incident's alerts this engine holds (one info alert each); on an alert, only its own pair.
- ``malicious``: the entities linked to the alert's incident are watched until the verdict's
  time plus ``EngineConfig.feedback_watch``: the alert's own entity, the entities of the
  incident's alerts this engine holds, and the incident's linking entity
  (``detectors.incidents``: a key, a hosting AS, a /24, a principal), so that a later
  finding whose alert would link to it (another server of the AS, a request presenting the
  key) is watched too. Every finding about a watched entity is raised one severity step
  (info to warning, warning to critical), so it pages at a lower bar, and its evidence says
  why.

The detectors keep learning from every event whatever the verdicts: findings are held back
after the detectors have seen the events, so a benign verdict changes what pages, not what
the models learn.

>>> parse({"alert_id": "aw-1", "verdict": "benign", "reason": "office NAT",
...        "analyst": "alice", "ts": 100}).verdict
'benign'
>>> parse({"alert_id": "aw-1", "verdict": "maybe", "reason": "x", "ts": 1})
'verdict must be one of benign, malicious'
"""

from __future__ import annotations

import math
from typing import Any

import msgspec

VERDICTS = ("benign", "malicious")
MAX_TEXT = 1000  # reason, analyst and ids are cut to this many characters


class Verdict(msgspec.Struct, frozen=True):
    alert_id: str
    verdict: str
    reason: str
    analyst: str
    ts: float
    feedback_id: str = ""


def parse(obj: Any) -> Verdict | str:
    """A verdict from a decoded message, or the reason it is not one (every field a
    producer sends may be chosen by an attacker: types and sizes are checked)."""
    if not isinstance(obj, dict):
        return "not a JSON object"
    alert_id, verdict, reason = obj.get("alert_id"), obj.get("verdict"), obj.get("reason")
    analyst, ts, fid = obj.get("analyst", ""), obj.get("ts"), obj.get("feedback_id", "")
    if not isinstance(alert_id, str) or not alert_id or len(alert_id) > 200:
        return "alert_id must be a non-empty string (at most 200 characters)"
    if verdict not in VERDICTS:
        return f"verdict must be one of {', '.join(VERDICTS)}"
    if not isinstance(reason, str) or not reason.strip():
        return "reason must be a non-empty string"
    if not isinstance(analyst, str) or not isinstance(fid, str):
        return "analyst and feedback_id must be strings"
    if isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(ts):
        return "ts must be epoch seconds"
    return Verdict(alert_id, verdict, reason[:MAX_TEXT], analyst[:MAX_TEXT] or "unknown",
                   float(ts), fid[:200])
