"""The Faust app: ``create_app(settings)`` declares the topics, agents, timers, tasks and
hooks of a worker around one ``streams.runtime.Runtime`` (what each event is handed to: the
per-partition engines, the event-time merge, checkpoints and acks, alerts and the DLQ; its
docstring says how consistency is kept).

- ``accesswatch.detect``: one agent over ``auth-logins`` + ``data-access`` (raw bytes, never
  acked when processed: the runtime acks them after the checkpoint that covers them);
- the readers of every partition of ``identity-changes`` and ``access-feedback``
  (``streams.readers``, no consumer group); detection waits for the identity reader to catch
  up;
- with more than one partition, the combiner of bulk_lookup's views (``streams.combine``),
  the burst engines (``streams.bursts``) and the episode builders (``streams.episodes``),
  each on an internal topic of its own
  (``streams.side``); the ingest agents with ``--ingest`` (``streams.ingest``);
- a watermark timer (``watermark_interval``), a checkpoint timer (``checkpoint_interval``),
  the rebalance and shutdown hooks (checkpoint what is lost, drop its engines);
- ``/metrics`` on Faust's own web server (``--web-port``), rendered from the
  ``streams.metrics`` registry; ``--faust-metrics`` adds Faust's own Prometheus sensor to the
  same page (names ``faust_*``, runtime histograms in **milliseconds**, ~10% more CPU per
  event); ``/healthz``, ``/readyz``, the entity page and ``POST /feedback``;
- the consumer's fetch wait capped (``fetch_max_wait_ms``, 100 ms; Faust fixes 1.5 s, which
  Tansu turns into 1.5 s of latency: ``streams.faust_compat.limit_fetch_wait``);
- Faust's per-message costs nobody reads left out (issue 17): its Monitor's per-message
  hooks (``faust_compat.lean_monitor``) and the settings lookup behind its producer-buffer
  check before every message (``faust_compat.cheap_producer_buffer_size``);
- the Alertmanager sender with ``--alertmanager``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import faust
from prometheus_client import CollectorRegistry

from streams import faust_compat as compat
from streams.bursts import attach as attach_bursts
from streams.bursts import input_leave_out
from streams.combine import attach as attach_combine
from streams.combine import input_remote_kinds
from streams.episodes import input_relay_kinds
from streams.httpauth import faust_web_options
from streams.metrics import Metrics, commit_timer
from streams.readers import read_all, read_identity
from streams.runtime import Runtime
from streams.settings import Settings

log = logging.getLogger("accesswatch.app")


def create_app(settings: Settings, *, registry: CollectorRegistry | None = None) -> faust.App:
    """Build the accesswatch Faust app for ``settings`` (the worker runs it)."""
    if settings.fetch_max_wait_ms > 0:
        compat.limit_fetch_wait(settings.fetch_max_wait_ms)
    compat.cheap_producer_buffer_size()  # read per input message by Faust's conductor
    names = settings.topics
    registry = registry if registry is not None else CollectorRegistry()
    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{s}" for s in settings.bootstrap],
        broker_credentials=settings.kafka_security().faust_credentials(),  # TLS / SASL
        store=settings.store_url,
        datadir=settings.data_dir,
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication,
        processing_guarantee="at_least_once",  # never exactly_once (Tansu, see STACK-NOTES)
        broker_session_timeout=10,
        broker_heartbeat_interval=1,
        broker_max_poll_records=1000,
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=False,  # events are held unacked until a checkpoint
        table_standby_replicas=0,
        id_format="{id}",
        Monitor=compat.lean_monitor(),  # Faust's per-message stats: nothing reads them
        **faust_web_options(settings),  # bind, Faust's views off, auth (streams/httpauth.py)
    )
    metrics = Metrics(registry, topics=names.inputs())
    app.sensors.add(commit_timer(metrics.commit_latency_seconds))
    if settings.faust_metrics:
        # Faust's own sensor: per-event histograms in milliseconds, ~10% of a worker's CPU.
        from faust.sensors.prometheus import setup_prometheus_sensors

        setup_prometheus_sensors(app, pattern="/metrics", registry=registry,
                                 name_prefix="faust")
    else:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        @app.page("/metrics")
        async def metrics_page(web: Any, request: Any) -> Any:
            rt.flush_metrics()
            return web.bytes(generate_latest(registry),
                             content_type=CONTENT_TYPE_LATEST.split(";")[0])
    # the combiner's kinds are handed out, the burst detectors left to the burst engines
    rt = Runtime(app, settings, metrics, remote_kinds=input_remote_kinds(settings),
                 leave_out=input_leave_out(settings),
                 relay_kinds=input_relay_kinds(settings))
    app.accesswatch = rt  # type: ignore[attr-defined]  # the runtime's handles hang on the Faust app for the CLI and tests to find
    from streams.health import attach as attach_health  # issue 16: /healthz, /readyz

    app.accesswatch_readiness = attach_health(app, rt)  # type: ignore[attr-defined]  # the runtime's handles hang on the Faust app for the CLI and tests to find
    from streams.explain_web import attach as attach_explain  # issue 18.4: the entity page

    attach_explain(app, rt)
    from streams.feedback_web import attach as attach_feedback  # issue 18.3: POST /feedback

    attach_feedback(app, settings)
    app.accesswatch_metrics = metrics  # type: ignore[attr-defined]  # the runtime's handles hang on the Faust app for the CLI and tests to find
    # bulk_lookup's views of sources and keys, scored where they meet (more than one partition)
    comb = app.accesswatch_combine = attach_combine(  # type: ignore[attr-defined]  # the runtime's handles hang on the Faust app for the CLI and tests to find
        app, rt, settings)
    # logins by source AS, with more than one partition: credential_stuffing, password_spray
    bursts = rt.bursts = app.accesswatch_bursts = attach_bursts(  # type: ignore[attr-defined]  # the runtime's handles hang on the Faust app for the CLI and tests to find
        app, rt, settings)
    from streams.episodes import attach as attach_episodes

    # issue 17 item 5, more than one partition: findings meet by entity before episodes
    episodes = rt.episodes = app.accesswatch_episodes = attach_episodes(  # type: ignore[attr-defined]  # the runtime's handles hang on the Faust app for the CLI and tests to find
        app, rt, settings)

    inputs = app.topic(
        names.logins,
        names.access,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.partitions,
    )

    @app.agent(inputs, name="accesswatch.detect")
    async def detect(stream: faust.StreamT) -> None:
        await rt.identity_ready.wait()
        async for event in stream.noack().events():  # type: ignore[attr-defined]  # faust.Stream has noack(); the StreamT protocol does not declare it
            await rt.on_event(event)
            if comb is not None:
                await comb.send(event.message.partition)
            if episodes is not None:
                await episodes.send(event.message.partition)

    if settings.ingest:  # issue 15: raw source topics adapted to the input topics
        from streams.ingest import attach as attach_ingest

        attach_ingest(app, rt, settings)

    @app.task
    async def identity_reader() -> None:
        await read_identity(app, rt, settings)

    @app.task
    async def feedback_reader() -> None:  # issue 18: analysts' verdicts
        await rt.identity_ready.wait()
        await read_all(app, settings, settings.topics.feedback, "feedback", rt.on_feedback)

    @app.timer(settings.watermark_interval)
    async def watermark() -> None:
        await rt.watermark()
        if comb is not None:
            await comb.tick()
        if bursts is not None:
            await bursts.tick()
        if episodes is not None:
            await episodes.tick()

    @app.timer(settings.checkpoint_interval)
    async def checkpoint() -> None:
        await rt.checkpoint(periodic=True)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # Faust awaits async receivers; BaseSignal's annotation names only the plain-callable form
    async def on_revoked(app: faust.App, revoked: set[Any], **kw: Any) -> None:
        lost = {tp.partition for tp in revoked if tp.topic in (names.logins, names.access)}
        with contextlib.suppress(Exception):
            await rt.checkpoint(lost)
        rt.drop(lost)

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]  # Faust awaits async receivers; BaseSignal's annotation names only the plain-callable form
    async def on_assigned(app: faust.App, assigned: set[Any], **kw: Any) -> None:
        metrics.rebalances.inc()
        mine = {tp.partition for tp in assigned if tp.topic in (names.logins, names.access)}
        rt.drop(set(rt.parts) - mine)
        metrics.forget_partitions((tp.topic, tp.partition) for tp in assigned)

    @app.on_before_shutdown.connect  # type: ignore[arg-type]  # Faust awaits async receivers; BaseSignal's annotation names only the plain-callable form
    async def on_shutdown(app: faust.App, **kw: Any) -> None:
        with contextlib.suppress(Exception):
            await rt.checkpoint()
        rt.flush_metrics()
        log.info("%s", rt.engine_summary())
        if rt.sender is not None:
            await asyncio.to_thread(rt.sender.flush, 5.0)
            rt.sender.stop()

    if settings.alertmanager:
        from streams.alertmanager import AlertmanagerSender, HttpClientConfig

        rt.sender = AlertmanagerSender(list(settings.alertmanager), metrics,
                                       post=HttpClientConfig.from_settings(settings).poster(),
                                       runbook_base=settings.runbook_base_url)  # issue 16

        @app.task
        async def alertmanager_sender() -> None:
            await rt.sender.run()

    return app
