"""Pytest fixtures for a real embedded Tansu broker.

tests/conftest.py registers them for every test module. Tests using them should carry ``@pytest.mark.broker``.

- ``tansu`` (session): one started ``EmbeddedBroker`` shared by the whole run.
- ``fresh_tansu`` (function): a broker of its own (memory storage: starts in ~50 ms)
  for tests that need an empty broker or stop it.
- ``tansu_topics`` (function): a uniquely prefixed set of the five topics created on
  the session broker, as a ``TopicNames``; isolation without a new broker.

Every fixture skips, with the reason, when no Tansu binary is available.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from streams.broker import BrokerUnavailable, EmbeddedBroker, find_tansu
from streams.topics import TopicNames, create_topics

_counter = itertools.count(1)


def _tansu_or_skip() -> str:
    try:
        return find_tansu()
    except BrokerUnavailable as exc:
        pytest.skip(f"embedded broker unavailable: {exc}")


@pytest.fixture(scope="session")
def tansu() -> Iterator[EmbeddedBroker]:
    """A Tansu broker shared by the session (create your own topics or use tansu_topics)."""
    binary = _tansu_or_skip()
    broker = EmbeddedBroker(binary=binary)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def fresh_tansu() -> Iterator[EmbeddedBroker]:
    """A Tansu broker for this test only, stopped afterwards."""
    binary = _tansu_or_skip()
    with EmbeddedBroker(binary=binary) as broker:
        yield broker


@pytest.fixture
def tansu_topics(tansu: EmbeddedBroker) -> TopicNames:
    """The five accesswatch topics, freshly created under a unique prefix (4 partitions)."""
    names = TopicNames.prefixed(f"t{os.getpid()}-{next(_counter)}-")
    create_topics(tansu.bootstrap, partitions=4, names=names)
    return names
