"""Send accesswatch alerts to Alertmanager (API v2) and keep them alive while they last.

One :class:`AlertmanagerSender` per worker. The agents hand it every alert the engine
emits, repeats included (``submit(alert)``: cheap, non-blocking, thread-safe); it owns
what Alertmanager needs to page exactly once per episode:

- Each alert becomes an Alertmanager alert with labels ``alertname="AccesswatchAnomaly"``,
  ``detector``, ``severity``, ``entity_kind``, ``entity_id``, ``alert_id`` and
  ``incident_id`` (the deploy config groups by it: one attack pages once, then updates; an
  alert without one gets ``entity:KIND:ID``, its entity's group as before incidents), and
  ``attack`` (the detector's ATT&CK technique ids, comma-separated; issue 18.5);
  annotations ``incident_title`` and ``incident_story`` tell the incident so far. The engine's
  ``alert_id`` is stable for one detector, entity and episode, so the same episode always
  has the same labels, hence the same Alertmanager fingerprint: re-posting it is a no-op
  for Alertmanager's deduplication, and a new episode is a new page. Annotations carry the
  summary and evidence as the engine wrote them (victims as digests and counts); an alert's
  ``victims`` field (victims' ids, when the engine reveals them) is never copied into either.
- ``startsAt`` is the alert's event time; ``endsAt`` is now + ``resolve_window`` while the
  episode is active, and the alert is re-posted every ``resend_interval`` seconds, so it
  stays firing as long as this worker lives and resolves by itself if the worker dies.
  Re-posting is also what survives an Alertmanager restart: a restarted Alertmanager
  learns the alert again at the next re-post, with the same fingerprint and ``startsAt``.
- An episode goes quiet when no alert with its ``alert_id`` was submitted for
  ``episode_ttl`` seconds (wall clock), or when ``resolve(alert_id)`` is called; the
  sender then posts it once more with ``endsAt`` at that moment (in the past on arrival),
  which resolves it.
- Every URL in ``urls`` gets every post (an Alertmanager HA pair gossips and dedupes).
  A URL that fails is retried with exponential back-off (``backoff_initial`` doubling up
  to ``backoff_max``); what it missed is sent when it answers again.
- ``submit`` puts alerts on a bounded queue (``queue_max``); when it is full the alert
  is dropped and ``accesswatch_alertmanager_dropped_total`` goes up. The same bound
  applies to the number of open episodes.

Two ways to run it (use one, not both):

- a background thread: ``sender.start()`` … ``sender.flush(5); sender.stop()``;
- inside asyncio / Faust: ``await sender.run()`` as a task (``@app.task``), which posts
  from a worker thread via ``asyncio.to_thread`` so the event loop never blocks, and
  returns after ``sender.stop()``; call ``flush()`` from an ``on_shutdown`` hook.

HTTP is stdlib ``urllib`` (blocking, hence the thread). Time for episodes and re-posts is
wall-clock time (Alertmanager's time), never event time. :class:`HttpClientConfig` adds
what Alertmanager's own ``http_config`` offers: a bearer token or basic auth, a CA bundle
and a client certificate (mutual TLS), host names always verified. A post that fails for
a reason the operator must fix (an untrusted certificate, refused credentials) is logged
once at error level and retried like any other failure.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import re
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry

from streams.metrics import Metrics

log = logging.getLogger(__name__)

ALERTNAME = "AccesswatchAnomaly"
API_PATH = "/api/v2/alerts"
DEFAULT_RUNBOOK_BASE = "https://github.com/accesswatch/accesswatch/blob/main"
REQUIRED_FIELDS = ("alert_id", "ts", "detector", "severity", "entity")
SEVERITIES = ("info", "warning", "critical")
MAX_ANNOTATION_CHARS = 2000
#: alert fields that never reach Alertmanager (nor the chat and pager receivers behind it):
#: ``victims`` holds victims' ids when the engine reveals them (docs/contract.md, "Victims")
PRIVATE_FIELDS = ("victims",)
MAX_EVENT_IDS = 10
_ATTACK_ID = re.compile(r"T[0-9]{4}(?:\.[0-9]{3})?")
POST_CHUNK = 500

Clock = Callable[[], float]
Poster = Callable[[str, bytes, float], None]


class AlertFormatError(ValueError):
    """An alert dict that does not follow the alert contract."""


@dataclass
class _Episode:
    alert_id: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: float
    last_seen: float
    ends_at: float | None = None  # set when resolved
    # url -> wall time of the last successful post of the current state (None: not yet).
    delivered: dict[str, float | None] = field(default_factory=dict)

    @property
    def resolved(self) -> bool:
        return self.ends_at is not None


def parse_ts(value: object) -> float:
    """An alert ``ts`` (RFC 3339 with a zone, or epoch seconds) as epoch seconds."""
    if isinstance(value, bool):
        raise AlertFormatError("ts must be RFC 3339 or epoch seconds, not a boolean")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            raise AlertFormatError(f"ts is not RFC 3339: {value[:40]!r}") from None
        if dt.tzinfo is None:
            raise AlertFormatError(f"ts has no time zone: {value[:40]!r}")
        return dt.timestamp()
    raise AlertFormatError(f"ts must be RFC 3339 or epoch seconds, not {type(value).__name__}")


def rfc3339(epoch: float) -> str:
    """Epoch seconds as RFC 3339 UTC with milliseconds (what Alertmanager parses)."""
    dt = datetime.fromtimestamp(epoch, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _scalar(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, str | int | bool) or v is None:
        return str(v)
    return json.dumps(v, separators=(",", ":"), sort_keys=True, default=str)


def evidence_text(evidence: object) -> str:
    """Evidence items as one compact line for an annotation.

    >>> evidence_text([{"feature": "distinct_accounts_1h", "value": 4210, "baseline": 12.5},
    ...                {"country": "SG", "usual": "KR"}])
    'distinct_accounts_1h=4210 (baseline 12.5); country=SG usual=KR'
    """
    if not isinstance(evidence, list):
        return _scalar(evidence) if evidence is not None else ""
    parts: list[str] = []
    for item in evidence:
        if not isinstance(item, Mapping):
            parts.append(_scalar(item))
            continue
        item = dict(item)
        name = item.pop("feature", None) or item.pop("name", None)
        if name is not None and "value" in item:
            text = f"{name}={_scalar(item.pop('value'))}"
            if "baseline" in item:
                text += f" (baseline {_scalar(item.pop('baseline'))})"
            rest = " ".join(f"{k}={_scalar(v)}" for k, v in item.items())
            parts.append(f"{text} {rest}".rstrip())
        else:
            if name is not None:
                item = {"feature": name, **item}
            parts.append(" ".join(f"{k}={_scalar(v)}" for k, v in item.items()))
    return _truncate("; ".join(parts))


def _truncate(text: str) -> str:
    if len(text) <= MAX_ANNOTATION_CHARS:
        return text
    return text[: MAX_ANNOTATION_CHARS - 1] + "…"


def public_view(alert: Mapping[str, Any]) -> dict[str, Any]:
    """The alert without its :data:`PRIVATE_FIELDS`: all that labels and annotations are
    built from.

    >>> public_view({"alert_id": "aw-1", "victims": [{"kind": "customer", "id": "c-1"}]})
    {'alert_id': 'aw-1'}
    """
    return {k: v for k, v in alert.items() if k not in PRIVATE_FIELDS}


def alert_labels(alert: Mapping[str, Any]) -> dict[str, str]:
    """The Alertmanager labels of an engine alert (its identity: same labels, same page)."""
    alert = public_view(alert)
    missing = [f for f in REQUIRED_FIELDS if f not in alert]
    if missing:
        raise AlertFormatError(f"alert lacks field(s): {', '.join(missing)}")
    entity = alert["entity"]
    if not isinstance(entity, Mapping) or "kind" not in entity or "id" not in entity:
        raise AlertFormatError("alert entity must be an object with kind and id")
    for key in ("alert_id", "detector", "severity"):
        if not isinstance(alert[key], str) or not alert[key]:
            raise AlertFormatError(f"alert {key} must be a non-empty string")
    if alert["severity"] not in SEVERITIES:
        raise AlertFormatError(f"alert severity must be one of {', '.join(SEVERITIES)}")
    incident = alert.get("incident_id")
    if incident is None:  # an alert from before incidents: its entity is its incident
        incident = f"entity:{entity['kind']}:{entity['id']}"
    elif not isinstance(incident, str) or not incident:
        raise AlertFormatError("alert incident_id must be a non-empty string")
    labels = {
        "alertname": ALERTNAME,
        "detector": alert["detector"],
        "severity": alert["severity"],
        "entity_kind": str(entity["kind"]),
        "entity_id": str(entity["id"]),
        "alert_id": alert["alert_id"],
        "incident_id": incident,
    }
    attack = attack_label(alert.get("attack"))
    if attack:
        labels["attack"] = attack
    return labels


def attack_label(attack: object) -> str:
    """The ``attack`` label: the alert's ATT&CK technique ids, comma-separated, those that
    look like one only (``T`` and 4 digits, ``.`` and 3 more for a sub-technique); empty when
    the alert has none (an alert from before issue 18 gets no label, not an empty one).

    >>> attack_label(["T1078.004", "T1110.004"])
    'T1078.004,T1110.004'
    >>> attack_label(["T1078", "T1078; drop", 7])
    'T1078'
    """
    if not isinstance(attack, list | tuple):
        return ""
    return ",".join(t for t in attack if isinstance(t, str) and _ATTACK_ID.fullmatch(t))


def alert_annotations(alert: Mapping[str, Any], runbook_base: str) -> dict[str, str]:
    """Human-facing annotations: summary, compact evidence, runbook link, score, events.
    Victims appear here as the engine wrote them in summary and evidence: digests and counts."""
    alert = public_view(alert)
    ann = {
        "summary": _truncate(str(alert.get("summary") or "")),
        "evidence": evidence_text(alert.get("evidence")),
        "runbook_url": f"{runbook_base.rstrip('/')}/docs/detectors.md#{alert['detector']}",
    }
    score = alert.get("score")
    if isinstance(score, int | float) and not isinstance(score, bool):
        ann["score"] = f"{score:.3f}"
    event_ids = alert.get("event_ids")
    if isinstance(event_ids, list) and event_ids:
        ann["event_ids"] = ",".join(str(e) for e in event_ids[:MAX_EVENT_IDS])
    incident = alert.get("incident")
    if isinstance(incident, Mapping):
        for key in ("title", "story"):
            if isinstance(incident.get(key), str):
                ann[f"incident_{key}"] = _truncate(incident[key])
    return ann


def _normalise_url(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith(API_PATH) else url + API_PATH


def urllib_post(url: str, body: bytes, timeout: float) -> None:
    """POST ``body`` as JSON; raise on any transport error or non-2xx answer."""
    req = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (http(s) only)
        resp.read()


# ---- transport security: authentication and TLS of the push (issue 12, exposure) --------


@dataclass(frozen=True)
class HttpClientConfig:
    """How the sender authenticates to Alertmanager and which server it trusts.

    The same choices as Alertmanager's and Prometheus's own ``http_config``: a bearer
    token or basic auth (from files), a CA bundle, a client certificate and key for mutual
    TLS. Host names are always verified (``ssl.create_default_context``)."""

    bearer_token: str | None = field(default=None, repr=False)
    basic_auth: tuple[str, str] | None = field(default=None, repr=False)
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    @classmethod
    def from_files(
        cls,
        *,
        bearer_token_file: str | None = None,
        basic_auth_file: str | None = None,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
    ) -> HttpClientConfig:
        """Read the secret files (raises ``CredentialsError``/``ValueError``, one line)."""
        from streams.httpauth import read_basic_pair, read_token

        if bearer_token_file and basic_auth_file:
            raise ValueError("Alertmanager: give a bearer token file or a basic auth file, "
                             "not both")
        if key_file and not cert_file:
            raise ValueError("Alertmanager: a client key file needs its certificate file")
        cfg = cls(
            bearer_token=read_token(bearer_token_file, "Alertmanager bearer token file")
            if bearer_token_file else None,
            basic_auth=read_basic_pair(basic_auth_file, "Alertmanager basic auth file")
            if basic_auth_file else None,
            ca_file=ca_file or None,
            cert_file=cert_file or None,
            key_file=key_file or None,
        )
        cfg.ssl_context()  # a bad CA, certificate or key is found now, not at the first page
        return cfg

    @classmethod
    def from_settings(cls, settings: Any) -> HttpClientConfig:
        return cls.from_files(
            bearer_token_file=settings.alertmanager_bearer_token_file or None,
            basic_auth_file=settings.alertmanager_basic_auth_file or None,
            ca_file=settings.alertmanager_ca_file or None,
            cert_file=settings.alertmanager_cert_file or None,
            key_file=settings.alertmanager_key_file or None,
        )

    def ssl_context(self) -> ssl.SSLContext:
        """Certificate and host name verification on; the CA and client cert if given."""
        try:
            ctx = ssl.create_default_context(cafile=self.ca_file)
            if self.cert_file:
                ctx.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as exc:
            files = ", ".join(f for f in (self.ca_file, self.cert_file, self.key_file) if f)
            raise ValueError(f"Alertmanager TLS files ({files}) unusable: "
                             f"{getattr(exc, 'strerror', None) or exc}") from None
        return ctx

    def headers(self) -> dict[str, str]:
        from streams.httpauth import basic_header

        if self.bearer_token is not None:
            return {"Authorization": f"Bearer {self.bearer_token}"}
        if self.basic_auth is not None:
            return {"Authorization": basic_header(*self.basic_auth)}
        return {}

    def poster(self) -> Poster:
        """A :data:`Poster` sending with these credentials over this TLS context."""
        ctx = self.ssl_context()
        extra = self.headers()
        handler = urllib.request.HTTPSHandler(context=ctx)
        # no redirects: a redirect would carry the Authorization header elsewhere
        opener = urllib.request.build_opener(handler, _NoRedirect())

        def post(url: str, body: bytes, timeout: float) -> None:
            req = urllib.request.Request(
                url, data=body, method="POST",
                headers={"Content-Type": "application/json", **extra},
            )
            with opener.open(req, timeout=timeout) as resp:
                resp.read()

        return post


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class AlertmanagerSender:
    """Posts engine alerts to one or more Alertmanagers; see the module docstring."""

    def __init__(
        self,
        urls: Iterable[str],
        metrics: Metrics | None = None,
        resend_interval: float = 60.0,
        episode_ttl: float = 600.0,
        queue_max: int = 10000,
        runbook_base: str = DEFAULT_RUNBOOK_BASE,
        *,
        resolve_window: float | None = None,
        timeout: float = 5.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        generator_url: str | None = None,
        clock: Clock = time.time,
        post: Poster = urllib_post,
    ) -> None:
        self.urls = [_normalise_url(u) for u in urls]
        if not self.urls:
            raise ValueError("AlertmanagerSender needs at least one Alertmanager URL")
        for u in self.urls:
            if not u.startswith(("http://", "https://")):
                raise ValueError(f"Alertmanager URL must be http(s): {u}")
        if resend_interval <= 0 or episode_ttl <= 0 or queue_max <= 0:
            raise ValueError("resend_interval, episode_ttl and queue_max must be positive")
        self.metrics = metrics if metrics is not None else Metrics(CollectorRegistry())
        self.resend_interval = float(resend_interval)
        self.episode_ttl = float(episode_ttl)
        # Longer than a re-post period (with margin), so a live alert never lapses between
        # re-posts; short enough that a dead worker's alerts resolve within minutes.
        self.resolve_window = (
            float(resolve_window) if resolve_window is not None else 3.0 * self.resend_interval
        )
        if self.resolve_window <= self.resend_interval:
            raise ValueError("resolve_window must be longer than resend_interval")
        self.queue_max = int(queue_max)
        self.runbook_base = runbook_base
        self.timeout = timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.generator_url = generator_url
        self._clock = clock
        self._post = post

        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=self.queue_max)
        self._episodes: dict[str, _Episode] = {}
        self._backoff: dict[str, float] = dict.fromkeys(self.urls, 0.0)
        self._next_try: dict[str, float] = dict.fromkeys(self.urls, 0.0)
        self._last_error: dict[str, str] = {}  # url -> why its last post failed
        self._tick_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # Producer side (agents).

    def submit(self, alert: Mapping[str, Any]) -> bool:
        """Queue one engine alert (new or a repeat of its episode). False when dropped.

        Raises :class:`AlertFormatError` for an alert that breaks the contract.
        """
        labels = alert_labels(alert)
        ann = alert_annotations(alert, self.runbook_base)
        return self._put(("alert", (labels, ann, parse_ts(alert["ts"]), self._clock())))

    def touch(self, alert_id: str) -> bool:
        """The engine saw the episode again (a repeat it did not re-send): keep it firing."""
        return self._put(("touch", alert_id))

    def resolve(self, alert_id: str) -> bool:
        """End an episode now (the detector knows it is over). False when dropped."""
        return self._put(("resolve", alert_id))

    def _put(self, item: tuple[str, Any]) -> bool:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.metrics.alertmanager_dropped.inc()
            return False
        self.metrics.alertmanager_queue_size.set(self._queue.qsize())
        self._wake.set()
        return True

    # Introspection.

    def active(self) -> list[str]:
        """alert_ids of the open (not resolved) episodes."""
        with self._tick_lock:
            return [a for a, ep in self._episodes.items() if not ep.resolved]

    def pending(self) -> int:
        """Queued items plus episode states not yet delivered to every URL."""
        with self._tick_lock:
            return self._queue.qsize() + sum(
                1 for ep in self._episodes.values() if any(v is None for v in ep.delivered.values())
            )

    # The work: drain, expire, post.

    def tick(self) -> float:
        """Do everything due now; return seconds until something is due again."""
        with self._tick_lock:
            return self._tick(self._clock())

    def _tick(self, now: float) -> float:
        self._drain(now)
        self._expire(now)
        for url in self.urls:
            if self._next_try[url] <= now:
                self._post_due(url, now)
        self._forget(now)
        self.metrics.alertmanager_queue_size.set(self._queue.qsize() + self._undelivered())
        return self._next_due(now)

    def _drain(self, now: float) -> None:
        while True:
            try:
                kind, item = self._queue.get_nowait()
            except queue.Empty:
                return
            if kind == "touch":
                ep = self._episodes.get(item)
                if ep is not None and not ep.resolved:
                    ep.last_seen = max(ep.last_seen, now)
                continue
            if kind == "resolve":
                ep = self._episodes.get(item)
                if ep is not None and not ep.resolved:
                    ep.ends_at = now
                    ep.delivered = dict.fromkeys(self.urls)
                continue
            labels, annotations, ts, submitted = item
            alert_id = labels["alert_id"]
            ep = self._episodes.get(alert_id)
            if ep is None:
                if len(self._episodes) >= self.queue_max:
                    self.metrics.alertmanager_dropped.inc()
                    continue
                self._episodes[alert_id] = _Episode(
                    alert_id=alert_id,
                    labels=labels,
                    annotations=annotations,
                    starts_at=min(ts, submitted),
                    last_seen=submitted,
                    delivered=dict.fromkeys(self.urls),
                )
                continue
            ep.last_seen = max(ep.last_seen, submitted)
            if labels != ep.labels:
                # Escalated (warning -> critical keeps the alert_id): other labels are another
                # Alertmanager alert, routed elsewhere. Resolve the old one once; post now.
                old_key = f"{alert_id}\x00{ep.labels.get('severity', '')}"
                if old_key not in self._episodes:
                    self._episodes[old_key] = _Episode(
                        alert_id=old_key, labels=ep.labels, annotations=ep.annotations,
                        starts_at=ep.starts_at, last_seen=ep.last_seen, ends_at=now,
                        delivered=dict.fromkeys(self.urls))
                ep.labels = labels
                ep.delivered = dict.fromkeys(self.urls)
            ep.annotations = annotations  # the latest summary and evidence
            if ep.resolved:  # the same episode came back before it was forgotten: reopen
                ep.ends_at = None
                ep.delivered = dict.fromkeys(self.urls)

    def _expire(self, now: float) -> None:
        for ep in self._episodes.values():
            if not ep.resolved and now - ep.last_seen >= self.episode_ttl:
                ep.ends_at = now
                ep.delivered = dict.fromkeys(self.urls)

    def _due(self, url: str, now: float) -> list[_Episode]:
        due = []
        for ep in self._episodes.values():
            last = ep.delivered.get(url)
            if last is None or (not ep.resolved and now - last >= self.resend_interval):
                due.append(ep)
        return due

    def _payload(self, ep: _Episode, now: float) -> dict[str, Any]:
        body: dict[str, Any] = {
            "labels": ep.labels,
            "annotations": ep.annotations,
            "startsAt": rfc3339(ep.starts_at),
            "endsAt": rfc3339(ep.ends_at if ep.ends_at is not None else now + self.resolve_window),
        }
        if self.generator_url:
            body["generatorURL"] = self.generator_url
        return body

    def _post_due(self, url: str, now: float) -> None:
        due = self._due(url, now)
        for start in range(0, len(due), POST_CHUNK):
            chunk = due[start : start + POST_CHUNK]
            body = json.dumps([self._payload(ep, now) for ep in chunk]).encode()
            began = time.perf_counter()
            try:
                self._post(url, body, self.timeout)
            except (OSError, urllib.error.URLError, ValueError) as exc:
                self.metrics.alertmanager_post_seconds.observe(time.perf_counter() - began)
                self.metrics.alertmanager_posts.labels(result="error").inc()
                backoff = self._backoff[url]
                backoff = (
                    self.backoff_initial if backoff == 0 else min(self.backoff_max, backoff * 2)
                )
                self._backoff[url] = backoff
                self._next_try[url] = now + backoff
                self._log_failure(url, exc, backoff)
                return
            self.metrics.alertmanager_post_seconds.observe(time.perf_counter() - began)
            self.metrics.alertmanager_posts.labels(result="ok").inc()
            if self._last_error.pop(url, None) is not None:
                log.info("Alertmanager %s accepts posts again", url)
            self._backoff[url] = 0.0
            self._next_try[url] = 0.0
            for ep in chunk:
                ep.delivered[url] = now

    def _log_failure(self, url: str, exc: BaseException, backoff: float) -> None:
        """One line per new reason (error level for TLS and auth refusals, which do not
        heal by retrying); the same reason again is logged at debug level only."""
        why, fatal = _why(exc), _needs_operator(exc)
        if self._last_error.get(url) == why:
            log.debug("Alertmanager post failed again (retry in %.1fs): %s", backoff, why)
            return
        self._last_error[url] = why
        log.log(logging.ERROR if fatal else logging.WARNING,
                "Alertmanager post failed to %s (retry in %.1fs): %s", url, backoff, why)

    def _forget(self, now: float) -> None:
        done = [
            a
            for a, ep in self._episodes.items()
            if ep.ends_at is not None
            and (
                all(v is not None for v in ep.delivered.values())
                # Undeliverable for a whole resolve window: Alertmanager has resolved it
                # by itself (its last endsAt has passed), stop trying.
                or now - ep.ends_at >= self.resolve_window
            )
        ]
        for a in done:
            del self._episodes[a]

    def _undelivered(self) -> int:
        return sum(
            1 for ep in self._episodes.values() if any(v is None for v in ep.delivered.values())
        )

    def _next_due(self, now: float) -> float:
        if not self._queue.empty():
            return 0.0
        nxt = now + self.resend_interval
        for ep in self._episodes.values():
            if not ep.resolved:
                nxt = min(nxt, ep.last_seen + self.episode_ttl)
            for url, last in ep.delivered.items():
                if last is None:
                    nxt = min(nxt, max(now, self._next_try[url]))
                elif not ep.resolved:
                    nxt = min(nxt, max(last + self.resend_interval, self._next_try[url]))
        return max(0.0, nxt - now)

    # Drivers.

    def start(self) -> None:
        """Run in a daemon thread until :meth:`stop`."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._thread_main, name="accesswatch-alertmanager", daemon=True
        )
        self._thread.start()

    def _thread_main(self) -> None:
        while not self._stop.is_set():
            try:
                delay = self.tick()
            except Exception:  # never let the sender thread die silently
                log.exception("Alertmanager sender tick failed")
                delay = 1.0
            self._wake.wait(timeout=min(max(delay, 0.01), 1.0))
            self._wake.clear()

    async def run(self, poll: float = 0.2) -> None:
        """Run as an asyncio task until :meth:`stop`; HTTP happens in a worker thread."""
        self._stop.clear()
        while not self._stop.is_set():
            try:
                delay = await asyncio.to_thread(self.tick)
            except Exception:
                log.exception("Alertmanager sender tick failed")
                delay = 1.0
            await asyncio.sleep(min(max(delay, 0.01), poll))

    def flush(self, timeout: float = 5.0) -> bool:
        """Deliver everything queued and every pending state change; True when done.

        Works whether or not a driver is running (it ticks itself).
        """
        deadline = time.monotonic() + timeout
        while True:
            self.tick()
            if self.pending() == 0:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the driver (thread or ``run()``). Open episodes are not resolved: their
        ``endsAt`` lets Alertmanager resolve them unless another worker keeps them alive."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None


def _why(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        if exc.code in (401, 403):
            return (f"HTTP {exc.code} {exc.reason}: Alertmanager refused the credentials "
                    "(ACCESSWATCH_ALERTMANAGER_BEARER_TOKEN_FILE / _BASIC_AUTH_FILE)")
        return f"HTTP {exc.code} {exc.reason}"
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, ssl.SSLCertVerificationError):
        return (f"TLS certificate not trusted: {reason.verify_message} "
                "(ACCESSWATCH_ALERTMANAGER_CA_FILE names the CA to trust)")
    if isinstance(reason, ssl.SSLError):
        return f"TLS handshake failed: {reason.reason or reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return f"{type(exc).__name__}: {exc}"


def _needs_operator(exc: BaseException) -> bool:
    """A failure that retrying alone will not cure: TLS trust or refused credentials."""
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code in (401, 403)
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    return isinstance(reason, ssl.SSLError)
