"""``GET /healthz`` and ``GET /readyz`` on the worker's web port (issue 16).

- ``/healthz``: 200 ``ok`` while the process's event loop answers (liveness).
- ``/readyz``: 200 ``ready`` once the worker is a working member of its consumer group, and
  503 ``not ready`` before that and again during each rebalance. Ready means all of:

  1. the group has given this worker an assignment (``on_partitions_assigned`` fired; an
     empty one counts: with more workers than partitions a worker is a standby member);
  2. no rebalance is in progress and Faust's table recovery has completed (the engine
     checkpoints of the assigned partitions are restored from their changelog);
  3. the identity directory is loaded (the identity reader caught up with
     identity-changes as it was at start-up; detection waits for it).

Both answer without authentication even when the web port requires a token
(``streams.httpauth.OPEN_PATHS``): a Kubernetes ``httpGet`` probe can carry no secret
without writing it into the manifest. They reveal nothing but the status: the body is one
fixed word, no partition, topic, offset or count; every other page keeps its credentials.
"""

from __future__ import annotations

from typing import Any

#: the pages answered without credentials (exact paths, GET/HEAD only)
HEALTH_PATHS = ("/healthz", "/readyz")


class Readiness:
    """What ``/readyz`` checks, kept up to date by the app's own signals."""

    def __init__(self, app: Any, rt: Any) -> None:
        self.app = app
        self.rt = rt
        self.assigned = False

    def waiting_for(self) -> list[str]:
        """The conditions not met yet (empty: ready)."""
        app = self.app
        out = []
        if not self.assigned:
            out.append("assignment")
        recovery = getattr(getattr(app, "tables", None), "recovery", None)
        if (getattr(app, "rebalancing", False) or getattr(app, "in_recovery", False)
                or recovery is None or not recovery.completed.is_set()):
            out.append("recovery")
        if not self.rt.identity_ready.is_set():
            out.append("identity")
        return out

    def ready(self) -> bool:
        return not self.waiting_for()


def attach(app: Any, rt: Any) -> Readiness:
    """Register ``/healthz`` and ``/readyz`` on ``app`` (a ``faust.App``) for runtime ``rt``."""
    readiness = Readiness(app, rt)

    @app.on_partitions_assigned.connect
    async def _assigned(app: Any, assigned: set[Any], **kw: Any) -> None:
        readiness.assigned = True

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        return web.text("ok\n", content_type="text/plain")

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        if readiness.ready():
            return web.text("ready\n", content_type="text/plain")
        return web.text("not ready\n", content_type="text/plain", status=503)

    return readiness
