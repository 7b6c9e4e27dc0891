"""Process helpers for the demo, the tests and the benchmarks, none of them part of the
worker: :class:`local.worker.WorkerProcess` (``accesswatch worker`` in a subprocess),
:class:`local.alerts.AlertReader` (the alerts topic read in a thread) and
:class:`local.chain.Chain` (Prometheus, Alertmanager and the reference receiver beside a demo
worker). The product (``streams/``) never imports them; ``accesswatch demo`` does."""
