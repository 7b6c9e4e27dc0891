"""Shared test set-up: every module's fixtures come from here, its helpers from
``tests.helpers`` (the project root is on sys.path: pyproject's ``pythonpath = ["."]``).

- ``tests.broker_fixtures``: the embedded Tansu broker (``tansu``, ``fresh_tansu``, ``tansu_topics``);
- ``tests.kafka_fixtures``: Apache Kafka (``apache_kafka``, ``kafka_cluster``);
- ``tests.prom_fixtures``: Prometheus, Alertmanager and the reference receiver.

Each fixture starts its server only when a test asks for it.
"""

import pytest

# the helpers' asserts report their operands like a test's own (registered before any import)
pytest.register_assert_rewrite("tests.helpers", "tests.adapters_support")

pytest_plugins = ["tests.broker_fixtures", "tests.kafka_fixtures", "tests.prom_fixtures"]
