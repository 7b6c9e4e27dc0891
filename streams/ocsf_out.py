"""Alerts as OCSF Detection Findings (class 2004), for a SIEM that speaks OCSF (issue 18.5).

:func:`to_finding` is a pure function of one engine alert (docs/contract.md, "Alert
contract"): the same alert gives the same finding, byte for byte. What it maps:

- ``activity_id``: 1 Create for the first alert of an episode (``episode.findings == 1``: the
  engine sends an episode's first finding and then only escalations), 2 Update for an
  escalation, 3 Close (``activity="close"``) when the episode has ended; ``status_id`` New,
  In Progress, Resolved alongside.
- ``severity_id``: info 1 Informational, warning 3 Medium, critical 5 Critical
  (:data:`SEVERITY_IDS`).
- ``finding_info``: ``uid`` the ``alert_id`` (one finding per episode: Updates and the Close
  carry the same uid), the detector's title, the summary, ``attacks`` one entry per ATT&CK
  technique id the detector declares (``Detector.attack``, the alert's ``attack``) with its
  tactic (:data:`TECHNIQUES`), the detector as the ``analytic``, first and last seen times.
- ``evidences``: one per evidence line (``name`` the feature, ``data`` observed / baseline /
  detail) and one with the ids of the events behind it.
- ``anomaly_analyses``: the evidence again as OCSF's anomaly analysis (what was observed
  against which baseline, for the alert's entity).
- ``resources``: the alert's entity (``type`` its kind, ``uid`` its id) and, only when the
  engine reveals victims (``victims`` on the alert, docs/contract.md "Victims"), one per
  victim; otherwise victims stay what the alert says: counts and salted digests in the
  summary and evidence, nothing more.
- ``metadata``: OCSF 1.5.0, the product (accesswatch, its version, the detector as the
  feature), ``uid`` unique per finding, ``correlation_uid`` the alert's ``incident_id``
  when it has one, ``labels`` the ATT&CK ids.

OCSF has one tactic per ``attacks`` entry; each technique is given the tactic it is best known
under (T1078 Valid Accounts: Initial Access, though ATT&CK also lists it under Persistence,
Privilege Escalation and Defense Evasion). The tables are written by hand from ATT&CK because
no maintained Python package ships them offline; ``tests/test_ocsf_out.py`` checks that every
technique a detector declares is in :data:`TECHNIQUES`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import Any

OCSF_VERSION = "1.5.0"
CLASS_UID = 2004  # Detection Finding
CATEGORY_UID = 2  # Findings
ACTIVITIES = {"create": (1, "Create"), "update": (2, "Update"), "close": (3, "Close")}
STATUSES = {"create": (1, "New"), "update": (2, "In Progress"), "close": (4, "Resolved")}
#: alert severity -> (OCSF severity_id, its caption)
SEVERITY_IDS = {"info": (1, "Informational"), "warning": (3, "Medium"),
                "critical": (5, "Critical")}
ANALYTIC_BEHAVIORAL = 2  # analytic.type_id: the detectors learn or compare behaviour

#: ATT&CK tactic id -> name
TACTICS = {
    "TA0001": "Initial Access",
    "TA0005": "Defense Evasion",
    "TA0006": "Credential Access",
    "TA0009": "Collection",
    "TA0010": "Exfiltration",
    "TA0011": "Command and Control",
}
#: ATT&CK technique or sub-technique id -> (name, tactic id)
TECHNIQUES = {
    "T1078": ("Valid Accounts", "TA0001"),
    "T1078.004": ("Cloud Accounts", "TA0001"),
    "T1090": ("Proxy", "TA0011"),
    "T1090.003": ("Multi-hop Proxy", "TA0011"),
    "T1110": ("Brute Force", "TA0006"),
    "T1110.001": ("Password Guessing", "TA0006"),
    "T1110.003": ("Password Spraying", "TA0006"),
    "T1110.004": ("Credential Stuffing", "TA0006"),
    "T1119": ("Automated Collection", "TA0009"),
    "T1213": ("Data from Information Repositories", "TA0009"),
    "T1530": ("Data from Cloud Storage", "TA0009"),
    "T1539": ("Steal Web Session Cookie", "TA0006"),
    "T1550": ("Use Alternate Authentication Material", "TA0005"),
    "T1550.001": ("Application Access Token", "TA0005"),
    "T1550.004": ("Web Session Cookie", "TA0005"),
    "T1552": ("Unsecured Credentials", "TA0006"),
    "T1552.004": ("Private Keys", "TA0006"),
    "T1567": ("Exfiltration Over Web Service", "TA0010"),
    "T1606": ("Forge Web Credentials", "TA0006"),
    "T1606.001": ("Web Cookies", "TA0006"),
}
ATTACK_URL = "https://attack.mitre.org"


@cache
def _titles() -> dict[str, str]:
    from detectors.engine import discover

    return {i: cls.title for i, cls in discover().items()}


@cache
def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("accesswatch")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0"


def _ms(ts: object) -> int:
    """An alert time (RFC 3339 with a zone, as the engine writes it) as epoch milliseconds."""
    if isinstance(ts, int | float) and not isinstance(ts, bool):
        return int(ts * 1000)
    if not isinstance(ts, str):
        raise ValueError(f"alert time is not RFC 3339: {ts!r:.40}")
    dt = datetime.fromisoformat(ts)
    if dt.tzinfo is None:
        raise ValueError(f"alert time has no time zone: {ts:.40}")
    return int(round(dt.timestamp() * 1000))


def attack_entry(technique_id: str) -> dict[str, Any]:
    """One ``finding_info.attacks`` entry (OCSF ``attack`` object) for a technique id.

    >>> attack_entry("T1110.004")["sub_technique"]
    {'uid': 'T1110.004', 'name': 'Credential Stuffing', 'src_url': 'https://attack.mitre.org/techniques/T1110/004/'}
    >>> attack_entry("T1110.004")["tactic"]["name"]
    'Credential Access'
    """
    parent = technique_id.split(".", 1)[0]
    name, tactic = TECHNIQUES.get(technique_id, (technique_id, None))
    parent_name = TECHNIQUES.get(parent, (parent, None))[0]
    entry: dict[str, Any] = {"technique": {
        "uid": parent, "name": parent_name,
        "src_url": f"{ATTACK_URL}/techniques/{parent}/"}}
    if parent != technique_id:
        entry["sub_technique"] = {
            "uid": technique_id, "name": name,
            "src_url": f"{ATTACK_URL}/techniques/{technique_id.replace('.', '/')}/"}
    if tactic is not None:
        entry["tactic"] = {"uid": tactic, "name": TACTICS[tactic],
                           "src_url": f"{ATTACK_URL}/tactics/{tactic}/"}
    return entry


def _text(v: object) -> str:
    if isinstance(v, str):
        return v
    import orjson

    return orjson.dumps(v, default=str).decode()


def _evidence_lines(alert: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    ev = alert.get("evidence")
    return [e for e in ev if isinstance(e, Mapping)] if isinstance(ev, list) else []


def _anomaly_analysis(alert: Mapping[str, Any], entity: Mapping[str, Any]
                      ) -> list[dict[str, Any]]:
    anomalies, baselines = [], []
    for e in _evidence_lines(alert):
        feature = str(e.get("feature") or e.get("name") or "evidence")
        anomalies.append({"observation_parameter": feature, "observations": [
            {"parameter": feature, "value": _text(e.get("observed"))}]})
        if e.get("baseline") is not None:
            baselines.append({"observation_parameter": feature, "observations": [
                {"parameter": feature, "value": _text(e.get("baseline"))}]})
    if not anomalies:
        return []
    out: dict[str, Any] = {
        "analysis_targets": [{"name": str(entity["id"]), "type": str(entity["kind"])}],
        "anomalies": anomalies,
    }
    if baselines:
        out["baselines"] = baselines
    return [out]


def to_finding(alert: Mapping[str, Any], activity: str | None = None,
               time_ms: int | None = None) -> dict[str, Any]:
    """The OCSF Detection Finding of one engine alert (see the module docstring).

    ``activity``: "create", "update" or "close"; by default Create for an episode's first
    alert and Update for an escalation. ``time_ms``: the finding's time (a Close's is when
    the episode ended); by default the alert's ``ts``. ``ValueError`` for an alert that
    does not follow the contract.
    """
    for key in ("alert_id", "ts", "detector", "severity", "entity"):
        if key not in alert:
            raise ValueError(f"alert lacks {key}")
    entity = alert["entity"]
    if not isinstance(entity, Mapping) or "kind" not in entity or "id" not in entity:
        raise ValueError("alert entity must be an object with kind and id")
    if alert["severity"] not in SEVERITY_IDS:
        raise ValueError(f"alert severity must be one of {', '.join(SEVERITY_IDS)}")
    episode: Any = alert.get("episode") if isinstance(alert.get("episode"), Mapping) else {}
    count = episode.get("findings", 1)
    count = count if isinstance(count, int) and not isinstance(count, bool) and count > 0 else 1
    if activity is None:
        activity = "create" if count == 1 else "update"
    if activity not in ACTIVITIES:
        raise ValueError(f"activity must be one of {', '.join(ACTIVITIES)}")
    detector = str(alert["detector"])
    alert_id = str(alert["alert_id"])
    title = _titles().get(detector, detector)
    seen_ms = _ms(alert["ts"])
    started_ms = _ms(episode["started"]) if "started" in episode else seen_ms
    at_ms = seen_ms if time_ms is None else int(time_ms)
    attack = [str(t) for t in alert.get("attack") or () if isinstance(t, str)]
    activity_id, activity_name = ACTIVITIES[activity]
    status_id, status = STATUSES[activity]
    severity_id, severity = SEVERITY_IDS[alert["severity"]]
    summary = str(alert.get("summary") or title)

    info: dict[str, Any] = {
        "uid": alert_id,
        "title": title,
        "desc": summary,
        "types": [detector],
        "analytic": {"uid": detector, "name": title, "type_id": ANALYTIC_BEHAVIORAL,
                     "type": "Behavioral"},
        "created_time": started_ms,
        "first_seen_time": started_ms,
        "last_seen_time": seen_ms,
        "modified_time": at_ms,
    }
    if attack:
        info["attacks"] = [attack_entry(t) for t in attack]
    evidences: list[dict[str, Any]] = []
    for e in _evidence_lines(alert):
        data = {k: v for k, v in e.items() if k != "feature"}
        evidences.append({"name": str(e.get("feature") or "evidence"), "data": data})
    event_ids = alert.get("event_ids")
    if isinstance(event_ids, list) and event_ids:
        evidences.append({"name": "event_ids", "data": {"event_ids": [str(i) for i in event_ids]}})
    resources: list[dict[str, Any]] = [{"type": str(entity["kind"]), "uid": str(entity["id"]),
                                        "name": str(entity["id"])}]
    victims = alert.get("victims")
    if isinstance(victims, list):  # revealing is configured: the SIEM maps digests back
        for v in victims:
            if isinstance(v, Mapping) and "id" in v:
                resources.append({"type": f"victim:{v.get('kind', 'customer')}",
                                  "uid": str(v["id"]), "labels": [str(v.get("digest", ""))]})
    metadata: dict[str, Any] = {
        "version": OCSF_VERSION,
        "product": {"name": "accesswatch", "vendor_name": "accesswatch",
                    "version": _version(), "feature": {"name": detector, "uid": detector}},
        "uid": f"{alert_id}:{activity_name.lower()}:{count}",
        "event_code": detector,
    }
    if attack:
        metadata["labels"] = attack
    if isinstance(alert.get("incident_id"), str):  # issue 18.1's incidents, when present
        metadata["correlation_uid"] = alert["incident_id"]
    finding: dict[str, Any] = {
        "activity_id": activity_id,
        "activity_name": activity_name,
        "category_uid": CATEGORY_UID,
        "category_name": "Findings",
        "class_uid": CLASS_UID,
        "class_name": "Detection Finding",
        "type_uid": CLASS_UID * 100 + activity_id,
        "type_name": f"Detection Finding: {activity_name}",
        "time": at_ms,
        "start_time": started_ms,
        "severity_id": severity_id,
        "severity": severity,
        "status_id": status_id,
        "status": status,
        "message": summary,
        "count": count,
        "finding_info": info,
        "resources": resources,
        "metadata": metadata,
    }
    score = alert.get("score")
    if isinstance(score, int | float) and not isinstance(score, bool):
        finding["risk_score"] = int(round(min(1.0, max(0.0, float(score))) * 100))
    if activity == "close":
        finding["end_time"] = at_ms
    if evidences:
        finding["evidences"] = evidences
    analyses = _anomaly_analysis(alert, entity)
    if analyses:
        finding["anomaly_analyses"] = analyses
    return finding


class Findings:
    """The alerts of a run as findings, with a Close when an episode ends.

    Holds the last alert of each open episode (what a Close repeats); ``add`` turns an alert
    into its Create or Update, ``ended`` writes the Close of each episode an engine has
    ended. ``replay --output ocsf`` and the worker's ``alerts_format = "ocsf"`` use it."""

    def __init__(self, max_open: int = 100_000) -> None:
        self.open: dict[str, Mapping[str, Any]] = {}
        self.max_open = max_open  # a bound: episodes of partitions moved to another worker

    def add(self, alert: Mapping[str, Any]) -> dict[str, Any]:
        aid = str(alert["alert_id"])
        self.open.pop(aid, None)  # re-inserted last: the oldest open episodes come first
        self.open[aid] = alert
        while len(self.open) > self.max_open:
            del self.open[next(iter(self.open))]
        return to_finding(alert)

    def close(self, alert_id: str, time_ms: int) -> dict[str, Any] | None:
        alert = self.open.pop(alert_id, None)
        if alert is None:
            return None
        return to_finding(alert, "close", max(time_ms, _ms(alert["ts"])))

    def ended(self, engine: Any, sole: bool = False, now: float | None = None
              ) -> list[dict[str, Any]]:
        """The Close findings of the open episodes that ``engine`` (a
        ``detectors.engine.Engine``) has ended: closed (a quiet ``episode_gap``, superseded by
        a newer episode, evicted at the state cap) or quiet for longer than ``episode_gap``
        at its latest event time (its next sweep closes it). Episodes that are not this
        engine's are left alone (another partition's engine ends them), unless ``sole``:
        every open episode is this engine's (``replay``), so one it no longer holds has
        ended even when it has forgotten the closed episode too. The Close's time is the
        engine's event time, or ``now`` when given (an episode builder, whose own time is its
        last finding's: the time every input partition has passed). Read-only on the engine."""
        if not self.open:
            return []
        gap = engine.config.episode_gap
        now = engine.ctx.now if now is None else max(now, engine.ctx.now)
        current, closed = engine.episodes, engine._closed
        out = []
        for aid, alert in list(self.open.items()):
            entity = alert["entity"]
            key = (alert["detector"], entity["kind"], entity["id"])
            ep = current.get(key)
            if ep is not None and ep.alert_id == aid:
                if now - ep.last <= gap:
                    continue
            elif not sole and not any(c.alert_id == aid for c in closed.get(key, ())):
                continue
            f = self.close(aid, int(now * 1000))
            if f is not None:
                out.append(f)
        return out
