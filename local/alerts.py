"""The alerts topic read from the start in a thread, for the demo, the tests and the
benchmarks."""

from __future__ import annotations

import threading
import time
from typing import Any

import orjson


class AlertReader:
    """Reads the alerts topic from the start, in a thread, into ``alerts`` (in order)."""

    def __init__(self, bootstrap: str | list[str], topic: str, security: Any = None) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.security = security  # streams.kafka_security.KafkaSecurity; None: the environment's
        self.alerts: list[dict[str, Any]] = []
        self.last_at = time.monotonic()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="alert-reader", daemon=True)
        self._seen = 0

    def start(self) -> AlertReader:
        self._thread.start()
        return self

    def _run(self) -> None:
        from kafka import KafkaConsumer, TopicPartition

        from streams.kafka_security import or_env

        c = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None,
                          enable_auto_commit=False, auto_offset_reset="earliest",
                          client_id="accesswatch-demo-alerts",
                          **or_env(self.security).kafka_python_options())
        try:
            parts = None
            while not parts and not self._stop.is_set():
                parts = c.partitions_for_topic(self.topic)
                if not parts:
                    time.sleep(0.2)
            tps = [TopicPartition(self.topic, p) for p in sorted(parts or ())]
            c.assign(tps)
            c.seek_to_beginning(*tps)
            while not self._stop.is_set():
                for recs in c.poll(timeout_ms=200).values():
                    for r in recs:
                        try:
                            a = orjson.loads(r.value)
                        except orjson.JSONDecodeError:
                            continue
                        with self._lock:
                            self.alerts.append(a)
                            self.last_at = time.monotonic()
        finally:
            c.close()

    def new(self) -> list[dict[str, Any]]:
        """Alerts that arrived since the last call."""
        with self._lock:
            out = self.alerts[self._seen:]
            self._seen = len(self.alerts)
        return out

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
