"""The worker's own topics are known before Faust starts, so it can create them first."""

from __future__ import annotations

from dataclasses import replace

from streams.app import create_app
from streams.settings import Settings
from streams.topics import internal_topics

KEY = "test-state-key-0123456789abcdef"


def test_internal_topics_are_the_changelogs_and_the_side_topics() -> None:
    s = replace(Settings.from_env({}), state_keys=(KEY,), partitions=3, app_id="aw-x")
    specs = {name: (parts, configs) for name, parts, configs in internal_topics(create_app(s))}
    # every table's changelog, compacted, co-partitioned with the inputs
    for table in ("engine-checkpoints", "partials-checkpoints", "burst-checkpoints",
                  "episode-checkpoints"):
        assert specs[f"aw-x-{table}-changelog"] == (3, {"cleanup.policy": "compact"})
    # the internal topics the side agents read, with their retention
    for topic in ("aw-x-partials", "aw-x-logins-by-source", "aw-x-findings"):
        parts, configs = specs[topic]
        assert parts == 3 and int(configs["retention.ms"]) > 0
    # the input topics are not the worker's own (prepare() creates or checks them)
    assert "auth-logins" not in specs and "data-access" not in specs
